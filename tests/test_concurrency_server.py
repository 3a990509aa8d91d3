"""Concurrency without loss (issue 9): the app in real gunicorn worker processes, many clients at once.

The database is a brand-new one of the current test kind (SQLite file, or a PostgreSQL database of its own),
brought up by `flask db upgrade` exactly as in production, with two Party organizations and an agreement
really signed by both (fast signer keys). Then, for a fixed time, twelve client threads hammer three gunicorn
workers over HTTP:

- API clients log activities for party A (`POST /api/v1/activities`, bearer tokens of A's liaisons), each with
  a title used only once;
- API clients of party B confirm them (`POST /api/v1/activities/{id}/confirmation`);
- one browser-like client of each party does the same through the screens (session cookie + CSRF token).

Afterwards: every write answered with 2xx is in the database exactly once (activities counted by their unique
title; each confirmation recorded by the confirming user and audited once), nothing answered 5xx (or any
unexpected status), the audit hash chain is intact, and the server log shows no "database is locked", no
traceback and no worker timeout. Throughput figures are printed (run with -s to see them).
"""
from __future__ import annotations

import collections
import contextlib
import http.client
import json
import os
import queue
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

import pytest

from tests.conftest import DEFAULT_PASSWORD, default_hash, throwaway_database

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 3
API_LOGGERS = 7  # party A, bearer tokens
API_CONFIRMERS = 3  # party B, bearer tokens
# plus one screen client for each party: 12 client threads in all
SECRET = "concurrency-test-secret"


# --- setup: schema by migrations, a signed agreement, gunicorn ------------------------------------------------


def _env(database_url: str, instance: Path) -> dict:
    env = dict(os.environ)
    env.update({
        "COOP_DATABASE_URL": database_url,
        "COOP_INSTANCE_PATH": str(instance),
        "COOP_SECRET_KEY": SECRET,
        "FLASK_APP": "app",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _build_dataset(database_url: str, instance: Path, monkeypatch) -> SimpleNamespace:
    """Two parties (A: three liaisons, B: two) and an agreement between them signed for real: active."""
    from app import create_app
    from coop.auth.models import Role, User, UserRole
    from coop.extensions import db
    from coop.formatting import local_today
    from tests.fixtures.agreements import build_signed_agreement, use_fast_keys

    use_fast_keys(monkeypatch)
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": SECRET}, instance_path=str(instance))
    with app.app_context():
        try:
            signed = build_signed_agreement(2)
            agreement = signed.agreement
            assert agreement.status.value == "active", agreement.status
            a, b = signed.parties

            def liaison(org, username):
                user = User(username=username, display_name=f"{org.name[:4]}联络员{username[-1]}",
                            password_hash=default_hash(), organization=org)
                user.role_rows.append(UserRole(role=Role.liaison))
                db.session.add(user)
                return user

            liaison(a.org, "conc_a2"), liaison(a.org, "conc_a3"), liaison(b.org, "conc_b2")
            db.session.commit()
            return SimpleNamespace(
                agreement_id=agreement.id, org_a=a.org.id, org_b=b.org.id,
                a_liaisons=[a.liaison.username, "conc_a2", "conc_a3"], b_liaisons=[b.liaison.username, "conc_b2"],
                held_on=(local_today() - timedelta(days=1)).isoformat(),
            )
        finally:
            db.session.remove()
            db.engine.dispose()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the gunicorn master (it stops its workers), SIGKILL its process group if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the group we created for it: master and any stray worker
    if proc.poll() is None:
        proc.wait(timeout=10)


@contextlib.contextmanager
def gunicorn(env: dict, log_dir: Path):
    """gunicorn with WORKERS workers on a free port; yields (port, path of its log). Always stopped."""
    for attempt in range(3):
        port = _free_port()
        log = log_dir / f"gunicorn-{attempt}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-w", str(WORKERS), "-b", f"127.0.0.1:{port}",
                 "--timeout", "60", "--graceful-timeout", "10", "app:create_app()"],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            deadline = time.monotonic() + 60
            ready = False
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    status, _h, _b = _request(port, "GET", "/api/v1/openapi.json", timeout=5)
                    ready = status == 200
                except OSError:
                    ready = False
                if ready:
                    break
                time.sleep(0.2)
            if not ready:
                text = log.read_text(errors="replace")
                if proc.poll() is not None and "Address already in use" in text:
                    continue  # another process took the port between our probe and gunicorn's bind
                raise AssertionError(f"gunicorn did not come up:\n{text[-4000:]}")
            yield port, log
            return
        finally:
            _stop(proc)
    raise AssertionError("no free port for gunicorn after three attempts")


# --- a tiny HTTP client (stdlib) --------------------------------------------------------------------------------


def _request(port: int, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None,
             timeout: float = 60):
    """One request on a fresh connection (gunicorn's sync workers close after each response)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, resp.headers, data
    finally:
        conn.close()


def _api(port, method, path, token=None, payload=None):
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = None
    if payload is not None:
        body = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    status, _h, data = _request(port, method, "/api/v1" + path, body=body, headers=headers)
    return status, (json.loads(data) if data and data.lstrip()[:1] in (b"{", b"[") else None)


class Browser:
    """Session cookie + CSRF token, no redirects followed."""

    CSRF = re.compile(rb'name="csrf_token"[^>]*value="([^"]+)"')

    def __init__(self, port: int):
        self.port = port
        self.cookies: dict[str, str] = {}
        self.csrf: str | None = None

    def request(self, method, path, form: dict | None = None):
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        status, resp_headers, data = _request(self.port, method, path, body=body, headers=headers)
        for cookie in resp_headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        match = self.CSRF.search(data)
        if match:
            self.csrf = match.group(1).decode()
        return status, resp_headers, data

    def sign_in(self, username: str) -> None:
        self.request("GET", "/login")
        status, headers, data = self.request(
            "POST", "/login", {"csrf_token": self.csrf, "username": username, "password": DEFAULT_PASSWORD})
        assert status == 302, (status, data[:500])


# --- the load -------------------------------------------------------------------------------------------------


class Tally:
    """What the clients sent and what they were told, shared by all threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent_titles: set[str] = set()
        self.acked_titles: dict[str, int] = {}  # title -> activity id answered
        self.confirm_acks: dict[int, int] = {}  # activity id -> user id of the confirmer answered 2xx
        self.statuses: collections.Counter = collections.Counter()  # (kind, status)
        self.unexpected: list[str] = []  # wrong statuses (5xx included) and exceptions
        self.latencies: dict[str, list[float]] = collections.defaultdict(list)
        self.to_confirm: queue.Queue = queue.Queue()

    def note(self, kind: str, status: int | None, elapsed: float, expected=(), detail=""):
        with self.lock:
            self.statuses[(kind, status)] += 1
            self.latencies[kind].append(elapsed)
            if status not in expected:
                self.unexpected.append(f"{kind}: HTTP {status} {detail}"[:600])


def _run_load(port: int, data: SimpleNamespace, seconds: float, user_ids: dict[str, int]) -> tuple[Tally, float]:
    tally = Tally()
    run_id = uuid.uuid4().hex[:6]

    def token_for(username):
        status, body = _api(port, "POST", "/tokens", payload={"username": username, "password": DEFAULT_PASSWORD})
        assert status == 201, (status, body)
        return body["token"]

    loggers = [(data.a_liaisons[i % len(data.a_liaisons)], token_for(data.a_liaisons[i % len(data.a_liaisons)]))
               for i in range(API_LOGGERS)]
    confirmers = [(data.b_liaisons[i % len(data.b_liaisons)], token_for(data.b_liaisons[i % len(data.b_liaisons)]))
                  for i in range(API_CONFIRMERS)]
    browser_a, browser_b = Browser(port), Browser(port)
    browser_a.sign_in(data.a_liaisons[0])
    browser_b.sign_in(data.b_liaisons[0])
    # Signing in starts a new session: take the CSRF token from a page of the signed-in session.
    browser_a.request("GET", "/activities/new")
    browser_b.request("GET", "/activities/")
    assert browser_a.csrf and browser_b.csrf

    start = threading.Barrier(API_LOGGERS + API_CONFIRMERS + 2 + 1)
    stop_at = [0.0]

    def guarded(kind, fn):
        """Run one request; exceptions (connection reset, timeout …) are failures too."""
        t0 = time.perf_counter()
        try:
            return fn(t0)
        except Exception as exc:  # noqa: BLE001 — reported, then the test fails
            tally.note(kind, None, time.perf_counter() - t0, detail=repr(exc))
            return None

    def api_logger(n, token):
        start.wait()
        i = 0
        while time.perf_counter() < stop_at[0]:
            i += 1
            title = f"并发测试活动 {run_id}-api{n}-{i}"

            def send(t0):
                with tally.lock:
                    tally.sent_titles.add(title)
                status, body = _api(port, "POST", "/activities", token, {
                    "agreement_id": data.agreement_id, "category": "study", "title": title, "held_on": data.held_on,
                    "organization_ids": [data.org_a, data.org_b], "place": "会议室", "party_member_count": 12,
                    "other_count": 3, "summary": "联合学习。", "outcome": "形成共识。",
                })
                tally.note("api log", status, time.perf_counter() - t0, expected=(201,), detail=str(body))
                if status == 201:
                    with tally.lock:
                        tally.acked_titles[title] = body["id"]
                    tally.to_confirm.put(body["id"])

            guarded("api log", send)

    def html_logger():
        start.wait()
        i = 0
        while time.perf_counter() < stop_at[0]:
            i += 1
            title = f"并发测试活动 {run_id}-web-{i}"

            def send(t0):
                with tally.lock:
                    tally.sent_titles.add(title)
                status, headers, body = browser_a.request("POST", "/activities/new", {
                    "csrf_token": browser_a.csrf, "agreement_ids": [data.agreement_id], "status": "held",
                    "category": "study", "title": title, "held_on": data.held_on,
                    "organization_ids": [data.org_a, data.org_b], "party_member_count": "8", "other_count": "0",
                })
                location = headers.get("Location") or ""
                match = re.search(r"/activities/(\d+)$", location)
                ok = status == 302 and match
                # A redirect anywhere but to the new activity (the form again, the sign-in page) is a failure.
                tally.note("web log", status if ok or status != 302 else -302, time.perf_counter() - t0,
                           expected=(302,), detail=location or body[-300:].decode(errors="replace"))
                if ok:
                    activity_id = int(match.group(1))
                    with tally.lock:
                        tally.acked_titles[title] = activity_id
                    tally.to_confirm.put(activity_id)

            guarded("web log", send)

    def api_confirmer(username, token):
        start.wait()
        while time.perf_counter() < stop_at[0]:
            try:
                activity_id = tally.to_confirm.get(timeout=0.1)
            except queue.Empty:
                continue

            def send(t0):
                status, body = _api(port, "POST", f"/activities/{activity_id}/confirmation", token,
                                    {"decision": "confirm"})
                tally.note("api confirm", status, time.perf_counter() - t0, expected=(200,), detail=str(body))
                if status == 200:
                    assert body["confirmation"] == "confirmed", body
                    with tally.lock:
                        tally.confirm_acks[activity_id] = user_ids[username]

            guarded("api confirm", send)

    def html_confirmer(username):
        start.wait()
        while time.perf_counter() < stop_at[0]:
            try:
                activity_id = tally.to_confirm.get(timeout=0.1)
            except queue.Empty:
                continue

            def send(t0):
                status, headers, body = browser_b.request(
                    "POST", f"/activities/{activity_id}/confirm", {"csrf_token": browser_b.csrf, "decision": "confirm"})
                tally.note("web confirm", status, time.perf_counter() - t0, expected=(302,),
                           detail=body[-300:].decode(errors="replace"))
                if status == 302:
                    # The screen redirects to the activity either way; the database check below tells
                    # whether the answer was really recorded (it must be).
                    with tally.lock:
                        tally.confirm_acks[activity_id] = user_ids[username]

            guarded("web confirm", send)

    threads = [threading.Thread(target=api_logger, args=(n, tok), daemon=True) for n, (_u, tok) in enumerate(loggers)]
    threads += [threading.Thread(target=api_confirmer, args=c, daemon=True) for c in confirmers]
    threads += [threading.Thread(target=html_logger, daemon=True),
                threading.Thread(target=html_confirmer, args=(data.b_liaisons[0],), daemon=True)]
    for t in threads:
        t.start()
    t_start = time.perf_counter()
    stop_at[0] = t_start + seconds
    start.wait()
    for t in threads:
        t.join(timeout=seconds + 120)
        assert not t.is_alive(), "a client thread hung"
    return tally, time.perf_counter() - t_start


# --- the check ------------------------------------------------------------------------------------------------


def _database_state(database_url: str, instance: Path, prefix: str) -> SimpleNamespace:
    import sqlalchemy as sa

    from app import create_app
    from coop.activities.models import Activity, ActivityConfirmation
    from coop.audit.models import AuditEntry
    from coop.audit.operations import verify_chain
    from coop.extensions import db

    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": SECRET}, instance_path=str(instance))
    with app.app_context():
        try:
            titles = collections.Counter()
            ids = {}
            for activity_id, title in db.session.execute(
                    sa.select(Activity.id, Activity.title).where(Activity.title.like(prefix + "%"))):
                titles[title] += 1
                ids[title] = activity_id
            confirmations = collections.defaultdict(list)
            for row in db.session.execute(sa.select(ActivityConfirmation.activity_id, ActivityConfirmation.state,
                                                    ActivityConfirmation.decided_by_id)):
                confirmations[row.activity_id].append((row.state.value, row.decided_by_id))
            audits = collections.Counter(
                (kind, target_id) for kind, target_id in db.session.execute(
                    sa.select(AuditEntry.kind, AuditEntry.target_id).where(AuditEntry.target_type == "Activity")))
            confirmed_state = {
                i: c.value for i, c in db.session.execute(sa.select(Activity.id, Activity.confirmation))}
            chain = verify_chain()
            return SimpleNamespace(titles=titles, ids=ids, confirmations=confirmations, audits=audits,
                                   confirmed_state=confirmed_state, chain=chain)
        finally:
            db.session.remove()
            db.engine.dispose()


def _report(kind_db: str, tally: Tally, elapsed: float) -> None:
    total = sum(tally.statuses.values())
    writes = sum(n for (kind, status), n in tally.statuses.items() if status is not None and 200 <= status < 400)
    lines = [f"\n[concurrency] {kind_db}: {WORKERS} gunicorn workers, "
             f"{API_LOGGERS + API_CONFIRMERS + 2} clients, {elapsed:.1f} s"]
    lines.append(f"[concurrency]   requests {total}, {total / elapsed:.1f} req/s; writes acknowledged {writes}, "
                 f"{writes / elapsed:.1f} writes/s; unexpected answers/errors {len(tally.unexpected)}")
    for kind in sorted(tally.latencies):
        lat = sorted(tally.latencies[kind])
        p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
        by_status = {s: n for (k, s), n in tally.statuses.items() if k == kind}
        lines.append(f"[concurrency]   {kind:<12} {len(lat):>5} requests  {by_status}  "
                     f"median {statistics.median(lat) * 1000:.0f} ms  p95 {p95 * 1000:.0f} ms")
    lines.append(f"[concurrency]   activities acknowledged {len(tally.acked_titles)}, "
                 f"confirmations acknowledged {len(tally.confirm_acks)}")
    print("\n".join(lines))


def _exercise(tmp_path, monkeypatch, seconds: float) -> None:
    with throwaway_database(tmp_path) as database_url:
        instance = tmp_path / "instance"
        env = _env(database_url, instance)
        t0 = time.perf_counter()
        upgrade = subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=ROOT, env=env,
                                 capture_output=True, text=True, timeout=180)
        assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
        data = _build_dataset(database_url, instance, monkeypatch)
        setup_s = time.perf_counter() - t0

        from app import create_app
        from coop.auth.models import User
        from coop.extensions import db

        app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": SECRET}, instance_path=str(instance))
        with app.app_context():
            user_ids = {u.username: u.id for u in db.session.scalars(db.select(User))}
            db.session.remove()
            db.engine.dispose()

        with gunicorn(env, tmp_path) as (port, log):
            tally, elapsed = _run_load(port, data, seconds, user_ids)
        # gunicorn has stopped: every request it answered is finished.
        server_log = log.read_text(errors="replace")
        kind_db = "PostgreSQL" if database_url.startswith("postgres") else "SQLite"
        _report(kind_db, tally, elapsed)
        print(f"[concurrency]   setup (migrations + signed agreement) {setup_s:.1f} s")

        state = _database_state(database_url, instance, prefix="并发测试活动 ")

    # No 5xx, no refusal, no dropped connection.
    assert not tally.unexpected, (
        f"{len(tally.unexpected)} unexpected answers or errors; 'database is locked' "
        f"{server_log.count('database is locked')}× in the server log:\n" + "\n".join(tally.unexpected[:10]))
    assert tally.acked_titles, "no activity was logged at all"
    assert tally.confirm_acks, "no activity was confirmed at all"

    # Every acknowledged activity exactly once, nothing that was never sent, nothing twice.
    missing = [t for t in tally.acked_titles if state.titles[t] == 0]
    doubled = [t for t, n in state.titles.items() if n > 1]
    unknown = [t for t in state.titles if t not in tally.sent_titles]
    assert not missing, f"{len(missing)} acknowledged activities are lost, e.g. {missing[:5]}"
    assert not doubled, f"activities stored twice: {doubled[:5]}"
    assert not unknown, f"activities nobody sent: {unknown[:5]}"
    for title, activity_id in tally.acked_titles.items():
        assert state.ids[title] == activity_id, (title, activity_id, state.ids[title])
        # One partner (B) asked to confirm, and the logging audited once.
        assert len(state.confirmations[activity_id]) == 1, state.confirmations[activity_id]
        assert state.audits[("activity.logged", activity_id)] == 1

    # Every acknowledged confirmation recorded, by the user who sent it, and audited exactly once.
    for activity_id, user_id in tally.confirm_acks.items():
        assert state.confirmations[activity_id] == [("confirmed", user_id)], (activity_id, state.confirmations[activity_id])
        assert state.confirmed_state[activity_id] == "confirmed"
        assert state.audits[("activity.confirmed", activity_id)] == 1
    unconfirmed = set(tally.acked_titles.values()) - set(tally.confirm_acks)
    for activity_id in unconfirmed:
        assert state.confirmations[activity_id] == [("pending", None)], state.confirmations[activity_id]
        assert state.audits[("activity.confirmed", activity_id)] == 0

    # The audit chain survived the concurrent appends.
    assert state.chain.ok, (state.chain.first_broken_id, state.chain.reason)

    # The server never reported lock errors, crashes or worker timeouts.
    for bad in ("database is locked", "Traceback", "WORKER TIMEOUT", "[ERROR]", "[CRITICAL]"):
        assert bad not in server_log, server_log[-4000:]


def test_concurrent_writes_through_gunicorn_lose_nothing(tmp_path, monkeypatch):
    _exercise(tmp_path, monkeypatch, seconds=8)


@pytest.mark.slow
def test_concurrent_writes_through_gunicorn_lose_nothing_long(tmp_path, monkeypatch):
    _exercise(tmp_path, monkeypatch, seconds=60)
