from django.apps import AppConfig


class NumbersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "numbers"
    verbose_name = "Numbers"
