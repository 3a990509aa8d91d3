"""What the committee cockpit shows, as plain data — built on coop.reports.progress so it matches the reports.

Every figure in a cell comes from `progress.agreement_progress` and every stalled / one-sided flag from
`progress.pairing_signals`, with the same period cut as the monthly reports (a running period ends today).
What this module adds is grouped, scope-wide queries (organization totals, confirmation requests,
typical cases): a handful of GROUP BY statements whatever the number of pairings, never one per row.
"""
from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable, Optional

import sqlalchemy as sa
from flask_babel import gettext as _
from sqlalchemy.orm import selectinload

from agreements.models import Agreement, AgreementParty
from coop.activities.models import (
    Activity,
    ActivityAgreement,
    ActivityConfirmation,
    ActivityOrganization,
    ActivityStatus,
    ConfirmationState,
)
from coop.cache import memoized
from coop.categories import CATEGORY_BY_CODE, CATEGORY_CODES
from coop.extensions import db
from coop.formatting import local_tz, ui_month, ui_quarter, ui_year
from coop.i18n import N_
from coop.orgs.models import Organization, OrgRelation
from coop.reports import progress as pg
from coop.reports.queries import active_in_month_filter
from coop.reports.uitext import UiText
from coop.review.models import ActivityEvaluation, ReviewSetting

# Worst first: the order statuses are counted and sorted in.
STATUS_ORDER = ("none", "behind", "on_track", "done", "not_started", "ended", "extra", "na")
# Activities outside the commitments are shown, neutral: they are neither a completed commitment nor a gap.
STATUS_CSS = {"done": "st-ok", "on_track": "st-ok", "behind": "st-behind", "none": "st-none", "not_started": "st-na",
              "ended": "st-na", "extra": "st-extra", "na": "st-na"}
DEFAULT_STALLED_DAYS = pg.STALLED_DAYS
# Chinese (audit log, exports); screens use coop.formatting.ui_quarter.
QUARTER_NAMES = {1: N_("第一季度"), 2: N_("第二季度"), 3: N_("第三季度"), 4: N_("第四季度")}


# --- periods ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewPeriod:
    """A month, quarter or calendar year; `last` is the period's end, or `as_of` while it is still running."""

    kind: str  # "month" | "quarter" | "year"
    year: int
    index: int  # month 1–12, quarter 1–4, 0 for a year
    first: date
    end: date
    last: date

    @property
    def complete(self) -> bool:
        return self.last >= self.end

    @property
    def key(self) -> str:
        """2026-07, 2026-Q3 or 2026 — the value of the ?period= parameter."""
        if self.kind == "month":
            return f"{self.year}-{self.index:02d}"
        if self.kind == "quarter":
            return f"{self.year}-Q{self.index}"
        return str(self.year)

    @property
    def label(self) -> str:
        """2026年7月 / 2026年第三季度 / 2026年 (exports; screens use ui_label)."""
        if self.kind == "month":
            return f"{self.year}年{self.index}月"
        if self.kind == "quarter":
            return f"{self.year}年{QUARTER_NAMES[self.index]}"
        return f"{self.year}年"

    @property
    def ui_label(self) -> str:
        """The label in the interface language (the same Chinese as `label`; July 2026 / Q3 2026 / 2026)."""
        if self.kind == "month":
            return ui_month(self.year, self.index)
        if self.kind == "quarter":
            return ui_quarter(self.year, self.index)
        return ui_year(self.year)

    @property
    def quarter(self) -> Optional[int]:
        return self.index if self.kind == "quarter" else None

    def shifted(self, delta: int, as_of: date) -> Optional["ReviewPeriod"]:
        """The period `delta` steps away of the same kind, or None when it has not started by `as_of`."""
        if self.kind == "month":
            n = self.year * 12 + self.index - 1 + delta
            year, index = n // 12, n % 12 + 1
        elif self.kind == "quarter":
            n = self.year * 4 + self.index - 1 + delta
            year, index = n // 4, n % 4 + 1
        else:
            year, index = self.year + delta, 0
        try:
            return make_period(self.kind, year, index, as_of)
        except ValueError:
            return None

    def as_kind(self, kind: str, as_of: date) -> "ReviewPeriod":
        """The period of another kind containing this one's last day (month → its quarter → its year)."""
        d = self.last
        index = {"month": d.month, "quarter": (d.month - 1) // 3 + 1, "year": 0}[kind]
        return make_period(kind, d.year, index, as_of)


def make_period(kind: str, year: int, index: int, as_of: date) -> ReviewPeriod:
    """A period cut at `as_of`; raises ValueError (a message for the screen) for unknown or not yet started periods."""
    if not 2000 <= year <= 2999:
        raise ValueError(_("年份超出范围。"))
    if kind == "month":
        if not 1 <= index <= 12:
            raise ValueError(_("月份应在 1 到 12 之间。"))
        first, end = pg.month_bounds(year, index)
    elif kind == "quarter":
        if not 1 <= index <= 4:
            raise ValueError(_("季度应在 1 到 4 之间。"))
        first, end = pg.quarter_bounds(year, index)
    elif kind == "year":
        first, end, index = date(year, 1, 1), date(year, 12, 31), 0
    else:
        raise ValueError(_("未知的统计周期。"))
    if first > as_of:
        raise ValueError(_("所选周期尚未开始。"))
    return ReviewPeriod(kind, year, index, first, end, min(end, as_of))


_PERIOD_RE = re.compile(r"^\s*(\d{4})(?:\s*-\s*(?:(\d{1,2})|[Qq]([1-4])))?\s*$")


def parse_period(text: str | None, as_of: date) -> ReviewPeriod:
    """'2026-07' (month), '2026-Q3' (quarter) or '2026' (year); empty means the month of `as_of`."""
    if not text:
        return make_period("month", as_of.year, as_of.month, as_of)
    m = _PERIOD_RE.match(text)
    if not m:
        raise ValueError(_("周期格式不正确：“%(text)s”，应为 2026-07、2026-Q3 或 2026。", text=text))
    year = int(m[1])
    if m[2]:
        return make_period("month", year, int(m[2]), as_of)
    if m[3]:
        return make_period("quarter", year, int(m[3]), as_of)
    return make_period("year", year, 0, as_of)


# --- settings ---------------------------------------------------------------------------------------


def review_setting(scope: Organization | None) -> ReviewSetting | None:
    """The stored settings row of a committee scope (None: the platform), if any."""
    cond = ReviewSetting.scope_org_id.is_(None) if scope is None else ReviewSetting.scope_org_id == scope.id
    return db.session.execute(sa.select(ReviewSetting).where(cond)).scalar_one_or_none()


def stalled_days_for(scope: Organization | None) -> int:
    """N of "no held activity for N days": the scope's own setting, else the nearest scope above, else 30."""
    settings = _settings_along(scope)
    return settings[0].stalled_days if settings else DEFAULT_STALLED_DAYS


def _settings_along(scope: Organization | None) -> list[ReviewSetting]:
    """Settings rows of `scope` and the scopes above it (nearest first), then the platform's."""
    ids = list(reversed(scope.ancestor_ids)) if scope is not None else []
    rows = db.session.execute(
        sa.select(ReviewSetting).where(
            sa.or_(ReviewSetting.scope_org_id.is_(None), ReviewSetting.scope_org_id.in_(ids or [-1]))
        )
    ).scalars().all()
    by_scope = {r.scope_org_id: r for r in rows}
    ordered = [by_scope[i] for i in ids if i in by_scope]
    if None in by_scope:
        ordered.append(by_scope[None])
    return ordered


def published_ranking_scope(org: Organization | None) -> ReviewSetting | None:
    """The nearest scope above `org` (itself included) whose committee published its ranking, if any."""
    if org is None:
        return None
    for s in _settings_along(org):
        if s.ranking_published:
            return s
    return None


# --- the cockpit --------------------------------------------------------------------------------------


@dataclass
class PairingRow:
    agreement: PairingAgreement
    parties: list[PairingParty]
    in_scope_ids: set[int]
    cells: dict[str, pg.CategoryProgress]
    overall: str
    signals: pg.PairingSignals

    @property
    def party_names(self) -> str:
        return " × ".join(short_name(o) for o in self.parties)

    @property
    def relations(self) -> list[str]:
        return sorted({o.relation.label for o in self.parties})


@dataclass
class OrgTotal:
    org: PairingParty
    pairings: int = 0
    held: dict[str, int] = field(default_factory=dict)  # distinct held activities per category
    confirmed: dict[str, int] = field(default_factory=dict)
    status_counts: dict[str, int] = field(default_factory=lambda: {s: 0 for s in STATUS_ORDER})

    @property
    def held_total(self) -> int:
        return sum(self.held.values())

    @property
    def confirmed_total(self) -> int:
        return sum(self.confirmed.values())

    @property
    def lagging(self) -> int:
        return self.status_counts["behind"] + self.status_counts["none"]


@dataclass
class StalledItem:
    agreement: PairingAgreement
    parties: list[PairingParty]
    last_held_on: Optional[date]
    days_silent: int
    fact: str  # a UiText: Chinese in the export, in the reader's language on screen (|ui_text)


@dataclass
class OneSidedItem:
    agreement: PairingAgreement
    parties: list[PairingParty]
    facts: list[str]  # UiTexts, as `fact` above


@dataclass
class Cockpit:
    period: ReviewPeriod
    scope: Optional[Organization]
    categories: list  # the Category objects shown as columns
    rows: list[PairingRow]
    org_totals: list[OrgTotal]
    stalled: list[StalledItem]
    one_sided: list[OneSidedItem]
    stalled_days: int
    status_counts: dict[str, int]

    @property
    def behind_rows(self) -> list[PairingRow]:
        return [r for r in self.rows if r.overall in ("behind", "none")]


def short_name(org: Organization | PairingParty) -> str:
    """The name to print in tight places."""
    return org.short_name or org.name


def _local_midnight_utc(d: date) -> datetime:
    return datetime.combine(d, time.min, tzinfo=local_tz()).astimezone(timezone.utc)


def _ended_before(agreement: Agreement | PairingAgreement, d: date) -> bool:
    """True when the agreement was ended (terminated early) before the day `d` began."""
    return agreement.ended_at is not None and agreement.ended_at < _local_midnight_utc(d)


def in_force_on(agreement: Agreement | PairingAgreement, d: date) -> bool:
    """Signed, inside its term on `d`, and not terminated before it."""
    return (
        agreement.status.value in ("active", "expired", "terminated")
        and agreement.starts_on <= d <= agreement.ends_on
        and not _ended_before(agreement, d)
    )


def _party_subquery(cond):
    return (
        sa.select(AgreementParty.agreement_id)
        .join(Organization, Organization.id == AgreementParty.organization_id)
        .where(cond)
    )


def pairings_condition(period: ReviewPeriod, scope: Organization | None, relation: str | None = None):
    """SQL condition on Agreement: in force during the period, a party in `scope`'s subtree, a party of `relation`."""
    conds = [active_in_month_filter(period.first, period.last)]
    if scope is not None:
        conds.append(Agreement.id.in_(_party_subquery(Organization.path.startswith(scope.path, autoescape=True))))
    if relation:
        conds.append(Agreement.id.in_(_party_subquery(Organization.relation == OrgRelation(relation))))
    return sa.and_(*conds)


@dataclass(frozen=True)
class PairingParty:
    """An organization as the cockpit shows it (plain data, memoised with the pairings; reads like Organization)."""

    id: int
    name: str
    short_name: Optional[str]
    path: str
    relation: OrgRelation
    kind: object  # OrgKind
    parent_id: Optional[int]
    is_active: bool

    @property
    def depth(self) -> int:
        return self.path.strip("/").count("/")


@dataclass(frozen=True)
class PairingAgreement:
    """An agreement as the cockpit, progress.agreement_progress and progress.pairing_signals read it."""

    id: int
    title: str
    number: Optional[str]
    status: object  # AgreementStatus
    starts_on: date
    ends_on: date
    ended_at: Optional[datetime]
    parties: tuple[PairingParty, ...]  # in document order (AgreementParty.position), as Agreement.parties

    @property
    def party_org_ids(self) -> list[int]:
        return [o.id for o in self.parties]


def pairings_in_scope(period: ReviewPeriod, scope: Organization | None,
                      relation: str | None = None) -> tuple[PairingAgreement, ...]:
    """Agreements in force during the period with a party in the scope (all for None), parties included.

    Issue 10: plain data memoised per data generation (the cockpit read ~600 agreements and their parties as
    ORM rows on every request). Keyed on the period's cut, the scope (its id fixes its path within a
    generation) and the relation; two column-only statements when computed."""
    def compute() -> tuple[PairingAgreement, ...]:
        cond = pairings_condition(period, scope, relation)
        parties: dict[int, list[PairingParty]] = defaultdict(list)
        orgs: dict[int, PairingParty] = {}  # one object per organization, as the ORM identity map gave
        for aid, *cols in db.session.execute(
            sa.select(AgreementParty.agreement_id, Organization.id, Organization.name, Organization.short_name,
                      Organization.path, Organization.relation, Organization.kind, Organization.parent_id,
                      Organization.is_active)
            .join(Organization, Organization.id == AgreementParty.organization_id)
            .where(AgreementParty.agreement_id.in_(sa.select(Agreement.id).where(cond)))
            .order_by(AgreementParty.agreement_id, AgreementParty.position, AgreementParty.id)
        ):
            org = orgs.get(cols[0])
            if org is None:
                org = orgs[cols[0]] = PairingParty(*cols)
            parties[aid].append(org)
        return tuple(
            PairingAgreement(*row, parties=tuple(parties.get(row[0], ())))
            for row in db.session.execute(
                sa.select(Agreement.id, Agreement.title, Agreement.number, Agreement.status, Agreement.starts_on,
                          Agreement.ends_on, Agreement.ended_at)
                .where(cond)
                .order_by(Agreement.id)
            )
        )

    return memoized("review.pairings", (period.first, period.last, scope.id if scope is not None else None,
                                        relation), compute)


def _within(org: PairingParty, scope: Organization | None) -> bool:
    return scope is None or org.path.startswith(scope.path)


def build_cockpit(
    scope: Organization | None,
    period: ReviewPeriod,
    *,
    relation: str | None = None,
    category: str | None = None,
    stalled_days: int = DEFAULT_STALLED_DAYS,
    sort: str = "org",
) -> Cockpit:
    """Pairings × categories for a period in a subtree (None: everything), with totals and the two lists."""
    agreements = pairings_in_scope(period, scope, relation)
    progress = pg.agreement_progress(agreements, period.first, period.last)
    signals = pg.pairing_signals(agreements, period.last)
    codes = [category] if category else list(CATEGORY_CODES)

    rows: list[PairingRow] = []
    for a in agreements:
        parties = list(a.parties)
        per_cat = progress[a.id]
        cells = {c: per_cat[c] for c in codes}
        if category and cells[category].status == "na":
            continue  # filtering by a category: only pairings that owe or did something in it
        rows.append(PairingRow(
            agreement=a, parties=parties, in_scope_ids={o.id for o in parties if _within(o, scope)},
            cells=cells, overall=pg.overall_status(cells), signals=signals[a.id],
        ))
    if sort == "status":
        rows.sort(key=lambda r: (STATUS_ORDER.index(r.overall), r.agreement.id))
    else:
        rows.sort(key=lambda r: (min((o.path for o in r.parties if o.id in r.in_scope_ids), default=""), r.agreement.id))

    status_counts = {s: 0 for s in STATUS_ORDER}
    for r in rows:
        for p in r.cells.values():
            status_counts[p.status] += 1

    totals = _org_totals(rows, period, scope, relation, codes)
    stalled, one_sided = _signal_lists(rows, period, stalled_days)
    return Cockpit(
        period=period, scope=scope, categories=[CATEGORY_BY_CODE[c] for c in codes], rows=rows,
        org_totals=totals, stalled=stalled, one_sided=one_sided, stalled_days=stalled_days,
        status_counts=status_counts,
    )


def _org_totals(rows: list[PairingRow], period: ReviewPeriod, scope: Organization | None,
                relation: str | None, codes: list[str]) -> list[OrgTotal]:
    """Per organization in scope: its pairings, distinct activities per category, cells by status."""
    totals: dict[int, OrgTotal] = {}
    for r in rows:
        for org in r.parties:
            if org.id not in r.in_scope_ids:
                continue
            t = totals.setdefault(org.id, OrgTotal(org=org))
            t.pairings += 1
            for p in r.cells.values():
                t.status_counts[p.status] += 1
    if not totals:
        return []
    # One grouped query over the same pairings: distinct activities, so an activity serving two of an
    # organization's pairings counts once (as in the organization's monthly report).
    # Issue 10: it can start from the period's activities (by date, through the covering
    # ix_activities_held_on_stats; see progress.agreement_in) rather than from every activity of every pairing,
    # and takes the pairings already loaded (those filtered out by a category hold nothing in it) instead of
    # re-running their condition as a subquery. Organizations outside the scope are dropped below (they are
    # not in `totals`).
    agreement_ids = [r.agreement.id for r in rows]
    confirmed = sa.func.count(sa.distinct(sa.case((Activity.confirmation == ConfirmationState.confirmed, Activity.id))))
    # Not chunked: an activity serving pairings of two chunks would be counted twice.
    stmt = (
        sa.select(AgreementParty.organization_id, Activity.category, sa.func.count(sa.distinct(Activity.id)), confirmed)
        .select_from(Activity)
        .join(ActivityAgreement, ActivityAgreement.activity_id == Activity.id)
        .join(AgreementParty, AgreementParty.agreement_id == ActivityAgreement.agreement_id)
        .where(
            pg.agreement_in(agreement_ids, period.first, period.last, [r.agreement for r in rows]),
            Activity.status == ActivityStatus.held,
            Activity.held_on >= period.first,
            Activity.held_on <= period.last,
            Activity.category.in_(codes),
        )
        .group_by(AgreementParty.organization_id, Activity.category)
    )
    counted = memoized("review.org_totals", (tuple(agreement_ids), period.first, period.last, tuple(codes)),
                       lambda: [tuple(r) for r in db.session.execute(stmt)])
    for org_id, cat, held, conf in counted:
        t = totals.get(org_id)
        if t is not None:
            t.held[cat] = int(held)
            t.confirmed[cat] = int(conf or 0)
    return sorted(totals.values(), key=lambda t: t.org.path)


def _signal_lists(rows: list[PairingRow], period: ReviewPeriod, stalled_days: int):
    """Stalled and one-sided pairings among those still in force at the period's end, each with its fact."""
    as_of = period.last
    stalled: list[StalledItem] = []
    one_sided: list[OneSidedItem] = []
    silent_keys = []
    live = [r for r in rows if in_force_on(r.agreement, as_of)]
    for r in live:
        s = r.signals
        if s.days_silent >= stalled_days:
            if s.last_held_on is not None:
                fact = UiText(N_("最近一次活动：%(date)s（%(days)s 天前）"), date=UiText.date(s.last_held_on),
                              days=s.days_silent)
            else:
                fact = UiText(N_("生效以来尚无已开展的活动（已 %(days)s 天）"), days=s.days_silent)
            stalled.append(StalledItem(r.agreement, r.parties, s.last_held_on, s.days_silent, fact))
        silent_keys.extend((r.agreement.id, org_id) for org_id in s.silent_partner_ids)
    waiting = pending_requests(silent_keys, as_of)
    for r in live:
        s = r.signals
        if not s.one_sided:
            continue
        names = {o.id: short_name(o) for o in r.parties}
        facts = []
        if s.dominant_org_id is not None:
            total = sum(s.entries.values())
            facts.append(UiText(N_("近%(days)s天 %(total)s 条记录中 %(mine)s 条由%(org)s录入"),
                                days=pg.ONE_SIDED_WINDOW_DAYS, total=total, mine=s.entries[s.dominant_org_id],
                                org=names[s.dominant_org_id]))
        for org_id in s.silent_partner_ids:
            count, oldest = waiting.get((r.agreement.id, org_id), (0, None))
            if count:
                text = UiText(N_("%(org)s被请求确认的 %(n)s 条记录均未答复"), org=names[org_id], n=count)
            else:
                text = UiText(N_("%(org)s从未确认对方录入的活动"), org=names[org_id])
            if oldest is not None:
                text = UiText(N_("%(text)s（最早一条已等待 %(days)s 天）"), text=text, days=(as_of - oldest).days)
            facts.append(text)
        one_sided.append(OneSidedItem(r.agreement, r.parties, facts))
    stalled.sort(key=lambda i: (-i.days_silent, i.agreement.id))
    return stalled, one_sided


def pending_requests(keys: Iterable[tuple[int, int]], as_of: date) -> dict[tuple[int, int], tuple[int, Optional[date]]]:
    """{(agreement_id, org_id): (unanswered requests, local date of the oldest)} over the one-sided window.

    Same window as progress.pairing_signals (held activities of the last 180 days up to `as_of`); one
    grouped query for all the pairs.
    """
    keys = list(keys)
    if not keys:
        return {}
    agreement_ids = sorted({k[0] for k in keys})
    org_ids = sorted({k[1] for k in keys})
    window_start = as_of - timedelta(days=pg.ONE_SIDED_WINDOW_DAYS - 1)
    stmt = (
        sa.select(ActivityAgreement.agreement_id, ActivityConfirmation.organization_id, sa.func.count(),
                  sa.func.min(ActivityConfirmation.requested_at))
        .join(Activity, Activity.id == ActivityAgreement.activity_id)
        .join(ActivityConfirmation, ActivityConfirmation.activity_id == Activity.id)
        .where(
            ActivityAgreement.agreement_id.in_(agreement_ids),
            ActivityConfirmation.organization_id.in_(org_ids),
            ActivityConfirmation.state == ConfirmationState.pending,
            Activity.status == ActivityStatus.held,
            Activity.held_on >= window_start,
            Activity.held_on <= as_of,
        )
        .group_by(ActivityAgreement.agreement_id, ActivityConfirmation.organization_id)
    )
    wanted = set(keys)
    out = {}
    for aid, org_id, n, oldest in db.session.execute(stmt):
        if (aid, org_id) in wanted:
            if isinstance(oldest, str):  # SQLite returns MIN() of a datetime column as text
                oldest = datetime.fromisoformat(oldest).replace(tzinfo=timezone.utc)
            elif isinstance(oldest, datetime) and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=timezone.utc)
            out[(aid, org_id)] = (int(n), oldest.astimezone(local_tz()).date() if oldest else None)
    return out


# --- drill-down ----------------------------------------------------------------------------------------


def cell_activities(agreement_id: int, category: str, period: ReviewPeriod) -> list[Activity]:
    """Every activity of the agreement in the category dated in the period (withdrawn and planned too)."""
    stmt = (
        sa.select(Activity)
        .join(ActivityAgreement, ActivityAgreement.activity_id == Activity.id)
        .where(
            ActivityAgreement.agreement_id == agreement_id,
            Activity.category == category,
            Activity.held_on >= period.first,
            Activity.held_on <= period.end,
        )
        .options(
            selectinload(Activity.organizer_org),
            selectinload(Activity.confirmations).selectinload(ActivityConfirmation.organization),
        )
        .order_by(Activity.held_on, Activity.id)
    )
    return list(db.session.execute(stmt).scalars())


def year_to_date_activities(agreement_id: int, category: str, period: ReviewPeriod) -> list[Activity]:
    """The confirmed held activities behind a cell's year-to-date figure (1 January to the period's end)."""
    stmt = (
        sa.select(Activity)
        .join(ActivityAgreement, ActivityAgreement.activity_id == Activity.id)
        .where(
            ActivityAgreement.agreement_id == agreement_id,
            Activity.category == category,
            Activity.status == ActivityStatus.held,
            Activity.confirmation == ConfirmationState.confirmed,
            Activity.held_on >= date(period.last.year, 1, 1),
            Activity.held_on <= period.last,
        )
        .options(selectinload(Activity.organizer_org))
        .order_by(Activity.held_on, Activity.id)
    )
    return list(db.session.execute(stmt).scalars())


def counts_in_period(activity: Activity, period: ReviewPeriod) -> bool:
    """True when the activity is part of the cell's `held` figure (held, dated inside the cut period)."""
    return activity.status is ActivityStatus.held and period.first <= activity.held_on <= period.last


# --- evaluations and typical cases --------------------------------------------------------------------------


def evaluations_for_activity(activity_id: int) -> list[ActivityEvaluation]:
    """The committee's evaluations of one activity, newest first, reviewers loaded."""
    stmt = (
        sa.select(ActivityEvaluation)
        .where(ActivityEvaluation.activity_id == activity_id)
        .options(selectinload(ActivityEvaluation.reviewer))
        .order_by(ActivityEvaluation.updated_at.desc(), ActivityEvaluation.id.desc())
    )
    return list(db.session.execute(stmt).scalars())


@dataclass(frozen=True)
class TypicalCaseItem:
    activity_id: int
    title: str
    held_on: date
    category: str
    category_name: str
    organizer: str
    organizations: str  # participating organizations, 、-separated (UiText joins: ", " on English screens)
    reason: str  # the reviewers' comments, ；-separated
    marked_by: str


def _typical_activity_ids(date_from: date, date_to: date):
    return (
        sa.select(ActivityEvaluation.activity_id)
        .join(Activity, Activity.id == ActivityEvaluation.activity_id)
        .where(
            ActivityEvaluation.typical_case.is_(True),
            Activity.status == ActivityStatus.held,
            # Disputed after it was marked: not held up as an example while the partners disagree.
            Activity.confirmation != ConfirmationState.disputed,
            Activity.held_on >= date_from,
            Activity.held_on <= date_to,
        )
    )


def _typical_items(id_query) -> list[TypicalCaseItem]:
    acts = db.session.execute(
        sa.select(Activity)
        .where(Activity.id.in_(id_query))
        .options(
            selectinload(Activity.organizer_org),
            selectinload(Activity.participants).selectinload(ActivityOrganization.organization),
        )
        .order_by(Activity.held_on, Activity.id)
    ).scalars().all()
    if not acts:
        return []
    evals: dict[int, list[ActivityEvaluation]] = defaultdict(list)
    for ev in db.session.execute(
        sa.select(ActivityEvaluation)
        .where(ActivityEvaluation.activity_id.in_([a.id for a in acts]), ActivityEvaluation.typical_case.is_(True))
        .options(selectinload(ActivityEvaluation.reviewer))
        .order_by(ActivityEvaluation.id)
    ).scalars():
        evals[ev.activity_id].append(ev)
    out = []
    for a in acts:
        names = [short_name(p.organization) for p in a.participants] or [short_name(a.organizer_org)]
        mine = evals[a.id]
        out.append(TypicalCaseItem(
            activity_id=a.id, title=a.title, held_on=a.held_on, category=a.category,
            category_name=CATEGORY_BY_CODE[a.category].name, organizer=short_name(a.organizer_org),
            organizations=UiText.join(N_("、"), names),
            reason=UiText.join(N_("；"), [e.comment.strip() for e in mine if e.comment.strip()]),
            marked_by=UiText.join(N_("、"), [e.reviewer.display_name for e in mine]),
        ))
    return out


def typical_cases(org_ids: Iterable[int] | None, date_from: date, date_to: date) -> list[TypicalCaseItem]:
    """Held activities marked 典型案例 between two dates under agreements with a party in `org_ids` (None: all)."""
    ids = _typical_activity_ids(date_from, date_to)
    if org_ids is not None:
        org_ids = list(org_ids)
        if not org_ids:
            return []
        ids = ids.where(ActivityEvaluation.activity_id.in_(
            sa.select(ActivityAgreement.activity_id)
            .join(AgreementParty, AgreementParty.agreement_id == ActivityAgreement.agreement_id)
            .where(AgreementParty.organization_id.in_(org_ids))
        ))
    return _typical_items(ids)


def typical_cases_for_agreements(agreement_ids: list[int], date_from: date, date_to: date) -> list[TypicalCaseItem]:
    """Typical cases among the activities of these agreements between two dates."""
    if not agreement_ids:
        return []
    ids = _typical_activity_ids(date_from, date_to).where(ActivityEvaluation.activity_id.in_(
        sa.select(ActivityAgreement.activity_id).where(ActivityAgreement.agreement_id.in_(agreement_ids))
    ))
    return _typical_items(ids)


# --- home panel -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScopeSummary:
    period: ReviewPeriod
    pairings: int
    stalled: int
    one_sided: int
    behind: int


def scope_summary(scope: Organization | None, as_of: date) -> ScopeSummary:
    """Counts for a reviewer's home panel: pairings, stalled, one-sided and behind, this month.

    Issue 10: the whole cockpit is built for four numbers, so they are memoised per data generation, per scope
    and day (the settings it reads — stalled days — are data too)."""
    def compute() -> ScopeSummary:
        period = make_period("month", as_of.year, as_of.month, as_of)
        c = build_cockpit(scope, period, stalled_days=stalled_days_for(scope))
        return ScopeSummary(period, len(c.rows), len(c.stalled), len(c.one_sided), len(c.behind_rows))

    return memoized("review.scope_summary", (scope.id if scope is not None else None, as_of), compute)
