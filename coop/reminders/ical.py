"""A personal iCalendar feed: planned activities, signature deadlines and agreement end dates.

Phones and desktop calendars subscribe to /calendar/<token>.ics and poll it. Timed events carry
TZID=Asia/Shanghai with the matching VTIMEZONE; whole-day items are DATE values. UIDs are derived from
row ids, so an event moved to another day updates in the subscriber's calendar instead of duplicating.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Optional
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from icalendar import Calendar, Event
from sqlalchemy.orm import selectinload

from agreements.models import Agreement, AgreementLiaison, AgreementParty, AgreementStatus
from coop.activities.models import Activity, ActivityAgreement, ActivityOrganization, ActivityStatus
from coop.auth.models import User
from coop.categories import category_name
from coop.extensions import db
from coop.reminders.delivery import absolute_url
from coop.reminders.rules import local_zone, setting, site_path

ACTIVITY_HISTORY_DAYS = 180  # past activities stay in the calendar this long
AGREEMENT_HISTORY_DAYS = 365
DEFAULT_DURATION = timedelta(hours=2)


def _host() -> str:
    return urlsplit(current_app.config["BASE_URL"]).hostname or "localhost"


def _agreement_ids(user: User) -> set[int]:
    stmt = sa.select(AgreementLiaison.agreement_id).where(AgreementLiaison.user_id == user.id)
    if user.organization_id is not None:
        stmt = sa.union(stmt, sa.select(AgreementParty.agreement_id).where(AgreementParty.organization_id == user.organization_id))
    return set(db.session.execute(stmt).scalars())


def _event(uid: str, summary: str, now: datetime, *, url: str, description: str = "") -> Event:
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", now.astimezone(timezone.utc))
    event.add("summary", summary)
    if description:
        event.add("description", description)
    event.add("url", url)
    return event


def _whole_day(event: Event, day: date) -> None:
    event.add("dtstart", day)
    event.add("dtend", day + timedelta(days=1))
    event.add("transp", "TRANSPARENT")  # a deadline does not make the person busy


def _activity_events(user: User, agreement_ids: set[int], today: date, now: datetime) -> list[Event]:
    conditions = []
    if agreement_ids:
        conditions.append(Activity.id.in_(
            sa.select(ActivityAgreement.activity_id).where(ActivityAgreement.agreement_id.in_(agreement_ids))
        ))
    if user.organization_id is not None:
        conditions.append(Activity.id.in_(
            sa.select(ActivityOrganization.activity_id).where(ActivityOrganization.organization_id == user.organization_id)
        ))
    if not conditions:
        return []
    activities = db.session.execute(
        sa.select(Activity)
        .where(
            sa.or_(*conditions),
            Activity.status.in_([ActivityStatus.planned, ActivityStatus.held]),
            Activity.held_on >= today - timedelta(days=ACTIVITY_HISTORY_DAYS),
        )
        .options(selectinload(Activity.participants).selectinload(ActivityOrganization.organization))
        .order_by(Activity.held_on, Activity.id)
    ).scalars()
    zone = local_zone()
    events = []
    for a in activities:
        prefix = "" if a.status is ActivityStatus.planned else "（已开展）"
        orgs = "、".join(p.organization.name for p in a.participants)
        description = f"{category_name(a.category)}｜参加单位：{orgs}" + (f"\n{a.summary}" if a.summary else "")
        event = _event(f"coop-activity-{a.id}@{_host()}", f"{prefix}{a.title}", now,
                       url=absolute_url(site_path("activity", a.id)), description=description)
        if a.start_time is not None:
            start = datetime.combine(a.held_on, a.start_time, tzinfo=zone)
            end = datetime.combine(a.held_on, a.end_time, tzinfo=zone) if a.end_time and a.end_time > a.start_time else start + DEFAULT_DURATION
            event.add("dtstart", start)
            event.add("dtend", end)
        else:
            event.add("dtstart", a.held_on)
            event.add("dtend", a.held_on + timedelta(days=1))
        if a.place:
            event.add("location", a.place)
        event.add("status", "CONFIRMED")
        events.append(event)
    return events


def _agreement_events(agreement_ids: set[int], today: date, now: datetime) -> list[Event]:
    if not agreement_ids:
        return []
    agreements = db.session.execute(
        sa.select(Agreement).where(
            Agreement.id.in_(agreement_ids),
            Agreement.status.in_([AgreementStatus.signing, AgreementStatus.active, AgreementStatus.expired]),
            Agreement.ends_on >= today - timedelta(days=AGREEMENT_HISTORY_DAYS),
        ).order_by(Agreement.ends_on, Agreement.id)
    ).scalars()
    events = []
    for a in agreements:
        event = _event(f"coop-agreement-{a.id}-end@{_host()}", f"协议到期：{a.title}", now,
                       url=absolute_url(site_path("agreement", a.id)),
                       description=f"协议“{a.title}”的期限至{a.ends_on.year}年{a.ends_on.month}月{a.ends_on.day}日。如需继续共建，请提前商议续签。")
        _whole_day(event, a.ends_on)
        events.append(event)
    return events


def _signature_events(user: User, now: datetime) -> list[Event]:
    """Deadlines for signatures the person's organization owes (after it, the reviewers are told)."""
    if user.organization_id is None:
        return []
    try:
        from agreements.queries import awaiting_signature
    except ModuleNotFoundError as exc:
        if exc.name != "agreements.queries":
            raise
        return []
    zone = local_zone()
    grace = timedelta(days=int(setting("REMINDER_ESCALATE_SECRETARY_DAYS")))
    events = []
    for agreement, org_id, since in awaiting_signature(org_id=user.organization_id):
        if org_id != user.organization_id:
            continue
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        due = (since + grace).astimezone(zone).date()
        event = _event(f"coop-agreement-{agreement.id}-sign-{org_id}@{_host()}", f"签署期限：{agreement.title}", now,
                       url=absolute_url(site_path("agreement", agreement.id)),
                       description=f"协议“{agreement.title}”等待本组织签署，请在此日期前完成，逾期将提醒上级党委。")
        _whole_day(event, due)
        events.append(event)
    return events


def build_calendar(user: User, now: Optional[datetime] = None) -> bytes:
    """The person's feed as iCalendar bytes (RFC 5545)."""
    now = now or datetime.now(timezone.utc)
    today = now.astimezone(local_zone()).date()
    agreement_ids = _agreement_ids(user)
    cal = Calendar()
    cal.add("prodid", "-//党建共建平台//coop reminders//ZH")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"党建共建 · {user.display_name}")
    cal.add("x-wr-caldesc", "结对共建活动、签署期限和协议到期日")
    cal.add("x-wr-timezone", local_zone().key)
    # Ask subscribers to refresh hourly (Apple / Google honour one or the other).
    cal.add("refresh-interval", timedelta(hours=1), parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    events = _activity_events(user, agreement_ids, today, now) + _agreement_events(agreement_ids, today, now)
    events += _signature_events(user, now)
    for event in events:
        cal.add_component(event)
    cal.add_missing_timezones(first_date=today - timedelta(days=ACTIVITY_HISTORY_DAYS + 1), last_date=today + timedelta(days=3 * 366))
    return cal.to_ical()
