"""Project root conftest: makes sure the ``numbers`` app wins over the stdlib module of that name."""

import calltrack  # noqa: F401  (installs the numbers app package before Django loads apps)
