"""calltrack settings: one module, read from the environment (see .env.example)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.templatetags.static import static
from django.utils.translation import gettext_lazy

from calltrack.logs import logging_config
from calltrack.nomenclature import locale_paths

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = BASE_DIR / ".env"
if _env_file.exists():
    environ.Env.read_env(str(_env_file))

# Development-only default; with DEBUG off the app refuses to start with it (calltrack.checks, run by wsgi.py and manage.py).
INSECURE_SECRET_KEY = "django-insecure-calltrack-development-key-change-me"
# Off unless asked for: `make demo` and the tests (pyproject's pytest env) set DEBUG=true themselves.
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # django-unfold (the admin theme) before django.contrib.admin, so its templates win.
    "unfold",
    "unfold.contrib.filters",
    "unfold.contrib.forms",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "axes",
    "calltrack",
    "tracking",
    "calltrack.numbers.apps.NumbersConfig",
    "routing",
]

MIDDLEWARE = [
    "calltrack.middleware.ProxyHopsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from STATIC_ROOT (collected when the container image is built), before anything else does work.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # The Twilio webhooks and the DNI API answer here, past sessions, CSRF, auth and the rest (CALLTRACK_LEAN_PATHS).
    "calltrack.middleware.HotPathsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # The account the admin acts in (the header's switcher); the API's is placed by its authentication classes.
    "calltrack.accounts.AccountMiddleware",
    # The admin's and the API's changes to the money are recorded with their user (calltrack/audit.py).
    "calltrack.audit.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: locks out repeated failed logins (admin and API session logins).
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]
# django-axes: after AXES_FAILURE_LIMIT failed logins of one username from one client (an IPv6 client is its /64:
# CALLTRACK_IPV6_PREFIX), that pair is locked out for AXES_COOLOFF_MINUTES (answer 429), even with the right password;
# a stranger elsewhere is not. And after CALLTRACK_LOGIN_USERNAME_FAILURE_LIMIT failures of one username from all
# addresses together, the username is locked out everywhere (rotating addresses does not buy guesses; 0: no such
# limit). calltrack.lockout.LoginLockoutHandler counts both.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "calltrack.lockout.LoginLockoutHandler"
CALLTRACK_LOGIN_USERNAME_FAILURE_LIMIT = env.int("CALLTRACK_LOGIN_USERNAME_FAILURE_LIMIT", default=20)
# The client's address as every limit sees it: REMOTE_ADDR, or our own proxies' X-Forwarded-For entry
# (CALLTRACK_PROXY_HOPS), an IPv6 address as its /64 (calltrack.middleware.client_key).
AXES_CLIENT_IP_CALLABLE = "calltrack.middleware.axes_client_ip"

ROOT_URLCONF = "calltrack.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "calltrack.wsgi.application"
ASGI_APPLICATION = "calltrack.asgi.application"

# SQLite by default (a trial needs no server); DATABASE_URL=postgres://... for PostgreSQL (psycopg 3).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Concurrent requests (runserver threads, the q cluster) wait for the write lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
    CALLTRACK_PREPARED_STATEMENTS = False  # PostgreSQL only (below)
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    # A persistent connection is checked (SELECT 1) before each request's first query, so a restarted database
    # costs no request; false saves that round trip (about 7% of the voice webhooks' time in bench/voice.py) at
    # the price of one failed request per worker after the database restarts.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=True)
    # Server-side prepared statements, used only by cursors that bind parameters on the server: the hot
    # paths' fixed statements (calltrack.fastdb.fixed_cursor: voice webhooks, DNI tag endpoints); Django's own
    # cursors bind on the client and never prepare. Planning those statements cost PostgreSQL more than running
    # them. Off behind a connection pooler in transaction mode that does not track prepared statements
    # (PgBouncer before 1.21, or without max_prepared_statements).
    CALLTRACK_PREPARED_STATEMENTS = env.bool("CALLTRACK_PREPARED_STATEMENTS", default=True)
    if CALLTRACK_PREPARED_STATEMENTS:
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("prepare_threshold", 0)

# Reports off the primary: a read replica of DATABASE_URL (PostgreSQL streaming replication). The dashboard's
# figures, the reports API and the call log's CSV export read there (calltrack/db_router.py: only inside
# replica_reads(), never globally); the voice webhooks and every write stay on the primary. Empty: no replica.
_replica_url = env.str("DATABASE_REPLICA_URL", default="")
if _replica_url:
    DATABASES["replica"] = env.db_url_config(_replica_url)
    for _key in ("CONN_MAX_AGE", "CONN_HEALTH_CHECKS"):
        if _key in DATABASES["default"]:
            DATABASES["replica"][_key] = DATABASES["default"][_key]
    # Tests: the same test database as default (a second connection), as a replica would hold the same rows.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
# The router only with a replica: without one every read and write is on default anyway, and Django asks each
# router on every related-object assignment and save (the voice webhooks' hot path).
DATABASE_ROUTERS = ["calltrack.db_router.ReplicaRouter"] if _replica_url else []

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
# One way to write dates across the console ("Dec 6, 2026 20:30"): calltrack/formats/en/formats.py.
FORMAT_MODULE_PATH = ["calltrack.formats"]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
# The ISO 4217 code the console shows money in (calltrack.formats.money); an account may set its own (Account.currency).
CURRENCY = env.str("CURRENCY", default="USD").strip().upper()
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# WhiteNoise serves STATIC_ROOT (gzip/brotli copies made by collectstatic). Not the manifest storage: its hashed names
# need a collectstatic before every test and development run; templates keep plain names (a minute's browser cache).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Rate limits (DNI, API throttling, login lockouts) are counted in this cache, so it must be shared by every worker
# and server: with DEBUG off the default is the database cache (its table is created after each migrate);
# CACHE_URL=redis://... is faster (atomic counters). Process memory only for development.
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://calltrack" if DEBUG else "dbcache://calltrack_cache")}

# Logs go to stderr: plain text, or LOG_FORMAT=json for one JSON object a line (python-json-logger) carrying the
# CallSid, request id and task id of the webhook or task that logged it (calltrack/logs.py).
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))

# --- Prometheus metrics at /metrics (calltrack/metrics.py, calltrack/metrics_view.py; README "Operations") ---
# A scraper sends "Authorization: Bearer <METRICS_TOKEN>"; staff may also look with their console session. Empty and
# not staff: /metrics answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Several processes (gunicorn workers, task workers) add up their figures through files in this directory
# (prometheus-client's multiprocess mode). prometheus-client reads the variable itself when it is imported: it must be
# in the environment before the process starts, and the directory emptied before gunicorn starts (gunicorn.conf.py).
# Empty: each process keeps its own figures in memory (one process, development).
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default="")
# The task cluster (manage.py qcluster) serves its own figures (webhook deliveries) on this port, to the bearer of
# METRICS_TOKEN, when PROMETHEUS_MULTIPROC_DIR is set (calltrack/metrics_worker.py). 0: off.
METRICS_WORKER_PORT = env.int("METRICS_WORKER_PORT", default=0)

# --- Behind a proxy: forwarded headers are trusted only when these say so (README "Security") ---
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
if env.bool("SECURE_PROXY_SSL", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- HTTPS: Secure cookies with DEBUG off; HSTS and the redirect to https when the deployment asks for them ---
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]  # load balancers probe, and Prometheus scrapes each node, over plain http
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)

# --- Django REST framework ---
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "calltrack.api.authentication.TokenAuthentication",
        "calltrack.api.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Per user (token or session) and, for requests without credentials, per client (the address rule of every limit:
    # calltrack.middleware.client_key), counted atomically like the DNI limits (calltrack/api/throttling.py). Empty: no limit.
    "DEFAULT_THROTTLE_CLASSES": ["calltrack.api.throttling.AnonRateThrottle", "calltrack.api.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("CALLTRACK_API_THROTTLE_ANON", default="60/min") or None,
        "user": env.str("CALLTRACK_API_THROTTLE_USER", default="1200/min") or None,
    },
}
# /api/schema/ costs 0.3-0.5 s of CPU: its own rate per user or client, kept when the rates above are empty.
CALLTRACK_API_THROTTLE_SCHEMA = env.str("CALLTRACK_API_THROTTLE_SCHEMA", default="30/minute")
SPECTACULAR_SETTINGS = {
    "TITLE": "calltrack API",
    "DESCRIPTION": gettext_lazy("Call tracking and routing: sources, handlers, campaigns, numbers, pools and calls."),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- django-q2: the Django ORM is the broker by default (nothing else to run); Q_REDIS_URL switches to Redis ---
Q_CLUSTER = {
    "name": "calltrack",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 60,
    "retry": 120,
    "max_attempts": 1,
    "queue_limit": 100,
    "bulk": 10,
    "catch_up": False,
    "label": "Background tasks",
}
_q_redis = env.str("Q_REDIS_URL", default="")
if _q_redis:
    Q_CLUSTER["redis"] = _q_redis
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = env.float("Q_POLL", default=0.5)

# --- calltrack ---
CALLTRACK_DEFAULT_REGION = env.str("CALLTRACK_DEFAULT_REGION", default="US")
# standard: Source / Handler; performance: Publisher / Buyer (pay-per-call words), an English message catalog
# added to LOCALE_PATHS (calltrack/nomenclature.py): labels change, data and identifiers do not.
CALLTRACK_NOMENCLATURE = env.str("CALLTRACK_NOMENCLATURE", default="standard")
LOCALE_PATHS = locale_paths(CALLTRACK_NOMENCLATURE)
CALLTRACK_FAILSAFE_NUMBER = env.str("CALLTRACK_FAILSAFE_NUMBER", default="")
CALLTRACK_PUBLIC_BASE_URL = env.str("CALLTRACK_PUBLIC_BASE_URL", default="")
# Alerts' email (Django's mail backend): e.g. smtp+tls://user:password@smtp.example.com:587; the console by default
# (development prints them). Alerts' sender address.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="calltrack@localhost")
# Spam surge alert: spam-scored calls in the last hour at least this many, and CALLTRACK_SPAM_SURGE_FACTOR times the
# hourly average of the week before.
CALLTRACK_SPAM_SURGE_MIN = env.int("CALLTRACK_SPAM_SURGE_MIN", default=10)
CALLTRACK_SPAM_SURGE_FACTOR = env.float("CALLTRACK_SPAM_SURGE_FACTOR", default=3.0)
CALLTRACK_VALIDATE_TWILIO_SIGNATURE = env.bool("CALLTRACK_VALIDATE_TWILIO_SIGNATURE", default=True)
CALLTRACK_CARRIER = env.str("CALLTRACK_CARRIER", default="local")
CALLTRACK_QUARANTINE_DAYS = env.int("CALLTRACK_QUARANTINE_DAYS", default=30)
# The carrier's caller lookup (a campaign's spam rules "lookup": off unless a campaign asks): days an answer is
# reused for the same caller (each lookup is billed at Twilio), and seconds a call waits for the carrier's answer
# (past that the call goes on without it).
CALLTRACK_CALLER_LOOKUP_DAYS = env.int("CALLTRACK_CALLER_LOOKUP_DAYS", default=30)
CALLTRACK_CALLER_LOOKUP_TIMEOUT = env.float("CALLTRACK_CALLER_LOOKUP_TIMEOUT", default=2.0)
CALLTRACK_DNI_RATE_LIMIT_IP = env.str("CALLTRACK_DNI_RATE_LIMIT_IP", default="120/minute")
CALLTRACK_DNI_RATE_LIMIT_VISITOR = env.str("CALLTRACK_DNI_RATE_LIMIT_VISITOR", default="30/minute")
# DNI abuse limits: a session younger than this (seconds) is never taken over by the "reuse the oldest" overflow policy
# (the newcomer gets the fallback number, counted as an overflow); new sessions one IP address may open per pool.
CALLTRACK_DNI_TAKEOVER_MIN_AGE = env.int("CALLTRACK_DNI_TAKEOVER_MIN_AGE", default=300)
CALLTRACK_DNI_NEW_SESSIONS_PER_IP = env.str("CALLTRACK_DNI_NEW_SESSIONS_PER_IP", default="30/hour")
# Overflows in one hour that the pool's admin page (and numbers.selectors.pool_overflow_spikes) flag as a spike.
CALLTRACK_DNI_OVERFLOW_SPIKE = env.int("CALLTRACK_DNI_OVERFLOW_SPIKE", default=20)
# How many reverse proxies of ours sit in front of the app (their X-Forwarded-For entries are trusted for client IPs).
CALLTRACK_PROXY_HOPS = env.int("CALLTRACK_PROXY_HOPS", default=0)
# Every limit (DNI rates and new sessions, API throttles, the login lockout) counts an IPv6 client by its network of
# this many bits (64: a subscriber's /64, whose addresses its holder picks at will; 128: each address alone).
CALLTRACK_IPV6_PREFIX = env.int("CALLTRACK_IPV6_PREFIX", default=64)
# URL prefixes served past the admin's middleware (sessions, CSRF, auth, messages, axes): Twilio's webhooks and the
# DNI tag's API, which serve no logged-in person (calltrack.middleware.HotPathsMiddleware). Not the DNI demo page.
CALLTRACK_LEAN_PATHS = ["/voice/", "/dni/v1/"]
# Serve the DNI demo landing page at /dni/demo/ (development).
CALLTRACK_DNI_DEMO = env.bool("CALLTRACK_DNI_DEMO", default=DEBUG)
# True: DNI assignments do not wait for PostgreSQL's WAL flush (sessions are short-lived). Off by default: durable.
CALLTRACK_DNI_ASYNC_COMMIT = env.bool("CALLTRACK_DNI_ASYNC_COMMIT", default=False)
CALLTRACK_SLOT_MARGIN_SECONDS = env.int("CALLTRACK_SLOT_MARGIN_SECONDS", default=60)
# PostgreSQL only: voice webhooks commit without waiting for the disk (SET LOCAL synchronous_commit = off).
# Faster; a database crash may lose the last fraction of a second of call records (never corrupts them).
CALLTRACK_VOICE_ASYNC_COMMIT = env.bool("CALLTRACK_VOICE_ASYNC_COMMIT", default=False)
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")

# --- REST API (calltrack/api/): one exception handler, page numbers by default (a cursor on calls), documented errors ---
REST_FRAMEWORK.update(
    {
        "EXCEPTION_HANDLER": "calltrack.api.exceptions.exception_handler",
        "DEFAULT_PAGINATION_CLASS": "calltrack.api.pagination.StandardPagination",
        "DEFAULT_SCHEMA_CLASS": "calltrack.api.schema.AutoSchema",
    }
)
SPECTACULAR_SETTINGS.update(
    {
        # Separate request and response components: read-only fields are not offered as input.
        "COMPONENT_SPLIT_REQUEST": True,
        "SCHEMA_PATH_PREFIX": r"/api/v1",
        "ENUM_NAME_OVERRIDES": {
            "CallStatusEnum": "tracking.models.calls.CallStatus",
            "AttemptStatusEnum": "tracking.models.calls.AttemptStatus",
            "RecordingStatusEnum": "tracking.models.calls.RecordingStatus",
            "NumberStatusEnum": "calltrack.numbers.models.lines.NumberStatus",
            "PoolNumberTypeEnum": "calltrack.numbers.models.pools.PoolNumberType",
            "NumberTypeEnum": "calltrack.numbers.models.lines.NumberType",
            "AlertKindEnum": "tracking.models.alerts.AlertKind",
            "MonitorKindEnum": "tracking.models.alerts.MonitorKind",
            "DestinationKindEnum": "tracking.models.ad_platforms.DestinationKind",
            "TextStatusEnum": "tracking.models.texts.TextStatus",
            "TextDirectionEnum": "tracking.models.texts.TextDirection",
            "TextPurposeEnum": "tracking.models.texts.TextPurpose",
        },
    }
)

# Outgoing webhooks (tracking/services/webhooks.py): seconds to wait for the receiver, tries before "failed",
# and the first retry's delay in seconds (doubling each time, at most an hour).
CALLTRACK_WEBHOOK_TIMEOUT = env.float("CALLTRACK_WEBHOOK_TIMEOUT", default=10)
CALLTRACK_WEBHOOK_MAX_ATTEMPTS = env.int("CALLTRACK_WEBHOOK_MAX_ATTEMPTS", default=5)
CALLTRACK_WEBHOOK_RETRY_BASE = env.int("CALLTRACK_WEBHOOK_RETRY_BASE", default=30)
# Conversions sent back to the ad platforms (tracking/services/ad_uploads.py): tries before "refused" (timeouts,
# connection errors, 408/429/5xx are retried), the first retry's delay in seconds (doubling, at most 6 hours), and the
# platforms' API addresses (tests point them at a local receiver; nothing else should change them). Google Ads itself is
# reached over gRPC by its client library (googleads.googleapis.com); only its OAuth token address is here.
CALLTRACK_AD_UPLOAD_MAX_ATTEMPTS = env.int("CALLTRACK_AD_UPLOAD_MAX_ATTEMPTS", default=8)
CALLTRACK_AD_UPLOAD_RETRY_BASE = env.int("CALLTRACK_AD_UPLOAD_RETRY_BASE", default=60)
CALLTRACK_AD_PLATFORM_URLS = {
    "google_token": "https://oauth2.googleapis.com/token",
    "ga4": "https://www.google-analytics.com",
    "meta": "https://graph.facebook.com",
    "microsoft": "https://campaign.api.bingads.microsoft.com",
    "microsoft_token": "https://login.microsoftonline.com/common/oauth2/v2.0/token",
}
# Outgoing HTTP (calltrack/outbound.py: webhooks, and anything else calltrack fetches or sends) goes only to public
# addresses. Private receivers an operator really runs are listed here: networks (10.1.2.0/24, 127.0.0.1) or host names.
CALLTRACK_OUTBOUND_ALLOW = env.list("CALLTRACK_OUTBOUND_ALLOW", default=[])
# Number lifecycle: how far back pool autoscaling looks for the peak; how long the simulated carrier takes to port.
CALLTRACK_AUTOSCALE_WINDOW_MINUTES = env.int("CALLTRACK_AUTOSCALE_WINDOW_MINUTES", default=24 * 60)
CALLTRACK_LOCAL_PORT_SECONDS = env.int("CALLTRACK_LOCAL_PORT_SECONDS", default=0)
# Call recordings (calltrack.numbers.services.recordings): days a recording is kept before the daily task deletes it
# at the carrier and here (0: keep forever). The local carrier's recordings are WAV files under MEDIA_ROOT.
CALLTRACK_RECORDING_RETENTION_DAYS = env.int("CALLTRACK_RECORDING_RETENTION_DAYS", default=0)
MEDIA_ROOT = env.path("CALLTRACK_MEDIA_ROOT", default=BASE_DIR / "media")
# Twilio's voice fallback URL (/voice/fallback) dials the fail-safe number signed into it: see README "Fail-safe".
CALLTRACK_FALLBACK_URL = env.bool("CALLTRACK_FALLBACK_URL", default=True)

# --- The admin console (django-unfold): title, and the sidebar in the operator's order (calltrack/admin_nav.py) ---
UNFOLD = {
    "SITE_TITLE": "calltrack",
    "SITE_HEADER": "calltrack",
    # With more than one account: the account acted in, and the switcher (nothing more on a one-account install).
    "SITE_SUBHEADER": "calltrack.accounts.header_subheader",
    "SITE_DROPDOWN": "calltrack.accounts.header_dropdown",
    "SITE_SYMBOL": "call",
    "SHOW_VIEW_ON_SITE": False,
    # The admin's landing page is the operator's dashboard (calltrack/dashboard.py, calltrack/reports.py).
    "DASHBOARD_CALLBACK": "calltrack.dashboard.dashboard_callback",
    "SITE_FAVICONS": [{"rel": "icon", "type": "image/svg+xml", "href": lambda request: static("calltrack/favicon.svg")}],
    "STYLES": [lambda request: static("calltrack/admin.css")],
    "SCRIPTS": [lambda request: static("calltrack/admin.js")],
    "SIDEBAR": {
        "show_search": True,
        "show_all_applications": False,
        "navigation": "calltrack.admin_nav.sidebar_navigation",
    },
}
