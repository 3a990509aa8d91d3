"""Points (积分): rules the committee can read and set, applied by code, explained line by line.

A score is never stored. For an organization and a year (or quarter) it is

    Σ over rules (count × points)  +  Σ manual adjustments (each with its reason, written to the audit log)

The rules (codes fixed here; points and on/off set per committee scope in PointRule rows, the nearest
scope above an organization winning, then the platform row, then the default below):

* held_confirmed — each held activity in the period confirmed by every partner, for every organization that
  took part (organizer and participants);
* typical_case — each held activity in the period a reviewer marked 典型案例 and every partner confirmed, for
  every organization that took part (a case awaiting confirmation counts once confirmed; a disputed one never
  — it cannot be marked, and one disputed after marking stops counting);
* commitment_met — each (agreement, category) whose yearly target was reached, once, for every party; it
  counts in the quarter in which the target was reached (figures from coop.reports.progress);
* disputed — each held activity in the period a partner disputed, for the organization that logged it.

Withdrawn and planned activities never count. Quarters add up to the year.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Iterable, Optional

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from agreements.models import Agreement, AgreementParty
from coop.activities.models import (
    Activity,
    ActivityOrganization,
    ActivityStatus,
    ConfirmationState,
)
from coop.cache import memoized
from coop.categories import CATEGORY_BY_CODE
from coop.extensions import db
from coop.i18n import N_
from coop.orgs.models import Organization
from coop.reports import progress as pg
from coop.reports.queries import active_in_month_filter
from coop.review.models import ActivityEvaluation, PointAdjustment, PointRule


@dataclass(frozen=True)
class RuleDef:
    code: str
    label: str
    points: int  # platform default when no PointRule row says otherwise
    explanation: str


# Labels and explanations are Chinese (exports, the audit log); screens translate them where shown.
RULES: tuple[RuleDef, ...] = (
    RuleDef("held_confirmed", N_("开展并经各方确认的共建活动"), 2,
            N_("本期已开展、且所有合作方都已确认的活动，每项活动给参与的每个组织计分。")),
    RuleDef("typical_case", N_("被党委评为典型案例"), 5,
            N_("本期已开展、被党委审阅人标记为典型案例且所有合作方都已确认的活动，每项活动给参与的每个组织计分。")),
    RuleDef("commitment_met", N_("完成协议年度约定"), 10,
            N_("协议某一类别的年度约定次数（按已确认活动计）达成时，给协议各方计分；每个协议每个类别每年一次，计入达成的季度。")),
    RuleDef("disputed", N_("活动记录被合作方提出异议"), -1,
            N_("本期已开展、被合作方提出异议的活动，给录入该活动的组织计分。")),
)
RULE_BY_CODE = {r.code: r for r in RULES}
RULE_CODES = tuple(r.code for r in RULES)
SOURCE_DEFAULT = N_("平台默认")
SOURCE_PLATFORM = N_("平台设置")


@dataclass(frozen=True)
class EffectiveRule:
    code: str
    label: str
    points: int
    active: bool
    scope_org_id: Optional[int]  # where the value comes from (None: platform row or default)
    source: str  # 平台默认 / 平台设置 (SOURCE_DEFAULT / SOURCE_PLATFORM) / the scope organization's name


@dataclass(frozen=True)
class ScoreLine:
    rule: str
    label: str
    count: int
    points: int
    subtotal: int
    source: str


@dataclass(frozen=True)
class AdjustmentLine:
    id: int
    points: int
    reason: str
    by: str
    at: datetime
    applies_on: date


@dataclass
class OrgScore:
    org_id: int
    org_name: str
    lines: list[ScoreLine] = field(default_factory=list)
    adjustments: list[AdjustmentLine] = field(default_factory=list)
    total: int = 0

    @property
    def rules_total(self) -> int:
        return sum(l.subtotal for l in self.lines)

    @property
    def adjustments_total(self) -> int:
        return sum(a.points for a in self.adjustments)

    def as_dict(self) -> dict:
        """Plain data (dates as ISO strings) for JSON or an export."""
        d = asdict(self)
        for a in d["adjustments"]:
            a["at"] = a["at"].isoformat()
            a["applies_on"] = a["applies_on"].isoformat()
        return d


# --- periods and rules ---------------------------------------------------------------------------------


SCORE_YEARS = 5  # the score pages offer this year and the four before it


def score_years(today: date) -> list[int]:
    """The years the score and typical-case pages offer, newest first (manual adjustments must fall in them)."""
    return list(range(today.year, today.year - SCORE_YEARS, -1))


def score_period(year: int, quarter: int | None = None) -> tuple[date, date]:
    """First and last day of a scoring period: a calendar year, or one quarter of it."""
    if quarter is None:
        return date(year, 1, 1), date(year, 12, 31)
    return pg.quarter_bounds(year, quarter)


def period_label(year: int, quarter: int | None = None) -> str:
    """2026年 / 2026年第三季度."""
    from coop.review.queries import QUARTER_NAMES

    return f"{year}年" + (QUARTER_NAMES[quarter] if quarter else "")


def effective_rules(orgs: Iterable[Organization]) -> dict[int, dict[str, EffectiveRule]]:
    """Per organization, the rule values that apply to it: nearest scope above, then platform, then default."""
    orgs = list(orgs)
    rows = db.session.execute(sa.select(PointRule).options(selectinload(PointRule.scope_org))).scalars().all()
    by_scope: dict[Optional[int], dict[str, PointRule]] = defaultdict(dict)
    for r in rows:
        by_scope[r.scope_org_id][r.code] = r
    out: dict[int, dict[str, EffectiveRule]] = {}
    for org in orgs:
        mine = {}
        for rule in RULES:
            chosen = None
            for scope_id in reversed(org.ancestor_ids):
                chosen = by_scope.get(scope_id, {}).get(rule.code)
                if chosen is not None:
                    break
            if chosen is None:
                chosen = by_scope.get(None, {}).get(rule.code)
            if chosen is None:
                mine[rule.code] = EffectiveRule(rule.code, rule.label, rule.points, True, None, SOURCE_DEFAULT)
            else:
                source = chosen.scope_org.name if chosen.scope_org is not None else SOURCE_PLATFORM
                mine[rule.code] = EffectiveRule(rule.code, chosen.label or rule.label, chosen.points, chosen.active,
                                                chosen.scope_org_id, source)
        out[org.id] = mine
    return out


def scope_rules(scope: Organization | None) -> dict[str, EffectiveRule]:
    """The rule values a committee scope sees for itself (None: the platform's own values)."""
    if scope is not None:
        return effective_rules([scope])[scope.id]
    rows = {r.code: r for r in db.session.execute(
        sa.select(PointRule).where(PointRule.scope_org_id.is_(None))).scalars()}
    out = {}
    for rule in RULES:
        r = rows.get(rule.code)
        out[rule.code] = (EffectiveRule(rule.code, rule.label, rule.points, True, None, SOURCE_DEFAULT) if r is None
                          else EffectiveRule(rule.code, r.label or rule.label, r.points, r.active, None, SOURCE_PLATFORM))
    return out


# --- the conditions, shared by the counts (many organizations) and the items (one organization) ---------


def _held_in(first: date, last: date):
    return sa.and_(Activity.status == ActivityStatus.held, Activity.held_on >= first, Activity.held_on <= last)


def _typical_ids():
    return sa.select(ActivityEvaluation.activity_id).where(ActivityEvaluation.typical_case.is_(True))


def _activity_conditions(first: date, last: date) -> dict[str, object]:
    return {
        "held_confirmed": sa.and_(_held_in(first, last), Activity.confirmation == ConfirmationState.confirmed),
        "typical_case": sa.and_(_held_in(first, last), Activity.confirmation == ConfirmationState.confirmed,
                                Activity.id.in_(_typical_ids())),
    }


def _involved(org_ids: list[int], cond, first: date | None = None, last: date | None = None):
    """(activity_id, org_id) for activities matching `cond` where an organization in `org_ids` took part."""
    organizer_col, participant_col = Activity.organizer_org_id, ActivityOrganization.organization_id
    if (len(org_ids) > pg.DATE_DRIVEN_MIN_AGREEMENTS and first is not None and last is not None
            and (last - first).days < pg.DATE_DRIVEN_MAX_DAYS):
        # A committee's hundreds of organizations and a quarter (issue 10): read the quarter's activities by
        # date (the covering ix_activities_held_on_stats) instead of every activity of every organization;
        # `+ 0` hides the organization indexes from the planner, as in coop/reports/progress.agreement_in.
        organizer_col, participant_col = organizer_col + 0, participant_col + 0
    organizer = sa.select(Activity.id.label("activity_id"), Activity.organizer_org_id.label("org_id")).where(
        cond, organizer_col.in_(org_ids)
    )
    participant = (
        sa.select(ActivityOrganization.activity_id.label("activity_id"), ActivityOrganization.organization_id.label("org_id"))
        .select_from(Activity)
        .join(ActivityOrganization, ActivityOrganization.activity_id == Activity.id)
        .where(cond, participant_col.in_(org_ids))
    )
    return sa.union(organizer, participant).subquery()  # UNION drops the organizer listed as participant too


def _disputed_cond(first: date, last: date):
    return sa.and_(_held_in(first, last), Activity.confirmation == ConfirmationState.disputed)


def _chunks(ids: list[int], size: int = 400):
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


def _activity_counts(org_ids: list[int], first: date, last: date) -> dict[str, dict[int, int]]:
    # Memoised per data generation (coop.cache); a deep copy, because score_breakdown adds to it.
    cached = memoized("scoring.activity_counts", (tuple(org_ids), first, last),
                      lambda: _count_activities(org_ids, first, last))
    return {code: dict(per_org) for code, per_org in cached.items()}


def _count_activities(org_ids: list[int], first: date, last: date) -> dict[str, dict[int, int]]:
    counts: dict[str, dict[int, int]] = {code: {} for code in RULE_CODES}
    for chunk in _chunks(org_ids):
        for code, cond in _activity_conditions(first, last).items():
            inv = _involved(chunk, cond, first, last)
            for org_id, n in db.session.execute(
                sa.select(inv.c.org_id, sa.func.count(sa.distinct(inv.c.activity_id))).group_by(inv.c.org_id)
            ):
                counts[code][org_id] = int(n)
        for org_id, n in db.session.execute(
            sa.select(Activity.organizer_org_id, sa.func.count())
            .where(_disputed_cond(first, last), Activity.organizer_org_id.in_(chunk))
            .group_by(Activity.organizer_org_id)
        ):
            counts["disputed"][org_id] = int(n)
    return counts


def _met_pairs(org_ids: list[int], year: int, quarter: int | None) -> dict[int, list[tuple[Agreement, str]]]:
    """{org_id: [(agreement, category)]} whose yearly target was reached in the period (parties in org_ids)."""
    first, last = score_period(year, quarter)
    y0, y1 = date(year, 1, 1), date(year, 12, 31)
    out: dict[int, list[tuple[Agreement, str]]] = defaultdict(list)
    if not org_ids:
        return out
    wanted = set(org_ids)
    agreements = []
    for chunk in _chunks(org_ids):
        agreements.extend(db.session.execute(
            sa.select(Agreement)
            .where(
                active_in_month_filter(y0, y1),
                Agreement.id.in_(sa.select(AgreementParty.agreement_id).where(AgreementParty.organization_id.in_(chunk))),
            )
            .options(selectinload(Agreement.parties))
        ).scalars().all())
    agreements = list({a.id: a for a in agreements}.values())
    if not agreements:
        return out
    # Reached by the period's end, and not already by the previous quarter's end of the same year.
    now = pg.agreement_progress(agreements, y0, last)
    before = pg.agreement_progress(agreements, y0, date.fromordinal(first.toordinal() - 1)) if first > y0 else {}

    def met(progress, a, code):
        p = progress.get(a.id, {}).get(code)
        return p is not None and p.target > 0 and p.year_to_date >= p.target

    for a in sorted(agreements, key=lambda a: a.id):
        for code in CATEGORY_BY_CODE:
            if met(now, a, code) and not met(before, a, code):
                for org_id in a.party_org_ids:
                    if org_id in wanted:
                        out[org_id].append((a, code))
    return out


def _adjustments(org_ids: list[int], first: date, last: date) -> dict[int, list[AdjustmentLine]]:
    out: dict[int, list[AdjustmentLine]] = defaultdict(list)
    for chunk in _chunks(org_ids):
        for adj in db.session.execute(
            sa.select(PointAdjustment)
            .where(PointAdjustment.org_id.in_(chunk), PointAdjustment.applies_on >= first,
                   PointAdjustment.applies_on <= last)
            .options(selectinload(PointAdjustment.by))
            .order_by(PointAdjustment.applies_on, PointAdjustment.id)
        ).scalars():
            out[adj.org_id].append(AdjustmentLine(adj.id, adj.points, adj.reason, adj.by.display_name, adj.at,
                                                  adj.applies_on))
    return out


def score_breakdown(org_ids: Iterable[int], year: int, quarter: int | None = None) -> dict[int, OrgScore]:
    """Per organization: one line per active rule {rule, count, points, subtotal}, the adjustments, the total."""
    ids = sorted(set(org_ids))
    if not ids:
        return {}
    orgs = []
    for chunk in _chunks(ids):
        orgs.extend(db.session.execute(sa.select(Organization).where(Organization.id.in_(chunk))).scalars())
    first, last = score_period(year, quarter)
    rules = effective_rules(orgs)
    counts = _activity_counts(ids, first, last)
    met = _met_pairs(ids, year, quarter)
    counts["commitment_met"] = {org_id: len(pairs) for org_id, pairs in met.items()}
    adjustments = _adjustments(ids, first, last)
    out = {}
    for org in sorted(orgs, key=lambda o: o.path):
        score = OrgScore(org_id=org.id, org_name=org.name, adjustments=adjustments.get(org.id, []))
        for rule in RULES:
            eff = rules[org.id][rule.code]
            if not eff.active:
                continue
            n = counts[rule.code].get(org.id, 0)
            score.lines.append(ScoreLine(rule.code, eff.label, n, eff.points, n * eff.points, eff.source))
        score.total = score.rules_total + score.adjustments_total
        out[org.id] = score
    return out


# --- what is behind each line, for one organization ("why this score") ---------------------------------


@dataclass(frozen=True)
class ScoreItems:
    activities: dict[str, list[Activity]]  # rule code -> activities
    commitments: list[tuple[Agreement, str]]  # (agreement, category) met in the period


def score_items(org_id: int, year: int, quarter: int | None = None) -> ScoreItems:
    """The activities and commitments each rule counted for one organization (same conditions as the counts)."""
    first, last = score_period(year, quarter)
    acts: dict[str, list[Activity]] = {}
    conds = _activity_conditions(first, last)
    for code, cond in conds.items():
        inv = _involved([org_id], cond)
        acts[code] = list(db.session.execute(
            sa.select(Activity).where(Activity.id.in_(sa.select(inv.c.activity_id)))
            .options(selectinload(Activity.organizer_org)).order_by(Activity.held_on, Activity.id)
        ).scalars())
    acts["disputed"] = list(db.session.execute(
        sa.select(Activity).where(_disputed_cond(first, last), Activity.organizer_org_id == org_id)
        .order_by(Activity.held_on, Activity.id)
    ).scalars())
    return ScoreItems(acts, _met_pairs([org_id], year, quarter).get(org_id, []))


# --- who is scored, and the ranking -----------------------------------------------------------------------


def scored_org_ids(scope: Organization | None, year: int, quarter: int | None = None) -> list[int]:
    """Organizations in the scope party to an agreement in force during the period, or adjusted in it."""
    first, last = score_period(year, quarter)
    in_scope = Organization.path.startswith(scope.path, autoescape=True) if scope is not None else sa.true()
    parties = (
        sa.select(AgreementParty.organization_id)
        .join(Agreement, Agreement.id == AgreementParty.agreement_id)
        .join(Organization, Organization.id == AgreementParty.organization_id)
        .where(active_in_month_filter(first, last), in_scope)
    )
    adjusted = (
        sa.select(PointAdjustment.org_id)
        .join(Organization, Organization.id == PointAdjustment.org_id)
        .where(PointAdjustment.applies_on >= first, PointAdjustment.applies_on <= last, in_scope)
    )
    return sorted(set(db.session.execute(sa.union(parties, adjusted)).scalars()))


@dataclass(frozen=True)
class RankingRow:
    rank: int
    score: OrgScore


def scope_scores(scope: Organization | None, year: int, quarter: int | None = None) -> dict[int, OrgScore]:
    """score_breakdown for every organization scored in a scope (None: everything) — the scores page, its
    Excel export and the ranking.

    Issue 10: memoised per data generation (coop.cache), scope and period — everything it reads (rules,
    activities, agreements, adjustments, names) is data, and nothing depends on today. The result is shared
    between requests: callers read it and never change it."""
    return memoized("scoring.scope_scores", (scope.id if scope is not None else None, year, quarter),
                    lambda: score_breakdown(scored_org_ids(scope, year, quarter), year, quarter))


def ranking(scope: Organization | None, year: int, quarter: int) -> list[RankingRow]:
    """The quarter's ranking (晾晒比) inside a scope: highest total first, ties share a rank."""
    scores = scope_scores(scope, year, quarter)
    ordered = sorted(scores.values(), key=lambda s: (-s.total, s.org_name))
    rows, rank, previous = [], 0, None
    for i, s in enumerate(ordered, start=1):
        if s.total != previous:
            rank, previous = i, s.total
        rows.append(RankingRow(rank, s))
    return rows
