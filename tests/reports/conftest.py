from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_login_log_for_force_login(request, settings):
    """``Client.force_login`` has no request address: django-axes would log the login with the address
    'unknown', which PostgreSQL's inet column refuses. The browser tests log in through the form, with axes."""
    if "browser" not in request.keywords:
        settings.AXES_ENABLED = False
