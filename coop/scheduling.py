"""Running the periodic jobs (reminder sweeps, monthly reports) exactly once per site.

The scheduler holds no truth: jobs live in memory only, and each job asks the database what is due
(reminders are rows with unique keys). What must never happen is two scheduler processes running the same
sweep at once, so the `flask scheduler` process first takes a site-wide lock:

* SQLite (or any non-PostgreSQL database): an exclusive `flock` on a file next to the database. It only
  protects one machine — which is the only place a SQLite site runs.
* PostgreSQL: a session-level advisory lock on a dedicated connection, which covers every machine that
  talks to that database. The server drops the lock when the connection dies (process killed, host gone:
  TCP keepalives notice), and the process checks periodically that it still holds it.

Nothing here starts at import time; `run_scheduler_forever` is called from the CLI command only::

    @app.cli.command("scheduler")
    def scheduler_command():
        def in_app(func):                      # jobs need an app context; each run gets its own
            def run():
                with app.app_context():
                    func()
            return run
        jobs = [JobSpec("reminder-sweep", in_app(sweep_reminders), "interval",
                        {"minutes": app.config["REMINDER_SWEEP_MINUTES"]})]
        run_scheduler_forever(jobs, database_url=db.engine.url.render_as_string(hide_password=False),
                              lock_path=Path(app.instance_path) / "scheduler.lock",
                              timezone=app.config["TIMEZONE"], log=app.logger)
"""
from __future__ import annotations

import fcntl
import logging
import os
import re
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

# Fixed advisory-lock key: the ASCII bytes of "coopSchd" read as a big-endian signed bigint.
SCHEDULER_LOCK_KEY = int.from_bytes(b"coopSchd", "big", signed=True)
# A run that is late by more than this (process was down, machine asleep) is skipped, not replayed;
# coalesce=True already folds a backlog into a single run.
DEFAULT_MISFIRE_GRACE_SECONDS = 15 * 60
LOCK_CHECK_SECONDS = 60
ALREADY_RUNNING_MESSAGE = "另一个调度进程正在运行，本进程退出（同一站点只能运行一个调度进程）"


class SchedulerAlreadyRunning(SystemExit):
    """Raised by `run_scheduler_forever` when another process holds the lock; exits with status 1."""

    def __init__(self, message: str = ALREADY_RUNNING_MESSAGE):
        super().__init__(message)  # SystemExit with a str prints it to stderr and exits with status 1
        self.message = message


class SchedulerLockLost(SystemExit):
    """Raised after an orderly stop when the lock was lost (database restarted and someone else took it)."""

    def __init__(self, message: str = "调度锁已丢失（数据库连接中断且锁已被其他进程获取），本进程已停止"):
        super().__init__(message)
        self.message = message


# --- the lock --------------------------------------------------------------------------------------------


class SchedulerLock:
    """A held site-wide scheduler lock, kept until `release()` or the end of the process."""

    kind = "abstract"

    def still_held(self) -> bool:
        """Return True while the lock is certainly held; may try to take it back after a lost connection."""
        raise NotImplementedError

    def release(self) -> None:
        """Give up the lock; safe to call twice."""
        raise NotImplementedError

    def __enter__(self) -> "SchedulerLock":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class FileSchedulerLock(SchedulerLock):
    """An exclusive, non-blocking flock on a file, held while the file descriptor stays open."""

    kind = "file"

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd: int | None = fd

    def still_held(self) -> bool:
        """A flock cannot be taken away from an open descriptor."""
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close the lock file (the file itself stays; removing it would race a new holder)."""
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __repr__(self) -> str:
        return f"<FileSchedulerLock {self.path} held={self._fd is not None}>"


class PostgresSchedulerLock(SchedulerLock):
    """A session-level `pg_try_advisory_lock` on its own connection, kept open for the life of the process."""

    kind = "postgresql"

    def __init__(self, conninfo: str, key: int, conn: Any):
        self.conninfo = conninfo
        self.key = key
        self._conn = conn
        self._released = False

    def still_held(self) -> bool:
        """Ping the lock's connection; if it broke, try once to take the lock again on a new one."""
        if self._released:
            return False
        try:
            self._conn.execute("SELECT 1")
            return True
        except Exception:  # noqa: BLE001 — any driver error means the session (and so the lock) is gone
            _close_quietly(self._conn)
        conn = _try_advisory_lock(self.conninfo, self.key)
        if conn is None:
            self._released = True
            return False
        self._conn = conn
        return True

    def release(self) -> None:
        """Unlock explicitly and close the connection."""
        if self._released:
            return
        self._released = True
        try:
            self._conn.execute("SELECT pg_advisory_unlock(%s::bigint)", (self.key,))
        except Exception:  # noqa: BLE001  # closing the session below releases it anyway  # nosec B110
            pass
        _close_quietly(self._conn)

    def __repr__(self) -> str:
        return f"<PostgresSchedulerLock key={self.key} held={not self._released}>"


def acquire_scheduler_lock(
    database_url: str, lock_path: Path, *, lock_key: int = SCHEDULER_LOCK_KEY
) -> SchedulerLock | None:
    """Take the site-wide scheduler lock without waiting; None if another process holds it."""
    if is_postgresql_url(database_url):
        conninfo = libpq_url(database_url)
        conn = _try_advisory_lock(conninfo, lock_key)
        return PostgresSchedulerLock(conninfo, lock_key, conn) if conn is not None else None
    return _try_file_lock(Path(lock_path))


def is_postgresql_url(database_url: str) -> bool:
    """True for postgresql://, postgres:// and SQLAlchemy's postgresql+driver:// URLs."""
    return bool(re.match(r"^postgres(?:ql)?(?:\+\w+)?://", database_url or "", re.IGNORECASE))


def libpq_url(database_url: str) -> str:
    """Turn a SQLAlchemy URL (postgresql+psycopg://…) into the form libpq and psycopg.connect accept."""
    return re.sub(r"^postgres(?:ql)?(?:\+\w+)?://", "postgresql://", database_url, count=1, flags=re.IGNORECASE)


def _try_file_lock(path: Path) -> FileSchedulerLock | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open descriptors are non-inheritable, so a subprocess started by a job does not keep the lock.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    # The pid in the file is for people looking at it; the lock is the flock, not the content.
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return FileSchedulerLock(path, fd)


def _try_advisory_lock(conninfo: str, key: int):
    """Open a dedicated connection and try the advisory lock; the connection if it was granted, else None."""
    import psycopg

    conn = psycopg.connect(
        conninfo,
        autocommit=True,  # a session lock must not sit inside a transaction that idle timeouts would kill
        connect_timeout=10,
        application_name="coop-scheduler",
        # Client-side keepalives notice a vanished server; the server-side ones below let the server
        # notice a vanished scheduler host and drop its lock.
        keepalives=1,
        keepalives_idle=30,
        keepalives_interval=10,
        keepalives_count=3,
    )
    try:
        conn.execute("SET tcp_keepalives_idle = 30")
        conn.execute("SET tcp_keepalives_interval = 10")
        conn.execute("SET tcp_keepalives_count = 3")
        if conn.info.server_version >= 140000:
            conn.execute("SET idle_session_timeout = 0")  # this session idles by design
        granted = conn.execute("SELECT pg_try_advisory_lock(%s::bigint)", (key,)).fetchone()[0]
    except BaseException:
        _close_quietly(conn)
        raise
    if not granted:
        _close_quietly(conn)
        return None
    return conn


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001  # closing a broken connection may itself fail; nothing to do about it  # nosec B110
        pass


# --- the scheduler ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSpec:
    """One periodic job: `trigger` is a trigger object, or "cron"/"interval"/"date" with `trigger_args`."""

    id: str
    func: Callable[[], Any]
    trigger: Any
    trigger_args: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    misfire_grace_time: int = DEFAULT_MISFIRE_GRACE_SECONDS


def build_scheduler(jobs: Sequence[JobSpec], *, timezone: str, blocking: bool, max_workers: int = 4) -> BaseScheduler:
    """Create (not start) a Blocking- or BackgroundScheduler with the jobs in an in-memory store."""
    scheduler_class = BlockingScheduler if blocking else BackgroundScheduler
    scheduler = scheduler_class(
        timezone=ZoneInfo(timezone),
        executors={"default": ThreadPoolExecutor(max_workers=max_workers)},
        job_defaults={
            "coalesce": True,  # a backlog of missed runs collapses into one
            "max_instances": 1,  # a slow sweep is never overlapped by the next one
            "misfire_grace_time": DEFAULT_MISFIRE_GRACE_SECONDS,
        },
    )
    for job in jobs:
        # Trigger names given as strings pick up the scheduler's time zone; trigger objects carry their own.
        scheduler.add_job(
            job.func,
            trigger=job.trigger,
            id=job.id,
            name=job.name or job.id,
            misfire_grace_time=job.misfire_grace_time,
            coalesce=True,
            max_instances=1,
            replace_existing=True,
            **dict(job.trigger_args),
        )
    return scheduler


class _Terminate(BaseException):
    """Raised in the main thread by the SIGTERM handler to leave BlockingScheduler.start()."""


def run_scheduler_forever(
    jobs: Sequence[JobSpec],
    *,
    database_url: str,
    lock_path: Path,
    timezone: str,
    log: logging.Logger,
    lock_check_seconds: float = LOCK_CHECK_SECONDS,
    lock_key: int = SCHEDULER_LOCK_KEY,
) -> None:
    """Take the lock (or raise SchedulerAlreadyRunning) and run the jobs until SIGTERM/SIGINT; main thread only."""
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("run_scheduler_forever must run in the main thread (it installs signal handlers)")
    try:
        lock = acquire_scheduler_lock(database_url, lock_path, lock_key=lock_key)
    except Exception as exc:  # noqa: BLE001 — database unreachable, bad URL, unwritable lock file …
        log.error("无法获取调度锁：%s", exc)
        raise SystemExit(f"无法获取调度锁：{exc}") from exc
    if lock is None:
        log.error(ALREADY_RUNNING_MESSAGE)
        raise SchedulerAlreadyRunning()
    lost = threading.Event()

    def check_lock() -> None:
        if not lock.still_held():
            lost.set()
            log.error("调度锁已丢失，正在停止调度进程")
            os.kill(os.getpid(), signal.SIGTERM)  # handled below, in the main thread

    all_jobs = [*jobs, JobSpec("scheduler-lock-check", check_lock, "interval", {"seconds": lock_check_seconds})]
    scheduler = build_scheduler(all_jobs, timezone=timezone, blocking=True)

    def on_signal(signum: int, frame: object) -> None:
        # Ignore repeats while shutting down; a second Ctrl-C must not interrupt the orderly stop.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise _Terminate()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            for sig in previous:
                signal.signal(sig, on_signal)
            log.info("调度进程已启动（%s 锁，%d 个任务）", lock.kind, len(jobs))
            scheduler.start()  # blocks until a signal raises _Terminate
        except _Terminate:
            log.info("收到停止信号，等待正在运行的任务结束")
        if scheduler.running:
            scheduler.shutdown(wait=True)  # let a running sweep finish before the lock is given up
    finally:
        lock.release()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    log.info("调度进程已停止")
    if lost.is_set():
        raise SchedulerLockLost()
