"""End-to-end fixtures: the real app on a real port, the demo group, headless Chromium (Playwright).

* The demo group is seeded once per test run into a shared directory (under a file lock, so the
  pytest-xdist workers share one seeding: it signs PDFs and takes a while); every worker then copies it
  into its own instance directory and serves that copy. The e2e tests always use SQLite in their own
  directory, whatever TEST_DATABASE_URL says — they test the browser, not the database.
* The server is werkzeug's threaded dev server on 127.0.0.1 and a free port, in a background thread.
* The browser is the system Chromium (/usr/bin/chromium, override with E2E_CHROMIUM); nothing is
  downloaded. Without it the tests are skipped, saying why.
* Each test gets fresh browser contexts: `phone` (390×844, touch) and `desktop` (1280×800). Every page
  opened through them collects console errors, uncaught exceptions and CSP violations; a test fails
  if any were seen.
* Screenshots go to $E2E_ARTIFACTS (scripts/screenshots sets docs/img), else tests/e2e/artifacts/.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
from pathlib import Path

import pytest

from tests.e2e.helpers import HERE, ROOT

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
SECRET_KEY = "e2e-secret-key"

PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 1,
    "is_mobile": True,
    "has_touch": True,
    "user_agent": (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/156.0.0.0 Mobile Safari/537.36 wxwork/4.1"
    ),
}
DESKTOP = {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1}


def _app_config(instance: Path) -> dict:
    return {
        "DATABASE_URL": f"sqlite:///{instance / 'e2e.sqlite3'}",
        "SECRET_KEY": SECRET_KEY,
        "UPLOAD_DIR": str(instance / "uploads"),
        "ARCHIVE_DIR": str(instance / "archive"),
        "PKI_DIR": str(instance / "pki"),
        "OUTBOX_DIR": str(instance / "outbox"),
        "MAIL_SERVER": "",
        "SCHEDULER_MODE": "off",
        "SESSION_COOKIE_SECURE": False,
    }


def _seed(target: Path) -> None:
    """Seed the demo group into `target`, in a thread of its own: PDF signing runs its own asyncio loop,
    which cannot nest inside Playwright's (the sync API keeps one running on the main thread)."""
    failures: list[BaseException] = []

    def run():
        try:
            _seed_here(target)
        except BaseException as exc:  # noqa: BLE001 — re-raised below, on the test's thread
            failures.append(exc)

    thread = threading.Thread(target=run, name="e2e-seed")
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def _seed_here(target: Path) -> None:
    from app import create_app
    from coop.demo import seed_demo
    from coop.extensions import db

    target.mkdir(parents=True, exist_ok=True)
    app = create_app(_app_config(target), instance_path=str(target))
    with app.app_context():
        db.create_all()
        seed_demo(echo=lambda *_: None)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()  # last connection closed: the WAL is checkpointed into the file


@pytest.fixture(scope="session")
def chromium_path():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set E2E_CHROMIUM)")
    return CHROMIUM


@pytest.fixture(scope="session")
def seeded_instance(tmp_path_factory, worker_id, chromium_path) -> Path:
    """A directory with the demo group seeded (database, archived PDFs, keys), shared by all workers."""
    root = tmp_path_factory.getbasetemp()
    if worker_id != "master":
        root = root.parent  # the run's directory, common to every xdist worker
    seed = root / "e2e-demo-seed"
    with open(root / "e2e-demo-seed.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (seed / ".ready").exists():
            if seed.exists():
                shutil.rmtree(seed)
            _seed(seed)
            (seed / ".ready").write_text("ok")
    return seed


@pytest.fixture(scope="session")
def live_server(seeded_instance, tmp_path_factory):
    """Base URL of the real app serving this worker's own copy of the demo instance."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    from app import create_app
    from coop.extensions import db

    instance = tmp_path_factory.mktemp("e2e-instance")
    shutil.copytree(seeded_instance, instance, dirs_exist_ok=True)

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args, **kwargs):
            pass

        def connection_dropped(self, error, environ=None):
            # The browser may drop a connection mid-response (a navigation cancels a favicon or image request);
            # werkzeug's dev server then skips closing the response, leaving e.g. the static file open, which
            # the warnings-as-errors setting turns into a failure of whichever test is running. Close it here.
            response = (environ or {}).pop("e2e.response", None)
            if response is not None and hasattr(response, "close"):
                response.close()

    def remember_response(wsgi_app):
        def wrapped(environ, start_response):
            response = wsgi_app(environ, start_response)
            environ["e2e.response"] = response
            return response

        return wrapped

    config = _app_config(instance)
    server = make_server("127.0.0.1", 0, None, threaded=True, request_handler=QuietHandler)
    config["BASE_URL"] = f"http://127.0.0.1:{server.server_port}"
    app = create_app(config, instance_path=str(instance))
    server.app = remember_response(app)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    try:
        yield config["BASE_URL"]
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()


@pytest.fixture(scope="package")
def browser(chromium_path):
    """Headless Chromium for the tests of this package only: Playwright's sync API keeps an asyncio loop
    running on the main thread, and other tests (pyHanko signing calls asyncio.run) must not run
    while it does — so it is torn down as soon as the worker leaves tests/e2e."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is in requirements-dev.txt")
    sync_playwright = sync_api.sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    path = Path(os.environ.get("E2E_ARTIFACTS") or HERE / "artifacts")
    if not path.is_absolute():
        path = ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


class Problems:
    """Console errors, uncaught page errors and CSP violations seen by the pages of one test."""

    def __init__(self):
        self.items: list[str] = []
        self.allowed: list[re.Pattern] = []

    def watch(self, page) -> None:
        page.on("console", lambda m: self._add(f"console.{m.type}: {m.text} @ {page.url}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self._add(f"page error: {e} @ {page.url}"))

    def _add(self, text: str) -> None:
        if not any(p.search(text) for p in self.allowed):
            self.items.append(text)


class ContextFactory:
    """open_context(kind='phone'|'desktop', **options) -> a fresh BrowserContext whose pages are watched.

    open_context.allow(regex): a console message the test expects (e.g. Chromium logging the 422 status
    of a page that answers "not valid").
    """

    def __init__(self, browser, base_url: str):
        self.browser, self.base_url = browser, base_url
        self.contexts = []
        self.problems = Problems()

    def __call__(self, kind: str = "phone", **options):
        settings = dict(PHONE if kind == "phone" else DESKTOP)
        settings.update(options)
        ctx = self.browser.new_context(base_url=self.base_url, locale="zh-CN", timezone_id="Asia/Shanghai",
                                       accept_downloads=True, **settings)
        ctx.set_default_timeout(15_000)
        ctx.on("page", self.problems.watch)
        self.contexts.append(ctx)
        return ctx

    def allow(self, pattern: str) -> None:
        self.problems.allowed.append(re.compile(pattern))


@pytest.fixture
def open_context(browser, live_server):
    """A ContextFactory. At the end of the test every context is closed, and the test fails if any
    page logged a console error, threw, or hit a Content-Security-Policy violation."""
    factory = ContextFactory(browser, live_server)
    yield factory
    for ctx in factory.contexts:
        ctx.close()
    problems = factory.problems.items
    assert problems == [], "the browser reported problems:\n" + "\n".join(problems)
