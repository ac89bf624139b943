"""Errors every layer may raise and the API's one exception handler understands."""

from __future__ import annotations


class ServiceError(ValueError):
    """A service refused an operation; ``str()`` is one sentence for the operator (or several, one a line),
    ``problems`` the list when there are several. The API answers 400 with them."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)
