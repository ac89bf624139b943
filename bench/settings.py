"""Settings for bench/voice.py: the product's settings plus the floor view's URL."""

from calltrack.settings import *  # noqa: F401,F403

ROOT_URLCONF = "bench.urls"
