from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from calltrack.accounts import acting_in
from calltrack.audit import audit_context
from calltrack.demo import demo_account_elsewhere, demo_load
from calltrack.numbers.management.base import account_add_argument, find_account


class Command(BaseCommand):
    help = "Load the demo data set (idempotent) and create or reset the demo admin user, printing its login."

    def add_arguments(self, parser):
        parser.add_argument("--calls", type=int, default=720, help="How many historical demo calls to create (first run only).")
        parser.add_argument("--days", type=int, default=60, help="Over how many days before now (first run only).")
        parser.add_argument("--username", default="admin", help="The admin user to create or reset (default: admin).")
        parser.add_argument("--password", default="", help="Its password (default: a new random one, printed).")
        parser.add_argument("--no-user", action="store_true", help="Do not create or reset the admin user.")
        account_add_argument(parser)

    def handle(self, *args, **options):
        account = find_account(options["account"])
        elsewhere = demo_account_elsewhere(account.pk)
        if elsewhere:
            raise CommandError(f"The demo is loaded in account '{elsewhere}' already (a phone number belongs to one account).")
        # The demo's rows in the account, and found there only (audit: the demo's calls and terms, in the money history).
        with acting_in(account.pk), audit_context(origin="command", actor="demo_load"):
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
