from django.apps import AppConfig


class NumbersConfig(AppConfig):
    # Imported as ``calltrack.numbers`` so that ``import numbers`` stays the standard library's;
    # the label keeps tables (numbers_*), migrations, permissions and admin URLs as they were.
    name = "calltrack.numbers"
    label = "numbers"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Numbers"

