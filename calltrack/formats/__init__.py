"""How the console writes figures: dates through Django's format module (``en/formats.py``), money here."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def money(value: Any) -> str:
    """An amount as the console writes it everywhere: "$1,690.00", "-$12.50"."""
    amount = Decimal(value)
    return f"-${-amount:,.2f}" if amount < 0 else f"${amount:,.2f}"
