from django.apps import AppConfig


class CalltrackConfig(AppConfig):
    name = "calltrack"
    verbose_name = "calltrack"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, post_save

        # Registered on import: the system checks, and the SQL functions of the money audit trail on SQLite.
        from calltrack import audit, checks  # noqa: F401
        from calltrack.accounts import accounts_grow
        from calltrack.models import Account

        # The install's second account: the first's staff become its members (calltrack/accounts.py).
        post_save.connect(accounts_grow, sender=Account, dispatch_uid="calltrack-accounts-grow")
        # post_migrate is sent per app with models: hooked on django.contrib.auth's (always there, migrated before ours).
        post_migrate.connect(_cache_table_create, sender=self.apps.get_app_config("auth"), dispatch_uid="calltrack-cache-table")

        # A background task's log records carry its id and name (calltrack/logs.py).
        from django_q.signals import post_execute_in_worker, pre_execute

        from calltrack.logs import task_context_begin, task_context_end

        pre_execute.connect(task_context_begin, dispatch_uid="calltrack-task-log-context")
        post_execute_in_worker.connect(task_context_end, dispatch_uid="calltrack-task-log-context")
        _task_cluster_metrics_serve()


def _task_cluster_metrics_serve() -> None:
    """``manage.py qcluster``'s main process, once, before it starts its workers (not in the processes it starts):
    empty PROMETHEUS_MULTIPROC_DIR (a previous run's figures would be counted again) and, with METRICS_WORKER_PORT,
    serve the workers' figures (calltrack/metrics_worker.py)."""
    import multiprocessing
    import os
    import sys

    from django.conf import settings

    if sys.argv[1:2] != ["qcluster"] or multiprocessing.parent_process() is not None:
        return
    from calltrack.metrics_worker import metrics_dir_empty, worker_metrics_serve

    if settings.METRICS_WORKER_PORT:
        # Every interface of the worker's host (its private network: never publish the port); the token guards it.
        worker_metrics_serve(port=settings.METRICS_WORKER_PORT, addr="0.0.0.0", token=settings.METRICS_TOKEN)  # noqa: S104
    elif os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir_empty(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def _cache_table_create(sender, using: str = "default", **kwargs) -> None:
    """After each migrate, create the database cache's table when CACHES uses one (the default with DEBUG off), so
    the shared rate limits work out of the box. Idempotent; nothing for Redis or process-memory caches."""
    from django.conf import settings
    from django.core.management import call_command

    if any(c["BACKEND"].endswith("DatabaseCache") for c in settings.CACHES.values()):
        call_command("createcachetable", database=using, verbosity=0)
