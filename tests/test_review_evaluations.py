"""Activity evaluations, typical cases and the two-way partner evaluation."""
from datetime import date

import pytest
import sqlalchemy as sa

from coop.audit.models import AuditEntry
from coop.extensions import db
from coop.reports import queries as report_queries
from coop.review.models import PartnerEvaluation, Rating
from coop.review.operations import ReviewRefused, evaluate_activity, rate_partner, rateable_quarters
from coop.review.permissions import can_evaluate_activity, partner_org_ids_for
from coop.review.queries import evaluations_for_activity, typical_cases


def test_reviewer_over_a_party_evaluates_once_and_updates(review_world):
    w = review_world
    act = w.acts["p1_study_jul5"]
    ev = evaluate_activity(w.users["rev_A"], act, rating="good", comment="组织有序")
    db.session.commit()
    again = evaluate_activity(w.users["rev_A"], act, rating=Rating.excellent, comment="成效突出，可推广",
                              typical_case=True)
    db.session.commit()
    assert again.id == ev.id
    rows = evaluations_for_activity(act.id)
    assert [(e.rating, e.typical_case, e.comment) for e in rows] == [(Rating.excellent, True, "成效突出，可推广")]
    audits = db.session.execute(
        sa.select(AuditEntry).where(AuditEntry.kind == "review.activity_evaluated").order_by(AuditEntry.id)
    ).scalars().all()
    assert len(audits) == 2 and audits[1].detail["before"]["rating"] == "good"


def test_two_reviewers_keep_one_evaluation_each(review_world):
    w = review_world
    act = w.acts["p1_study_jul5"]
    evaluate_activity(w.users["rev_A"], act, rating="good")
    evaluate_activity(w.users["rev_G"], act, rating="fair", comment="记录过简")
    db.session.commit()
    assert {e.reviewer_id for e in evaluations_for_activity(act.id)} == {w.users["rev_A"].id, w.users["rev_G"].id}


@pytest.mark.parametrize("who, allowed", [
    ("rev_A", True), ("rev_G", True), ("admin", True), ("rev_B", False), ("lia_A1", False), ("sec_A1", False),
])
def test_who_may_evaluate(review_world, who, allowed):
    w = review_world
    assert can_evaluate_activity(w.users[who], w.acts["p1_study_jul5"]) is allowed


def test_evaluation_refusals(review_world):
    w = review_world
    with pytest.raises(ReviewRefused):
        evaluate_activity(w.users["rev_A"], w.acts["p1_study_withdrawn"], rating="good")
    with pytest.raises(ReviewRefused):
        evaluate_activity(w.users["rev_A"], w.acts["p1_study_jul5"], rating="perfect")
    with pytest.raises(ReviewRefused, match="推荐理由"):
        evaluate_activity(w.users["rev_A"], w.acts["p1_study_jul5"], rating="excellent", typical_case=True)
    assert not can_evaluate_activity(w.users["rev_A"], w.acts["p1_study_withdrawn"])


def test_typical_cases_by_scope_and_dates_never_withdrawn(review_world, withdraw):
    w = review_world
    evaluate_activity(w.users["rev_G"], w.acts["p1_study_jul5"], rating="excellent", comment="书记送课",
                      typical_case=True)
    evaluate_activity(w.users["rev_G"], w.acts["p1_study_jul20"], rating="excellent", comment="联学出彩",
                      typical_case=True)
    evaluate_activity(w.users["rev_B"], w.acts["p3_study_jul3"], rating="good", comment="一般")  # not typical
    db.session.commit()
    withdraw(w.acts["p1_study_jul20"])
    a_ids = [w.orgs[k].id for k in ("A", "A1", "A2")]
    cases = typical_cases(a_ids, date(2026, 7, 1), date(2026, 7, 31))
    assert [(c.title, c.reason, c.organizations) for c in cases] == [
        (w.acts["p1_study_jul5"].title, "书记送课", "甲一支部、市疾控支部")
    ]
    assert typical_cases(None, date(2026, 8, 1), date(2026, 8, 31)) == []
    assert typical_cases([w.orgs["B1"].id], date(2026, 1, 1), date(2026, 12, 31)) == []  # P1 has no B party
    assert typical_cases([], date(2026, 1, 1), date(2026, 12, 31)) == []
    # The committee report reads them through the reports domain's hook.
    via_report = report_queries.typical_cases([w.agreements["P1"].id], date(2026, 7, 1), date(2026, 7, 31))
    assert [c.activity_id for c in via_report] == [w.acts["p1_study_jul5"].id]


# --- partner (two-way) evaluation ----------------------------------------------------------------------


def test_rateable_quarters_include_the_grace_days():
    assert rateable_quarters(date(2026, 10, 15)) == [(2026, 3), (2026, 4)]
    assert rateable_quarters(date(2026, 10, 16)) == [(2026, 4)]
    assert rateable_quarters(date(2027, 1, 10)) == [(2026, 4), (2027, 1)]


def test_party_liaison_rates_partner_once_per_quarter_and_edits_in_window(review_world):
    w = review_world
    P1, A1, X = w.agreements["P1"], w.orgs["A1"], w.orgs["X"]
    first = rate_partner(w.users["lia_A1"], P1, from_org_id=A1.id, to_org_id=X.id, year=2026, quarter=3, score=4,
                         comment="配合积极", today=date(2026, 10, 10))
    db.session.commit()
    edited = rate_partner(w.users["sec_A1"], P1, from_org_id=A1.id, to_org_id=X.id, year=2026, quarter=3, score=5,
                          today=date(2026, 10, 15))
    db.session.commit()
    assert edited.id == first.id and edited.score == 5 and edited.by_id == w.users["sec_A1"].id
    with pytest.raises(ReviewRefused, match="互评"):
        rate_partner(w.users["lia_A1"], P1, from_org_id=A1.id, to_org_id=X.id, year=2026, quarter=3, score=3,
                     today=date(2026, 10, 16))
    # The other direction is a separate evaluation.
    rate_partner(w.users["lia_X"], P1, from_org_id=X.id, to_org_id=A1.id, year=2026, quarter=3, score=3,
                 today=date(2026, 9, 1))
    db.session.commit()
    assert db.session.execute(sa.select(sa.func.count()).select_from(PartnerEvaluation)).scalar_one() == 2
    assert db.session.execute(
        sa.select(sa.func.count()).select_from(AuditEntry).where(AuditEntry.kind == "review.partner_rated")
    ).scalar_one() == 3


@pytest.mark.parametrize("who, from_key, to_key, message", [
    ("rev_A", "A1", "X", "书记或联络员"),  # a reviewer is not a party
    ("lia_X", "A1", "X", "书记或联络员"),  # cannot speak for another party
    ("lia_A1", "A1", "A1", "另一方"),
    ("lia_A1", "A1", "S", "另一方"),  # not a party of P1
])
def test_partner_rating_refusals(review_world, who, from_key, to_key, message):
    w = review_world
    with pytest.raises(ReviewRefused, match=message):
        rate_partner(w.users[who], w.agreements["P1"], from_org_id=w.orgs[from_key].id, to_org_id=w.orgs[to_key].id,
                     year=2026, quarter=3, score=4, today=date(2026, 9, 1))


def test_partner_rating_out_of_term_or_range(review_world):
    w = review_world
    P3, B1, X = w.agreements["P3"], w.orgs["B1"], w.orgs["X"]
    from coop.auth.models import Role, User, UserRole

    lia_B1 = User(username="liab1", display_name="乙一联络员", password_hash="x", organization=B1)
    lia_B1.role_rows.append(UserRole(role=Role.liaison))
    db.session.add(lia_B1)
    db.session.commit()
    with pytest.raises(ReviewRefused, match="有效期"):  # P3 starts in July: no Q2
        rate_partner(lia_B1, P3, from_org_id=B1.id, to_org_id=X.id, year=2026, quarter=2, score=4,
                     today=date(2026, 6, 30))
    with pytest.raises(ReviewRefused, match="1 到 5"):
        rate_partner(lia_B1, P3, from_org_id=B1.id, to_org_id=X.id, year=2026, quarter=3, score=6,
                     today=date(2026, 9, 1))


def test_three_parties_rate_each_partner(review_world, make_user):
    w = review_world
    P2 = w.agreements["P2"]
    lia = make_user("liaison", org=w.orgs["A2"])
    assert partner_org_ids_for(lia, P2) == {w.orgs["A2"].id}
    for to in ("S", "B1"):
        rate_partner(lia, P2, from_org_id=w.orgs["A2"].id, to_org_id=w.orgs[to].id, year=2026, quarter=3, score=4,
                     today=date(2026, 9, 30))
    db.session.commit()
    assert db.session.execute(sa.select(sa.func.count()).select_from(PartnerEvaluation)).scalar_one() == 2
