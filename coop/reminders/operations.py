"""Changing a person's notifications: read marks, e-mail preferences, unsubscribe, calendar feed tokens.

Operations flush and never commit; views, the CLI and tests commit. Preference changes, unsubscribes
and calendar-feed tokens are written to the audit log; read marks are not (they are the person's own
inbox state, and logging every click would bury the log).
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import time
from typing import Iterable, Optional

import sqlalchemy as sa
from flask_babel import gettext as _

from coop.audit.operations import record
from coop.auth.models import User
from coop.db import now_utc
from coop.extensions import db
from coop.reminders.delivery import UNSUBSCRIBE_ALL, default_preferences
from coop.reminders.models import (
    KIND_LABELS,
    MANDATORY_KINDS,
    CalendarFeed,
    EmailMode,
    Notification,
    NotificationPreference,
    ReminderKind,
)


class ReminderRefused(Exception):
    """A refused change, with a message for people (in the interface language)."""


# --- the notification centre ---------------------------------------------------------------------------


def unread_count(user: User) -> int:
    """How many notices the person has not read (one COUNT on an index)."""
    return db.session.execute(
        sa.select(sa.func.count()).select_from(Notification).where(
            Notification.user_id == user.id, Notification.read_at.is_(None)
        )
    ).scalar_one()


def unread_count_column() -> sa.ScalarSelect:
    """unread_count as a subquery correlated to ``login_sessions.user_id``: the user loader fetches it with the
    signed-in user in one statement (coop.web)."""
    from coop.auth.models import LoginSession

    return (
        sa.select(sa.func.count()).select_from(Notification)
        .where(Notification.user_id == LoginSession.user_id, Notification.read_at.is_(None))
        .scalar_subquery()
    )


def mark_read(user: User, notification: Notification) -> None:
    """Mark one of the person's own notices as read (already read: unchanged)."""
    if notification.user_id != user.id:
        raise ReminderRefused(_("只能处理自己的通知。"))
    if notification.read_at is None:
        notification.read_at = now_utc()
        db.session.flush()


def mark_all_read(user: User) -> int:
    """Mark every unread notice of the person as read; returns how many changed."""
    result = db.session.execute(
        sa.update(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .values(read_at=now_utc())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


# --- preferences -----------------------------------------------------------------------------------------


def optional_kinds() -> list[ReminderKind]:
    """Kinds a person may switch off for e-mail (mandatory ones are always sent)."""
    return [k for k in ReminderKind if k not in MANDATORY_KINDS]


def _preference_row(user: User) -> NotificationPreference:
    row = db.session.get(NotificationPreference, user.id)
    if row is None:
        default = default_preferences()
        row = NotificationPreference(
            user_id=user.id, email_mode=default.mode, quiet_start=default.quiet_start, quiet_end=default.quiet_end,
            disabled_kinds=[],
        )
        db.session.add(row)
    return row


def save_preferences(
    user: User,
    *,
    email_mode: EmailMode,
    quiet_start: Optional[time],
    quiet_end: Optional[time],
    email_kinds: Iterable[str],
) -> NotificationPreference:
    """Store how the person wants e-mail. `email_kinds` lists the optional kinds they still want by e-mail."""
    if (quiet_start is None) != (quiet_end is None):
        raise ReminderRefused(_("免打扰时段需要同时填写开始和结束时间，或都不填。"))
    if quiet_start is not None and quiet_start == quiet_end:
        raise ReminderRefused(_("免打扰时段的开始和结束时间不能相同。"))
    wanted = set(email_kinds)
    allowed = {k.value for k in optional_kinds()}
    unknown = wanted - allowed
    if unknown:
        raise ReminderRefused(_("包含无效的提醒类型。"))
    row = _preference_row(user)
    row.email_mode = email_mode
    row.quiet_start, row.quiet_end = quiet_start, quiet_end
    row.disabled_kinds = sorted(allowed - wanted)
    db.session.flush()
    quiet = f"{quiet_start:%H:%M}–{quiet_end:%H:%M}" if quiet_start else "无"
    record(
        "reminders.preferences", f"{user.display_name} 修改了提醒设置：{email_mode.label}，免打扰 {quiet}",
        actor=user, organization_id=user.organization_id, target=user,
        detail={"email_mode": email_mode.value, "quiet": quiet, "disabled_kinds": row.disabled_kinds},
    )
    return row


def unsubscribe(user: User, scope: str) -> str:
    """Stop one optional kind of e-mail (scope = kind value) or every optional e-mail ("*"); returns what
    changed, in Chinese (it goes into the audit log; the unsubscribe page says it in the reader's language).
    Mandatory kinds cannot be unsubscribed."""
    row = _preference_row(user)
    if scope == UNSUBSCRIBE_ALL:
        row.email_mode = EmailMode.off
        summary = "已停止发送提醒邮件（必需的通知除外），站内通知照常保留。"
    else:
        try:
            kind = ReminderKind(scope)
        except ValueError:
            raise ReminderRefused(_("退订链接无效。")) from None
        if kind in MANDATORY_KINDS:
            raise ReminderRefused(_("此类通知关系到本组织须办理的事项，无法退订。"))
        row.disabled_kinds = sorted(set(row.disabled_kinds or ()) | {kind.value})
        summary = f"已停止发送“{KIND_LABELS[kind]}”类邮件，站内通知照常保留。"
    db.session.flush()
    record("reminders.unsubscribe", f"{user.display_name} 通过邮件退订：{summary}", actor=user,
           organization_id=user.organization_id, target=user, detail={"scope": scope})
    return summary


# --- calendar feed ---------------------------------------------------------------------------------------


def feed_token_hash(token: str) -> str:
    """What is stored for a feed token (SHA-256 hex; the token itself is shown once and never stored)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def live_feed(user: User) -> Optional[CalendarFeed]:
    """The person's current (not revoked) calendar feed, if any."""
    return db.session.execute(
        sa.select(CalendarFeed).where(CalendarFeed.user_id == user.id, CalendarFeed.revoked_at.is_(None))
    ).scalar_one_or_none()


def _revoke_live(user: User) -> bool:
    feed = live_feed(user)
    if feed is None:
        return False
    feed.revoked_at = now_utc()
    db.session.flush()  # the partial unique index allows one live feed: revoke before adding the next
    return True


def create_calendar_feed(user: User) -> str:
    """Make a new secret feed URL token for the person (the previous one stops working); returns the token."""
    replaced = _revoke_live(user)
    token = secrets.token_urlsafe(32)
    db.session.add(CalendarFeed(user_id=user.id, token_hash=feed_token_hash(token), created_at=now_utc()))
    db.session.flush()
    record("reminders.calendar_feed", f"{user.display_name} {'重新生成' if replaced else '生成'}了日历订阅链接",
           actor=user, organization_id=user.organization_id, target=user)
    return token


def revoke_calendar_feed(user: User) -> bool:
    """Stop the person's calendar feed; False when there was none."""
    if not _revoke_live(user):
        return False
    record("reminders.calendar_feed_revoked", f"{user.display_name} 停用了日历订阅链接", actor=user,
           organization_id=user.organization_id, target=user)
    return True


def feed_owner(token: str) -> Optional[User]:
    """The active user whose live feed has this token, else None (unknown, revoked, or deactivated)."""
    if not token or len(token) > 100:
        return None
    feed = db.session.execute(
        sa.select(CalendarFeed).where(CalendarFeed.token_hash == feed_token_hash(token), CalendarFeed.revoked_at.is_(None))
    ).scalar_one_or_none()
    if feed is None or not feed.user.is_active_account:
        return None
    return feed.user
