from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connection

from tests.numbers.factories import *  # noqa: F401,F403
from tests.tracking.factories import *  # noqa: F401,F403

# ../shared/twiml-schema beside the checkout; TWIML_SCHEMA_DIR names another place (a git worktree elsewhere).
SCHEMA_DIR = Path(os.environ.get("TWIML_SCHEMA_DIR") or Path(__file__).resolve().parent.parent.parent / "shared" / "twiml-schema")


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    on_postgres = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
    skip = pytest.mark.skip(reason="needs PostgreSQL row locks; set DATABASE_URL=postgres://...")
    for item in items:
        if "postgres" in item.keywords and not on_postgres:
            item.add_marker(skip)


@pytest.fixture
def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def schema_unavailable(reason: str) -> None:
    """Skip a TwiML schema check that cannot run here; in CI (CI=true) fail instead, so the schema is never
    silently left unchecked."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"{reason} (CI=true: the TwiML schema must be checked)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def twiml_schema():
    """Twilio's TwiML schema from ../shared/twiml-schema (skips when the folder is absent; fails in CI)."""
    try:
        from lxml import etree
    except ImportError:
        schema_unavailable("lxml is not installed")
    main = SCHEMA_DIR / "twiml_v20100401_twilioRealtimeCallSchema.xsd"
    if not main.exists():
        schema_unavailable(f"TwiML schema not found at {SCHEMA_DIR}")
    return etree.XMLSchema(etree.parse(str(main)))


@pytest.fixture(scope="session")
def messaging_schema():
    """Twilio's messaging TwiML (``<Response>`` with ``<Message>``) from ../shared/twiml-schema/twiml_messaging.xsd."""
    try:
        from lxml import etree
    except ImportError:
        schema_unavailable("lxml is not installed")
    main = SCHEMA_DIR / "twiml_messaging.xsd"
    if not main.exists():
        schema_unavailable(f"TwiML messaging schema not found at {SCHEMA_DIR}")
    return etree.XMLSchema(etree.parse(str(main)))


@pytest.fixture
def assert_valid_messaging_twiml(messaging_schema):
    from lxml import etree

    def check(content: bytes | str) -> None:
        data = content.encode() if isinstance(content, str) else content
        doc = etree.fromstring(data)
        if not messaging_schema.validate(doc):
            raise AssertionError(f"invalid messaging TwiML: {messaging_schema.error_log}\n{data.decode()}")

    return check


@pytest.fixture
def assert_valid_twiml(twiml_schema):
    from lxml import etree

    def check(content: bytes | str) -> None:
        data = content.encode() if isinstance(content, str) else content
        doc = etree.fromstring(data)
        if not twiml_schema.validate(doc):
            raise AssertionError(f"invalid TwiML: {twiml_schema.error_log}\n{data.decode()}")

    return check


@pytest.fixture(scope="session")
def _media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(autouse=True)
def _media_root(settings, _media_dir):
    """Recordings the tests make (simulate_call, the demo) go to a temporary MEDIA_ROOT, not the repo's media/."""
    settings.MEDIA_ROOT = _media_dir


@pytest.fixture(autouse=True)
def _routing_config_cache_clear():
    """Voice routing caches campaign configurations per process by (id, config_version): ids are reused
    between tests, so each test starts with an empty cache."""
    from routing.services import campaign_config_cache_clear

    campaign_config_cache_clear()
    yield
    campaign_config_cache_clear()


# Debian's Chromium, driven by Playwright (never `playwright install`); browser tests skip where either is missing.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    """One headless Chromium per test module (the tests marked ``browser``)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    # Playwright's sync API keeps an asyncio loop on this thread while our (synchronous) test code runs
    # between its calls; Django would refuse ORM calls there. Nothing runs concurrently, so say it is safe
    # for the browser's lifetime only (Playwright's documented advice for Django).
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            yield browser
            browser.close()
    finally:
        if before is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def page(browser):
    """A fresh Chromium page, closed with its context (modules that log in to the admin define their own)."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


# The shared cache and broker the Redis tests use: database 1 of the machine's Redis, emptied around each test.
REDIS_TEST_URL = "redis://127.0.0.1:6379/1"


@pytest.fixture
def redis_db():
    """A client of REDIS_TEST_URL's database, empty; the test is skipped where no Redis answers."""
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis at 127.0.0.1:6379")
    client.flushdb()
    yield client
    client.flushdb()



@pytest.fixture(autouse=True)
def _request_account_reset():
    """What a request placed (the account new rows get, the account's words) ends with the request: the middleware
    resets them, but a test calling a view without it (RequestFactory) must not hand them to the next test."""
    yield
    from calltrack import nomenclature
    from calltrack.account_fields import _CURRENT

    _CURRENT.set(None)
    nomenclature.activate("")  # the install's words (a per-account catalog left active is dropped)
