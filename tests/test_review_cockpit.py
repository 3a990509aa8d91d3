"""The cockpit on a constructed dataset with known answers (see tests/fixtures/review.py::review_world)."""
from datetime import date

import pytest
import sqlalchemy as sa

from coop.extensions import db
from coop.reports import progress as pg
from coop.review import queries
from coop.review.operations import update_review_setting
from coop.review.queries import build_cockpit, make_period, parse_period

JULY = make_period("month", 2026, 7, as_of=date(2026, 11, 22))


def cells(cockpit):
    return {r.agreement.title.split()[0]: r.cells for r in cockpit.rows}


def test_periods_parse_and_cut_at_today():
    today = date(2026, 11, 22)
    assert parse_period("2026-07", today).first == date(2026, 7, 1)
    assert parse_period("2026-07", today).last == date(2026, 7, 31)
    q3 = parse_period("2026-Q3", today)
    assert (q3.kind, q3.first, q3.last, q3.label) == ("quarter", date(2026, 7, 1), date(2026, 9, 30), "2026年第三季度")
    running = parse_period("2026", today)
    assert running.last == today and not running.complete and running.end == date(2026, 12, 31)
    assert parse_period("", today).key == "2026-11"
    assert JULY.shifted(1, today).key == "2026-08" and JULY.shifted(5, today) is None  # December not started
    assert JULY.as_kind("quarter", today).key == "2026-Q3"
    for bad in ("2026-13", "2026-Q5", "x", "2027-01"):
        with pytest.raises(ValueError):
            parse_period(bad, today)


def test_cockpit_cells_for_the_whole_group(review_world):
    w = review_world
    c = build_cockpit(w.orgs["G"], JULY)
    assert [r.agreement.title.split()[0] for r in c.rows] == ["P1", "P2", "P3"]  # the draft P4 is never shown
    got = cells(c)

    study = got["P1"]["study"]
    # Held in July: 5 Jul (confirmed) and 20 Jul (pending); the withdrawn 22 Jul never counts.
    assert (study.held, study.confirmed, study.pending, study.disputed) == (2, 1, 1, 0)
    assert (study.year_to_date, study.target, study.expected, study.status) == (2, 4, 2, "on_track")
    event = got["P1"]["event"]
    assert (event.held, event.disputed, event.year_to_date, event.expected, event.status) == (1, 1, 0, 1, "none")
    talent = got["P1"]["talent"]
    assert (talent.held, talent.year_to_date, talent.expected, talent.status) == (0, 1, 2, "behind")
    assert got["P1"]["org"].status == "na"

    # Three parties: one row, counted once.
    assert got["P2"]["service"].status == "on_track" and got["P2"]["service"].year_to_date == 1
    assert got["P2"]["mass"].status == "extra" and got["P2"]["mass"].commitment == 0  # outside the commitments

    # Started 1 July: 2026 owes study 2 of 4 and culture 1; nothing is expected yet by 31 July.
    p3 = got["P3"]
    assert (p3["study"].target, p3["study"].expected, p3["study"].held, p3["study"].status) == (2, 0, 2, "on_track")
    assert (p3["culture"].target, p3["culture"].status) == (1, "on_track")

    assert c.status_counts == {"none": 1, "behind": 1, "on_track": 4, "done": 0, "not_started": 0, "ended": 0,
                               "extra": 1, "na": 17}
    assert [r.overall for r in c.rows] == ["none", "on_track", "on_track"]


def test_cells_are_the_progress_module_figures(review_world):
    """Every cell equals what coop.reports.progress says for the same period (and so the monthly report)."""
    w = review_world
    c = build_cockpit(None, JULY)
    expected = pg.agreement_progress([w.agreements[k] for k in ("P1", "P2", "P3")], JULY.first, JULY.last)
    for row in c.rows:
        assert row.cells == expected[row.agreement.id]


def test_mid_year_agreement_is_absent_before_it_starts_and_behind_at_year_end(review_world):
    w = review_world
    june = make_period("month", 2026, 6, as_of=date(2026, 11, 22))
    assert "P3" not in cells(build_cockpit(None, june))
    year = make_period("year", 2026, 0, as_of=date(2026, 12, 31))
    p3 = cells(build_cockpit(None, year))["P3"]
    assert (p3["study"].target, p3["study"].expected, p3["study"].year_to_date, p3["study"].status) == (2, 2, 0, "none")
    assert p3["study"].held == 2


def test_stalled_and_one_sided_lists_with_their_facts(review_world):
    w = review_world
    c = build_cockpit(w.orgs["G"], JULY)
    assert [(s.agreement.title.split()[0], s.days_silent) for s in c.stalled] == [("P2", 82)]
    assert c.stalled[0].fact == "最近一次活动：2026年5月10日（82 天前）"

    one_sided = {o.agreement.title.split()[0]: o.facts for o in c.one_sided}
    assert set(one_sided) == {"P1", "P3"}
    assert one_sided["P1"] == ["近180天 5 条记录中 4 条由甲一支部录入"]
    # X was asked to confirm three P3 entries from 3 July on and answered none.
    assert one_sided["P3"] == ["市疾控支部被请求确认的 3 条记录均未答复（最早一条已等待 28 天）"]


def test_stalled_threshold_is_configurable(review_world):
    w = review_world
    assert [s.agreement.title[:2] for s in build_cockpit(None, JULY, stalled_days=90).stalled] == []
    # P1 last held 20 July: 11 days before 31 July.
    assert [s.agreement.title[:2] for s in build_cockpit(None, JULY, stalled_days=10).stalled] == ["P2", "P1"]

    assert queries.stalled_days_for(w.orgs["A"]) == 30
    update_review_setting(w.users["rev_G"], w.orgs["G"], stalled_days=45)
    db.session.commit()
    assert queries.stalled_days_for(w.orgs["A"]) == 45  # inherited from the group's committee
    update_review_setting(w.users["rev_A"], w.orgs["A"], stalled_days=20)
    db.session.commit()
    assert queries.stalled_days_for(w.orgs["A"]) == 20 and queries.stalled_days_for(w.orgs["B"]) == 45


def test_a_pairing_never_heard_from_is_stalled_since_it_started(review_world, make_agreement):
    w = review_world
    silent = make_agreement(parties=[w.orgs["A2"], w.orgs["X"]], starts_on=date(2026, 6, 1), title="P9 无活动")
    c = build_cockpit(w.orgs["A"], JULY)
    item = next(s for s in c.stalled if s.agreement.id == silent.id)
    assert item.fact == "生效以来尚无已开展的活动（已 60 天）"


def test_scope_subtree_only(review_world):
    w = review_world
    a = build_cockpit(w.orgs["A"], JULY)
    assert {r.agreement.title[:2] for r in a.rows} == {"P1", "P2"}
    b = build_cockpit(w.orgs["B"], JULY)
    assert {r.agreement.title[:2] for r in b.rows} == {"P2", "P3"}
    p2 = next(r for r in b.rows if r.agreement.title.startswith("P2"))
    assert p2.in_scope_ids == {w.orgs["B1"].id}  # A2 and the school are partners outside B's subtree


def test_filters_relation_and_category(review_world):
    w = review_world
    school = build_cockpit(None, JULY, relation="school")
    assert [r.agreement.title[:2] for r in school.rows] == ["P2"]
    gov = build_cockpit(None, JULY, relation="government")
    assert [r.agreement.title[:2] for r in gov.rows] == ["P1", "P3"]
    study = build_cockpit(None, JULY, category="study")
    assert [r.agreement.title[:2] for r in study.rows] == ["P1", "P3"]  # P2 has nothing in study
    assert all(list(r.cells) == ["study"] for r in study.rows)
    assert [cat.code for cat in study.categories] == ["study"]


def test_totals_per_organization(review_world):
    w = review_world
    c = build_cockpit(w.orgs["G"], JULY)
    totals = {t.org.name: t for t in c.org_totals}
    assert set(totals) == {"甲一支部", "甲二支部", "乙一支部"}  # partners outside the group are not totalled
    a1 = totals["甲一支部"]
    assert (a1.pairings, a1.held, a1.held_total, a1.confirmed_total) == (1, {"study": 2, "event": 1}, 3, 1)
    assert a1.lagging == 2  # event none, talent behind
    b1 = totals["乙一支部"]
    assert (b1.pairings, b1.held_total, b1.confirmed_total) == (2, 3, 0)
    assert totals["甲二支部"].held_total == 0


def test_an_activity_serving_two_pairings_counts_once_in_an_organizations_total(review_world, review_activity):
    w = review_world
    review_activity(w.agreements["P2"], "study", date(2026, 7, 8), organizer=w.orgs["B1"],
                    partners={w.orgs["X"]: "confirmed"}, agreements=[w.agreements["P2"], w.agreements["P3"]])
    c = build_cockpit(w.orgs["B"], JULY)
    b1 = next(t for t in c.org_totals if t.org.name == "乙一支部")
    assert b1.held["study"] == 3  # 3, 8 and 25 July — the 8 July one once, though it serves P2 and P3
    assert {r.agreement.title[:2]: r.cells["study"].held for r in c.rows} == {"P2": 1, "P3": 3}


def test_cockpit_runs_a_fixed_number_of_queries(review_world, make_agreement, review_activity):
    """No per-row queries: ten more pairings with activities do not add a single statement."""
    w = review_world
    engine = db.engine
    statements = []

    def count(*_args, **_kw):
        statements.append(1)

    def run():
        statements.clear()
        db.session.expire_all()
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            build_cockpit(w.orgs["G"], JULY)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        return len(statements)

    before = run()
    for i in range(10):
        ag = make_agreement(parties=[w.orgs["A1"], w.orgs["S"]], commitments={"event": 3}, title=f"加{i}")
        review_activity(ag, "event", date(2026, 7, 9), organizer=w.orgs["S"], partners={w.orgs["A1"]: "pending"})
    assert run() == before
    assert before <= 16


def test_a_pairing_with_three_days_in_the_year_is_not_red(review_world, make_agreement):
    """Signed for 29 Dec 2025 – 28 Dec 2026: 2025 owes nothing (3/365 of each commitment rounds to 0)."""
    w = review_world
    make_agreement(parties=[w.orgs["A1"], w.orgs["X"]], commitments={"study": 4, "event": 2},
                   starts_on=date(2025, 12, 29), ends_on=date(2026, 12, 28), title="P9 年底签")
    for period in (make_period("year", 2025, 0, date(2026, 7, 31)), make_period("month", 2025, 12, date(2026, 7, 31))):
        c = build_cockpit(w.orgs["G"], period)
        row = next(r for r in c.rows if r.agreement.title.startswith("P9"))
        assert row.overall == "on_track", period.key
        assert {code: (p.target, p.status) for code, p in row.cells.items() if p.commitment} == {
            "study": (0, "on_track"), "event": (0, "on_track")}
        assert c.status_counts["none"] == 0 and c.status_counts["behind"] == 0


def test_extra_cells_are_not_counted_as_completed(review_world):
    """P2's 群团联手 activity has no commitment: the "✓ 已完成 N 项" chip and the organization totals leave it
    out, and it is counted as 约定外开展 instead."""
    w = review_world
    c = build_cockpit(w.orgs["G"], make_period("month", 2026, 5, date(2026, 7, 31)))
    p2 = next(r for r in c.rows if r.agreement.title.startswith("P2"))
    assert p2.cells["mass"].status == "extra" and p2.overall != "done"
    assert c.status_counts["done"] == 0 and c.status_counts["extra"] == 1
    a2_total = next(t for t in c.org_totals if t.org.id == w.orgs["A2"].id)
    assert (a2_total.status_counts["done"], a2_total.status_counts["extra"]) == (0, 1)
