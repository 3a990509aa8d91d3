"""Reminders as rows: the in-app notification centre, one delivery record per channel, preferences, feeds.

A reminder is "sent once" because every occurrence has a unique key (rule × subject × recipient ×
occurrence, e.g. ``upcoming:activity:12:user:5:2026-11-19``): the sweep inserts a Notification and its
Delivery rows with INSERT … ON CONFLICT DO NOTHING, so a second sweeper, a re-run after a crash or a
catch-up after downtime cannot create a second one. E-mail deliveries are claimed with a conditional
UPDATE before sending, so two sweepers never send the same e-mail.
"""
from __future__ import annotations

import enum
from datetime import datetime, time
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.db import UTCDateTime, enum_column, now_utc
from coop.extensions import db
from coop.i18n import N_

if TYPE_CHECKING:
    from coop.auth.models import User


class ReminderKind(enum.Enum):
    activity_upcoming = "activity_upcoming"
    confirmation_pending = "confirmation_pending"
    confirmation_overdue = "confirmation_overdue"  # escalation to the secretary, then the reviewer
    agreement_inactive = "agreement_inactive"
    commitment_behind = "commitment_behind"
    signature_pending = "signature_pending"
    signature_overdue = "signature_overdue"  # follow-up to the secretary, then the reviewer
    agreement_expiring = "agreement_expiring"
    report_ready = "report_ready"

    @property
    def label(self) -> str:
        """The Chinese name (stored notices, the API)."""
        return KIND_LABELS[self]

    @property
    def ui_label(self) -> str:
        """The name in the interface language (screens, e-mails)."""
        return gettext(KIND_LABELS[self])


KIND_LABELS = {
    ReminderKind.activity_upcoming: N_("活动即将开展"),
    ReminderKind.confirmation_pending: N_("伙伴登记的活动待确认"),
    ReminderKind.confirmation_overdue: N_("活动逾期未确认（督办）"),
    ReminderKind.agreement_inactive: N_("协议长期未开展活动"),
    ReminderKind.commitment_behind: N_("约定进度滞后"),
    ReminderKind.signature_pending: N_("协议待本组织签署"),
    ReminderKind.signature_overdue: N_("协议逾期未签署（督办）"),
    ReminderKind.agreement_expiring: N_("协议即将到期"),
    ReminderKind.report_ready: N_("月度报告已生成"),
}

# Kinds a person can never switch off for their own organization (the issue: "a signature for your
# organization"). Whether a given notice is mandatory is decided per occurrence (Notification.mandatory):
# a reviewer hearing about another party's missing signature may switch that off.
MANDATORY_KINDS = frozenset({ReminderKind.signature_pending, ReminderKind.signature_overdue})


class EmailMode(enum.Enum):
    immediate = "immediate"
    daily = "daily"
    weekly = "weekly"
    off = "off"

    @property
    def label(self) -> str:
        """The Chinese name (audit summaries)."""
        return EMAIL_MODE_LABELS[self]

    @property
    def ui_label(self) -> str:
        """The name in the interface language (the settings form)."""
        return gettext(EMAIL_MODE_LABELS[self])


EMAIL_MODE_LABELS = {
    EmailMode.immediate: N_("立即发送"),
    EmailMode.daily: N_("每日摘要"),
    EmailMode.weekly: N_("每周摘要（周一）"),
    EmailMode.off: N_("不发邮件（必需的通知除外）"),
}


class DeliveryChannel(enum.Enum):
    in_app = "in_app"
    email = "email"


class DeliveryStatus(enum.Enum):
    pending = "pending"  # e-mail waiting for its time (immediate, digest, end of quiet hours)
    sent = "sent"
    failed = "failed"  # gave up after REMINDER_MAX_ATTEMPTS
    skipped = "skipped"  # no longer relevant, or the person switched e-mail off before it went

    @property
    def label(self) -> str:
        return {"pending": "待发送", "sent": "已发送", "failed": "发送失败", "skipped": "未发送"}[self.value]


class Notification(db.Model):
    """One notice in a person's notification centre."""

    __tablename__ = "notifications"
    __table_args__ = (
        # dedupe_key first: the sweep looks keys up without the user (the key already names the person).
        sa.UniqueConstraint("dedupe_key", "user_id"),
        # The unread badge on every page: COUNT(*) WHERE user_id = ? AND read_at IS NULL.
        sa.Index("ix_notifications_user_read", "user_id", "read_at"),
        sa.Index("ix_notifications_user_created", "user_id", "created_at"),
        # Escalation asks "when was this item first notified at level n?"
        sa.Index("ix_notifications_item_level", "item_key", "level"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False)
    kind: Mapped[ReminderKind] = enum_column(ReminderKind, name="reminder_kind", nullable=False)
    # The thing reminded about, without the recipient (e.g. "confirm:activity:12:org:3"); level 0 is the
    # first reminder, 1 the secretary, 2 the committee reviewer.
    item_key: Mapped[str] = mapped_column(sa.String(160), nullable=False)
    level: Mapped[int] = mapped_column(nullable=False, default=0)
    dedupe_key: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    mandatory: Mapped[bool] = mapped_column(nullable=False, default=False)
    title: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    body: Mapped[str] = mapped_column(sa.Text, nullable=False, default="")
    link: Mapped[Optional[str]] = mapped_column(sa.String(400))  # a path inside the site, e.g. /activities/12
    agreement_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("agreements.id", ondelete="SET NULL"))
    activity_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("activities.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    read_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    user: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<Notification {self.id} user={self.user_id} {self.kind.value} {self.dedupe_key!r}>"

    @property
    def is_read(self) -> bool:
        return self.read_at is not None


class Delivery(db.Model):
    """The record that a notice went (or is to go) through one channel; its unique key makes it once-only."""

    __tablename__ = "reminder_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("key", "channel"),
        # The sender's question on every sweep: pending e-mails, per person.
        sa.Index("ix_reminder_deliveries_queue", "channel", "status", "user_id"),
        sa.Index("ix_reminder_deliveries_claim", "claim_token"),
        sa.CheckConstraint("attempts >= 0", name="attempts_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), nullable=False)  # = Notification.dedupe_key
    channel: Mapped[DeliveryChannel] = enum_column(DeliveryChannel, name="delivery_channel", nullable=False)
    kind: Mapped[ReminderKind] = enum_column(ReminderKind, name="reminder_kind", nullable=False)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False)
    notification_id: Mapped[Optional[int]] = mapped_column(
        sa.ForeignKey("notifications.id", ondelete="CASCADE"), index=True
    )
    mandatory: Mapped[bool] = mapped_column(nullable=False, default=False)
    status: Mapped[DeliveryStatus] = enum_column(
        DeliveryStatus, name="delivery_status", nullable=False, default=DeliveryStatus.pending
    )
    attempts: Mapped[int] = mapped_column(nullable=False, default=0)
    last_error: Mapped[Optional[str]] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    # After this moment the notice is stale (the activity already took place…) and is not e-mailed.
    expires_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    # A sender owns a row from claimed_at for REMINDER_CLAIM_LEASE_MINUTES; a crashed sender's rows
    # are picked up by the next sweep once the lease has run out.
    claimed_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    claim_token: Mapped[Optional[str]] = mapped_column(sa.String(32))
    sent_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    message_id: Mapped[Optional[str]] = mapped_column(sa.String(250))  # the e-mail (digest) it went in

    notification: Mapped[Optional[Notification]] = relationship()
    user: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<Delivery {self.id} {self.channel.value} {self.status.value} {self.key!r}>"


class NotificationPreference(db.Model):
    """How a person wants e-mail: mode, quiet hours, kinds switched off. No row means the site defaults."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    email_mode: Mapped[EmailMode] = enum_column(
        EmailMode, name="email_mode", nullable=False, default=EmailMode.daily
    )
    # Local (Asia/Shanghai) wall-clock times; start > end wraps midnight (22:00–07:00). Both NULL: none.
    quiet_start: Mapped[Optional[time]] = mapped_column()
    quiet_end: Mapped[Optional[time]] = mapped_column()
    disabled_kinds: Mapped[list[str]] = mapped_column(sa.JSON, nullable=False, default=list)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, onupdate=now_utc, nullable=False)

    user: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<NotificationPreference user={self.user_id} {self.email_mode.value}>"


class CalendarFeed(db.Model):
    """A secret iCalendar URL; only the token's SHA-256 is stored, so a leaked database leaks no feed."""

    __tablename__ = "calendar_feeds"
    __table_args__ = (
        # At most one live feed per person; revoked ones stay as history.
        sa.Index(
            "uq_calendar_feeds_live_user", "user_id", unique=True,
            sqlite_where=sa.text("revoked_at IS NULL"), postgresql_where=sa.text("revoked_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False, index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    user: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<CalendarFeed {self.id} user={self.user_id} revoked={self.revoked_at is not None}>"
