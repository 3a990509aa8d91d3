"""Demo reminders: a few people's e-mail preferences, then one sweep, so the notification centre and the
outbox show what the platform would send today. Safe to run again (preferences are only set once; the
sweep records each reminder once by design)."""
from __future__ import annotations

from datetime import time
from typing import Callable

from coop.auth.models import User
from coop.extensions import db
from coop.orgs.models import Organization
from coop.reminders.models import EmailMode, NotificationPreference

# username -> (mode, quiet hours); everyone else keeps the site default (daily digest, 22:00–07:00).
DEMO_PREFERENCES = {
    "ops_lly": (EmailMode.immediate, (time(22, 0), time(7, 0))),
    "sales_lly": (EmailMode.weekly, None),
    "cdc_lly": (EmailMode.immediate, None),
}


def seed_demo_step(orgs: dict[str, Organization], users: dict[str, User], echo: Callable[[str], None]) -> None:
    """Set demo preferences and run one reminder sweep at the current time."""
    from coop.reminders.sweep import run_sweep

    for username, (mode, quiet) in DEMO_PREFERENCES.items():
        user = users.get(username)
        if user is None or db.session.get(NotificationPreference, user.id) is not None:
            continue
        db.session.add(NotificationPreference(
            user_id=user.id, email_mode=mode, quiet_start=quiet[0] if quiet else None,
            quiet_end=quiet[1] if quiet else None, disabled_kinds=[],
        ))
    db.session.commit()
    result = run_sweep()
    echo(f"提醒：{result}。")
