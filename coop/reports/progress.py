"""Progress against commitments — the one place where "how is this pairing doing" is computed.

Screens, monthly PDFs, the committee cockpit, reminders and the JSON API all read these functions, so
their figures can never disagree. Rules (shown to users on the report's last page):

* Only an activity's *primary* category counts towards that category's commitment.
* `held` counts held activities in the period whatever their confirmation; `confirmed` only those every
  partner confirmed. Progress towards the commitment (`year_to_date`) counts confirmed activities only.
* The year is the calendar year. An agreement that runs for part of a year owes that part:
  target = count_per_year × days of the term inside the year ÷ days in the year, rounded half up — with no
  minimum: a year whose share rounds to 0 (a term starting on 29 December) owes nothing that year. A minimum of
  one would make a one-year term that straddles two calendar years owe more than the agreement promised.
* By a date D, the expected count is floor(target × elapsed share of the term inside the year). Status of a
  category with a commitment: `done` (target reached; with a target of 0, something confirmed), `on_track`
  (year_to_date ≥ expected, including a target of 0 with nothing done), `behind` (some, but fewer than
  expected), `none` (nothing while something was expected), `not_started` (the period ends before the term
  starts), `ended` (the term ended before the period's year). Without a commitment: `extra` (activities held in
  the period or confirmed this year, outside the agreement's commitments — never counted as a completed
  commitment) or `na` (nothing).
* A pairing is *stalled* when nothing was held for 30 days or more before the period's end (counting from
  the term's start when nothing was ever held).
* A pairing is *one-sided* when, over the 180 days before the period's end, one party logged at least 80 %
  of at least 4 entries, or a partner was asked to confirm at least 2 entries and answered none.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Iterable

import sqlalchemy as sa

from agreements.models import Agreement, AgreementCommitment
from coop.activities.models import (
    Activity,
    ActivityAgreement,
    ActivityConfirmation,
    ActivityStatus,
    ConfirmationState,
)
from coop.cache import memoized
from coop.categories import CATEGORY_CODES
from coop.extensions import db
from coop.i18n import N_

# Chinese (PDFs, spreadsheets, the API); screens translate them where shown: {{ _(label) }}.
STATUS_LABELS = {
    "done": N_("已完成"),
    "on_track": N_("进度正常"),
    "behind": N_("进度滞后"),
    "none": N_("尚未开展"),
    "not_started": N_("期限未开始"),
    "ended": N_("期限已结束"),
    "extra": N_("约定外开展"),
    "na": N_("未作约定"),
}
# Statuses of a category with a commitment in force, worst first (what overall_status weighs).
COMMITTED_STATUSES = ("none", "behind", "on_track", "done")


@dataclass(frozen=True)
class CategoryProgress:
    agreement_id: int
    category: str
    held: int  # held in the period (any confirmation state)
    confirmed: int  # held in the period and confirmed by every partner
    pending: int  # held in the period, awaiting confirmation
    disputed: int  # held in the period, disputed by a partner
    year_to_date: int  # confirmed, from 1 January (or the term's start) to the period's end
    commitment: int  # count per year promised in the agreement
    target: int  # what this calendar year owes (pro rata for part-year terms)
    expected: int  # what should be done by the period's end
    status: str

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[self.status]

    @property
    def percent(self) -> int:
        """Year-to-date as a share of the year's target, capped at 100."""
        if self.target <= 0:
            return 100 if self.year_to_date else 0
        return min(100, round(100 * self.year_to_date / self.target))

    def as_dict(self) -> dict:
        d = asdict(self)
        d["status_label"] = self.status_label
        return d


def _days(a: date, b: date) -> int:
    """Days from a to b inclusive (0 when b < a)."""
    return max(0, (b - a).days + 1)


def year_share(starts_on: date, ends_on: date, year: int) -> tuple[date, date, float]:
    """The part of a term inside `year`: (first day, last day, share of the year's days)."""
    y0, y1 = date(year, 1, 1), date(year, 12, 31)
    first, last = max(starts_on, y0), min(ends_on, y1)
    return first, last, _days(first, last) / _days(y0, y1)


def yearly_target(count_per_year: int, starts_on: date, ends_on: date, year: int) -> int:
    """What a commitment owes in calendar year `year` (pro rata for part-year terms, rounded half up)."""
    if count_per_year <= 0:
        return 0
    _first, _last, share = year_share(starts_on, ends_on, year)
    if share <= 0:
        return 0
    return min(count_per_year, math.floor(count_per_year * share + 0.5))


def expected_by(target: int, starts_on: date, ends_on: date, as_of: date) -> int:
    """What should be done by `as_of` out of the year's target (rounded down: nobody is behind early)."""
    if target <= 0:
        return 0
    first, last, _share = year_share(starts_on, ends_on, as_of.year)
    span = _days(first, last)
    if span == 0 or as_of < first:
        return 0
    elapsed = _days(first, min(as_of, last))
    return math.floor(target * elapsed / span + 1e-9)


def term_position(starts_on: date, ends_on: date, period_end: date) -> str:
    """'before' when the period ends before the term starts, 'after' when the term ended before the period's
    year began (the year owes nothing and shows nothing of the term), else 'in'."""
    if period_end < starts_on:
        return "before"
    if ends_on < date(period_end.year, 1, 1):
        return "after"
    return "in"


def classify(year_to_date: int, target: int, expected: int, held_any: bool, *,
             committed: bool | None = None, term: str = "in") -> str:
    """The status word for a category (see module docstring). `committed` defaults to target > 0."""
    if committed is None:
        committed = target > 0
    if not committed:
        return "extra" if year_to_date or held_any else "na"
    if term == "before":
        return "not_started"
    if term == "after":
        return "ended"
    if target <= 0:  # a commitment whose share of this year rounds to nothing: nothing is owed
        return "done" if year_to_date else "on_track"
    if year_to_date >= target:
        return "done"
    if year_to_date >= expected:
        return "on_track"
    if year_to_date == 0:
        return "none"
    return "behind"


# Group scale (issue 10). Two ways to read the held activities of a set of agreements in [first, last]:
# - agreement-driven: walk each agreement's links (its index) and fetch every activity of its whole term;
# - date-driven: read the period's activities by date — ix_activities_held_on_stats covers every column these
#   aggregates use, so no table row is read — and keep those linked to the set.
# For a few agreements, or a period covering most of their terms (a year-to-date over one-year terms), the
# first wins; for a committee's hundreds of agreements and a short period (a month, a quarter, the 180-day
# one-sided window over multi-year history) the second reads several times fewer rows (measured on the
# generated group: a month's counts 20 ms → 2–5 ms, a year's over three years of history 72 → 37 ms).
# `agreement_id + 0` hides the agreement index from the planner (SQLite and PostgreSQL alike) so the
# date-driven plan is taken; otherwise the plain IN keeps the agreement-driven one.
DATE_DRIVEN_MIN_AGREEMENTS = 40
DATE_DRIVEN_MAX_SHARE = 0.4  # date-driven when the period covers at most 40 % of the set's term-days
DATE_DRIVEN_MAX_DAYS = 92  # without the terms at hand: periods up to a quarter


def agreement_in(agreement_ids: list[int], first: date | None = None, last: date | None = None,
                 agreements: Iterable[Agreement] | None = None):
    """ActivityAgreement.agreement_id IN (…) for activities held in [first, last], written so the planner reads
    them by date when that is cheaper (see above). `agreements` (loaded rows) lets it weigh their terms."""
    col = ActivityAgreement.agreement_id
    if len(agreement_ids) <= DATE_DRIVEN_MIN_AGREEMENTS or first is None or last is None:
        return col.in_(agreement_ids)
    if agreements is None:
        narrow = (last - first).days < DATE_DRIVEN_MAX_DAYS
    else:
        term = overlap = 0
        for a in agreements:
            term += (a.ends_on - a.starts_on).days + 1
            overlap += max(0, (min(a.ends_on, last) - max(a.starts_on, first)).days + 1)
        narrow = overlap <= DATE_DRIVEN_MAX_SHARE * term
    return (col + 0).in_(agreement_ids) if narrow else col.in_(agreement_ids)


def _counts(agreement_ids: list[int], period_start: date, period_end: date,
            agreements: Iterable[Agreement] | None = None) -> dict:
    """{(agreement_id, category): (held, confirmed, pending, disputed, ytd_confirmed)} in one grouped query."""
    year_start = date(period_end.year, 1, 1)
    lower = min(year_start, period_start)
    in_period = sa.and_(Activity.held_on >= period_start, Activity.held_on <= period_end)
    in_ytd = sa.and_(Activity.held_on >= year_start, Activity.held_on <= period_end)
    conf = Activity.confirmation

    def n(cond):
        return sa.func.sum(sa.case((cond, 1), else_=0))

    stmt = (
        sa.select(
            ActivityAgreement.agreement_id,
            Activity.category,
            n(in_period),
            n(sa.and_(in_period, conf == ConfirmationState.confirmed)),
            n(sa.and_(in_period, conf == ConfirmationState.pending)),
            n(sa.and_(in_period, conf == ConfirmationState.disputed)),
            n(sa.and_(in_ytd, conf == ConfirmationState.confirmed)),
        )
        .join(Activity, Activity.id == ActivityAgreement.activity_id)
        .where(
            agreement_in(agreement_ids, lower, period_end, agreements),
            Activity.status == ActivityStatus.held,
            Activity.held_on >= lower,
            Activity.held_on <= period_end,
        )
        .group_by(ActivityAgreement.agreement_id, Activity.category)
    )
    return {(r[0], r[1]): (int(r[2] or 0), int(r[3] or 0), int(r[4] or 0), int(r[5] or 0), int(r[6] or 0))
            for r in db.session.execute(stmt)}


def agreement_progress(
    agreements: Iterable[Agreement], period_start: date, period_end: date
) -> dict[int, dict[str, CategoryProgress]]:
    """Per agreement and per 八联 category, the figures for a period (month, quarter or year).

    `agreements` must be loaded Agreement rows; their commitments are read in one query. The result is
    memoised per data generation (coop.cache: plain frozen dataclasses; callers must not change the dicts).
    """
    agreements = list(agreements)
    ids = [a.id for a in agreements]
    if not ids:
        return {}
    return memoized("progress.agreements", (tuple(ids), period_start, period_end),
                    lambda: _agreement_progress(agreements, ids, period_start, period_end))


def _agreement_progress(agreements: list[Agreement], ids: list[int], period_start: date,
                        period_end: date) -> dict[int, dict[str, CategoryProgress]]:
    counts = {}
    # Chunk the IN list: PostgreSQL and SQLite both cope, but plans stay sane and SQLite's
    # variable limit is never hit with thousands of agreements.
    for i in range(0, len(ids), 500):
        counts.update(_counts(ids[i : i + 500], period_start, period_end, agreements[i : i + 500]))
    # Plain columns, not ORM rows: a committee's agreements have thousands of commitments (issue 10).
    commitments = {
        (aid, cat): n
        for aid, cat, n in db.session.execute(
            sa.select(AgreementCommitment.agreement_id, AgreementCommitment.category,
                      AgreementCommitment.count_per_year).where(AgreementCommitment.agreement_id.in_(ids))
        )
    }
    zero = (0, 0, 0, 0, 0)
    out: dict[int, dict[str, CategoryProgress]] = {}
    for a in agreements:
        per_cat = {}
        aid, starts_on, ends_on = a.id, a.starts_on, a.ends_on
        term = term_position(starts_on, ends_on, period_end)
        for code in CATEGORY_CODES:
            held, confirmed, pending, disputed, ytd = counts.get((aid, code), zero)
            commitment = commitments.get((aid, code), 0)
            if commitment:
                target = yearly_target(commitment, starts_on, ends_on, period_end.year)
                expected = expected_by(target, starts_on, ends_on, period_end)
            else:  # what yearly_target / expected_by give without a commitment, without computing the term
                target = expected = 0
            per_cat[code] = CategoryProgress(
                agreement_id=a.id, category=code, held=held, confirmed=confirmed, pending=pending,
                disputed=disputed, year_to_date=ytd, commitment=commitment, target=target,
                expected=expected,
                status=classify(ytd, target, expected, held > 0, committed=commitment > 0, term=term),
            )
        out[a.id] = per_cat
    return out


def month_bounds(year: int, month: int) -> tuple[date, date]:
    """First and last day of a month."""
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def quarter_bounds(year: int, quarter: int) -> tuple[date, date]:
    """First and last day of a quarter (1–4)."""
    first_month = 3 * (quarter - 1) + 1
    return date(year, first_month, 1), month_bounds(year, first_month + 2)[1]


def overall_status(per_category: dict[str, CategoryProgress]) -> str:
    """One word for a whole agreement: the worst status among categories with a commitment in force; else
    `not_started` / `ended` when its commitments are outside their term, else `na` (extra activities alone
    do not make a commitment)."""
    statuses = {p.status for p in per_category.values()}
    committed = [s for s in statuses if s in COMMITTED_STATUSES]
    if committed:
        return min(committed, key=COMMITTED_STATUSES.index)
    for s in ("not_started", "ended"):
        if s in statuses:
            return s
    return "na"


def monthly_held_counts(agreement_ids: list[int], first_month: date, months: int = 12) -> dict[tuple[int, int], int]:
    """{(year, month): held activity count} over `months` months from `first_month`, for a chart."""
    return {k: held for k, (held, _confirmed) in monthly_counts(agreement_ids, first_month, months).items()}


def monthly_counts(
    agreement_ids: list[int], first_month: date, months: int = 12
) -> dict[tuple[int, int], tuple[int, int]]:
    """{(year, month): (held, confirmed)} distinct activities over `months` months from `first_month`.

    Months without a held activity are absent. An activity serving several of the agreements counts once.
    """
    if not agreement_ids:
        return {}
    start = date(first_month.year, first_month.month, 1)
    end_year = start.year + (start.month - 1 + months - 1) // 12
    end_month = (start.month - 1 + months - 1) % 12 + 1
    end = month_bounds(end_year, end_month)[1]
    y, m = sa.extract("year", Activity.held_on), sa.extract("month", Activity.held_on)
    # Distinct activities: an activity linked to two agreements of the set must not be counted twice.
    # One pass over the held activities of the months (issue 10: the covering date index, then the link),
    # rather than collecting their ids first and reading every activity row again.
    stmt = (
        sa.select(
            y, m, sa.func.count(sa.distinct(Activity.id)),
            sa.func.count(sa.distinct(sa.case((Activity.confirmation == ConfirmationState.confirmed, Activity.id)))),
        )
        .select_from(Activity)
        .join(ActivityAgreement, ActivityAgreement.activity_id == Activity.id)
        .where(agreement_in(agreement_ids, start, end), Activity.status == ActivityStatus.held,
               Activity.held_on >= start, Activity.held_on <= end)
        .group_by(y, m)
    )
    return {(int(r[0]), int(r[1])): (int(r[2]), int(r[3] or 0)) for r in db.session.execute(stmt)}


def _distinct_held(agreement_ids: list[int], start: date, end: date):
    """A subquery of the ids of held activities in [start, end] linked to any of the agreements."""
    return (
        sa.select(ActivityAgreement.activity_id)
        .join(Activity, Activity.id == ActivityAgreement.activity_id)
        .where(
            agreement_in(agreement_ids, start, end),
            Activity.status == ActivityStatus.held,
            Activity.held_on >= start,
            Activity.held_on <= end,
        )
        .distinct()
        .scalar_subquery()
    )


def category_counts(agreement_ids: list[int], period_start: date, period_end: date) -> dict[str, tuple[int, int]]:
    """{category: (held, confirmed)} distinct held activities of the period across a set of agreements.

    For organization and committee totals: summing per-agreement figures would count an activity that
    serves two agreements twice.
    """
    if not agreement_ids:
        return {}
    # One pass with distinct counts, as in monthly_counts (issue 10).
    stmt = (
        sa.select(
            Activity.category, sa.func.count(sa.distinct(Activity.id)),
            sa.func.count(sa.distinct(sa.case((Activity.confirmation == ConfirmationState.confirmed, Activity.id)))),
        )
        .select_from(Activity)
        .join(ActivityAgreement, ActivityAgreement.activity_id == Activity.id)
        .where(agreement_in(agreement_ids, period_start, period_end), Activity.status == ActivityStatus.held,
               Activity.held_on >= period_start, Activity.held_on <= period_end)
        .group_by(Activity.category)
    )
    return {r[0]: (int(r[1]), int(r[2] or 0)) for r in db.session.execute(stmt)}


# --- stalled and one-sided pairings ------------------------------------------------------------------

STALLED_DAYS = 30
ONE_SIDED_WINDOW_DAYS = 180
ONE_SIDED_SHARE = 0.8
ONE_SIDED_MIN_ENTRIES = 4
SILENT_PARTNER_MIN_REQUESTS = 2


@dataclass(frozen=True)
class PairingSignals:
    agreement_id: int
    last_held_on: date | None  # last held activity on or before the period's end
    days_silent: int  # days since then (or since the term's start when nothing was held)
    stalled: bool
    entries: dict[int, int]  # organizer organization id -> held entries in the one-sided window
    dominant_org_id: int | None  # the party that logged ≥ 80 % of entries, if any
    dominant_share: float  # that party's share (0 when no entries)
    silent_partner_ids: tuple[int, ...]  # parties asked to confirm ≥ 2 entries that answered none

    @property
    def one_sided(self) -> bool:
        return self.dominant_org_id is not None or bool(self.silent_partner_ids)


def _chunks(ids: list[int], size: int = 500):
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def pairing_signals(agreements: Iterable[Agreement], as_of: date) -> dict[int, PairingSignals]:
    """Per agreement: how long it has been silent and whether one party carries it alone (rules above).
    Memoised per data generation (coop.cache)."""
    agreements = list(agreements)
    ids = [a.id for a in agreements]
    if not ids:
        return {}
    return memoized("progress.signals", (tuple(ids), as_of), lambda: _pairing_signals(agreements, ids, as_of))


def _pairing_signals(agreements: list[Agreement], ids: list[int], as_of: date) -> dict[int, PairingSignals]:
    window_start = as_of - timedelta(days=ONE_SIDED_WINDOW_DAYS - 1)
    last_held: dict[int, date] = {}
    entries: dict[int, dict[int, int]] = {}
    asked: dict[tuple[int, int], tuple[int, int]] = {}
    held_until = sa.and_(Activity.status == ActivityStatus.held, Activity.held_on <= as_of)
    in_window = sa.and_(held_until, Activity.held_on >= window_start)
    by_id = {a.id: a for a in agreements}
    for chunk in _chunks(ids):
        window_in = agreement_in(chunk, window_start, as_of, [by_id[i] for i in chunk])
        # Entries per organizer in the window, and the last held day in it (issue 10: one pass gives both;
        # date-driven when that pays, see agreement_in) ...
        for aid, org_id, n, last in db.session.execute(
            sa.select(ActivityAgreement.agreement_id, Activity.organizer_org_id, sa.func.count(),
                      sa.func.max(Activity.held_on))
            .join(Activity, Activity.id == ActivityAgreement.activity_id)
            .where(window_in, in_window)
            .group_by(ActivityAgreement.agreement_id, Activity.organizer_org_id)
        ):
            entries.setdefault(aid, {})[org_id] = int(n)
            if aid not in last_held or last > last_held[aid]:
                last_held[aid] = last
        # ... so only pairings silent throughout the window still need their (older) last held day: few,
        # hence looked up through the agreement index.
        silent = [aid for aid in chunk if aid not in last_held]
        if silent:
            for aid, last in db.session.execute(
                sa.select(ActivityAgreement.agreement_id, sa.func.max(Activity.held_on))
                .join(Activity, Activity.id == ActivityAgreement.activity_id)
                .where(ActivityAgreement.agreement_id.in_(silent), held_until, Activity.held_on < window_start)
                .group_by(ActivityAgreement.agreement_id)
            ):
                last_held[aid] = last
        answered = sa.func.sum(sa.case((ActivityConfirmation.state != ConfirmationState.pending, 1), else_=0))
        for aid, org_id, n, ans in db.session.execute(
            sa.select(ActivityAgreement.agreement_id, ActivityConfirmation.organization_id, sa.func.count(), answered)
            .join(Activity, Activity.id == ActivityAgreement.activity_id)
            # joined on the link table's activity_id, so the planner can drive it from the agreement index
            .join(ActivityConfirmation, ActivityConfirmation.activity_id == ActivityAgreement.activity_id)
            .where(window_in, in_window)
            .group_by(ActivityAgreement.agreement_id, ActivityConfirmation.organization_id)
        ):
            asked[(aid, org_id)] = (int(n), int(ans or 0))
    out = {}
    for a in agreements:
        last = last_held.get(a.id)
        since = last or a.starts_on
        days = max(0, (as_of - since).days)
        stalled = a.starts_on <= as_of and days >= STALLED_DAYS
        per_org = {org: n for org, n in entries.get(a.id, {}).items() if org in a.party_org_ids}
        total = sum(per_org.values())
        dominant, share = None, 0.0
        if total:
            top_org, top = max(per_org.items(), key=lambda kv: (kv[1], -kv[0]))
            share = top / total
            if total >= ONE_SIDED_MIN_ENTRIES and share >= ONE_SIDED_SHARE:
                dominant = top_org
        silent = tuple(
            org for org in a.party_org_ids
            if asked.get((a.id, org), (0, 0))[0] >= SILENT_PARTNER_MIN_REQUESTS and asked[(a.id, org)][1] == 0
        )
        out[a.id] = PairingSignals(
            agreement_id=a.id, last_held_on=last, days_silent=days, stalled=stalled, entries=per_org,
            dominant_org_id=dominant, dominant_share=share, silent_partner_ids=silent,
        )
    return out
