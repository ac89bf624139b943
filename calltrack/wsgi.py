"""
WSGI config for calltrack project.

It exposes the WSGI callable as a module-level variable named ``application``.

For more information on this file, see
https://docs.djangoproject.com/en/5.2/howto/deployment/wsgi/
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'calltrack.settings')

application = get_wsgi_application()

# A production process refuses to serve with a weak key, no ALLOWED_HOSTS or unchecked Twilio signatures.
from calltrack.checks import refuse_insecure_production  # noqa: E402

refuse_insecure_production()
