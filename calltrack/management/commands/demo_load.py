from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from calltrack.audit import audit_context
from calltrack.demo import demo_load


class Command(BaseCommand):
    help = "Load the demo data set (idempotent) and create or reset the demo admin user, printing its login."

    def add_arguments(self, parser):
        parser.add_argument("--calls", type=int, default=720, help="How many historical demo calls to create (first run only).")
        parser.add_argument("--days", type=int, default=60, help="Over how many days before now (first run only).")
        parser.add_argument("--username", default="admin", help="The admin user to create or reset (default: admin).")
        parser.add_argument("--password", default="", help="Its password (default: a new random one, printed).")
        parser.add_argument("--no-user", action="store_true", help="Do not create or reset the admin user.")

    def handle(self, *args, **options):
        with audit_context(origin="command", actor="demo_load"):  # the demo's calls and terms, in the money history
            counts = demo_load(calls=options["calls"], days=options["days"])
        self.stdout.write("Demo data: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
        if options["no_user"]:
            return
        User = get_user_model()
        password = options["password"] or secrets.token_urlsafe(9)
        user, _ = User.objects.get_or_create(username=options["username"], defaults={"email": "admin@example.com"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(self.style.SUCCESS(f"Admin login (at /admin/): user {user.username}  password {password}"))
