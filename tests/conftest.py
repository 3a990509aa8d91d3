"""Shared fixtures: an app on a fresh database per test (SQLite by default, PostgreSQL when
TEST_DATABASE_URL is set), a client, sign-in helpers and factory fixtures.

Domain packages add their factory fixtures in tests/fixtures/<domain>.py; every module there is
loaded as a pytest plugin.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import pathlib
from datetime import date

import pytest
import sqlalchemy as sa
from flask.testing import FlaskClient

from app import create_app
from coop.auth.models import LoginSession, Role, User, UserRole
from coop.auth.operations import _token_hash
from coop.auth.passwords import hash_password
from coop.extensions import db
from coop.orgs.models import Organization, OrgKind, OrgRelation

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}"
    for p in (pathlib.Path(__file__).parent / "fixtures").glob("*.py")
    if p.stem != "__init__"
)

DEFAULT_PASSWORD = "Passw0rd!"
_DEFAULT_HASH = None


def default_hash() -> str:
    global _DEFAULT_HASH
    if _DEFAULT_HASH is None:
        _DEFAULT_HASH = hash_password(DEFAULT_PASSWORD)
    return _DEFAULT_HASH


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", default=False, help="run long variants too")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="long variant: use --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory, worker_id):
    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"
    if worker_id == "master":
        return url
    # pytest-xdist: each worker gets its own PostgreSQL database next to the given one.
    name = f"{url.rsplit('/', 1)[1]}_{worker_id}"
    with _pg_admin(url) as admin, admin.connect() as conn:
        if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is None:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    return _sibling(url, name)


@contextlib.contextmanager
def _pg_admin(url: str):
    """An AUTOCOMMIT engine on the PostgreSQL server of `url` (CREATE / DROP DATABASE), disposed afterwards."""
    admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
    try:
        yield admin
    finally:
        admin.dispose()


def _sibling(url: str, name: str) -> str:
    """The URL of database `name` on the same server as `url`."""
    return f"{url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="session")
def _schema(database_url, instance_dir):
    """Create every table once per test session (from the models; migrations have their own test)."""
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test"}, instance_path=str(instance_dir))
    with app.app_context():
        db.drop_all()
        if db.engine.dialect.name == "postgresql":
            db.session.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
            db.session.commit()
        db.create_all()
        db.session.commit()
    yield
    with app.app_context():
        db.engine.dispose()


def _wipe_all_tables():
    tables = [t.name for t in db.metadata.sorted_tables]
    if db.engine.dialect.name == "postgresql":
        # DELETE + resetting the sequences, not TRUNCATE: TRUNCATE of ~45 tables costs ~300 ms, which over
        # the whole suite is minutes; a DELETE of the few rows a test wrote takes a few ms.
        for t in reversed(tables):
            db.session.execute(sa.text(f'DELETE FROM "{t}"'))
        sequences = db.session.execute(sa.text(
            "SELECT schemaname || '.' || sequencename FROM pg_sequences WHERE schemaname = current_schema()"
            " AND last_value IS NOT NULL")).scalars().all()
        for seq in sequences:
            db.session.execute(sa.text("SELECT setval(:s, 1, false)"), {"s": seq})
    else:
        for t in reversed(tables):
            db.session.execute(sa.text(f'DELETE FROM "{t}"'))
        db.session.execute(sa.text("DELETE FROM sqlite_sequence")) if db.session.execute(
            sa.text("SELECT name FROM sqlite_master WHERE name='sqlite_sequence'")
        ).first() else None
    db.session.commit()


@contextlib.contextmanager
def throwaway_database(tmp_dir: pathlib.Path):
    """A URL of a brand-new, empty database of the same kind as the test database (dropped afterwards)."""
    import uuid

    url = os.environ.get("TEST_DATABASE_URL")
    if not url:
        yield f"sqlite:///{tmp_dir / f'empty-{uuid.uuid4().hex[:8]}.sqlite3'}"
        return
    name = f"coop_tmp_{uuid.uuid4().hex[:8]}"
    with _pg_admin(url) as admin:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield _sibling(url, name)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def poll_until_finished(client, url: str, timeout: float = 30) -> dict:
    """GET a background run's progress JSON (a month's reports, a ledger import) until it says it has
    finished; returns that last state."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(url).json
        if state["finished"]:
            return state
        time.sleep(0.05)
    raise AssertionError(f"{url} did not finish within {timeout} s")


@pytest.fixture
def empty_database_url(tmp_path):
    """See throwaway_database."""
    with throwaway_database(tmp_path) as url:
        yield url


@pytest.fixture
def app_config(database_url, tmp_path):
    """Configuration for the test app; override this fixture (or extend the dict) in a test module."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret",
        "WTF_CSRF_ENABLED": False,
        "UPLOAD_DIR": str(tmp_path / "uploads"),
        "ARCHIVE_DIR": str(tmp_path / "archive"),
        "OUTBOX_DIR": str(tmp_path / "outbox"),
        "BASE_URL": "http://coop.test",
        "SERVER_NAME": None,
    }


class IsolatedClient(FlaskClient):
    """A test client whose every request runs in its own app context, as in production.

    Flask reuses an already-pushed app context for requests, which would share `g` (and Flask-Login's
    cached user) and the database session between requests and with the test. Before each request the
    test's own transaction is committed (on SQLite it would otherwise hold the write lock the request
    needs); afterwards the test's session is expired so it reads what the request wrote.
    """

    def open(self, *args, **kwargs):
        db.session.commit()
        with self.application.app_context():
            resp = super().open(*args, **kwargs)
        db.session.expire_all()
        return resp


@pytest.fixture
def app(_schema, app_config, instance_dir):
    app = create_app(app_config, instance_path=str(instance_dir))
    app.test_client_class = IsolatedClient
    ctx = app.app_context()
    ctx.push()
    try:
        yield app
    finally:
        db.session.rollback()
        _wipe_all_tables()
        db.session.remove()
        db.engine.dispose()
        ctx.pop()


@pytest.fixture
def client(app):
    return app.test_client()


_seq = itertools.count(1)


@pytest.fixture
def make_org(app):
    """make_org(name=None, kind='branch', relation='company', parent=None, **fields) -> Organization"""

    def make(name=None, kind="branch", relation="company", parent=None, **fields):
        n = next(_seq)
        org = Organization(
            name=name or f"测试党支部{n}",
            kind=OrgKind(kind),
            relation=OrgRelation(relation),
            parent=parent,
            path="/",
            **fields,
        )
        db.session.add(org)
        db.session.flush()
        org.path = f"{parent.path if parent else '/'}{org.id}/"
        db.session.commit()
        return org

    return make


@pytest.fixture
def make_user(app):
    """make_user(*roles, org=None, username=None, password=DEFAULT_PASSWORD, **fields) -> User"""

    def make(*roles, org=None, username=None, password=DEFAULT_PASSWORD, **fields):
        n = next(_seq)
        username = username or f"user{n}"
        user = User(
            username=username,
            display_name=fields.pop("display_name", f"测试用户{n}"),
            password_hash=default_hash() if password == DEFAULT_PASSWORD else hash_password(password),
            organization=org,
            **fields,
        )
        for r in roles:
            user.role_rows.append(UserRole(role=Role(r) if isinstance(r, str) else r))
        db.session.add(user)
        db.session.commit()
        return user

    return make


@pytest.fixture
def login(app):
    """login(client, user) signs the client in without a password round-trip (a real login is tested
    in test_auth.py); returns the login-session token."""
    import secrets

    def do_login(client, user):
        token = secrets.token_urlsafe(16)
        db.session.add(LoginSession(token_hash=_token_hash(token), user_id=user.id))
        db.session.commit()
        with client.session_transaction() as sess:
            sess["_user_id"] = token
            sess["_fresh"] = True
        return token

    return do_login


@pytest.fixture
def make_agreement(make_org):
    """make_agreement(parties=[org, org], status='active', commitments={'study': 4}, liaisons={org: [user]},
    starts_on=date(2026,1,1), ends_on=date(2026,12,31), title=None) -> Agreement (rows only, no signing)."""
    from agreements.models import (
        Agreement,
        AgreementCommitment,
        AgreementLiaison,
        AgreementParty,
        AgreementStatus,
    )

    def make(parties=None, status="active", commitments=None, liaisons=None, starts_on=date(2026, 1, 1),
             ends_on=date(2026, 12, 31), title=None, **fields):
        parties = parties or [make_org(), make_org()]
        agreement = Agreement(
            title=title or f"结对共建协议{next(_seq)}",
            status=AgreementStatus(status),
            starts_on=starts_on,
            ends_on=ends_on,
            purpose=fields.pop("purpose", "共同推进党建工作"),
            **fields,
        )
        for i, org in enumerate(parties):
            agreement.parties.append(AgreementParty(organization_id=org.id, position=i))
        for code, count in (commitments if commitments is not None else {"study": 4, "event": 2}).items():
            agreement.commitments.append(AgreementCommitment(category=code, count_per_year=count))
        for org, users in (liaisons or {}).items():
            for u in users:
                agreement.liaisons.append(AgreementLiaison(organization_id=org.id, user_id=u.id))
        db.session.add(agreement)
        db.session.commit()
        return agreement

    return make
