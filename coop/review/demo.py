"""Demo committee review: platform point rules, a few evaluations (one typical case), partner ratings of the
last quarter and one audited adjustment — through the real operations. Idempotent; runs after the agreements
and activities steps and skips what it cannot find.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Callable

import sqlalchemy as sa

from agreements.models import Agreement, AgreementParty, AgreementStatus
from coop.activities.models import Activity, ActivityAgreement, ActivityStatus, ConfirmationState
from coop.auth.models import User
from coop.extensions import db
from coop.formatting import local_today
from coop.orgs.models import Organization
from coop.reports import progress as pg
from coop.review import operations as ops
from coop.review.models import ActivityEvaluation, PartnerEvaluation, PointAdjustment
from coop.review.permissions import can_evaluate_activity, partner_org_ids_for

EVALUATIONS = [
    ("excellent", "活动准备充分，双方党员参与度高，成效可量化，推荐作为典型案例宣传。", True),
    ("good", "组织规范，记录完整；建议下次增加群众参与的环节。", False),
    ("fair", "活动记录较简略，请补充成效和参与人员情况。", False),
]


def _held_confirmed(org_ids: list[int], limit: int) -> list[Activity]:
    return list(db.session.scalars(
        sa.select(Activity)
        .where(
            Activity.status == ActivityStatus.held,
            Activity.confirmation == ConfirmationState.confirmed,
            Activity.id.in_(
                sa.select(ActivityAgreement.activity_id)
                .join(AgreementParty, AgreementParty.agreement_id == ActivityAgreement.agreement_id)
                .where(AgreementParty.organization_id.in_(org_ids))
            ),
        )
        .order_by(Activity.held_on.desc(), Activity.id)
        .limit(limit)
    ))


def seed_demo_step(orgs: dict[str, Organization], users: dict[str, User], echo: Callable[[str], None]) -> None:
    """Rules, evaluations, partner ratings and an adjustment for the demo group (safe to run again)."""
    ops.ensure_default_rules(None)
    reviewer = users.get("dangwei")
    power_reviewer = users.get("power_dw")
    group = orgs.get("group")
    if reviewer is None or group is None:
        return
    in_group = list(db.session.scalars(sa.select(Organization.id).where(Organization.path.startswith(group.path))))

    done = db.session.scalar(sa.select(sa.func.count()).select_from(ActivityEvaluation)
                             .where(ActivityEvaluation.reviewer_id == reviewer.id))
    if not done:
        acts = [a for a in _held_confirmed(in_group, 12) if can_evaluate_activity(reviewer, a)]
        for act, (rating, comment, typical) in zip(acts[::3], EVALUATIONS):
            ops.evaluate_activity(reviewer, act, rating=rating, comment=comment, typical_case=typical)
        echo(f"党委评价：{min(len(acts[::3]), len(EVALUATIONS))} 条（含典型案例 1 条）。")

    # Partner ratings of the quarter that ended last, dated on its last day (inside the rating window).
    today = local_today()
    q = (today.month - 1) // 3 + 1
    year, quarter = (today.year, q - 1) if q > 1 else (today.year - 1, 4)
    first, last = pg.quarter_bounds(year, quarter)
    if not db.session.scalar(sa.select(sa.func.count()).select_from(PartnerEvaluation)):
        agreements = db.session.scalars(
            sa.select(Agreement).where(Agreement.status == AgreementStatus.active, Agreement.starts_on <= last,
                                       Agreement.ends_on >= first).order_by(Agreement.id)
        ).all()
        rated = 0
        for ag in agreements[:4]:
            for user in users.values():
                for from_id in sorted(partner_org_ids_for(user, ag)):
                    for to_id in ag.party_org_ids:
                        if to_id == from_id or db.session.scalar(sa.select(PartnerEvaluation.id).where(
                                PartnerEvaluation.agreement_id == ag.id, PartnerEvaluation.year == year,
                                PartnerEvaluation.quarter == quarter, PartnerEvaluation.from_org_id == from_id,
                                PartnerEvaluation.to_org_id == to_id)):
                            continue
                        score = 5 - (rated % 3)
                        ops.rate_partner(user, ag, from_org_id=from_id, to_org_id=to_id, year=year, quarter=quarter,
                                         score=score, comment="沟通顺畅，按约定参加活动。" if score >= 4 else "参与积极性有待提高。",
                                         today=last)
                        rated += 1
        if rated:
            echo(f"结对互评：{year}年第{quarter}季度 {rated} 条。")

    ops_org = orgs.get("power_ops")
    if power_reviewer is not None and ops_org is not None and not db.session.scalar(
            sa.select(sa.func.count()).select_from(PointAdjustment).where(PointAdjustment.org_id == ops_org.id)):
        ops.adjust_points(power_reviewer, ops_org, points=3, reason="获评公司“先进基层党组织”，按公司党委决定加分。",
                          applies_on=today - timedelta(days=20))
        echo("积分调整：运维检修党支部 +3。")
