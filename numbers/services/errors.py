from __future__ import annotations


class NumberError(ValueError):
    """A lifecycle operation was refused; ``str()`` is one sentence for the operator (or several, one a line)."""

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        self.problems = problems or []
        super().__init__(message)
