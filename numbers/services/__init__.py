"""Number lifecycle services: the one path the admin, the API, commands and tasks share."""

from calltrack.numbers.services.errors import NumberError

__all__ = ["NumberError"]
