"""The platform's periodic jobs and the two ways they run.

* `flask scheduler` — its own process, for deployments with several web workers (exactly one runs:
  it takes a file lock on SQLite or a PostgreSQL advisory lock held on its own connection).
* `flask serve` — the single-process default (scripts/dev): the web server with the same jobs in a
  background thread, under the same lock.

The scheduler holds no truth: every job recomputes what is due from the data and records what it did
with unique keys, so a missed, doubled or interrupted run is harmless. Each job also runs once at start
so that a machine that was off catches up (once).
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask

from coop.extensions import db
from coop.scheduling import JobSpec

log = logging.getLogger("coop.jobs")


def _in_app(app: Flask, name: str, func) -> None:
    """Run `func()` in an app context with one commit; log (never raise) failures so the scheduler lives on."""
    with app.app_context():
        try:
            result = func()
            db.session.commit()
            if result:
                log.info("%s: %s", name, result)
        except Exception:  # a failing job must not kill the scheduler; the next run retries
            db.session.rollback()
            log.exception("job %s failed", name)
        finally:
            db.session.remove()


def start_in_thread(app: Flask, name: str, func, *args) -> threading.Thread:
    """Run `func(*args)` in a daemon thread of this process, in an app context (and session) of its own.

    For work started from a screen that outlives the request (a month's reports, a ledger import). The
    thread dies with its process, so such work saves its progress in the database as it goes: a page can
    then tell a run whose process is gone (its counters stopped moving) from a slow one.
    """

    def target():
        with app.app_context():
            try:
                func(*args)
            finally:
                db.session.remove()

    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    return thread


def sweep_reminders(app: Flask) -> None:
    """Compute and deliver due reminders (see coop.reminders.sweep)."""
    from coop.reminders.sweep import run_sweep

    _in_app(app, "reminders", lambda: run_sweep(datetime.now(timezone.utc)))


def monthly_reports(app: Flask) -> None:
    """Generate last month's missing reports (idempotent; catches up after downtime)."""
    from coop.reports.jobs import run_monthly_reports

    run_monthly_reports(app)


def expire_agreements(app: Flask) -> None:
    """Move agreements past their end date to `expired`."""
    from agreements.operations import expire_due_agreements
    from coop.formatting import local_today

    _in_app(app, "agreements", lambda: expire_due_agreements(local_today()))


def platform_jobs(app: Flask) -> list[JobSpec]:
    """Every periodic job with its trigger, in the configured time zone."""
    cfg = app.config
    now = datetime.now(timezone.utc)
    return [
        JobSpec("reminders-sweep", lambda: sweep_reminders(app), "interval",
                {"minutes": cfg["REMINDER_SWEEP_MINUTES"], "next_run_time": now}),
        JobSpec("monthly-reports", lambda: monthly_reports(app), "cron",
                {"day": 1, "hour": cfg["REPORTS_MONTHLY_HOUR"], "minute": 0}),
        JobSpec("monthly-reports-catch-up", lambda: monthly_reports(app), "date", {"run_date": now}),
        JobSpec("agreements-expiry", lambda: expire_agreements(app), "cron",
                {"hour": 0, "minute": 5, "next_run_time": now}),
    ]


def lock_path(app: Flask) -> Path:
    """The scheduler's file lock (SQLite deployments)."""
    return Path(app.instance_path) / "scheduler.lock"
