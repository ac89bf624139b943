"""
ASGI config for calltrack project.

It exposes the ASGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/asgi/
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'calltrack.settings')

application = get_asgi_application()

# A production process refuses to serve with a weak key, no ALLOWED_HOSTS or unchecked Twilio signatures.
from calltrack.checks import refuse_insecure_production  # noqa: E402

refuse_insecure_production()
