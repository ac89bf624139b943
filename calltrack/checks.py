"""System checks that refuse to run production with development settings."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.checks.security.base import check_secret_key, check_secret_key_fallbacks

from calltrack import phone


# A deploy check (``manage.py check --deploy``), not one every command runs: ``makemigrations``, ``migrate`` or
# ``shell`` with DEBUG off and no production secrets at hand harm nothing. What serves or runs work refuses these
# settings itself: the WSGI/ASGI application when it loads (gunicorn, runserver, daphne) and ``manage.py qcluster``
# (``refuse_insecure_production``).
@register(Tags.security, deploy=True)
def production_settings(app_configs=None, **kwargs) -> list:
    errors: list = []
    if settings.DEBUG:
        return errors
    # Django's own judgement of a key (security.W009 and W025: fewer than 50 characters, fewer than 5 distinct ones,
    # or the 'django-insecure-' prefix of a generated development key, as our development default has), refused
    # here instead of merely warned about.
    for weak in check_secret_key(None) + check_secret_key_fallbacks(None):
        errors.append(
            Error(
                f"A weak secret key while DEBUG is off ({weak.id}): {weak.msg}",
                hint="Set SECRET_KEY to a long random value (python -c 'import secrets; print(secrets.token_urlsafe(50))').",
                id="calltrack.E001",
            )
        )
    if not settings.ALLOWED_HOSTS:
        errors.append(Error("ALLOWED_HOSTS is empty while DEBUG is off.", hint="Set ALLOWED_HOSTS=calls.example.com", id="calltrack.E002"))
    if not settings.CALLTRACK_VALIDATE_TWILIO_SIGNATURE:
        errors.append(
            Error(
                "Twilio signature checks are off while DEBUG is off: anyone could post fake calls.",
                hint="Remove CALLTRACK_VALIDATE_TWILIO_SIGNATURE=false in production.",
                id="calltrack.E003",
            )
        )
    elif not settings.TWILIO_AUTH_TOKEN:
        # Whatever the carrier: without the token every signed webhook is refused (403), so no call even reaches the fail-safe.
        errors.append(
            Error(
                "TWILIO_AUTH_TOKEN is missing while signature checks are on: every voice webhook would be refused.",
                hint="Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN.",
                id="calltrack.E004",
            )
        )
    return errors


def refuse_insecure_production() -> None:
    """Raise ImproperlyConfigured when DEBUG is off and :func:`production_settings` finds an error.

    Called when the WSGI/ASGI application loads (gunicorn, uWSGI, daphne, runserver) and before ``manage.py
    qcluster`` starts (``manage.py``'s ``WORKING_COMMANDS``): a process that serves or runs tasks must not work with a public key that
    lets anyone forge postback tokens. Other management commands only report it under ``check --deploy``.
    """
    from django.core.exceptions import ImproperlyConfigured

    problems = production_settings()
    if problems:
        raise ImproperlyConfigured(
            "refusing to start with insecure production settings (DEBUG is off): "
            + " ".join(f"[{p.id}] {p.msg} {p.hint or ''}".strip() for p in problems)
        )


@register()
def calltrack_settings(app_configs=None, **kwargs) -> list:
    problems: list = []
    if settings.CALLTRACK_NOMENCLATURE not in ("standard", "performance"):
        problems.append(Error("CALLTRACK_NOMENCLATURE must be 'standard' or 'performance'.", id="calltrack.E010"))
    import phonenumbers

    if settings.CALLTRACK_DEFAULT_REGION.upper() not in phonenumbers.SUPPORTED_REGIONS:
        problems.append(Error(f"CALLTRACK_DEFAULT_REGION '{settings.CALLTRACK_DEFAULT_REGION}' is not a region code like US or GB.", id="calltrack.E011"))
    if settings.CALLTRACK_FAILSAFE_NUMBER:
        try:
            phone.to_e164(settings.CALLTRACK_FAILSAFE_NUMBER)
        except phone.InvalidPhoneNumber as exc:
            problems.append(Error(f"CALLTRACK_FAILSAFE_NUMBER: {exc}", id="calltrack.E012"))
    currency = settings.CURRENCY
    if not (len(currency) == 3 and currency.isascii() and currency.isalpha() and currency.isupper()):
        problems.append(Error(f"CURRENCY '{currency}' is not an ISO 4217 code like USD or EUR.", id="calltrack.E017"))
    if settings.CALLTRACK_CARRIER not in ("local", "twilio"):
        problems.append(Error("CALLTRACK_CARRIER must be 'local' or 'twilio'.", id="calltrack.E014"))
    from calltrack.api.throttling import throttle_rates_check

    for problem in throttle_rates_check():
        problems.append(Error(problem, hint="CALLTRACK_API_THROTTLE_ANON, _USER, _SCHEMA: N/second, N/minute, N/hour or N/day.", id="calltrack.E016"))
    if not 0 < settings.CALLTRACK_IPV6_PREFIX <= 128:
        problems.append(Error(
            f"CALLTRACK_IPV6_PREFIX={settings.CALLTRACK_IPV6_PREFIX} is not a prefix length of 1-128 bits.",
            hint="64 counts each IPv6 /64 as one client (the default); 128 counts each address alone.", id="calltrack.E015",
        ))
    return problems


@register(Tags.security, deploy=True)
def production_advice(app_configs=None, **kwargs) -> list:
    """What a production install should set but may run without (``manage.py check --deploy``)."""
    if settings.DEBUG or settings.CALLTRACK_FAILSAFE_NUMBER:
        return []
    return [
        Warning(
            "CALLTRACK_FAILSAFE_NUMBER is not set: a call whose routing fails and whose number and campaign have no "
            "fail-safe hears a message and is hung up.",
            id="calltrack.W013",
        )
    ]
