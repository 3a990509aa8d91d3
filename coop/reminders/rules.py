"""What is due, computed from the data: each rule turns the current state into reminder occurrences.

A rule never remembers anything. It answers "which reminders are relevant *now*?", and each answer
carries a key naming the occurrence (rule × subject × recipient × occurrence). The sweep inserts what is
new and ignores what exists, so running the rules every 15 minutes, twice at once, or after a day of
downtime gives each reminder exactly once — and a reminder that stopped being relevant while the machine
was off (an activity already past) is simply not among the answers: no flood of stale notices.

Escalation is a chain of levels for one item (a confirmation not given, a signature not made):
level 0 to the people who must act, level 1 to the party's secretary, level 2 to the committee
reviewers overseeing the party. A level becomes due only a set number of days after the previous level
was actually notified, so nobody's first message about an item is an escalation.

Every number is configurable (see REMINDER_DEFAULTS); dates are local (TIMEZONE, Asia/Shanghai).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Callable, Iterable, Optional
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload
from werkzeug.routing import BuildError

from agreements.models import Agreement, AgreementStatus
from coop.activities.models import (
    Activity,
    ActivityAgreement,
    ActivityConfirmation,
    ActivityStatus,
    ConfirmationState,
)
from coop.auth.models import Role, User, UserRole
from coop.categories import category_name
from coop.config import REMINDER_DEFAULTS
from coop.extensions import db
from coop.formatting import cn_date
from coop.orgs.models import Organization
from coop.reminders.models import Notification, ReminderKind

logger = logging.getLogger(__name__)

# Defaults for every reminder setting; the site may override any of them in instance/config.py or via
# COOP_<KEY> environment variables (read through `setting`).


def setting(key: str):
    """A reminder setting from the app config, else its default."""
    return current_app.config.get(key, REMINDER_DEFAULTS[key])


def local_zone() -> ZoneInfo:
    """The zone reminder dates are computed in."""
    return ZoneInfo(current_app.config.get("TIMEZONE") or "Asia/Shanghai")


class RuleUnavailable(Exception):
    """A rule's data source (another domain's module) is not installed yet; the rule is skipped."""


@dataclass(frozen=True)
class Occurrence:
    """One reminder for one person, identified by its key."""

    kind: ReminderKind
    item_key: str  # the thing, without recipient: "confirm:activity:12:org:3"
    user_id: int
    title: str
    body: str
    link: Optional[str]
    occurrence: str = ""  # what makes a repeat a new reminder: a date, a month, a count
    level: int = 0
    agreement_id: Optional[int] = None
    activity_id: Optional[int] = None
    mandatory: bool = False
    expires_at: Optional[datetime] = None

    @property
    def key(self) -> str:
        """rule × subject × recipient × occurrence, e.g. upcoming:activity:12:user:5:2026-11-19."""
        key = self.item_key + (f":level:{self.level}" if self.level else "") + f":user:{self.user_id}"
        return key + (f":{self.occurrence}" if self.occurrence else "")


@dataclass
class DuePlan:
    """Everything relevant now, and which kinds were fully evaluated (a skipped rule proves nothing)."""

    occurrences: list[Occurrence] = field(default_factory=list)
    evaluated_kinds: set[ReminderKind] = field(default_factory=set)
    skipped_rules: dict[str, str] = field(default_factory=dict)  # rule name -> reason

    @property
    def keys(self) -> set[str]:
        """Every occurrence key in the plan."""
        return {o.key for o in self.occurrences}


# --- links ---------------------------------------------------------------------------------------------

# Where a notice points: (endpoint, URL values) tried in order, then a conventional path. Resolved through
# the URL map without a request, so the sweep (CLI, scheduler) builds the same links as the web app.
_LINKS: dict[str, tuple[tuple[tuple[str, str], ...], str]] = {
    "agreement": ((("agreements.detail", "agreement_id"), ("agreements.show", "agreement_id")), "/agreements/{id}"),
    "activity": ((("activities.detail", "activity_id"), ("activities.show", "activity_id")), "/activities/{id}"),
}


def site_path(what: str, ident: int, **extra) -> str:
    """The site-relative path of an agreement or activity page (works outside a request)."""
    candidates, fallback = _LINKS[what]
    adapter = current_app.url_map.bind("localhost")
    for endpoint, arg in candidates:
        try:
            return adapter.build(endpoint, {arg: ident, **extra})
        except BuildError:
            continue
    return fallback.format(id=ident)


def endpoint_path(endpoint: str, fallback: str, **values) -> str:
    """The site-relative path of an endpoint, built without a request; `fallback` when it is not registered."""
    try:
        return current_app.url_map.bind("localhost").build(endpoint, values)
    except BuildError:
        return fallback


# --- who hears it --------------------------------------------------------------------------------------


class Audience:
    """Who is liaison, secretary or reviewer for an organization — loaded once per sweep."""

    def __init__(self) -> None:
        self.by_org_role: dict[tuple[int, Role], set[int]] = defaultdict(set)
        rows = db.session.execute(
            sa.select(User.id, User.organization_id, UserRole.role)
            .join(UserRole, UserRole.user_id == User.id)
            .where(
                User.is_active_account.is_(True),
                User.organization_id.is_not(None),
                UserRole.role.in_([Role.liaison, Role.secretary, Role.committee]),
            )
        )
        for user_id, org_id, role in rows:
            self.by_org_role[(org_id, role)].add(user_id)
        self.active_ids: set[int] = set(
            db.session.execute(sa.select(User.id).where(User.is_active_account.is_(True))).scalars()
        )
        self.orgs: dict[int, tuple[str, str]] = {
            oid: (name, path)
            for oid, name, path in db.session.execute(sa.select(Organization.id, Organization.name, Organization.path))
        }

    def org_name(self, org_id: int) -> str:
        """An organization's name for notice texts."""
        return self.orgs.get(org_id, ("（未知组织）", "/"))[0]

    def liaisons(self, agreement: Optional[Agreement], org_id: int) -> set[int]:
        """Named liaisons of the party on this agreement; if none are named, the org's liaison-role users."""
        named = set()
        if agreement is not None:
            named = {l.user_id for l in agreement.liaisons if l.organization_id == org_id and l.user_id in self.active_ids}
        return named or set(self.by_org_role.get((org_id, Role.liaison), ()))

    def agreement_liaisons(self, agreement: Agreement) -> set[int]:
        """Liaisons of every party of an agreement."""
        out: set[int] = set()
        for org_id in agreement.party_org_ids:
            out |= self.liaisons(agreement, org_id)
        return out

    def secretaries(self, org_id: int) -> set[int]:
        """Active users holding the secretary role in the organization."""
        return set(self.by_org_role.get((org_id, Role.secretary), ()))

    def reviewers(self, org_id: int) -> set[int]:
        """Committee reviewers overseeing the organization: the nearest level up (itself included) that has any."""
        path = self.orgs.get(org_id, ("", "/"))[1]
        ancestors = [int(p) for p in path.strip("/").split("/") if p]
        for ancestor in reversed(ancestors):
            found = self.by_org_role.get((ancestor, Role.committee))
            if found:
                return set(found)
        return set()


# --- the clock -----------------------------------------------------------------------------------------


@dataclass
class RuleContext:
    """The moment a sweep looks at the data from, in UTC and in local dates."""

    now: datetime
    zone: ZoneInfo
    audience: Audience
    _first_notified: dict[tuple[str, int], datetime] = field(default_factory=dict)
    _running: Optional[list[Agreement]] = None

    @property
    def today(self) -> date:
        """The local date of the sweep."""
        return self.now.astimezone(self.zone).date()

    def start_of(self, day: date) -> datetime:
        """Local midnight at the start of `day`, as UTC (DST-safe: built from the local wall clock)."""
        return datetime.combine(day, time(0), tzinfo=self.zone).astimezone(timezone.utc)

    def local_date(self, moment: datetime) -> date:
        """The local date of an aware moment."""
        return moment.astimezone(self.zone).date()

    def load_first_notified(self, item_keys: Iterable[str]) -> None:
        """Prefetch when each item was first notified at each level (for escalation), in chunks."""
        keys = sorted(set(item_keys))
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            rows = db.session.execute(
                sa.select(Notification.item_key, Notification.level, sa.func.min(Notification.created_at))
                .where(Notification.item_key.in_(chunk))
                .group_by(Notification.item_key, Notification.level)
            )
            for item_key, level, first in rows:  # MIN keeps the column type: aware UTC datetimes
                self._first_notified[(item_key, level)] = first

    def first_notified(self, item_key: str, level: int) -> Optional[datetime]:
        """When an item was first notified at a level (after load_first_notified), else None."""
        return self._first_notified.get((item_key, level))


def _escalate(
    ctx: RuleContext,
    item_key: str,
    due0: datetime,
    levels: list[set[int]],
    make: Callable[[int, int], Occurrence],
) -> list[Occurrence]:
    """Occurrences for every level of an overdue item that is due by now.

    Level n is due `gap(n)` after level n-1 was first notified (its Notification.created_at). A level with
    nobody to tell passes its turn on at the moment it would have been due.
    """
    gaps = [
        timedelta(0),
        timedelta(days=int(setting("REMINDER_ESCALATE_SECRETARY_DAYS"))),
        max(
            timedelta(days=1),
            timedelta(days=int(setting("REMINDER_ESCALATE_COMMITTEE_DAYS")) - int(setting("REMINDER_ESCALATE_SECRETARY_DAYS"))),
        ),
    ]
    out: list[Occurrence] = []
    previous: Optional[datetime] = None
    for level, recipients in enumerate(levels):
        due = due0 if level == 0 else previous + gaps[level]
        if ctx.now < due:
            break
        out.extend(make(level, uid) for uid in sorted(recipients))
        if not recipients:
            previous = due
            continue
        first = ctx.first_notified(item_key, level)
        if first is None:
            break  # being told in this sweep; the next level's clock starts now
        previous = first
    return out


# --- the rules -----------------------------------------------------------------------------------------

_WEEKDAYS = "一二三四五六日"


def _when_words(days: int) -> str:
    return {0: "就在今天", 1: "就在明天", 2: "就在后天"}.get(days, f"还有{days}天")


def _org_list(ctx: RuleContext, org_ids: Iterable[int]) -> str:
    return "、".join(ctx.audience.org_name(o) for o in org_ids)


def _has_live_agreement(activity: Activity) -> bool:
    """True when the activity belongs to no agreement or to one still being signed or in force."""
    return not activity.agreement_links or any(
        l.agreement.status in (AgreementStatus.active, AgreementStatus.signing) for l in activity.agreement_links
    )


def _activity_liaisons(ctx: RuleContext, activity: Activity, org_id: int) -> set[int]:
    agreements = [l.agreement for l in activity.agreement_links] or [None]
    out: set[int] = set()
    for agreement in agreements:
        if agreement is None or org_id in agreement.party_org_ids:
            out |= ctx.audience.liaisons(agreement, org_id)
    return out


def rule_upcoming(ctx: RuleContext) -> list[Occurrence]:
    """A planned activity within REMINDER_UPCOMING_DAYS: every participating party's liaisons."""
    horizon = ctx.today + timedelta(days=int(setting("REMINDER_UPCOMING_DAYS")))
    activities = db.session.execute(
        sa.select(Activity)
        .where(Activity.status == ActivityStatus.planned, Activity.held_on >= ctx.today, Activity.held_on <= horizon)
        .options(
            selectinload(Activity.participants),
            selectinload(Activity.agreement_links).selectinload(ActivityAgreement.agreement).selectinload(Agreement.liaisons),
            selectinload(Activity.agreement_links).selectinload(ActivityAgreement.agreement).selectinload(Agreement.parties),
        )
        .order_by(Activity.id)
    ).scalars()
    out = []
    for activity in activities:
        if not _has_live_agreement(activity):
            continue
        org_ids = activity.participant_org_ids or [activity.organizer_org_id]
        recipients: set[int] = set()
        for org_id in org_ids:
            recipients |= _activity_liaisons(ctx, activity, org_id)
        days = (activity.held_on - ctx.today).days
        when = f"{cn_date(activity.held_on)}（星期{_WEEKDAYS[activity.held_on.weekday()]}）"
        if activity.start_time:
            when += f" {activity.start_time:%H:%M}"
        place = f"，地点：{activity.place}" if activity.place else ""
        body = (
            f"{_org_list(ctx, org_ids)}共同开展的{category_name(activity.category)}活动“{activity.title}”"
            f"定于{when}举行{place}，{_when_words(days)}。请提前做好准备；活动结束后记得登记开展情况。"
        )
        link = site_path("activity", activity.id)
        expires = ctx.start_of(activity.held_on + timedelta(days=1))
        agreement_id = activity.agreement_links[0].agreement_id if activity.agreement_links else None
        for uid in sorted(recipients):
            out.append(Occurrence(
                ReminderKind.activity_upcoming, f"upcoming:activity:{activity.id}", uid,
                f"活动即将开展：{activity.title}", body, link, occurrence=activity.held_on.isoformat(),
                agreement_id=agreement_id, activity_id=activity.id, expires_at=expires,
            ))
    return out


def rule_confirmations(ctx: RuleContext) -> list[Occurrence]:
    """A partner's held activity waiting for this party's answer: liaisons, then secretary, then reviewer."""
    rows = db.session.execute(
        sa.select(ActivityConfirmation, Activity)
        .join(Activity, Activity.id == ActivityConfirmation.activity_id)
        .where(ActivityConfirmation.state == ConfirmationState.pending, Activity.status == ActivityStatus.held)
        .options(
            selectinload(Activity.agreement_links).selectinload(ActivityAgreement.agreement).selectinload(Agreement.liaisons),
            selectinload(Activity.agreement_links).selectinload(ActivityAgreement.agreement).selectinload(Agreement.parties),
        )
        .order_by(ActivityConfirmation.id)
    ).all()
    after = timedelta(days=int(setting("REMINDER_CONFIRM_AFTER_DAYS")))
    items = []
    for conf, activity in rows:
        if activity.agreement_links and all(
            l.agreement.status is AgreementStatus.terminated for l in activity.agreement_links
        ):
            continue  # every agreement terminated: nobody needs the answer any more (expired ones still count)
        # A plan's confirmation row is created when the plan is logged; the wait starts when the
        # activity took place, not when it was planned.
        since = max(conf.requested_at, ctx.start_of(activity.held_on))
        if ctx.now < since + after:
            continue
        items.append((conf, activity, since))
    ctx.load_first_notified(f"confirm:activity:{a.id}:org:{c.organization_id}" for c, a, _s in items)

    out = []
    for conf, activity, since in items:
        org_id = conf.organization_id
        item_key = f"confirm:activity:{activity.id}:org:{org_id}"
        liaisons = _activity_liaisons(ctx, activity, org_id)
        secretaries = ctx.audience.secretaries(org_id) - liaisons
        reviewers = ctx.audience.reviewers(org_id) - liaisons - secretaries
        org = ctx.audience.org_name(org_id)
        organizer = ctx.audience.org_name(activity.organizer_org_id)
        link = site_path("activity", activity.id)
        agreement_id = activity.agreement_links[0].agreement_id if activity.agreement_links else None
        what = f"{organizer}登记的{category_name(activity.category)}活动“{activity.title}”（{cn_date(activity.held_on)}）"
        waited = (ctx.now - since).days

        def make(level: int, uid: int, *, item_key=item_key, what=what, org=org, link=link,
                 agreement_id=agreement_id, activity=activity, waited=waited) -> Occurrence:
            if level == 0:
                title = f"待确认：{activity.title}"
                body = f"{what}需要{org}确认。请核实后确认，或写明原因提出异议——不必重复登记。"
                kind = ReminderKind.confirmation_pending
            elif level == 1:
                title = f"请督促确认：{activity.title}"
                body = (f"{what}已等待{org}确认{waited}天。本组织联络员已收到提醒，但至今尚未确认，"
                        f"请督促联络员核实后确认或提出异议。")
                kind = ReminderKind.confirmation_overdue
            else:
                title = f"{org}逾期未确认活动：{activity.title}"
                body = (f"{what}已等待{org}确认{waited}天，联络员和书记均已收到提醒。"
                        f"请了解情况，督促其及时确认或提出异议。")
                kind = ReminderKind.confirmation_overdue
            return Occurrence(kind, item_key, uid, title, body, link, level=level,
                              agreement_id=agreement_id, activity_id=activity.id)

        out.extend(_escalate(ctx, item_key, since + after, [liaisons, secretaries, reviewers], make))
    return out


def _running_agreements(ctx: RuleContext) -> list[Agreement]:
    """Active agreements within their term today (loaded once per sweep, shared by the rules)."""
    if ctx._running is None:
        ctx._running = list(db.session.execute(
            sa.select(Agreement)
            .where(Agreement.status == AgreementStatus.active, Agreement.starts_on <= ctx.today, Agreement.ends_on >= ctx.today)
            .options(selectinload(Agreement.parties), selectinload(Agreement.liaisons), selectinload(Agreement.commitments))
            .order_by(Agreement.id)
        ).scalars())
    return ctx._running


def rule_inactive(ctx: RuleContext) -> list[Occurrence]:
    """An active agreement with no held activity for REMINDER_INACTIVE_DAYS (again every as many days)."""
    period = int(setting("REMINDER_INACTIVE_DAYS"))
    agreements = _running_agreements(ctx)
    if not agreements:
        return []
    last_held = dict(db.session.execute(
        sa.select(ActivityAgreement.agreement_id, sa.func.max(Activity.held_on))
        .join(Activity, Activity.id == ActivityAgreement.activity_id)
        .where(
            ActivityAgreement.agreement_id.in_([a.id for a in agreements]),
            Activity.status == ActivityStatus.held,
            Activity.held_on <= ctx.today,
        )
        .group_by(ActivityAgreement.agreement_id)
    ).all())
    out = []
    for agreement in agreements:
        since = agreement.starts_on
        if agreement.activated_at is not None:
            since = max(since, ctx.local_date(agreement.activated_at))
        held = last_held.get(agreement.id)
        if held is not None:
            since = max(since, held)
        silent = (ctx.today - since).days
        if silent < period:
            continue
        rounds = silent // period
        if held is not None:
            body = f"协议“{agreement.title}”自{cn_date(held)}以来已有{silent}天没有开展共建活动。"
        else:
            body = f"协议“{agreement.title}”自{cn_date(since)}生效以来已有{silent}天没有开展共建活动。"
        body += "建议与结对伙伴商定下一次活动，并在平台上登记计划。"
        link = site_path("agreement", agreement.id)
        for uid in sorted(ctx.audience.agreement_liaisons(agreement)):
            out.append(Occurrence(
                ReminderKind.agreement_inactive, f"inactive:agreement:{agreement.id}:since:{since.isoformat()}", uid,
                f"协议已{silent}天未开展活动：{agreement.title}", body, link, occurrence=str(rounds),
                agreement_id=agreement.id,
            ))
    return out


def _month_start(day: date) -> date:
    return day.replace(day=1)


def _next_month_start(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def rule_behind(ctx: RuleContext) -> list[Occurrence]:
    """A commitment behind its pro-rata target: once per category per month, to the liaisons."""
    from coop.reports.progress import agreement_progress

    agreements = _running_agreements(ctx)
    if not agreements:
        return []
    progress = agreement_progress(agreements, _month_start(ctx.today), ctx.today)
    month = f"{ctx.today:%Y-%m}"
    expires = ctx.start_of(_next_month_start(ctx.today))
    out = []
    for agreement in agreements:
        recipients = sorted(ctx.audience.agreement_liaisons(agreement))
        link = site_path("agreement", agreement.id)
        for code, p in progress.get(agreement.id, {}).items():
            if p.target <= 0 or p.status not in ("behind", "none"):
                continue
            name = category_name(code)
            body = (
                f"协议“{agreement.title}”约定{name}今年完成{p.target}次，按进度截至{cn_date(ctx.today)}应完成"
                f"{p.expected}次，目前已确认{p.year_to_date}次"
                + (f"（另有{p.pending}次待伙伴确认）" if p.pending else "")
                + "。请与结对伙伴商定安排。"
            )
            for uid in recipients:
                out.append(Occurrence(
                    ReminderKind.commitment_behind, f"behind:agreement:{agreement.id}:{code}", uid,
                    f"{name}进度滞后：{agreement.title}", body, link, occurrence=month,
                    agreement_id=agreement.id, expires_at=expires,
                ))
    return out


def rule_signatures(ctx: RuleContext) -> list[Occurrence]:
    """A party's signature pending: its secretary (mandatory), a follow-up, then the committee reviewer."""
    try:
        from agreements.queries import awaiting_signature
    except ModuleNotFoundError as exc:
        if exc.name == "agreements.queries":
            raise RuleUnavailable("agreements.queries 尚未提供") from None
        raise
    pending = awaiting_signature()
    items = []
    for agreement, org_id, since in pending:
        since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
        item_key = f"signature:agreement:{agreement.id}:org:{org_id}:since:{ctx.local_date(since).isoformat()}"
        items.append((agreement, org_id, since, item_key))
    ctx.load_first_notified(i[3] for i in items)
    out = []
    for agreement, org_id, since, item_key in items:
        secretaries = ctx.audience.secretaries(org_id)
        reviewers = ctx.audience.reviewers(org_id) - secretaries
        org = ctx.audience.org_name(org_id)
        link = endpoint_path("agreements.sign", site_path("agreement", agreement.id), agreement_id=agreement.id)
        waited = (ctx.now - since).days

        def make(level: int, uid: int, *, agreement=agreement, item_key=item_key, org=org, link=link,
                 waited=waited, since=since) -> Occurrence:
            if level == 0:
                return Occurrence(
                    ReminderKind.signature_pending, item_key, uid, f"待签署：{agreement.title}",
                    f"协议“{agreement.title}”自{cn_date(since)}起等待{org}签署。请登录平台审阅协议文本并签署。",
                    link, agreement_id=agreement.id, mandatory=True,
                )
            if level == 1:
                return Occurrence(
                    ReminderKind.signature_overdue, item_key, uid, f"协议仍待签署（已{waited}天）：{agreement.title}",
                    f"协议“{agreement.title}”已等待{org}签署{waited}天，其他各方正在等待。请尽快审阅并签署；"
                    f"如有异议，可在平台上拒签并说明原因。",
                    link, level=1, agreement_id=agreement.id, mandatory=True,
                )
            return Occurrence(
                ReminderKind.signature_overdue, item_key, uid, f"{org}逾期未签署协议：{agreement.title}",
                f"协议“{agreement.title}”已等待{org}签署{waited}天，该组织书记已两次收到提醒。请了解情况并督促办理。",
                site_path("agreement", agreement.id), level=2, agreement_id=agreement.id,
            )

        out.extend(_escalate(ctx, item_key, since, [secretaries, secretaries, reviewers], make))
    return out


def rule_expiring(ctx: RuleContext) -> list[Occurrence]:
    """An active agreement ending within 30 / 7 days (configurable): liaisons and secretaries of every party."""
    thresholds = sorted({int(d) for d in setting("REMINDER_EXPIRING_DAYS")})
    if not thresholds:
        return []
    agreements = db.session.execute(
        sa.select(Agreement)
        .where(
            Agreement.status == AgreementStatus.active,
            Agreement.ends_on >= ctx.today,
            Agreement.ends_on <= ctx.today + timedelta(days=thresholds[-1]),
        )
        .options(selectinload(Agreement.parties), selectinload(Agreement.liaisons))
        .order_by(Agreement.id)
    ).scalars().all()
    if not agreements:
        return []
    # A renewal already drafted or being signed answers the reminder.
    renewed = set(db.session.execute(
        sa.select(Agreement.renewed_from_id).where(
            Agreement.renewed_from_id.in_([a.id for a in agreements]),
            Agreement.status.in_([AgreementStatus.draft, AgreementStatus.signing, AgreementStatus.active]),
        )
    ).scalars())
    out = []
    for agreement in agreements:
        if agreement.id in renewed:
            continue
        left = (agreement.ends_on - ctx.today).days
        threshold = next(t for t in thresholds if left <= t)
        recipients = ctx.audience.agreement_liaisons(agreement)
        for org_id in agreement.party_org_ids:
            recipients |= ctx.audience.secretaries(org_id)
        when = "今天" if left == 0 else f"{left}天后"
        body = (
            f"协议“{agreement.title}”将于{cn_date(agreement.ends_on)}到期（{when}）。"
            f"如需继续结对共建，请各方及早商议续签；到期前请补齐尚未登记的活动。"
        )
        link = site_path("agreement", agreement.id)
        for uid in sorted(recipients):
            out.append(Occurrence(
                ReminderKind.agreement_expiring,
                f"expiring:agreement:{agreement.id}:{agreement.ends_on.isoformat()}:{threshold}", uid,
                f"协议{when}到期：{agreement.title}", body, link, agreement_id=agreement.id,
                expires_at=ctx.start_of(agreement.ends_on + timedelta(days=1)),
            ))
    return out


def rule_reports(ctx: RuleContext) -> list[Occurrence]:
    """A monthly agreement report made recently (first version only): the agreement's liaisons."""
    try:
        from coop.reports.models import MonthlyReport, ReportKind
    except ModuleNotFoundError as exc:
        if exc.name == "coop.reports.models":
            raise RuleUnavailable("coop.reports.models 尚未提供") from None
        raise
    relevant = timedelta(days=int(setting("REMINDER_REPORT_RELEVANT_DAYS")))
    # The first version of each month's report decides; regenerating one later is not news.
    recent = (
        sa.select(MonthlyReport.agreement_id, MonthlyReport.year, MonthlyReport.month)
        .where(
            MonthlyReport.kind == ReportKind.agreement,
            MonthlyReport.created_at > ctx.now - relevant,
            MonthlyReport.created_at <= ctx.now,
        )
        .distinct()
        .subquery()
    )
    rows = db.session.execute(
        sa.select(MonthlyReport.agreement_id, MonthlyReport.year, MonthlyReport.month, sa.func.min(MonthlyReport.created_at))
        .join(recent, sa.and_(
            recent.c.agreement_id == MonthlyReport.agreement_id,
            recent.c.year == MonthlyReport.year,
            recent.c.month == MonthlyReport.month,
        ))
        .where(MonthlyReport.kind == ReportKind.agreement)
        .group_by(MonthlyReport.agreement_id, MonthlyReport.year, MonthlyReport.month)
    ).all()
    if not rows:
        return []
    agreements = {
        a.id: a
        for a in db.session.execute(
            sa.select(Agreement).where(Agreement.id.in_({r[0] for r in rows}))
            .options(selectinload(Agreement.parties), selectinload(Agreement.liaisons))
        ).scalars()
    }
    out = []
    for agreement_id, year, month, first in sorted(rows, key=lambda r: (r[0], r[1], r[2])):
        if first <= ctx.now - relevant:
            continue
        agreement = agreements.get(agreement_id)
        if agreement is None:
            continue
        link = endpoint_path(
            "reports.agreement_month", site_path("agreement", agreement_id),
            agreement_id=agreement_id, month=f"{year}-{month:02d}",
        )
        body = (
            f"协议“{agreement.title}”{year}年{month}月的工作报告已生成，汇总了本月各类活动与约定完成情况，"
            f"可直接下载存档或报送，无需再手工整理。"
        )
        for uid in sorted(ctx.audience.agreement_liaisons(agreement)):
            out.append(Occurrence(
                ReminderKind.report_ready, f"report:agreement:{agreement_id}:{year}-{month:02d}", uid,
                f"{year}年{month}月报告已生成：{agreement.title}", body, link, agreement_id=agreement_id,
                expires_at=first + relevant,
            ))
    return out


# name -> (function, kinds it decides)
RULES: dict[str, tuple[Callable[[RuleContext], list[Occurrence]], frozenset[ReminderKind]]] = {
    "upcoming": (rule_upcoming, frozenset({ReminderKind.activity_upcoming})),
    "confirmations": (rule_confirmations, frozenset({ReminderKind.confirmation_pending, ReminderKind.confirmation_overdue})),
    "inactive": (rule_inactive, frozenset({ReminderKind.agreement_inactive})),
    "behind": (rule_behind, frozenset({ReminderKind.commitment_behind})),
    "signatures": (rule_signatures, frozenset({ReminderKind.signature_pending, ReminderKind.signature_overdue})),
    "expiring": (rule_expiring, frozenset({ReminderKind.agreement_expiring})),
    "reports": (rule_reports, frozenset({ReminderKind.report_ready})),
}


def due_occurrences(now: datetime) -> DuePlan:
    """Run every rule at `now` (aware) and collect what is relevant; a failing rule is skipped and logged."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    ctx = RuleContext(now=now.astimezone(timezone.utc), zone=local_zone(), audience=Audience())
    plan = DuePlan()
    for name, (rule, kinds) in RULES.items():
        try:
            with db.session.begin_nested():
                found = rule(ctx)
        except RuleUnavailable as exc:
            plan.skipped_rules[name] = str(exc)
            continue
        except Exception as exc:  # one broken rule must not silence every other reminder
            logger.exception("reminder rule %s failed", name)
            plan.skipped_rules[name] = f"{type(exc).__name__}: {exc}"
            continue
        plan.occurrences.extend(found)
        plan.evaluated_kinds |= kinds
    # A stable order: concurrent sweepers insert in the same order, so PostgreSQL never deadlocks them.
    plan.occurrences.sort(key=lambda o: (o.key,))
    seen: set[str] = set()
    unique = []
    for o in plan.occurrences:
        if o.key not in seen:
            seen.add(o.key)
            unique.append(o)
    plan.occurrences = unique
    return plan
