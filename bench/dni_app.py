"""Settings for bench/dni.py: the project's, with dni_urls (the project's URLs plus a trivial JSON floor view).

Loaded by gunicorn as DJANGO_SETTINGS_MODULE=dni_app with bench/ on the Python path; nothing in the
project imports it.
"""

from calltrack.settings import *  # noqa: F403

ROOT_URLCONF = "dni_urls"
