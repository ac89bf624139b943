#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""
import os
import sys

# Commands that do the product's work with production settings (runserver refuses when it loads calltrack.wsgi).
WORKING_COMMANDS = {"qcluster"}


def main():
    """Run administrative tasks."""
    os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'calltrack.settings')
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Are you sure it's installed and "
            "available on your PYTHONPATH environment variable? Did you "
            "forget to activate a virtual environment?"
        ) from exc
    if sys.argv[1:2] and sys.argv[1] in WORKING_COMMANDS:
        # The task cluster refuses insecure production settings, as the web server does when calltrack.wsgi loads.
        import django

        django.setup()
        from calltrack.checks import refuse_insecure_production

        refuse_insecure_production()
    execute_from_command_line(sys.argv)


if __name__ == '__main__':
    main()
