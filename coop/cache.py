"""Figures that are expensive at group scale, computed once per change of the data (issue 10).

The committee's group-wide screens (cockpit, scores, the group's report data, the reviewer's home) aggregate
tens of thousands of activities. Those aggregates only change when someone writes, and a group reads them
far more often than it writes, so each is memoised per **data generation**:

* ``data_generations`` holds one row: a random ``epoch`` (new whenever the row is created, e.g. on a fresh
  or wiped database) and a counter ``n``.
* Every transaction that wrote to a table other than sign-in, reminder and report bookkeeping bumps ``n``
  in the same transaction, just before it commits (``before_commit``; the writes are seen by a cursor hook,
  so ORM flushes, bulk statements and ``session.execute(insert(...))`` all count). A commit therefore makes
  the new data and the new generation visible together; there is no window where new data meets an old
  generation in another process.
* ``memoized(name, key, compute)`` reads the generation once per request (one indexed single-row SELECT) and
  returns the value computed under that generation by this process, or computes and keeps it. Each process
  (gunicorn worker) has small LRUs of its own (group figures; per-person values; API payloads); a bump in any
  process invalidates all of them, because every lookup compares generations.

Only plain data (numbers, tuples, dicts) is memoised — never ORM rows, which belong to one session. A value
computed while another transaction commits is stored under the generation read before it, which that
commit has already left behind: the next request recomputes. Writes that bypass the application (a
restore from backup, hand-made SQL) must start a new epoch: ``new_epoch`` (the restore from backup does it).
"""
from __future__ import annotations

import logging
import re
import secrets
import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from coop.extensions import db

# Tables whose writes do not change any memoised figure (sign-in and API bookkeeping, reminders,
# archived reports, the audit trail written alongside real changes, this table itself).
IGNORED_TABLES = frozenset({
    "data_generations", "login_sessions", "login_throttles", "api_tokens", "audit_log", "notifications",
    "reminder_deliveries", "notification_preferences", "calendar_feeds", "monthly_reports", "report_runs",
    "import_runs", "alembic_version",
})
# Three LRUs per process, so that one kind of value cannot push out another:
#   "group": group-wide figures — cockpit, scores, report data … (a few MB at group scale);
#   "personal": many small values per person or per list — home panels, filter choices, list totals;
#   "api": API payloads (list pages of up to 100 full items, report JSON up to ~1.3 MB): few, and a client
#   walking filters or months only churns this pool.
POOL_SIZES = {"group": 256, "personal": 2048, "api": 64}
_WRITE = re.compile(r'^\s*(?:INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE|DELETE\s+FROM)\s+"?(\w+)', re.I)
_FLAG = "coop_data_written"


class DataGeneration(db.Model):
    """One row: which version of the data the memoised figures were computed from."""

    __tablename__ = "data_generations"

    id: Mapped[int] = mapped_column(primary_key=True)
    epoch: Mapped[str] = mapped_column(sa.String(32), nullable=False)
    n: Mapped[int] = mapped_column(sa.BigInteger, nullable=False, default=0)


# --- noticing writes and bumping the generation -----------------------------------------------------------------


#: Execution option marking a write that no memoised figure reads (e.g. an account's last sign-in time), so it does
#: not start a new generation: `stmt.execution_options(**BOOKKEEPING)`.
BOOKKEEPING = {"coop_bookkeeping": True}


@event.listens_for(Engine, "before_cursor_execute")
def _notice_write(conn, _cursor, statement, _parameters, context, _executemany):
    m = _WRITE.match(statement)
    if m and m.group(1).lower() not in IGNORED_TABLES:
        if context is not None and context.execution_options.get("coop_bookkeeping"):
            return
        conn.info[_FLAG] = True


@event.listens_for(Engine, "commit")
@event.listens_for(Engine, "rollback")
def _forget_writes(conn):
    conn.info.pop(_FLAG, None)


def _bump_statement(dialect_name: str):
    table = DataGeneration.__table__
    values = {"id": 1, "epoch": secrets.token_hex(8), "n": 1}
    if dialect_name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(table).values(**values)
    return stmt.on_conflict_do_update(index_elements=[table.c.id], set_={"n": table.c.n + 1})


@event.listens_for(Session, "before_commit")
def _bump_on_commit(session: Session) -> None:
    """Bump the generation in the committing transaction when it wrote figures' data. A savepoint's release
    is not the commit: the flag stays on the connection for the outer transaction (bumping here would hold
    the counter row's lock for the rest of it, and two writers could then deadlock on PostgreSQL)."""
    if not session.in_transaction() or session.in_nested_transaction():
        return
    session.flush()  # pending changes reach the cursor hook now, not in commit's own flush
    for conn in _session_connections(session):
        if conn.info.pop(_FLAG, False) and _has_table(conn):
            conn.execute(_bump_statement(conn.dialect.name))


_table_seen: dict[str, bool] = {}
_warned: set[str] = set()


def _has_table(conn: sa.Connection) -> bool:
    """Whether this database has data_generations (once found, not asked again in this process). Without it —
    code newer than the schema, before `flask db upgrade` — writes go on and nothing is memoised."""
    url = conn.engine.url.render_as_string(hide_password=True)
    if not _table_seen.get(url):
        _table_seen[url] = sa.inspect(conn).has_table(DataGeneration.__tablename__)
        if not _table_seen[url] and url not in _warned:
            _warned.add(url)
            logging.getLogger(__name__).warning(
                "table data_generations missing (run `flask db upgrade`): group figures are not memoised")
    return _table_seen[url]


def _session_connections(session: Session) -> list[sa.Connection]:
    tx = session.get_transaction()
    if tx is None:
        return []
    # SessionTransaction keeps the connections it has begun; a transaction that never touched the
    # database has none (and wrote nothing).
    return [conn for conn, *_rest in tx._connections.values()]  # noqa: SLF001 — no public accessor


def new_epoch(conn: sa.Connection) -> None:
    """Start a new epoch after data was replaced behind the application's back (restore from backup): no
    memoised value of any process can match it again. A database without the row needs nothing."""
    table = DataGeneration.__table__
    if sa.inspect(conn).has_table(table.name):
        conn.execute(table.update().values(epoch=secrets.token_hex(8), n=table.c.n + 1))


def _writing(session: Session) -> bool:
    """True when the session holds changes not yet committed (pending objects or written rows)."""
    if session.new or session.dirty or session.deleted:
        return True
    return any(conn.info.get(_FLAG) for conn in _session_connections(session))


def bump(session: Session | None = None) -> None:
    """Invalidate every memoised figure (in the caller's transaction; the caller commits)."""
    session = session or db.session
    session.execute(_bump_statement(session.get_bind().dialect.name))


# --- memoising ---------------------------------------------------------------------------------------------------

_lock = threading.Lock()
_pools: dict[str, OrderedDict[tuple, tuple[tuple, Any]]] = {name: OrderedDict() for name in POOL_SIZES}
stats = {"hits": 0, "misses": 0}


_GENERATION = "coop_generation"


def _read_generation(conn: sa.Connection) -> tuple | None:
    if not _has_table(conn):
        return None
    row = conn.execute(sa.select(DataGeneration.epoch, DataGeneration.n).where(DataGeneration.id == 1)).first()
    return (conn.engine.url.render_as_string(hide_password=True), row[0], row[1]) if row else None


def current_generation() -> tuple | None:
    """(database, epoch, n) as this transaction sees it — read once per transaction; None when the row or the
    table does not exist (then nothing is memoised)."""
    session = db.session()
    conn = session.connection()  # begins the transaction if needed (on PostgreSQL that reads the generation)
    if _GENERATION not in session.info:
        session.info[_GENERATION] = _read_generation(conn)
    return session.info[_GENERATION]


def forget_generation() -> None:
    """Make the next lookup read the generation again."""
    db.session().info.pop(_GENERATION, None)


@event.listens_for(Session, "after_begin")
def _read_first(session: Session, transaction, connection: sa.Connection) -> None:
    """PostgreSQL (READ COMMITTED: each statement sees the latest commits): read the generation as the
    transaction's first statement, so every row a memoised value is computed from is at least as new as the
    generation it is stored under. SQLite's transaction reads one snapshot, so a lazy read is as good."""
    if transaction.parent is None and connection.dialect.name == "postgresql":
        session.info[_GENERATION] = _read_generation(connection)


@event.listens_for(Session, "after_transaction_end")
def _forget_at_end(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(_GENERATION, None)


def memoized(name: str, key: Hashable, compute: Callable[[], Any], *, pool: str = "group") -> Any:
    """compute() once per data generation and process; `key` must identify the arguments completely.
    `pool`: "group" (group-wide figures), "personal" (per person or per list) or "api" (API payloads)."""
    if _writing(db.session()):  # this transaction's own changes are not in any generation yet
        stats["misses"] += 1
        return compute()
    generation = current_generation()
    if generation is None:
        stats["misses"] += 1
        return compute()
    full_key = (name, generation[0], key)
    entries, limit = _pools[pool], POOL_SIZES[pool]
    with _lock:
        hit = entries.get(full_key)
        if hit is not None and hit[0] == generation:
            entries.move_to_end(full_key)
            stats["hits"] += 1
            return hit[1]
    value = compute()
    with _lock:
        stats["misses"] += 1
        entries[full_key] = (generation, value)
        entries.move_to_end(full_key)
        while len(entries) > limit:
            entries.popitem(last=False)
    return value


def clear() -> None:
    """Drop this process's memoised values (tests, benchmarks)."""
    with _lock:
        for entries in _pools.values():
            entries.clear()


_touches_ignored: dict[tuple, bool] = {}


def count_rows(stmt: sa.Select) -> int:
    """SELECT count(*) of a statement, memoised per data generation: the total under a paginated list (a group
    reviewer's ledger counts tens of thousands of visible activities on every page). The key is SQLAlchemy's own
    cache key of the statement (its shape, which SQLAlchemy computes to execute it anyway) plus its parameters,
    which carry everything that decides visibility (user, organizations, filters) — no compiling per request."""
    query = sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
    cache_key = stmt._generate_cache_key()  # None for a statement SQLAlchemy cannot cache
    if cache_key is None:
        return int(db.session.execute(query).scalar_one())
    shape = cache_key.key
    if shape not in _touches_ignored:  # once per statement shape: does it read a table that never bumps?
        sql = str(stmt.compile(dialect=db.engine.dialect))
        _touches_ignored[shape] = any(re.search(rf"\b{table}\b", sql) for table in IGNORED_TABLES)
    if _touches_ignored[shape]:  # e.g. notifications: no generation follows them
        return int(db.session.execute(query).scalar_one())
    key = (shape, tuple(repr(p.effective_value) for p in cache_key.bindparams))
    return memoized("count", key, lambda: int(db.session.execute(query).scalar_one()), pool="personal")


def paginate(stmt: sa.Select, *, page: int, per_page: int):
    """Flask-SQLAlchemy's paginate (an out-of-range page is empty, not a 404) with the memoised total (counted
    directly for lists over tables that do not bump the generation, e.g. the report archive)."""
    pagination = db.paginate(stmt, page=page, per_page=per_page, error_out=False, count=False)
    shown = len(pagination.items)
    # A short, non-empty page is the last one, and an empty first page is an empty list: the total is known
    # without counting. A full page, or an empty one past the end, must count.
    if 0 < shown < per_page or (shown == 0 and pagination.page == 1):
        pagination.total = (pagination.page - 1) * per_page + shown
    else:
        pagination.total = count_rows(stmt)
    return pagination
