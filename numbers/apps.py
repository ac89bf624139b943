from django.apps import AppConfig


class NumbersConfig(AppConfig):
    # Imported as ``calltrack.numbers`` so that ``import numbers`` stays the standard library's;
    # the label keeps tables (numbers_*), migrations, permissions and admin URLs as they were.
    name = "calltrack.numbers"
    label = "numbers"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Numbers"

    def ready(self) -> None:
        # Lower layers (call recordings in tracking) reach the carriers through calltrack.carriers.
        from calltrack.carriers import carrier_factory_register
        from calltrack.numbers.providers import get_carrier

        carrier_factory_register(get_carrier)
