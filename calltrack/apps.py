from django.apps import AppConfig


class CalltrackConfig(AppConfig):
    name = "calltrack"
    verbose_name = "calltrack"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        # Registered on import: the system checks, and the SQL functions of the money audit trail on SQLite.
        from calltrack import audit, checks  # noqa: F401

        # post_migrate is sent per app with models: hooked on django.contrib.auth's (always there, migrated before ours).
        post_migrate.connect(_cache_table_create, sender=self.apps.get_app_config("auth"), dispatch_uid="calltrack-cache-table")


def _cache_table_create(sender, using: str = "default", **kwargs) -> None:
    """After each migrate, create the database cache's table when CACHES uses one (the default with DEBUG off), so
    the shared rate limits work out of the box. Idempotent; nothing for Redis or process-memory caches."""
    from django.conf import settings
    from django.core.management import call_command

    if any(c["BACKEND"].endswith("DatabaseCache") for c in settings.CACHES.values()):
        call_command("createcachetable", database=using, verbosity=0)
