# calltrack: one image for every process (web: gunicorn; worker: manage.py qcluster; migrate: a one-off).
# Build: docker build -t calltrack .   Run: docker compose up (compose.yaml; README "Deployment").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    STATIC_ROOT=/app/staticfiles \
    CALLTRACK_MEDIA_ROOT=/app/media

WORKDIR /app

# psycopg[binary] ships its own libpq: no compiler, no system packages.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files collected at build and served by WhiteNoise (settings.STORAGES). collectstatic needs no secret and no
# database; DEBUG is off as in production.
RUN DEBUG=false python manage.py collectstatic --noinput \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin calltrack \
    && mkdir -p /app/media \
    && chown calltrack /app/media

USER calltrack

EXPOSE 8000

# /healthz answers 200 while the database is reachable, 503 otherwise. The slim image has no curl: Python's urllib,
# with a Host header that ALLOWED_HOSTS accepts (its first entry).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; h = os.environ.get('ALLOWED_HOSTS', 'localhost').split(',')[0].strip().lstrip('.').replace('*', 'localhost') or 'localhost'; u.urlopen(u.Request('http://127.0.0.1:8000/healthz', headers={'Host': h}), timeout=4)"]

# One sync worker per core plus one (README "Configuration"); GUNICORN_CMD_ARGS adds to these (e.g. "--workers 5").
CMD ["gunicorn", "calltrack.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
