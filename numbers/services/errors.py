from __future__ import annotations

from calltrack.errors import ServiceError


class NumberError(ServiceError):
    """A lifecycle operation was refused; ``str()`` is one sentence for the operator (or several, one a line)."""
