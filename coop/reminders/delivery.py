"""E-mail for reminders: whose mail is due now (immediate, digest, quiet hours), claiming it, sending it.

The once-only guarantee for e-mail rests on the claim: a sender marks the rows it is about to send with
`UPDATE … WHERE status = 'pending' AND (claimed_at IS NULL OR claimed_at < now − lease)` and commits
before talking to the mail server. Two sweepers therefore never send the same row; a sweeper killed
after claiming leaves rows that the next sweep takes over once the lease has run out; a sweeper killed
before claiming leaves them pending for the next sweep. (A sender killed *between* the SMTP hand-over
and recording "sent" can cause one resend after the lease — the unavoidable at-least-once corner.)
"""
from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Iterable, Optional

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import selectinload

from coop.auth.models import User
from coop.extensions import db
from coop.formatting import ui_date
from coop.i18n import N_, ui_force_locale
from coop.mail import MailSettings, build_message, format_address, send_messages
from coop.reminders.models import (
    Delivery,
    DeliveryChannel,
    DeliveryStatus,
    EmailMode,
    NotificationPreference,
    ReminderKind,
)
from coop.reminders.rules import endpoint_path, local_zone, setting

logger = logging.getLogger(__name__)

SUBJECT_PREFIX = N_("【党建共建】")  # e-mails are written in the recipient's language (User.locale)
UNSUBSCRIBE_ALL = "*"


# --- preferences -----------------------------------------------------------------------------------------


def _parse_quiet(text: str) -> tuple[Optional[time], Optional[time]]:
    if not text or "-" not in text:
        return None, None
    start, end = (time.fromisoformat(p.strip()) for p in text.split("-", 1))
    return start, end


@dataclass(frozen=True)
class EffectivePreferences:
    """A person's e-mail preferences with the site defaults filled in."""

    mode: EmailMode
    quiet_start: Optional[time]
    quiet_end: Optional[time]
    disabled_kinds: frozenset[str] = frozenset()
    stored: bool = False  # False: nobody chose, these are the defaults

    def in_quiet_hours(self, local: datetime) -> bool:
        """True when the local wall-clock time lies inside the quiet hours (which may wrap midnight)."""
        if self.quiet_start is None or self.quiet_end is None or self.quiet_start == self.quiet_end:
            return False
        t = local.timetz().replace(tzinfo=None)
        if self.quiet_start < self.quiet_end:
            return self.quiet_start <= t < self.quiet_end
        return t >= self.quiet_start or t < self.quiet_end

    def wants_email(self, kind: ReminderKind, mandatory: bool) -> bool:
        """Mandatory notices always go by e-mail; others unless e-mail is off or the kind is switched off."""
        if mandatory:
            return True
        return self.mode is not EmailMode.off and kind.value not in self.disabled_kinds


def default_preferences() -> EffectivePreferences:
    """The preferences of someone who never chose (REMINDER_DEFAULT_EMAIL_MODE / _QUIET_HOURS)."""
    start, end = _parse_quiet(setting("REMINDER_DEFAULT_QUIET_HOURS"))
    return EffectivePreferences(EmailMode(setting("REMINDER_DEFAULT_EMAIL_MODE")), start, end)


def _effective(row: Optional[NotificationPreference], default: EffectivePreferences) -> EffectivePreferences:
    if row is None:
        return default
    return EffectivePreferences(row.email_mode, row.quiet_start, row.quiet_end, frozenset(row.disabled_kinds or ()), True)


def preferences_for(user_ids: Iterable[int]) -> dict[int, EffectivePreferences]:
    """Effective preferences for many people in one query."""
    ids = sorted(set(user_ids))
    default = default_preferences()
    rows: dict[int, NotificationPreference] = {}
    for i in range(0, len(ids), 500):
        for row in db.session.execute(
            sa.select(NotificationPreference).where(NotificationPreference.user_id.in_(ids[i : i + 500]))
        ).scalars():
            rows[row.user_id] = row
    return {uid: _effective(rows.get(uid), default) for uid in ids}


def effective_preferences(user: User) -> EffectivePreferences:
    """One person's effective preferences."""
    return preferences_for([user.id])[user.id]


def last_digest_slot(local_now: datetime, mode: EmailMode) -> datetime:
    """The latest digest time at or before `local_now` (today's or yesterday's hour; weekly: the last Monday)."""
    hour = int(setting("REMINDER_DIGEST_HOUR"))
    slot = local_now.replace(hour=hour, minute=0, second=0, microsecond=0)
    if slot > local_now:
        slot -= timedelta(days=1)
    if mode is EmailMode.weekly:
        weekday = int(setting("REMINDER_DIGEST_WEEKDAY"))
        slot -= timedelta(days=(slot.weekday() - weekday) % 7)
    # Rebuild from the wall clock so a DST zone keeps the digest at the configured hour.
    return datetime.combine(slot.date(), time(hour), tzinfo=local_now.tzinfo)


# --- links and unsubscribe tokens ----------------------------------------------------------------------


def absolute_url(path: Optional[str]) -> str:
    """BASE_URL + a site path (notices store paths, e-mails need full links)."""
    base = current_app.config["BASE_URL"].rstrip("/")
    if not path:
        return base + "/"
    return base + (path if path.startswith("/") else "/" + path)


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="coop.reminders.unsubscribe")


def unsubscribe_token(user_id: int, scope: str) -> str:
    """A signed token for "stop e-mails of `scope`" (a kind value, or "*" for every optional e-mail)."""
    return _serializer().dumps([user_id, scope])


def parse_unsubscribe_token(token: str) -> Optional[tuple[int, str]]:
    """(user_id, scope) from a token, or None when it was not made here."""
    try:
        user_id, scope = _serializer().loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    if not isinstance(user_id, int) or not isinstance(scope, str):
        return None
    if scope != UNSUBSCRIBE_ALL and scope not in {k.value for k in ReminderKind}:
        return None
    return user_id, scope


def unsubscribe_url(user_id: int, scope: str) -> str:
    """The absolute unsubscribe link (its GET page asks; only a POST changes anything)."""
    token = unsubscribe_token(user_id, scope)
    return absolute_url(endpoint_path("reminders.unsubscribe", f"/notifications/unsubscribe/{token}", token=token))


# --- sending ---------------------------------------------------------------------------------------------


@dataclass
class SentEmail:
    """One e-mail handed to the mail server (or the outbox), or a failed attempt."""

    at: datetime
    user_id: int
    recipient: str
    subject: str
    kinds: list[str]
    keys: list[str]
    digest: bool
    ok: bool
    error: Optional[str] = None


@dataclass
class _Planned:
    user: User
    delivery_ids: list[int]
    digest_mode: Optional[EmailMode]  # daily/weekly when this is that digest, else None


@dataclass
class _Message:
    user_id: int
    recipient: str
    delivery_ids: list[int]
    subject: str
    kinds: list[str]
    keys: list[str]
    digest: bool
    message: object = field(repr=False, default=None)


def _claim_free(now: datetime):
    lease = timedelta(minutes=int(setting("REMINDER_CLAIM_LEASE_MINUTES")))
    return sa.or_(Delivery.claimed_at.is_(None), Delivery.claimed_at < now - lease)


def _skip(ids: list[int], reason: str, now: datetime) -> int:
    """Mark unclaimed pending e-mails as skipped; returns how many this call changed."""
    ids = sorted(ids)  # the same lock order in every sweeper
    done = 0
    for i in range(0, len(ids), 500):
        result = db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(ids[i : i + 500]), Delivery.status == DeliveryStatus.pending, _claim_free(now))
            .values(status=DeliveryStatus.skipped, last_error=reason)
            .execution_options(synchronize_session=False)
        )
        done += result.rowcount or 0
    return done


def retire_pending(relevant_keys: set[str], evaluated_kinds: set[ReminderKind], now: datetime) -> int:
    """Skip pending e-mails that went stale (past expires_at) or whose reminder is no longer due.

    Only kinds whose rule ran in this sweep are judged on relevance: a skipped rule proves nothing.
    """
    rows = db.session.execute(
        sa.select(Delivery.id, Delivery.key, Delivery.kind, Delivery.expires_at).where(
            Delivery.channel == DeliveryChannel.email, Delivery.status == DeliveryStatus.pending, _claim_free(now)
        )
    ).all()
    stale = {r.id for r in rows if r.expires_at is not None and r.expires_at <= now}
    resolved = [
        r.id for r in rows if r.id not in stale and r.kind in evaluated_kinds and r.key not in relevant_keys
    ]
    return _skip(list(stale), "已过时，不再发送", now) + _skip(resolved, "提醒的事项已处理，不再发送", now)


def _plan(now: datetime) -> list[_Planned]:
    """Decide, per person, which pending e-mails go now; skip those preferences no longer want."""
    rows = db.session.execute(
        sa.select(
            Delivery.id, Delivery.user_id, Delivery.kind, Delivery.mandatory, Delivery.created_at, Delivery.expires_at
        )
        .where(Delivery.channel == DeliveryChannel.email, Delivery.status == DeliveryStatus.pending, _claim_free(now))
        .order_by(Delivery.user_id, Delivery.id)
    ).all()
    if not rows:
        return []
    by_user: dict[int, list] = defaultdict(list)
    for r in rows:
        by_user[r.user_id].append(r)
    users = {
        u.id: u for u in db.session.execute(sa.select(User).where(User.id.in_(list(by_user)))).scalars()
    }
    prefs = preferences_for(by_user)
    zone = local_zone()
    local_now = now.astimezone(zone)
    planned: list[_Planned] = []
    unwanted: list[int] = []
    unreachable: list[int] = []
    for user_id, user_rows in by_user.items():
        user = users.get(user_id)
        if user is None or not user.is_active_account or not user.email:
            unreachable.extend(r.id for r in user_rows)
            continue
        p = prefs[user_id]
        live = [r for r in user_rows if r.expires_at is None or r.expires_at > now]
        wanted = []
        for r in live:
            if p.wants_email(r.kind, r.mandatory):
                wanted.append(r)
            else:
                unwanted.append(r.id)
        if not wanted or p.in_quiet_hours(local_now):
            continue  # inside quiet hours everything waits, mandatory notices too (they go when it ends)
        mandatory = [r for r in wanted if r.mandatory]
        optional = [r for r in wanted if not r.mandatory]
        digest_mode = None
        if optional and p.mode in (EmailMode.daily, EmailMode.weekly):
            slot = last_digest_slot(local_now, p.mode)
            if any(r.created_at.astimezone(zone) <= slot for r in optional):
                digest_mode = p.mode
            else:
                optional = []  # waits for the next digest
        batch = mandatory + optional
        if batch:
            planned.append(_Planned(user, [r.id for r in batch], digest_mode))
    _skip(unwanted, "收件人已关闭此类邮件", now)
    _skip(unreachable, "收件人没有邮箱或账号已停用", now)
    return planned


def _claim(ids: list[int], token: str, now: datetime) -> set[int]:
    """Atomically take pending, unclaimed rows; returns the ids this sender now owns."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    ids = sorted(ids)
    for i in range(0, len(ids), 500):
        chunk = ids[i : i + 500]
        if postgres:
            # Lock in id order: a concurrent sender waits on the first shared row, then re-checks the
            # condition and finds the rows taken — so one person's digest is never split between senders.
            chunk = list(db.session.execute(
                sa.select(Delivery.id)
                .where(Delivery.id.in_(chunk), Delivery.status == DeliveryStatus.pending, _claim_free(now))
                .order_by(Delivery.id)
                .with_for_update()
            ).scalars())
            if not chunk:
                continue
        db.session.execute(
            sa.update(Delivery)
            .where(Delivery.id.in_(chunk), Delivery.status == DeliveryStatus.pending, _claim_free(now))
            .values(claimed_at=now, claim_token=token, attempts=Delivery.attempts + 1)
            .execution_options(synchronize_session=False)
        )
    return set(db.session.execute(
        sa.select(Delivery.id).where(Delivery.claim_token == token, Delivery.status == DeliveryStatus.pending)
    ).scalars())


def _item(delivery: Delivery) -> dict:
    n = delivery.notification
    return {
        "title": n.title if n else delivery.kind.ui_label,
        "body": n.body if n else "",
        "url": absolute_url(n.link if n else None),
        "kind": delivery.kind.value,
        "kind_label": delivery.kind.ui_label,
        "created_at": n.created_at if n else delivery.created_at,
        "mandatory": delivery.mandatory,
        "level": n.level if n else 0,
    }


def _recipient_locale(user: User) -> str:
    """The language the person chose for the interface (their e-mails follow it), else the platform's."""
    locales = current_app.config["LOCALES"]
    return user.locale if user.locale in locales else current_app.config["DEFAULT_LOCALE"]


def _compose(user: User, deliveries: list[Delivery], digest_mode: Optional[EmailMode], now: datetime) -> list[_Message]:
    """Turn one person's claimed rows into e-mails in their language (the notices' own titles and texts stay
    as stored): a digest, single notices, or one catch-up summary."""
    with ui_force_locale(_recipient_locale(user)):
        return _compose_in_locale(user, deliveries, digest_mode, now)


def _compose_in_locale(user: User, deliveries: list[Delivery], digest_mode: Optional[EmailMode],
                       now: datetime) -> list[_Message]:
    prefs_url = absolute_url(endpoint_path("auth.profile", "/profile") + "#notification-settings")
    centre_url = absolute_url(endpoint_path("reminders.index", "/notifications"))
    local_now = now.astimezone(local_zone())
    recipient = format_address(user.display_name, user.email)
    messages = []

    def summary(rows: list[Delivery], heading: str, subject: str, digest: bool) -> _Message:
        items = [_item(d) for d in rows]
        optional = any(not d.mandatory for d in rows)
        unsub = unsubscribe_url(user.id, UNSUBSCRIBE_ALL) if optional else None
        ctx = dict(user=user, items=items, heading=heading, prefs_url=prefs_url, centre_url=centre_url,
                   unsubscribe_url=unsub, today=ui_date(local_now.date()))
        return _Message(user.id, recipient, [d.id for d in rows], subject, sorted({d.kind.value for d in rows}),
                        [d.key for d in rows], digest, _build(recipient, subject, "emails/digest", ctx, unsub))

    if digest_mode is not None:
        today, count = ui_date(local_now.date()), len(deliveries)
        if digest_mode is EmailMode.daily:
            heading = _("每日提醒摘要（%(date)s）", date=today)
            subject = _("每日提醒摘要：%(n)s条待办", n=count)
        else:
            heading = _("每周提醒摘要（%(date)s）", date=today)
            subject = _("每周提醒摘要：%(n)s条待办", n=count)
        messages.append(summary(deliveries, heading, _(SUBJECT_PREFIX) + subject, True))
        return messages
    if len(deliveries) > int(setting("REMINDER_IMMEDIATE_MAX")):
        # Many at once (after downtime, or when quiet hours end): one summary, not a flood.
        heading = _("您有%(n)s条新的提醒", n=len(deliveries))
        messages.append(summary(deliveries, heading, _(SUBJECT_PREFIX) + heading, False))
        return messages
    for d in deliveries:
        item = _item(d)
        unsub = None if d.mandatory else unsubscribe_url(user.id, d.kind.value)
        subject = _(SUBJECT_PREFIX) + item["title"]
        ctx = dict(user=user, item=item, prefs_url=prefs_url, centre_url=centre_url, unsubscribe_url=unsub)
        messages.append(_Message(user.id, recipient, [d.id], subject, [d.kind.value], [d.key], False,
                                 _build(recipient, subject, "emails/reminder", ctx, unsub)))
    return messages


def _build(recipient: str, subject: str, template: str, ctx: dict, unsub: Optional[str]):
    # Straight from the Jinja environment: e-mails are rendered by the sweep, outside any request, and
    # must not run the page context processors (navigation, current user) that assume one.
    env = current_app.jinja_env
    text = env.get_template(f"{template}.txt").render(**ctx)
    html = env.get_template(f"{template}.html").render(**ctx)
    message = build_message(
        recipient, subject, text, html,
        headers={"Auto-Submitted": "auto-generated", "X-Auto-Response-Suppress": "All"},
        unsubscribe_url=unsub,
    )
    if unsub:
        # The stdlib folds a header line longer than 78 characters that has no space in it by turning it
        # into RFC 2047 encoded-words — and mail clients then cannot read the unsubscribe URL (no
        # one-click button). Store it raw and tell the generator not to refold raw values; every other
        # header is a parsed header object and is folded as usual.
        del message["List-Unsubscribe"]
        message.set_raw("List-Unsubscribe", f"<{unsub}>")
        message.policy = message.policy.clone(refold_source="none")
    return message


def _release(ids: list[int], token: str, error: str) -> None:
    """Give claimed rows back after a failure: pending again (retried next sweep) or failed for good."""
    max_attempts = int(setting("REMINDER_MAX_ATTEMPTS"))
    db.session.execute(
        sa.update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.claim_token == token)
        .values(
            status=sa.case((Delivery.attempts >= max_attempts, DeliveryStatus.failed.value), else_=DeliveryStatus.pending.value),
            claimed_at=None, claim_token=None, last_error=error[:2000],
        )
        .execution_options(synchronize_session=False)
    )


def send_pending_emails(now: datetime) -> list[SentEmail]:
    """Send every e-mail due at `now`; commits its claims and results (call it outside any transaction)."""
    planned = _plan(now)
    if not planned:
        db.session.commit()  # keeps the skips _plan made
        return []
    token = uuid.uuid4().hex
    owned = _claim([i for p in planned for i in p.delivery_ids], token, now)
    db.session.commit()  # the claim is durable before any e-mail leaves
    if not owned:
        return []

    messages: list[_Message] = []
    for p in planned:
        ids = [i for i in p.delivery_ids if i in owned]
        if not ids:
            continue
        deliveries = list(db.session.execute(
            sa.select(Delivery).where(Delivery.id.in_(ids)).order_by(Delivery.created_at, Delivery.id)
            .options(selectinload(Delivery.notification))
        ).scalars())
        # A digest only makes sense with what this sender owns; if it owns none of the optional rows,
        # what is left are mandatory notices, sent singly.
        digest_mode = p.digest_mode if any(not d.mandatory for d in deliveries) else None
        try:
            messages.extend(_compose(p.user, deliveries, digest_mode, now))
        except Exception as exc:  # a broken template for one person must not stop everyone's mail
            logger.exception("could not compose reminder e-mail for user %s", p.user.id)
            _release(ids, token, f"邮件生成失败：{type(exc).__name__}: {exc}")
    # Nothing may hold a database transaction (SQLite: the write lock) while we talk to the mail server.
    db.session.commit()

    results = send_messages(MailSettings.from_config(current_app.config), [m.message for m in messages])

    sent: list[SentEmail] = []
    for m, result in zip(messages, results):
        if result.ok:
            db.session.execute(
                sa.update(Delivery)
                .where(Delivery.id.in_(m.delivery_ids), Delivery.claim_token == token)
                .values(status=DeliveryStatus.sent, sent_at=now, message_id=result.message_id[:250], last_error=None)
                .execution_options(synchronize_session=False)
            )
        else:
            _release(m.delivery_ids, token, result.error or "发送失败")
        sent.append(SentEmail(now, m.user_id, m.recipient, m.subject, m.kinds, m.keys, m.digest, result.ok, result.error))
    db.session.commit()
    return sent
