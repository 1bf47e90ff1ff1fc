"""The suite runs against the real services that `make test` starts (PostgreSQL, Redis, S3).

Without them it stops at once with a message, instead of skipping: a green run always means the
real-service tests ran.
"""

import os
import shutil
from pathlib import Path

import pytest


def pytest_configure(config):
    missing = [v for v in ("DATABASE_URL", "REDIS_URL", "BWV_S3_BUCKET") if not os.environ.get(v)]
    if missing:
        raise pytest.UsageError(
            f"the tests need the real services ({', '.join(missing)} not set): run `make test`, "
            "or `python -m devtools.localservices -- pytest ...`"
        )
    _flush_past_the_audit_triggers()


def _flush_past_the_audit_triggers():
    """Django empties the tables between transactional tests with TRUNCATE, which the audit log's
    triggers refuse, for every role and in every database. The tests run as PostgreSQL's
    superuser, which may switch triggers off for its own session (session_replication_role): the
    flush does that around its own statements and nowhere else. No application role can
    (tests/bwv/test_db_roles.py), and the production trigger has no exception for tests."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    flush = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with self.connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
        try:
            flush(self, sql_list)
        finally:
            with self.connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")

    DatabaseOperations.execute_sql_flush = execute_sql_flush


@pytest.fixture(autouse=True)
def _audit_checkpoints_per_test(settings, tmp_path):
    """Each test has its own checkpoint prefix in the bucket: checkpoints are retained (Object
    Lock) and cannot be cleared, and a test's chain starts afresh."""
    import uuid

    settings.BWV_AUDIT_CHECKPOINT_PREFIX = f"audit-checkpoints-test/{uuid.uuid4().hex}/"


@pytest.fixture(scope="session")
def small_clip() -> bytes:
    from evidence.sample_media import make_clip

    return make_clip(seconds=2)


@pytest.fixture(scope="session")
def big_clip() -> bytes:
    """About 20 MiB: several storage parts (5 MiB each), so part boundaries and the tail are
    exercised."""
    from evidence.sample_media import make_clip

    data = make_clip(seconds=10, width=1280, height=720, crf=0)
    assert len(data) > 2 * 8 * 1024 * 1024
    return data


@pytest.fixture(autouse=True)
def _media_store_per_settings():
    """The blob store is cached per process; clear it so a settings override takes effect."""
    from blobstore import blob_store

    blob_store.cache_clear()
    yield
    blob_store.cache_clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can tell a failure (screenshots)."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture
def browser_page(request, monkeypatch, settings):
    # The live test server serves static files from the finders, which know no hashed names.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # synchronous all the same, which Django must be told.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `make test` installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        # Playwright's wait_for_function compiles its predicate in the page with `new Function`,
        # which the site's Content-Security-Policy refuses; the tests of the policy itself open
        # their own contexts without this bypass (tests/bwv/test_csp_browser.py).
        page = browser.new_page(bypass_csp=True)
        yield page
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        browser.close()
