"""WSGI entry for bench/voice.py's gunicorn: the product plus the floor view."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

import calltrack  # noqa: E402,F401  (installs the numbers app package before Django loads apps)

application = get_wsgi_application()
