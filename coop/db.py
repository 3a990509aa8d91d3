"""Database foundation: declarative base, UTC timestamps, naming convention, SQLite tuning."""
from __future__ import annotations

import contextlib
import contextvars
import enum
from datetime import datetime, timezone
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base whose constraints get stable names (Alembic needs them to alter tables)."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def now_utc() -> datetime:
    """The current time as a timezone-aware UTC datetime."""
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """A DateTime that only accepts aware datetimes and always returns them in UTC.

    SQLite has no time zones, so we store naive UTC and re-attach UTC on the way out;
    refusing naive values keeps local times from sneaking into storage.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused; use now_utc() or an aware datetime")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def enum_column(enum_cls: type[enum.Enum], *, name: str, **kw):
    """A string column holding an Enum's values, guarded by a CHECK constraint named `name`."""
    return mapped_column(
        sa.Enum(
            enum_cls,
            name=name,
            native_enum=False,
            create_constraint=True,
            length=max(len(m.value) for m in enum_cls),
            values_callable=lambda e: [m.value for m in e],
            validate_strings=True,
        ),
        **kw,
    )


class TimestampMixin:
    """created_at / updated_at in UTC."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=now_utc, onupdate=now_utc, nullable=False
    )


# --- SQLite: WAL, busy timeout, and write transactions that never fail with "database is locked" ---
#
# With pysqlite's default deferred BEGIN, a transaction that reads and then writes must upgrade its lock;
# under WAL that upgrade fails *immediately* (SQLITE_BUSY_SNAPSHOT) when another connection committed in
# between, no matter the busy timeout. Starting write transactions with BEGIN IMMEDIATE takes the write
# lock up front, so the busy timeout applies and concurrent writers queue instead of failing. Read-only
# requests (GET/HEAD) keep a plain BEGIN so readers never wait for writers.

_sqlite_begin = contextvars.ContextVar("sqlite_begin", default="BEGIN IMMEDIATE")


def set_sqlite_read_only(read_only: bool) -> None:
    """Mark the current context's transactions as read-only (plain BEGIN) or writing (BEGIN IMMEDIATE)."""
    _sqlite_begin.set("BEGIN" if read_only else "BEGIN IMMEDIATE")


@contextlib.contextmanager
def sqlite_read_only(read_only: bool = True) -> Iterator[None]:
    """set_sqlite_read_only for the transactions begun inside the block, then back to what it was."""
    token = _sqlite_begin.set("BEGIN" if read_only else "BEGIN IMMEDIATE")
    try:
        yield
    finally:
        _sqlite_begin.reset(token)


def configure_sqlite_engine(engine: Engine, busy_timeout_ms: int) -> None:
    """Install the WAL / busy-timeout / BEGIN IMMEDIATE behaviour on a SQLite engine."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        # Take transaction control away from pysqlite so our BEGIN below is the only one.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql(_sqlite_begin.get())


def alembic_render_item(type_, obj, autogen_context):
    """Render our UTCDateTime as a plain timezone-aware DateTime in migration scripts.

    Migrations then never import application code, so old revisions keep working as the code moves on.
    """
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def load_into(obj, *options):
    """Load the relationships named by `options` into a row already in the session (the joined ones in one
    statement, plus one per selectin); attributes already loaded stay as they are. For a page that checks access
    on a lightly loaded row and only then loads what it shows."""
    from coop.extensions import db

    model = type(obj)
    db.session.scalars(sa.select(model).where(model.id == obj.id).options(*options)).unique().all()
    return obj
