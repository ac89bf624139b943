"""The TwiML schema checks skip on a machine without ../shared/twiml-schema, but fail in CI (CI=true)."""

from __future__ import annotations

import pytest

from tests.conftest import schema_unavailable


@pytest.mark.parametrize("ci", ["true", "TRUE", "1"])
def test_a_missing_schema_fails_the_test_in_ci(monkeypatch, ci):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.fail.Exception, match="CI=true: the TwiML schema must be checked"):
        schema_unavailable("TwiML schema not found at /nowhere")


@pytest.mark.parametrize("ci", [None, "", "false"])
def test_a_missing_schema_skips_the_test_outside_ci(monkeypatch, ci):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    with pytest.raises(pytest.skip.Exception, match="TwiML schema not found"):
        schema_unavailable("TwiML schema not found at /nowhere")
