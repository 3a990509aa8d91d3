"""Committee review operations: evaluate, rate partners, set rules and settings, adjust points.

Each changes models, flushes and writes the audit log — and never commits (the caller does).
Refusals raise ReviewRefused with a message for people (in the interface language; the audit log stays Chinese).
"""
from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from flask_babel import gettext as _

from agreements.models import Agreement
from coop.activities.models import Activity, ActivityStatus, ConfirmationState
from coop.audit.operations import record
from coop.auth.models import User
from coop.db import now_utc
from coop.extensions import db
from coop.formatting import local_today, ui_date, ui_quarter
from coop.i18n import N_
from coop.orgs.models import Organization
from coop.reports import progress as pg
from coop.review.models import (
    RATING_LABELS,
    ActivityEvaluation,
    PartnerEvaluation,
    PointAdjustment,
    PointRule,
    Rating,
    ReviewSetting,
)
from coop.review.permissions import partner_org_ids_for
from coop.review.queries import QUARTER_NAMES, review_setting
from coop.review.scoring import RULE_BY_CODE, score_years

# Parties may rate a quarter while it runs and for this many days after it ends.
PARTNER_GRACE_DAYS = 15
MAX_COMMENT = 2000
MAX_ADJUSTMENT = 100


class ReviewRefused(Exception):
    """A review action refused, with a message meant for people (in the interface language); `field` names the
    form field it is about, when one is."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _comment(text: str | None, *, required: bool = False, label: str = N_("评语")) -> str:
    text = (text or "").strip()
    if required and not text:
        raise ReviewRefused(_("请填写%(label)s。", label=_(label)))
    if len(text) > MAX_COMMENT:
        raise ReviewRefused(_("%(label)s不能超过 %(n)s 字。", label=_(label), n=MAX_COMMENT))
    return text


# --- activity evaluations ----------------------------------------------------------------------------------


def typical_case_refusal() -> str:
    """Why a disputed activity cannot be marked 典型案例 (the form shows it before anyone tries)."""
    return _("该活动被合作方提出异议，不能标记为典型案例；异议解决、各方确认后再标记。")


def evaluate_activity(actor: User, activity: Activity, *, rating: Rating | str, comment: str | None = "",
                      typical_case: bool = False) -> ActivityEvaluation:
    """Record (or update) the actor's evaluation of a held activity: 优秀/良好/一般, comment, typical case."""
    if activity.status is not ActivityStatus.held:
        raise ReviewRefused(_("只能评价已开展的活动。"))
    try:
        rating = Rating(rating) if not isinstance(rating, Rating) else rating
    except ValueError:
        raise ReviewRefused(_("请选择评价等级：优秀、良好或一般。")) from None
    comment = _comment(comment)
    if typical_case and not comment:
        raise ReviewRefused(_("标记为典型案例时，请在评语中写明推荐理由。"))
    if typical_case and activity.confirmation is ConfirmationState.disputed:
        # A case held up for publicity must be one the partners stand behind; it also earns points.
        raise ReviewRefused(typical_case_refusal())
    ev = db.session.execute(
        sa.select(ActivityEvaluation).where(
            ActivityEvaluation.activity_id == activity.id, ActivityEvaluation.reviewer_id == actor.id
        )
    ).scalar_one_or_none()
    before = None
    if ev is None:
        ev = ActivityEvaluation(activity_id=activity.id, reviewer_id=actor.id, rating=rating, comment=comment,
                                typical_case=bool(typical_case))
        db.session.add(ev)
    else:
        before = {"rating": ev.rating.value, "comment": ev.comment, "typical_case": ev.typical_case}
        ev.rating, ev.comment, ev.typical_case = rating, comment, bool(typical_case)
        ev.updated_at = now_utc()
    db.session.flush()
    summary = f"评价活动“{activity.title}”为{RATING_LABELS[rating]}" + ("，并标记为典型案例" if ev.typical_case else "")
    record("review.activity_evaluated", summary, actor=actor, organization_id=activity.organizer_org_id,
           target=activity, detail={"activity_id": activity.id, "rating": rating.value,
                                    "typical_case": ev.typical_case, "before": before})
    return ev


# --- partner (two-way) evaluations -------------------------------------------------------------------------


def partner_window(year: int, quarter: int) -> tuple[date, date]:
    """The days a quarter may be rated on: from its first day to its last day + 15."""
    first, last = pg.quarter_bounds(year, quarter)
    return first, last + timedelta(days=PARTNER_GRACE_DAYS)


def rateable_quarters(today: date) -> list[tuple[int, int]]:
    """(year, quarter) pairs open for rating on `today`: the running quarter, and the last one in its grace days."""
    q = (today.month - 1) // 3 + 1
    prev = (today.year, q - 1) if q > 1 else (today.year - 1, 4)
    out = []
    if today <= partner_window(*prev)[1]:
        out.append(prev)
    out.append((today.year, q))
    return out


def rate_partner(actor: User, agreement: Agreement, *, from_org_id: int, to_org_id: int, year: int, quarter: int,
                 score: int, comment: str | None = "", today: date | None = None) -> PartnerEvaluation:
    """A party's secretary or liaison rates a partner's contribution for a quarter (1–5); editable in the window."""
    today = today or local_today()
    parties = set(agreement.party_org_ids)
    if from_org_id not in partner_org_ids_for(actor, agreement):
        raise ReviewRefused(_("只有协议一方的书记或联络员可以评价合作方。"))
    if to_org_id not in parties or to_org_id == from_org_id:
        raise ReviewRefused(_("请选择协议中的另一方。"))
    if quarter not in (1, 2, 3, 4):
        raise ReviewRefused(_("季度应在 1 到 4 之间。"))
    opens, closes = partner_window(year, quarter)
    if not opens <= today <= closes:
        raise ReviewRefused(
            _("%(quarter)s的互评在 %(opens)s 至 %(closes)s 之间进行，现在不能填写或修改。",
              quarter=ui_quarter(year, quarter), opens=ui_date(opens), closes=ui_date(closes))
        )
    first, last = pg.quarter_bounds(year, quarter)
    if agreement.status.value not in ("active", "expired", "terminated") or agreement.starts_on > last \
            or agreement.ends_on < first:
        raise ReviewRefused(_("该协议在这个季度不在有效期内。"))
    if not isinstance(score, int) or not 1 <= score <= 5:
        raise ReviewRefused(_("评分应为 1 到 5 星。"))
    comment = _comment(comment)
    ev = db.session.execute(
        sa.select(PartnerEvaluation).where(
            PartnerEvaluation.agreement_id == agreement.id, PartnerEvaluation.year == year,
            PartnerEvaluation.quarter == quarter, PartnerEvaluation.from_org_id == from_org_id,
            PartnerEvaluation.to_org_id == to_org_id,
        )
    ).scalar_one_or_none()
    before = None
    if ev is None:
        ev = PartnerEvaluation(agreement_id=agreement.id, year=year, quarter=quarter, from_org_id=from_org_id,
                               to_org_id=to_org_id, score=score, comment=comment, by_id=actor.id)
        db.session.add(ev)
    else:
        before = {"score": ev.score, "comment": ev.comment, "by_id": ev.by_id}
        ev.score, ev.comment, ev.by_id = score, comment, actor.id
        ev.updated_at = now_utc()
    db.session.flush()
    names = {p.organization_id: p.organization.name for p in agreement.parties}
    record("review.partner_rated",
           f"{names[from_org_id]}评价{names[to_org_id]}{year}年{QUARTER_NAMES[quarter]}的共建贡献：{score}星",
           actor=actor, organization_id=from_org_id, target=agreement,
           detail={"agreement_id": agreement.id, "year": year, "quarter": quarter, "from_org_id": from_org_id,
                   "to_org_id": to_org_id, "score": score, "before": before})
    return ev


# --- rules, settings, adjustments ---------------------------------------------------------------------------


def set_point_rule(actor: User, scope: Organization | None, code: str, *, points: int, active: bool = True) -> PointRule:
    """Set a rule's points (and on/off) for a committee scope (None: the platform); audited."""
    rule = RULE_BY_CODE.get(code)
    if rule is None:
        raise ReviewRefused(_("未知的积分规则。"))
    if not isinstance(points, int) or not -MAX_ADJUSTMENT <= points <= MAX_ADJUSTMENT:
        raise ReviewRefused(_("分值应在 -%(max)s 到 %(max)s 之间。", max=MAX_ADJUSTMENT))
    cond = PointRule.scope_org_id.is_(None) if scope is None else PointRule.scope_org_id == scope.id
    row = db.session.execute(sa.select(PointRule).where(cond, PointRule.code == code)).scalar_one_or_none()
    before = None
    if row is None:
        row = PointRule(scope_org_id=scope.id if scope else None, code=code, label=rule.label, points=points,
                        active=active, updated_by_id=getattr(actor, "id", None))
        db.session.add(row)
    else:
        before = {"points": row.points, "active": row.active}
        if before == {"points": points, "active": active}:
            return row
        row.points, row.active, row.updated_by_id = points, active, getattr(actor, "id", None)
    db.session.flush()
    where = scope.name if scope else "平台"
    state = f"{points:+d} 分" if active else "停用"
    record("review.rule_set", f"{where}积分规则“{rule.label}”设为{state}", actor=actor,
           organization_id=scope.id if scope else None, target=row,
           detail={"code": code, "points": points, "active": active, "before": before})
    return row


def ensure_default_rules(actor: User | None = None) -> list[PointRule]:
    """Write the platform's default rule rows when missing (so the rules page lists stored values)."""
    out = []
    for rule in RULE_BY_CODE.values():
        row = db.session.execute(
            sa.select(PointRule).where(PointRule.scope_org_id.is_(None), PointRule.code == rule.code)
        ).scalar_one_or_none()
        out.append(row or set_point_rule(actor, None, rule.code, points=rule.points, active=True))
    return out


def adjust_points(actor: User, org: Organization, *, points: int, reason: str, applies_on: date | None = None) -> PointAdjustment:
    """Add a manual adjustment (non-zero, with a reason) to an organization's points; audited."""
    if not isinstance(points, int) or points == 0 or not -MAX_ADJUSTMENT <= points <= MAX_ADJUSTMENT:
        raise ReviewRefused(_("调整分值应为 -%(max)s 到 %(max)s 之间的非零整数。", max=MAX_ADJUSTMENT))
    reason = _comment(reason, required=True, label=N_("调整理由"))
    today = local_today()
    applies_on = applies_on or today
    # Only days the score pages can show: an adjustment outside them would be invisible to everyone.
    earliest = date(score_years(today)[-1], 1, 1)
    if not earliest <= applies_on <= today:
        raise ReviewRefused(_("计入日期应在 %(first)s 到 %(last)s 之间（积分页可查看的年份内，且不晚于今天）。",
                              first=ui_date(earliest), last=ui_date(today)), field="applies_on")
    adj = PointAdjustment(org_id=org.id, points=points, reason=reason, applies_on=applies_on, by_id=actor.id,
                          at=now_utc())
    db.session.add(adj)
    db.session.flush()
    record("review.points_adjusted", f"调整{org.name}的积分 {points:+d} 分：{reason}"[:300], actor=actor,
           organization_id=org.id, target=adj,
           detail={"org_id": org.id, "points": points, "reason": reason, "applies_on": applies_on.isoformat()})
    return adj


def update_review_setting(actor: User, scope: Organization | None, *, ranking_published: bool | None = None,
                          stalled_days: int | None = None) -> ReviewSetting:
    """Change a scope's review settings (publish the ranking, the stalled threshold); audited."""
    row = review_setting(scope)
    if row is None:
        row = ReviewSetting(scope_org_id=scope.id if scope else None, ranking_published=False, stalled_days=30)
        db.session.add(row)
    before = {"ranking_published": row.ranking_published, "stalled_days": row.stalled_days}
    if stalled_days is not None:
        if not isinstance(stalled_days, int) or not 7 <= stalled_days <= 365:
            raise ReviewRefused(_("“多少天无活动算停滞”应在 7 到 365 天之间。"))
        row.stalled_days = stalled_days
    if ranking_published is not None:
        row.ranking_published = bool(ranking_published)
    row.updated_by_id = getattr(actor, "id", None)
    after = {"ranking_published": row.ranking_published, "stalled_days": row.stalled_days}
    db.session.flush()
    if after != before:
        where = scope.name if scope else "平台"
        parts = []
        if after["ranking_published"] != before["ranking_published"]:
            parts.append("公布季度积分排名" if after["ranking_published"] else "撤回季度积分排名")
        if after["stalled_days"] != before["stalled_days"]:
            parts.append(f"停滞天数设为 {after['stalled_days']} 天")
        record("review.settings_changed", f"{where}：" + "，".join(parts), actor=actor,
               organization_id=scope.id if scope else None, target=row, detail={"before": before, "after": after})
    return row
