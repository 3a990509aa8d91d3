"""Generating a whole month of reports — scheduled, from the CLI, or as a batch started on the screen.

Rendering (database reads + WeasyPrint) is CPU-bound, so it runs in a pool of worker processes, each with
its own app and database connections, started with "spawn" (no fork of a process that holds threads,
sockets or a SQLite handle). Workers only read; the parent process writes every file and row, one report
per transaction, so SQLite sees a single writer (BEGIN IMMEDIATE + busy timeout) and PostgreSQL sees short
transactions. A report that already exists for the month is skipped unless `force`, which makes the
job idempotent: running it twice, or again after downtime, makes each missing report exactly once.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing
import resource
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from coop.audit.operations import record
from coop.db import now_utc, set_sqlite_read_only
from coop.extensions import db
from coop.formatting import local_tz
from coop.jobs import start_in_thread
from coop.reports import operations as ops
from coop.reports.models import ReportRun, RunStatus
from coop.reports.queries import last_completed_month

log = logging.getLogger(__name__)

# Both cores of the reference machine; instance config REPORTS_PROCESSES overrides (1 = no pool).
DEFAULT_PROCESSES = 2
# Renderers are replaced after this many reports, so caches inside WeasyPrint cannot grow without bound.
TASKS_PER_WORKER = 100


@dataclass
class MonthProgress:
    """Counters after each report (and once at the start): what a progress bar or a ReportRun shows."""

    total: int = 0  # every report the month has
    done: int = 0  # created + skipped + failed so far
    created: int = 0
    skipped: int = 0  # already archived (or made meanwhile by another process)
    failed: int = 0
    message: str = ""
    worker_peak_mb: int = 0  # largest resident size a rendering process reached (MB)


@dataclass
class MonthResult:
    """What generate_month did."""
    year: int
    month: int
    progress: MonthProgress
    report_ids: list[int] = field(default_factory=list)  # rows created by this run
    failures: list[str] = field(default_factory=list)


# --- worker processes -------------------------------------------------------------------------------

_worker_app = None


def _worker_config(app) -> dict:
    """What a worker needs to build an app on the same database and folders as the parent."""
    keys = ("SECRET_KEY", "TIMEZONE", "UPLOAD_DIR", "ARCHIVE_DIR", "BASE_URL", "TESTING", "SQLITE_BUSY_TIMEOUT_MS")
    config = {k: app.config[k] for k in keys if k in app.config}
    config["DATABASE_URL"] = app.config["SQLALCHEMY_DATABASE_URI"]
    return config


def _init_worker(config: dict, instance_path: str) -> None:
    global _worker_app
    from app import create_app

    _worker_app = create_app(config, instance_path=instance_path)
    _worker_app.app_context().push()
    set_sqlite_read_only(True)  # workers never write: plain BEGIN, never waiting for the writer


def _release_freed_memory() -> None:
    """Hand freed heap back to the OS (glibc keeps it otherwise: ~50 MB per renderer after a few reports)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _peak_mb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024  # Linux reports KB


def _render_task(task: tuple) -> tuple:
    """(index, subject, year, month, version, generated_at) → (index, rendered | None, title, error, peak MB)."""
    index, subject, year, month, version, generated_at = task
    try:
        rendered, title = ops.render_subject(subject, year, month, version=version, generated_at=generated_at)
        # A light result for the pipe: the PDF, its hash and page count; the HTML stays here.
        rendered = ops.RenderedReport(pdf=rendered.pdf, html="", sha256=rendered.sha256, page_count=rendered.page_count)
        return index, rendered, title, None, _peak_mb()
    except Exception as exc:  # noqa: BLE001 — one broken report must not stop the month
        log.exception("report %s %s-%s failed", subject.key, year, month)
        return index, None, subject.name, f"{type(exc).__name__}: {exc}", _peak_mb()
    finally:
        if _worker_app is not None:
            db.session.remove()  # end the read snapshot so SQLite can checkpoint
            gc.collect()  # WeasyPrint's document trees hold cycles; the raised GC thresholds (app._tune_gc) would keep them
            _release_freed_memory()


# --- the month ----------------------------------------------------------------------------------------


def generate_month(year: int, month: int, *, force: bool = False, progress: Callable[[MonthProgress], None] | None = None,
                   actor=None, processes: int | None = None) -> MonthResult:
    """Make every missing report of a month (all of them again as new versions with `force`).

    Commits after each report (a month can take minutes; one long transaction would hold SQLite's write
    lock for all of it). Calls `progress(MonthProgress)` at the start and after each report.
    """
    from flask import current_app

    ops.check_month_reportable(year, month)
    app = current_app._get_current_object()
    processes = processes or app.config.get("REPORTS_PROCESSES") or DEFAULT_PROCESSES
    actor_id = getattr(actor, "id", None)
    subjects = ops.month_subjects(year, month)
    versions = ops.existing_versions(year, month)
    todo = subjects if force else [s for s in subjects if s.key not in versions]
    state = MonthProgress(total=len(subjects), skipped=len(subjects) - len(todo))
    state.done = state.skipped
    state.message = f"{year}年{month}月共 {state.total} 份报告，已存在 {state.skipped} 份，需生成 {len(todo)} 份"
    result = MonthResult(year, month, state)
    db.session.commit()  # end the listing's transaction before the long part
    if progress:
        progress(state)
    made_at = now_utc()
    tasks = [(i, s, year, month, versions.get(s.key, 0) + 1, made_at) for i, s in enumerate(todo)]

    def handle(index, rendered, title, error, peak_mb):
        subject = todo[index]
        state.worker_peak_mb = max(state.worker_peak_mb, peak_mb)
        if error is None:
            version = tasks[index][4]
            try:
                report = ops.store_report(subject, year, month, rendered, version=version, title=title,
                                          actor_id=actor_id, created_at=now_utc())
                db.session.commit()
            except IntegrityError:
                db.session.rollback()  # another process archived this version meanwhile: theirs stands
                state.skipped += 1
                state.message = f"已存在：{title}"
            except OSError as exc:
                db.session.rollback()
                error = f"写入存档失败：{exc}"
            else:
                result.report_ids.append(report.id)
                state.created += 1
                state.message = f"新生成：{title}（第{version}版）"
        if error is not None:
            state.failed += 1
            state.message = f"失败：{subject.name} — {error}"
            result.failures.append(state.message)
        state.done += 1
        if progress:
            progress(state)

    if processes <= 1 or len(tasks) <= 1:
        for task in tasks:
            handle(*_render_task(task))
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(min(processes, len(tasks)), initializer=_init_worker,
                          initargs=(_worker_config(app), app.instance_path), maxtasksperchild=TASKS_PER_WORKER) as pool:
            for outcome in pool.imap_unordered(_render_task, tasks):
                handle(*outcome)

    if state.created or state.failed:
        record(
            "report.month_generated",
            f"生成{year}年{month}月月度报告：新生成{state.created}份，已存在{state.skipped}份，失败{state.failed}份",
            actor=actor, detail={"year": year, "month": month, "force": force, "created": state.created,
                                 "skipped": state.skipped, "failed": state.failed},
        )
        db.session.commit()
    return result


def run_monthly_reports(app, now: datetime | None = None) -> MonthResult:
    """Scheduler job: make the last completed month's missing reports (Asia/Shanghai calendar).

    Run at 02:00 on the 1st and at scheduler start, so a machine that was off on the 1st catches up once;
    reports that exist are skipped, so it never makes a month twice.
    """
    with app.app_context():
        today = (now or now_utc()).astimezone(local_tz()).date()
        year, month = last_completed_month(today)
        result = generate_month(year, month)
        if result.progress.created or result.progress.failed:
            log.info("monthly reports %s-%02d: %s", year, month, result.progress.message)
        return result


# --- batches started from the screen -----------------------------------------------------------------


def execute_report_run(run_id: int, *, processes: int | None = None) -> None:
    """Carry out a ReportRun, updating its counters as reports are made (the page polls them)."""
    run = db.session.get(ReportRun, run_id)
    if run is None or run.status is not RunStatus.running:
        return
    year, month, force, actor = run.year, run.month, run.force, run.created_by

    def update(p: MonthProgress) -> None:
        db.session.execute(
            sa.update(ReportRun).where(ReportRun.id == run_id).values(
                total=p.total, done=p.done, failed=p.failed, created=p.created, message=p.message[:300],
                updated_at=now_utc(),
            )
        )
        db.session.commit()

    try:
        result = generate_month(year, month, force=force, progress=update, actor=actor, processes=processes)
    except Exception as exc:  # noqa: BLE001 — the page must learn that the batch stopped
        log.exception("report run %s failed", run_id)
        db.session.rollback()
        values = {"status": RunStatus.failed, "message": f"批量生成失败：{exc}"[:300]}
    else:
        p = result.progress
        values = {
            "status": RunStatus.failed if p.failed and not p.created else RunStatus.done,
            "message": f"完成：新生成 {p.created} 份，已存在 {p.skipped} 份，失败 {p.failed} 份",
        }
    db.session.execute(
        sa.update(ReportRun).where(ReportRun.id == run_id).values(finished_at=now_utc(), updated_at=now_utc(), **values)
    )
    db.session.commit()


def launch_report_run(app, run_id: int) -> threading.Thread:
    """Start a committed ReportRun in a background thread of this process (the request returns at once)."""
    return start_in_thread(app, f"report-run-{run_id}", execute_report_run, run_id)
