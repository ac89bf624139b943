"""Settings for bench/voice.py and bench/dni.py: the product's settings plus the floor view's URL and a middleware
that reports each request's CPU (bench/cpu.py)."""

from calltrack.settings import *  # noqa: F401,F403
from calltrack.settings import MIDDLEWARE

ROOT_URLCONF = "bench.urls"
MIDDLEWARE = ["bench.cpu.RequestCPUMiddleware", *MIDDLEWARE]
