"""The scheduler's entry point for reminders (every REMINDER_SWEEP_MINUTES; see coop.jobs)."""
from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def sweep_job(app) -> None:
    """Run one sweep at the real time in its own app context; log, never raise into the scheduler."""
    from coop.extensions import db
    from coop.reminders.sweep import run_sweep

    with app.app_context():
        try:
            result = run_sweep()
        except Exception:
            db.session.rollback()
            logger.exception("reminder sweep failed; the next run retries everything still due")
            return
        finally:
            db.session.remove()
        if result:
            logger.info("reminder sweep: %s", result)
