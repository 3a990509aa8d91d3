"""Points on the constructed dataset: known totals, rules per scope, quarters adding up, audited adjustments."""
from datetime import date

import pytest
import sqlalchemy as sa

from coop.audit.models import AuditEntry
from coop.extensions import db
from coop.review import scoring
from coop.review.models import ActivityEvaluation, PointAdjustment, Rating
from coop.review.operations import ReviewRefused, adjust_points, set_point_rule, update_review_setting
from coop.review.scoring import ranking, score_breakdown, score_items, scored_org_ids


@pytest.fixture
def scored_world(review_world):
    """review_world plus a typical case (5 July study), a typical case on the withdrawn activity, and two
    adjustments: A1 +3 (Q3), B1 −2 (Q2)."""
    w = review_world
    db.session.add(ActivityEvaluation(activity_id=w.acts["p1_study_jul5"].id, reviewer_id=w.users["rev_G"].id,
                                      rating=Rating.excellent, comment="书记送课，效果好", typical_case=True))
    # Marked before it was withdrawn: a withdrawn activity never counts, typical case or not.
    db.session.add(ActivityEvaluation(activity_id=w.acts["p1_study_withdrawn"].id, reviewer_id=w.users["rev_G"].id,
                                      rating=Rating.good, comment="曾被推荐", typical_case=True))
    adjust_points(w.users["rev_A"], w.orgs["A1"], points=3, reason="获市级表彰", applies_on=date(2026, 9, 10))
    adjust_points(w.users["rev_B"], w.orgs["B1"], points=-2, reason="材料迟报", applies_on=date(2026, 4, 15))
    db.session.commit()
    return w


def by_name(result, w):
    names = {o.id: key for key, o in w.orgs.items()}
    return {names[i]: s for i, s in result.items()}


def lines(score):
    return {l.rule: (l.count, l.points, l.subtotal) for l in score.lines}


def test_year_scores_known_answers(scored_world):
    w = scored_world
    ids = [w.orgs[k].id for k in ("A1", "A2", "B1", "X", "S")]
    s = by_name(score_breakdown(ids, 2026), w)
    assert lines(s["A1"]) == {"held_confirmed": (3, 2, 6), "typical_case": (1, 5, 5), "commitment_met": (0, 10, 0),
                              "disputed": (1, -1, -1)}
    assert [a.points for a in s["A1"].adjustments] == [3]
    assert {k: v.total for k, v in s.items()} == {"A1": 13, "X": 11, "A2": 16, "S": 16, "B1": 12}
    # The three-party agreement's service commitment (2) was met in August: each party once.
    for k in ("A2", "S", "B1"):
        assert lines(s[k])["commitment_met"] == (1, 10, 10)


def test_every_total_is_the_sum_of_its_lines(scored_world):
    w = scored_world
    ids = [o.id for o in w.orgs.values()]
    for quarter in (None, 1, 2, 3, 4):
        for score in score_breakdown(ids, 2026, quarter).values():
            assert score.total == sum(l.subtotal for l in score.lines) + sum(a.points for a in score.adjustments)
            assert all(l.subtotal == l.count * l.points for l in score.lines)


def test_quarters_add_up_to_the_year(scored_world):
    w = scored_world
    ids = [w.orgs[k].id for k in ("A1", "A2", "B1", "X", "S")]
    year = score_breakdown(ids, 2026)
    quarters = [score_breakdown(ids, 2026, q) for q in (1, 2, 3, 4)]
    for org_id in ids:
        assert sum(q[org_id].total for q in quarters) == year[org_id].total
    q3 = by_name(quarters[2], w)
    assert {k: v.total for k, v in q3.items()} == {"A1": 9, "X": 7, "A2": 12, "S": 12, "B1": 12}
    assert lines(q3["A2"])["commitment_met"] == (1, 10, 10)  # reached in Q3, not in Q1/Q2
    assert lines(by_name(quarters[1], w)["A2"])["commitment_met"] == (0, 10, 0)


def test_withdrawn_activity_never_counts(scored_world, withdraw):
    w = scored_world
    before = score_breakdown([w.orgs["A1"].id], 2026)[w.orgs["A1"].id].total
    withdraw(w.acts["p1_study_jul5"])  # the confirmed, typical one
    after = score_breakdown([w.orgs["A1"].id], 2026)[w.orgs["A1"].id]
    assert before - after.total == 2 + 5
    assert lines(after)["typical_case"] == (0, 5, 0)


def test_why_items_match_the_counts(scored_world):
    w = scored_world
    items = score_items(w.orgs["A1"].id, 2026)
    titles = {code: sorted(a.held_on.isoformat() for a in acts) for code, acts in items.activities.items()}
    assert titles == {
        "held_confirmed": ["2026-02-20", "2026-03-10", "2026-07-05"],
        "typical_case": ["2026-07-05"],
        "disputed": ["2026-07-15"],
    }
    b1 = score_items(w.orgs["B1"].id, 2026, 3)
    assert [(a.title[:2], code) for a, code in b1.commitments] == [("P2", "service")]


def test_rules_per_scope_nearest_wins(scored_world):
    w = scored_world
    set_point_rule(w.users["rev_B"], w.orgs["B"], "held_confirmed", points=3)
    set_point_rule(w.users["rev_G"], w.orgs["G"], "typical_case", points=5, active=False)
    db.session.commit()
    s = by_name(score_breakdown([w.orgs[k].id for k in ("A1", "B1", "X", "A2")], 2026), w)
    assert s["B1"].total == 2 * 3 + 10 - 2  # B's own rule
    assert lines(s["B1"])["held_confirmed"] == (2, 3, 6)
    assert "typical_case" not in lines(s["A1"])  # switched off by the group committee
    assert s["A1"].total == 6 - 1 + 3
    assert s["X"].total == 11  # outside the group: platform defaults
    assert s["A2"].total == 16
    sources = {l.rule: l.source for l in s["B1"].lines}
    assert sources["held_confirmed"] == "乙公司党委" and sources["disputed"] == "平台默认"
    kinds = db.session.execute(sa.select(AuditEntry.kind).where(AuditEntry.kind == "review.rule_set")).scalars().all()
    assert len(kinds) == 2


def test_platform_rule_row_applies_everywhere_without_a_scope_row(scored_world):
    w = scored_world
    set_point_rule(w.users["admin"], None, "disputed", points=-4)
    db.session.commit()
    s = by_name(score_breakdown([w.orgs["A1"].id], 2026), w)
    assert lines(s["A1"])["disputed"] == (1, -4, -4)
    assert next(l.source for l in s["A1"].lines if l.rule == "disputed") == "平台设置"


def test_score_changes_are_explained_by_audited_adjustments(scored_world):
    w = scored_world
    a1 = w.orgs["A1"]
    before = score_breakdown([a1.id], 2026, 4)[a1.id]
    adjust_points(w.users["rev_G"], a1, points=-5, reason="年度考核扣分", applies_on=date(2026, 11, 20))
    db.session.commit()
    after = score_breakdown([a1.id], 2026, 4)[a1.id]
    assert after.total - before.total == -5
    assert [(a.points, a.reason, a.by) for a in after.adjustments] == [(-5, "年度考核扣分", w.users["rev_G"].display_name)]
    entries = db.session.execute(
        sa.select(AuditEntry).where(AuditEntry.kind == "review.points_adjusted").order_by(AuditEntry.id)
    ).scalars().all()
    assert len(entries) == 3  # the fixture's two and this one
    assert entries[-1].detail["points"] == -5 and entries[-1].organization_id == a1.id
    assert db.session.execute(sa.select(sa.func.count()).select_from(PointAdjustment)).scalar_one() == 3


@pytest.mark.parametrize("points, reason", [(0, "理由"), (5, ""), (5, "   "), (101, "太多"), (-101, "太多")])
def test_adjustments_need_a_reason_and_a_sane_amount(scored_world, points, reason):
    w = scored_world
    with pytest.raises(ReviewRefused):
        adjust_points(w.users["rev_G"], w.orgs["A1"], points=points, reason=reason)


def test_ranking_in_scope_with_ties(scored_world):
    w = scored_world
    assert sorted(scored_org_ids(w.orgs["G"], 2026, 3)) == sorted(w.orgs[k].id for k in ("A1", "A2", "B1"))
    rows = ranking(w.orgs["G"], 2026, 3)
    assert [(r.rank, r.score.org_name, r.score.total) for r in rows] == [
        (1, "乙一支部", 12), (1, "甲二支部", 12), (3, "甲一支部", 9),
    ]


def test_ranking_is_unpublished_by_default(scored_world):
    from coop.review.queries import published_ranking_scope

    w = scored_world
    assert published_ranking_scope(w.orgs["A1"]) is None
    update_review_setting(w.users["rev_G"], w.orgs["G"], ranking_published=True)
    db.session.commit()
    assert published_ranking_scope(w.orgs["A1"]).scope_org_id == w.orgs["G"].id
    assert published_ranking_scope(w.orgs["X"]) is None
    entry = db.session.execute(sa.select(AuditEntry).where(AuditEntry.kind == "review.settings_changed")).scalar_one()
    assert "公布" in entry.summary


def test_defaults_listed_and_explained():
    assert [(r.code, r.points) for r in scoring.RULES] == [
        ("held_confirmed", 2), ("typical_case", 5), ("commitment_met", 10), ("disputed", -1),
    ]


def test_typical_case_points_count_only_confirmed_activities(scored_world):
    """A case awaiting confirmation earns nothing until every partner confirms; one disputed after it was
    marked stops counting (and leaves the typical-case lists)."""
    from coop.activities.models import ConfirmationState
    from coop.review.queries import typical_cases

    w = scored_world
    a1 = w.orgs["A1"].id
    pending = w.acts["p1_study_jul20"]
    db.session.add(ActivityEvaluation(activity_id=pending.id, reviewer_id=w.users["rev_G"].id,
                                      rating=Rating.excellent, comment="待确认时推荐", typical_case=True))
    db.session.commit()
    assert lines(score_breakdown([a1], 2026)[a1])["typical_case"] == (1, 5, 5)  # the confirmed 5 July only
    assert [a.id for a in score_items(a1, 2026).activities["typical_case"]] == [w.acts["p1_study_jul5"].id]
    confirmed = w.acts["p1_study_jul5"]
    confirmed.confirmation = ConfirmationState.disputed
    db.session.commit()
    assert lines(score_breakdown([a1], 2026)[a1])["typical_case"] == (0, 5, 0)
    assert [c.activity_id for c in typical_cases(None, date(2026, 1, 1), date(2026, 12, 31))] == [pending.id]


def test_marking_a_disputed_activity_as_typical_is_refused(review_world):
    from coop.review.operations import evaluate_activity

    w = review_world
    with pytest.raises(ReviewRefused, match="异议"):
        evaluate_activity(w.users["rev_A"], w.acts["p1_event_disputed"], rating="excellent", comment="好",
                          typical_case=True)
    assert evaluate_activity(w.users["rev_A"], w.acts["p1_event_disputed"], rating="good", comment="好").typical_case is False
