from django.apps import AppConfig


class CalltrackConfig(AppConfig):
    name = "calltrack"
    verbose_name = "calltrack"

    def ready(self) -> None:
        from calltrack import checks  # noqa: F401  (registers the system checks)
