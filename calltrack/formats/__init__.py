"""How the console writes figures: dates through Django's format module (``en/formats.py``), money here."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings

#: Currencies written with their symbol before the amount; any other code is written before it ("CHF 1,690.00").
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "CAD": "CA$", "AUD": "A$", "NZD": "NZ$", "MXN": "MX$", "JPY": "¥", "INR": "₹"}


def money(value: Any, currency: str | None = None) -> str:
    """An amount as the console writes it everywhere, in ``currency`` (an ISO 4217 code; None: the install's
    ``CURRENCY``): "$1,690.00", "-$12.50", "€1,690.00", "CHF 1,690.00". Amounts are kept in cents whatever the
    currency, so two decimals always."""
    code = (currency or settings.CURRENCY).upper()
    prefix = SYMBOLS.get(code, f"{code}\u00a0")
    amount = Decimal(value)
    return f"-{prefix}{-amount:,.2f}" if amount < 0 else f"{prefix}{amount:,.2f}"


def currency_symbol(currency: str | None = None) -> str:
    """What precedes an amount in ``currency`` (a column heading's unit)."""
    code = (currency or settings.CURRENCY).upper()
    return SYMBOLS.get(code, code)
