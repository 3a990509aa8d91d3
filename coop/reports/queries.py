"""Everything a monthly report says, as plain data — the one source for PDFs, screens and the JSON API.

Each `*_report_data` function returns a dataclass tree of numbers, names and dates (no ORM objects), built on
coop.reports.progress, so a report page, its PDF and `GET /api/v1/reports/monthly` can never disagree.
`.as_dict()` gives the same tree with dates as ISO strings, ready for JSON.
"""
from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from typing import Callable, Iterable, Optional

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from agreements.models import Agreement, AgreementLiaison, AgreementParty, AgreementStatus
from coop.activities.models import (
    Activity,
    ActivityAgreement,
    ActivityConfirmation,
    ActivityOrganization,
    ActivityStatus,
    ConfirmationState,
)
from coop.auth.models import Role, User, UserRole
from coop.cache import memoized
from coop.categories import CATEGORIES, CATEGORY_BY_CODE
from coop.extensions import db
from coop.formatting import local_today, local_tz
from coop.i18n import N_
from coop.orgs.models import Organization
from coop.reports import progress as pg
from coop.reports.uitext import UiText

# Status symbols go with colours so a report printed in grey still reads (legend on every report).
STATUS_SYMBOLS = {"done": "✓", "on_track": "○", "behind": "▲", "none": "×", "not_started": "◇", "ended": "◆",
                  "extra": "+", "na": "—"}
STATUS_ORDER = ("none", "behind", "on_track", "done", "not_started", "ended", "extra", "na")  # worst first

# How many photo thumbnails an agreement report embeds (per activity, and in all).
THUMBS_PER_ACTIVITY = 2
THUMBS_PER_REPORT = 8

_MONTH_RE = re.compile(r"^\s*(\d{4})\s*[-/年.]\s*(\d{1,2})\s*月?\s*$")


# --- months ---------------------------------------------------------------------------------------


def parse_month(text: str) -> tuple[int, int]:
    """'2026-10' (or 2026/10, 2026年10月) → (2026, 10); raises ValueError with a Chinese message."""
    m = _MONTH_RE.match(text or "")
    if not m or not 1 <= int(m[2]) <= 12 or not 2000 <= int(m[1]) <= 2999:
        raise ValueError(f"月份格式不正确：“{text}”，应为 2026-10 这样的形式。")
    return int(m[1]), int(m[2])


def shift_month(year: int, month: int, delta: int) -> tuple[int, int]:
    """The month `delta` months after (year, month); negative goes back."""
    index = year * 12 + (month - 1) + delta
    return index // 12, index % 12 + 1


def last_completed_month(today: date) -> tuple[int, int]:
    """The month before `today`'s month: the newest one a monthly report can cover."""
    return shift_month(today.year, today.month, -1)


def month_key(year: int, month: int) -> str:
    """2026-10."""
    return f"{year}-{month:02d}"


@dataclass(frozen=True)
class Period:
    """The days a report covers."""
    year: int
    month: int
    first: date
    last: date  # the month's last day, or the as-of day while the month is still running
    complete: bool

    @property
    def label(self) -> str:
        return f"{self.year}年{self.month}月"

    @property
    def key(self) -> str:
        return month_key(self.year, self.month)

    @property
    def month_end(self) -> date:
        return pg.month_bounds(self.year, self.month)[1]


def month_period(year: int, month: int, as_of: date | None = None) -> Period:
    """The period a report of (year, month) covers; a running month is cut at `as_of` (default today)."""
    first, last = pg.month_bounds(year, month)
    as_of = as_of or local_today()
    if as_of < first:
        raise ValueError(f"{year}年{month}月尚未开始，不能生成报告。")
    return Period(year, month, first, min(last, as_of), as_of >= last)


def _local_midnight_utc(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=local_tz()).astimezone(timezone.utc)


# --- the data -------------------------------------------------------------------------------------


def _plain(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in getattr(value, "_extra_fields", ()):
            out[name] = _plain(getattr(value, name))
        return out
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


class _AsDict:
    def as_dict(self) -> dict:
        """The same data as JSON-ready dicts and lists (dates as ISO strings)."""
        return _plain(self)


@dataclass(frozen=True)
class CategoryRow(_AsDict):
    """One 八联 category of one agreement for the period (progress.CategoryProgress plus names and colour)."""
    code: str
    name: str
    short: str
    colour: str
    held: int
    confirmed: int
    pending: int
    disputed: int
    year_to_date: int
    commitment: int
    target: int
    expected: int
    status: str
    status_label: str
    percent: int

    _extra_fields = ("symbol", "cell_text")

    @property
    def symbol(self) -> str:
        return STATUS_SYMBOLS[self.status]

    @property
    def cell_text(self) -> str:
        """What a matrix cell says: "▲ 3/4" (year to date / target), "+ 1" for confirmed activities outside the
        commitments, "◇" / "◆" outside the term, "—" for nothing."""
        if self.status in ("na", "not_started", "ended"):
            return self.symbol
        if self.status == "extra":
            return f"{self.symbol} {self.year_to_date}"
        return f"{self.symbol} {self.year_to_date}/{self.target}"

    @classmethod
    def from_progress(cls, p: pg.CategoryProgress) -> "CategoryRow":
        c = CATEGORY_BY_CODE[p.category]
        return cls(
            code=c.code, name=c.name, short=c.short, colour=c.colour, held=p.held, confirmed=p.confirmed,
            pending=p.pending, disputed=p.disputed, year_to_date=p.year_to_date, commitment=p.commitment,
            target=p.target, expected=p.expected, status=p.status, status_label=p.status_label, percent=p.percent,
        )


@dataclass(frozen=True)
class Person(_AsDict):
    """A liaison as printed."""
    name: str
    title: str
    phone: str


@dataclass(frozen=True)
class PartyInfo(_AsDict):
    """One party of an agreement with its liaisons."""
    organization_id: int
    name: str
    short_name: str
    kind_label: str
    label: str  # 甲方, 乙方 …
    liaisons: list[Person]


@dataclass(frozen=True)
class OrgInfo(_AsDict):
    """An organization as printed in a report heading."""
    id: int
    name: str
    kind_label: str
    parent_name: str


@dataclass(frozen=True)
class Thumbnail(_AsDict):
    """A photo thumbnail of an activity (path relative to UPLOAD_DIR)."""
    attachment_id: int
    path: str  # relative to UPLOAD_DIR
    name: str


@dataclass(frozen=True)
class ActivityLine(_AsDict):
    """An activity as listed in a report."""
    id: int
    held_on: date
    title: str
    place: str
    category: str
    category_name: str
    category_colour: str
    status: str
    confirmation: str
    confirmation_label: str
    organizer: str
    participants: list[str]
    party_member_count: int
    other_count: int
    note: str  # who still has to confirm, or the dispute's reason
    thumbnails: list[Thumbnail] = field(default_factory=list)


@dataclass(frozen=True)
class MonthPoint(_AsDict):
    """One bar of the 12-month chart."""
    year: int
    month: int
    label: str
    held: int
    confirmed: int


@dataclass(frozen=True)
class AgreementSummary(_AsDict):
    """One pairing summed up for the period: categories, totals, signals and its one-line summary."""
    agreement_id: int
    title: str
    number: str
    status: str
    status_label: str
    starts_on: date
    ends_on: date
    parties: list[PartyInfo]
    party_names: str
    categories: list[CategoryRow]
    overall_status: str
    overall_label: str
    held: int
    confirmed: int
    pending: int
    disputed: int
    year_to_date: int
    target: int
    lagging: list[str]  # "党员联学 1/4" for categories behind or not started
    last_held_on: Optional[date]
    days_silent: int
    stalled: bool
    one_sided: bool
    one_sided_reason: str
    one_line: str

    _extra_fields = ("overall_symbol",)

    @property
    def overall_symbol(self) -> str:
        return STATUS_SYMBOLS[self.overall_status]


@dataclass(frozen=True)
class CategoryTotal(_AsDict):
    """A category across a set of pairings: distinct activities, the previous month, statuses."""
    code: str
    name: str
    short: str
    colour: str
    held: int  # distinct activities this month
    confirmed: int
    previous_held: int
    trend: int  # held − previous_held
    committed: int  # pairings with a commitment in this category
    status_counts: dict[str, int]


@dataclass(frozen=True)
class TypicalCase(_AsDict):
    """A typical case (典型案例) marked by the committee (provided by the review domain)."""
    activity_id: int
    title: str
    held_on: date
    category: str
    organizations: str
    reason: str


@dataclass(frozen=True)
class AgreementReportData(_AsDict):
    """Everything an agreement report shows."""
    kind: str
    period: Period
    title: str
    subject_name: str
    heading: str
    summary: AgreementSummary
    categories: list[CategoryRow]
    parties: list[PartyInfo]
    activities: list[ActivityLine]
    open_items: list[ActivityLine]
    planned: list[ActivityLine]
    chart: list[MonthPoint]


@dataclass(frozen=True)
class OrganizationReportData(_AsDict):
    """Everything an organization report shows."""
    kind: str
    period: Period
    title: str
    subject_name: str
    heading: str
    organization: OrgInfo
    agreements: list[AgreementSummary]
    category_totals: list[CategoryTotal]
    totals: dict[str, int]
    activities: list[ActivityLine]
    open_items: list[ActivityLine]
    planned: list[ActivityLine]
    stalled: list[AgreementSummary]
    one_sided: list[AgreementSummary]
    chart: list[MonthPoint]


@dataclass(frozen=True)
class CommitteeReportData(_AsDict):
    """Everything a committee report shows."""
    kind: str
    period: Period
    title: str
    subject_name: str
    heading: str
    scope: Optional[OrgInfo]  # None: the whole platform
    scope_name: str
    agreements: list[AgreementSummary]
    category_totals: list[CategoryTotal]
    totals: dict[str, int]
    status_counts: dict[str, int]
    previous_status_counts: dict[str, int]
    stalled: list[AgreementSummary]
    one_sided: list[AgreementSummary]
    typical_cases: list[TypicalCase]
    chart: list[MonthPoint]


# --- typical cases: HOOK ---------------------------------------------------------------------------
#
# Typical cases (典型案例) are marked by the committee in the review domain, whose tables do not exist yet.
# When coop/review/models.py defines them, coop.review registers a provider here:
#     TYPICAL_CASE_PROVIDERS.append(fn)   # fn(agreement_ids: list[int], first: date, last: date) -> list[TypicalCase]
# Until then the committee report prints "本月暂无党委标记的典型案例": no invented data.
TYPICAL_CASE_PROVIDERS: list[Callable[[list[int], date, date], list[TypicalCase]]] = []


def typical_cases(agreement_ids: list[int], first: date, last: date) -> list[TypicalCase]:
    """Typical cases marked by the committee among these agreements' activities of the period ([] for now)."""
    cases: list[TypicalCase] = []
    for provider in TYPICAL_CASE_PROVIDERS:
        cases.extend(provider(agreement_ids, first, last))
    return sorted(cases, key=lambda c: (c.held_on, c.activity_id))


# --- which agreements, organizations and scopes a month has -------------------------------------------

SIGNED_STATUSES = (AgreementStatus.active, AgreementStatus.expired, AgreementStatus.terminated)


def active_in_month_filter(first: date, last: date):
    """SQL condition: the agreement was signed and in force for at least part of [first, last]."""
    return sa.and_(
        Agreement.status.in_(SIGNED_STATUSES),
        Agreement.starts_on <= last,
        Agreement.ends_on >= first,
        # Terminated early: only months before the termination count.
        sa.or_(Agreement.ended_at.is_(None), Agreement.ended_at >= _local_midnight_utc(first)),
    )


def _with_parties(stmt):
    return stmt.options(
        selectinload(Agreement.parties).selectinload(AgreementParty.organization),
    )


def agreements_in_month(first: date, last: date, *, scope: Organization | None = None,
                        organization_id: int | None = None) -> list[Agreement]:
    """Agreements in force during the period: all, those with a party in `scope`'s subtree, or one org's."""
    stmt = sa.select(Agreement).where(active_in_month_filter(first, last))
    if scope is not None:
        stmt = stmt.where(
            Agreement.id.in_(
                sa.select(AgreementParty.agreement_id)
                .join(Organization, Organization.id == AgreementParty.organization_id)
                .where(Organization.path.startswith(scope.path, autoescape=True))
            )
        )
    if organization_id is not None:
        stmt = stmt.where(
            Agreement.id.in_(sa.select(AgreementParty.agreement_id).where(AgreementParty.organization_id == organization_id))
        )
    return list(db.session.execute(_with_parties(stmt.order_by(Agreement.id))).scalars())


def committee_scope_roots() -> list[Organization]:
    """Organizations that have an active committee reviewer: each gets a committee report of its subtree."""
    stmt = (
        sa.select(Organization)
        .where(
            Organization.id.in_(
                sa.select(User.organization_id)
                .join(UserRole, UserRole.user_id == User.id)
                .where(UserRole.role == Role.committee, User.is_active_account.is_(True), User.organization_id.is_not(None))
            )
        )
        .order_by(Organization.path)
    )
    return list(db.session.execute(stmt).scalars())


# --- building blocks ------------------------------------------------------------------------------


def _party_label(index: int) -> str:
    from agreements.document import party_label

    return party_label(index)


def _org_short(org: Organization) -> str:
    return org.short_name or org.name


def _parties(agreement: Agreement, with_liaisons: bool) -> list[PartyInfo]:
    liaisons: dict[int, list[Person]] = {}
    if with_liaisons:
        rows = db.session.execute(
            sa.select(AgreementLiaison.organization_id, User)
            .join(User, User.id == AgreementLiaison.user_id)
            .where(AgreementLiaison.agreement_id == agreement.id)
            .order_by(AgreementLiaison.id)
        ).all()
        for org_id, user in rows:
            liaisons.setdefault(org_id, []).append(Person(user.display_name, user.title or "", user.phone or ""))
    return [
        PartyInfo(
            organization_id=p.organization_id, name=p.organization.name, short_name=_org_short(p.organization),
            kind_label=p.organization.kind.label, label=_party_label(i), liaisons=liaisons.get(p.organization_id, []),
        )
        for i, p in enumerate(agreement.parties)
    ]


def _one_sided_reason(agreement: Agreement, signals: pg.PairingSignals) -> str:
    names = {p.organization_id: _org_short(p.organization) for p in agreement.parties}
    reasons = []
    if signals.dominant_org_id is not None:
        total = sum(signals.entries.values())
        mine = signals.entries[signals.dominant_org_id]
        reasons.append(UiText(N_("近%(days)s天%(total)s条记录中%(mine)s条由%(org)s录入"), days=pg.ONE_SIDED_WINDOW_DAYS,
                              total=total, mine=mine, org=names[signals.dominant_org_id]))
    for org_id in signals.silent_partner_ids:
        reasons.append(UiText(N_("%(org)s从未确认对方录入的活动"), org=names[org_id]))
    # UiText: Chinese as it is (PDFs, the API), in the reader's language on screens (|ui_text).
    return UiText.join(N_("；"), reasons)


def _summaries(agreements: list[Agreement], period: Period, *, with_liaisons: bool = False) -> list[AgreementSummary]:
    progress = pg.agreement_progress(agreements, period.first, period.last)
    signals = pg.pairing_signals(agreements, period.last)
    out = []
    for a in agreements:
        per_cat = progress[a.id]
        rows = [CategoryRow.from_progress(per_cat[c.code]) for c in CATEGORIES]
        overall = pg.overall_status(per_cat)
        committed = [r for r in rows if r.commitment > 0]
        lagging = [UiText.plain("%(category)s %(done)s/%(target)s", category=UiText(r.name), done=r.year_to_date,
                                target=r.target) for r in rows if r.status in ("behind", "none")]
        s = signals[a.id]
        parties = _parties(a, with_liaisons)
        party_names = UiText.join(N_("、"), [p.short_name for p in parties])
        held = sum(r.held for r in rows)
        confirmed = sum(r.confirmed for r in rows)
        ytd = sum(r.year_to_date for r in committed)
        target = sum(r.target for r in committed)
        one_sided_reason = _one_sided_reason(a, s)
        # The one-line summary, as UiText pieces: the same Chinese as ever, translatable on screens.
        line = [UiText(N_("本月开展%(held)s次（已确认%(confirmed)s次），约定事项年度累计%(ytd)s/%(target)s，%(status)s"),
                       held=held, confirmed=confirmed, ytd=ytd, target=target, status=UiText(pg.STATUS_LABELS[overall]))]
        if lagging:
            line.append(UiText(N_("落后事项：%(items)s"), items=UiText.join(N_("，"), lagging)))
        if s.stalled:
            line.append(UiText(N_("已%(days)s天无活动"), days=s.days_silent))
        if one_sided_reason:
            line.append(one_sided_reason)
        out.append(AgreementSummary(
            agreement_id=a.id, title=a.title, number=a.number or "", status=a.status.value,
            status_label=a.status.label, starts_on=a.starts_on, ends_on=a.ends_on, parties=parties,
            party_names=party_names, categories=rows, overall_status=overall,
            overall_label=pg.STATUS_LABELS[overall], held=held, confirmed=confirmed,
            pending=sum(r.pending for r in rows), disputed=sum(r.disputed for r in rows),
            year_to_date=ytd, target=target, lagging=lagging, last_held_on=s.last_held_on,
            days_silent=s.days_silent, stalled=s.stalled, one_sided=s.one_sided,
            one_sided_reason=one_sided_reason, one_line=UiText(N_("%(text)s。"), text=UiText.join(N_("；"), line)),
        ))
    return out


def _activity_stmt(agreement_ids: list[int]):
    return (
        sa.select(Activity)
        .where(Activity.id.in_(
            sa.select(ActivityAgreement.activity_id).where(ActivityAgreement.agreement_id.in_(agreement_ids))
        ))
        .options(
            selectinload(Activity.participants).selectinload(ActivityOrganization.organization),
            selectinload(Activity.organizer_org),
            selectinload(Activity.confirmations).selectinload(ActivityConfirmation.organization),
        )
        .order_by(Activity.held_on, Activity.id)
    )


def _note(act: Activity) -> str:
    """Who still has to confirm, or the dispute's reasons (a UiText: Chinese, translatable on screens)."""
    if act.confirmation is ConfirmationState.disputed:
        parts = [
            UiText(N_("%(org)s有异议：%(comment)s"), org=_org_short(c.organization), comment=c.comment.strip())
            if (c.comment or "").strip() else UiText(N_("%(org)s有异议"), org=_org_short(c.organization))
            for c in act.confirmations if c.state is ConfirmationState.disputed
        ]
        return UiText.join(N_("；"), parts) if parts else UiText(N_("有异议"))
    if act.confirmation is ConfirmationState.pending and act.status is ActivityStatus.held:
        waiting = [_org_short(c.organization) for c in act.confirmations if c.state is ConfirmationState.pending]
        return UiText(N_("待%(orgs)s确认"), orgs=UiText.join(N_("、"), waiting)) if waiting else UiText(N_("待确认"))
    return ""


def _lines(activities: Iterable[Activity], thumbs: dict[int, list[Thumbnail]] | None = None) -> list[ActivityLine]:
    out = []
    for act in activities:
        c = CATEGORY_BY_CODE[act.category]
        participants = [_org_short(p.organization) for p in act.participants] or [_org_short(act.organizer_org)]
        out.append(ActivityLine(
            id=act.id, held_on=act.held_on, title=act.title, place=act.place or "", category=c.code,
            category_name=c.name, category_colour=c.colour, status=act.status.value,
            confirmation=act.confirmation.value, confirmation_label=act.confirmation.label,
            organizer=_org_short(act.organizer_org), participants=participants,
            party_member_count=act.party_member_count, other_count=act.other_count, note=_note(act),
            thumbnails=(thumbs or {}).get(act.id, []),
        ))
    return out


def _thumbnails(activity_ids: list[int]) -> dict[int, list[Thumbnail]]:
    from coop.activities.models import Attachment

    if not activity_ids:
        return {}
    rows = db.session.execute(
        sa.select(Attachment)
        .where(Attachment.activity_id.in_(activity_ids), Attachment.kind == "image", Attachment.thumb_path.is_not(None))
        .order_by(Attachment.activity_id, Attachment.id)
    ).scalars()
    out: dict[int, list[Thumbnail]] = {}
    taken = 0
    for att in rows:
        mine = out.setdefault(att.activity_id, [])
        if len(mine) < THUMBS_PER_ACTIVITY and taken < THUMBS_PER_REPORT:
            mine.append(Thumbnail(att.id, att.thumb_path, att.original_name))
            taken += 1
    return out


def _month_activities(agreement_ids: list[int], period: Period, *, with_thumbs: bool) -> list[ActivityLine]:
    if not agreement_ids:
        return []
    acts = db.session.execute(
        _activity_stmt(agreement_ids).where(
            Activity.status == ActivityStatus.held, Activity.held_on >= period.first, Activity.held_on <= period.last
        )
    ).scalars().all()
    return _lines(acts, _thumbnails([a.id for a in acts]) if with_thumbs else None)


def _open_items(agreement_ids: list[int], period: Period) -> list[ActivityLine]:
    """Held activities up to the period's end still awaiting confirmation or disputed (their state today)."""
    if not agreement_ids:
        return []
    acts = db.session.execute(
        _activity_stmt(agreement_ids).where(
            Activity.status == ActivityStatus.held,
            Activity.held_on <= period.last,
            Activity.confirmation.in_([ConfirmationState.pending, ConfirmationState.disputed]),
        )
    ).scalars().all()
    return _lines(acts)


def _planned_next_month(agreement_ids: list[int], period: Period) -> list[ActivityLine]:
    if not agreement_ids:
        return []
    first, last = pg.month_bounds(*shift_month(period.year, period.month, 1))
    acts = db.session.execute(
        _activity_stmt(agreement_ids).where(
            Activity.status == ActivityStatus.planned, Activity.held_on >= first, Activity.held_on <= last
        )
    ).scalars().all()
    return _lines(acts)


def _chart(agreement_ids: list[int], period: Period) -> list[MonthPoint]:
    """Twelve months ending with the report's month."""
    y0, m0 = shift_month(period.year, period.month, -11)
    counts = pg.monthly_counts(agreement_ids, date(y0, m0, 1), 12)
    points = []
    for i in range(12):
        y, m = shift_month(y0, m0, i)
        held, confirmed = counts.get((y, m), (0, 0))
        points.append(MonthPoint(y, m, f"{m}月" if m != 1 or i == 0 else f"{y}年1月", held, confirmed))
    return points


def _category_totals(agreement_ids: list[int], summaries: list[AgreementSummary], period: Period) -> list[CategoryTotal]:
    now = pg.category_counts(agreement_ids, period.first, period.last)
    py, pm = shift_month(period.year, period.month, -1)
    before = pg.category_counts(agreement_ids, *pg.month_bounds(py, pm))
    out = []
    for i, c in enumerate(CATEGORIES):
        held, confirmed = now.get(c.code, (0, 0))
        prev = before.get(c.code, (0, 0))[0]
        statuses = Counter(s.categories[i].status for s in summaries)
        out.append(CategoryTotal(
            code=c.code, name=c.name, short=c.short, colour=c.colour, held=held, confirmed=confirmed,
            previous_held=prev, trend=held - prev, committed=sum(1 for s in summaries if s.categories[i].commitment > 0),
            status_counts={k: statuses.get(k, 0) for k in STATUS_ORDER},
        ))
    return out


def _org_info(org: Organization) -> OrgInfo:
    return OrgInfo(org.id, org.name, org.kind.label, org.parent.name if org.parent else "")


def _status_counts(summaries: list[AgreementSummary]) -> dict[str, int]:
    c = Counter(s.overall_status for s in summaries)
    return {k: c.get(k, 0) for k in STATUS_ORDER}


def _worst_first(summaries: list[AgreementSummary]) -> list[AgreementSummary]:
    return sorted(summaries, key=lambda s: (STATUS_ORDER.index(s.overall_status), -s.days_silent, s.agreement_id))


# --- the three reports ----------------------------------------------------------------------------


REPORT_NOUNS = {"agreement": "结对共建月度报告", "organization": "党建共建月度报告", "committee": "党建共建工作月度报告"}


def report_heading(kind: str, period: Period) -> str:
    """The title's second line: 2026年10月结对共建月度报告."""
    return f"{period.label}{REPORT_NOUNS[kind]}"


def report_title(kind: str, subject_name: str, period: Period) -> str:
    """The title printed on a report and used for its file name: subject, month, kind."""
    return f"{subject_name}{report_heading(kind, period)}"


def agreement_report_data(agreement: Agreement, year: int, month: int, *, as_of: date | None = None) -> AgreementReportData:
    """Memoised per data generation (coop.cache): frozen plain data, shared by screen, JSON and PDF."""
    key = (agreement.id, year, month, as_of or local_today())
    return memoized("reports.agreement_report_data", key, lambda: _agreement_report_data(agreement, year, month, as_of=as_of))


def _agreement_report_data(agreement: Agreement, year: int, month: int, *, as_of: date | None = None) -> AgreementReportData:
    """Everything the agreement report of (year, month) shows."""
    period = month_period(year, month, as_of)
    summary = _summaries([agreement], period, with_liaisons=True)[0]
    ids = [agreement.id]
    return AgreementReportData(
        kind="agreement", period=period, title=report_title("agreement", agreement.title, period),
        subject_name=agreement.title, heading=report_heading("agreement", period),
        summary=summary, categories=summary.categories, parties=summary.parties,
        activities=_month_activities(ids, period, with_thumbs=True), open_items=_open_items(ids, period),
        planned=_planned_next_month(ids, period), chart=_chart(ids, period),
    )


def organization_report_data(org: Organization, year: int, month: int, *, as_of: date | None = None) -> OrganizationReportData:
    """Memoised per data generation (coop.cache): frozen plain data, shared by screen, JSON and PDF."""
    key = (org.id, year, month, as_of or local_today())
    return memoized("reports.organization_report_data", key, lambda: _organization_report_data(org, year, month, as_of=as_of))


def _organization_report_data(org: Organization, year: int, month: int, *, as_of: date | None = None) -> OrganizationReportData:
    """Everything the organization report of (year, month) shows: every agreement `org` is party to."""
    period = month_period(year, month, as_of)
    agreements = agreements_in_month(period.first, period.last, organization_id=org.id)
    summaries = _summaries(agreements, period)
    ids = [a.id for a in agreements]
    totals = _category_totals(ids, summaries, period)
    held = sum(t.held for t in totals)
    return OrganizationReportData(
        kind="organization", period=period, title=report_title("organization", org.name, period),
        subject_name=org.name, heading=report_heading("organization", period),
        organization=_org_info(org), agreements=summaries, category_totals=totals,
        totals={
            "agreements": len(summaries), "held": held, "confirmed": sum(t.confirmed for t in totals),
            "previous_held": sum(t.previous_held for t in totals),
            "year_to_date": sum(s.year_to_date for s in summaries), "target": sum(s.target for s in summaries),
        },
        activities=_month_activities(ids, period, with_thumbs=False), open_items=_open_items(ids, period),
        planned=_planned_next_month(ids, period),
        stalled=[s for s in summaries if s.stalled], one_sided=[s for s in summaries if s.one_sided],
        chart=_chart(ids, period),
    )


def committee_report_data(root: Organization | None, year: int, month: int, *, as_of: date | None = None) -> CommitteeReportData:
    """Memoised per data generation (coop.cache): frozen plain data, shared by screen, JSON and PDF."""
    key = (root.id if root is not None else None, year, month, as_of or local_today())
    return memoized("reports.committee_report_data", key, lambda: _committee_report_data(root, year, month, as_of=as_of))


def _committee_report_data(root: Organization | None, year: int, month: int, *, as_of: date | None = None) -> CommitteeReportData:
    """Everything the committee report shows for `root`'s subtree (None: the whole platform)."""
    period = month_period(year, month, as_of)
    agreements = agreements_in_month(period.first, period.last, scope=root)
    summaries = _worst_first(_summaries(agreements, period))
    ids = [a.id for a in agreements]
    totals = _category_totals(ids, summaries, period)
    # The previous month's standing of the same pairings, for "更好 / 更差" trends.
    py, pm = shift_month(year, month, -1)
    prev_first, prev_last = pg.month_bounds(py, pm)
    prev_agreements = [a for a in agreements if a.starts_on <= prev_last]
    prev_progress = pg.agreement_progress(prev_agreements, prev_first, prev_last)
    prev_counts = Counter(pg.overall_status(p) for p in prev_progress.values())
    scope_name = root.name if root is not None else UiText(N_("全平台"))
    return CommitteeReportData(
        kind="committee", period=period, title=report_title("committee", scope_name, period),
        subject_name=scope_name, heading=report_heading("committee", period),
        scope=_org_info(root) if root is not None else None, scope_name=scope_name,
        agreements=summaries, category_totals=totals,
        totals={
            "agreements": len(summaries), "held": sum(t.held for t in totals),
            "confirmed": sum(t.confirmed for t in totals), "previous_held": sum(t.previous_held for t in totals),
            "stalled": sum(1 for s in summaries if s.stalled), "one_sided": sum(1 for s in summaries if s.one_sided),
        },
        status_counts=_status_counts(summaries),
        previous_status_counts={k: prev_counts.get(k, 0) for k in STATUS_ORDER},
        stalled=sorted((s for s in summaries if s.stalled), key=lambda s: -s.days_silent),
        one_sided=[s for s in summaries if s.one_sided],
        typical_cases=typical_cases(ids, period.first, period.last),
        chart=_chart(ids, period),
    )


def report_data(kind: str, subject_id: int | None, year: int, month: int, *, as_of: date | None = None):
    """Dispatch on kind ('agreement' | 'organization' | 'committee'); raises LookupError for a missing subject."""
    if kind == "agreement":
        agreement = db.session.get(Agreement, subject_id)
        if agreement is None:
            raise LookupError(f"协议 {subject_id} 不存在")
        return agreement_report_data(agreement, year, month, as_of=as_of)
    org = db.session.get(Organization, subject_id) if subject_id is not None else None
    if subject_id is not None and org is None:
        raise LookupError(f"组织 {subject_id} 不存在")
    if kind == "organization":
        if org is None:
            raise LookupError("组织报告需要指定组织")
        return organization_report_data(org, year, month, as_of=as_of)
    if kind == "committee":
        return committee_report_data(org, year, month, as_of=as_of)
    raise LookupError(f"未知的报告类型：{kind}")
