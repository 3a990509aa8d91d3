"""Progress against commitments: pro-rata targets, statuses, and the one grouped count query."""
from datetime import date

import pytest

from coop.activities.models import (
    Activity,
    ActivityAgreement,
    ActivityStatus,
    ConfirmationState,
)
from coop.extensions import db
from coop.reports.progress import (
    agreement_progress,
    classify,
    expected_by,
    month_bounds,
    monthly_held_counts,
    overall_status,
    quarter_bounds,
    yearly_target,
)


@pytest.mark.parametrize(
    "count, starts, ends, year, target",
    [
        (4, date(2026, 1, 1), date(2026, 12, 31), 2026, 4),
        (4, date(2026, 7, 1), date(2027, 6, 30), 2026, 2),  # half a year owes half
        (4, date(2026, 7, 1), date(2027, 6, 30), 2027, 2),
        (3, date(2026, 7, 1), date(2027, 6, 30), 2026, 2),  # 1.51 rounds half up
        (0, date(2026, 1, 1), date(2026, 12, 31), 2026, 0),
        (4, date(2024, 1, 1), date(2024, 12, 31), 2024, 4),  # leap year
        (12, date(2026, 12, 1), date(2027, 11, 30), 2026, 1),  # December only: 31/365*12 = 1.02
        # 31/365 of 1 rounds to 0: December owes nothing, and the term as a whole owes the 1 it promised
        (1, date(2026, 12, 1), date(2027, 11, 30), 2026, 0),
        (1, date(2026, 12, 1), date(2027, 11, 30), 2027, 1),
        (4, date(2025, 12, 29), date(2026, 12, 28), 2025, 0),  # 3 days of 2025: 0.03 owes nothing
        (4, date(2025, 12, 29), date(2026, 12, 28), 2026, 4),
        (2, date(2026, 10, 1), date(2027, 9, 30), 2026, 1),  # 0.504 rounds half up
        (4, date(2025, 1, 1), date(2025, 12, 31), 2026, 0),  # outside the term
    ],
)
def test_yearly_target_is_pro_rata_for_part_years(count, starts, ends, year, target):
    assert yearly_target(count, starts, ends, year) == target


def test_expected_rounds_down_so_nobody_is_behind_early():
    full = (date(2026, 1, 1), date(2026, 12, 31))
    assert expected_by(4, *full, date(2026, 1, 31)) == 0
    assert expected_by(4, *full, date(2026, 3, 31)) == 0  # 0.99
    assert expected_by(4, *full, date(2026, 4, 2)) == 1  # 92 days of 365
    assert expected_by(4, *full, date(2026, 7, 31)) == 2  # the example: 1 done by July is behind
    assert expected_by(4, *full, date(2026, 12, 31)) == 4
    # An agreement that started mid-year is measured from its start.
    assert expected_by(2, date(2026, 7, 1), date(2027, 6, 30), date(2026, 6, 30)) == 0
    assert expected_by(2, date(2026, 7, 1), date(2027, 6, 30), date(2026, 12, 31)) == 2


@pytest.mark.parametrize(
    "ytd, target, expected, held_any, status",
    [
        (4, 4, 2, True, "done"),
        (2, 4, 2, True, "on_track"),
        (1, 4, 2, True, "behind"),
        (0, 4, 2, False, "none"),
        (0, 4, 0, False, "on_track"),
        (0, 0, 0, False, "na"),
        (1, 0, 0, True, "extra"),  # no commitment: held outside the agreement, never a completed commitment
        (0, 0, 0, True, "extra"),
    ],
)
def test_classify(ytd, target, expected, held_any, status):
    assert classify(ytd, target, expected, held_any) == status


def test_month_and_quarter_bounds():
    assert month_bounds(2024, 2) == (date(2024, 2, 1), date(2024, 2, 29))
    assert month_bounds(2026, 12) == (date(2026, 12, 1), date(2026, 12, 31))
    assert quarter_bounds(2026, 3) == (date(2026, 7, 1), date(2026, 9, 30))


@pytest.fixture
def add_activity(make_user):
    author = None

    def add(agreement, category, held_on, confirmation="confirmed", status="held"):
        nonlocal author
        if author is None:
            author = make_user("liaison", org=agreement.parties[0].organization)
        act = Activity(
            category=category, title="活动", held_on=held_on, status=ActivityStatus(status),
            confirmation=ConfirmationState(confirmation), organizer_org_id=agreement.parties[0].organization_id,
            created_by_id=author.id,
        )
        act.agreement_links.append(ActivityAgreement(agreement_id=agreement.id))
        db.session.add(act)
        db.session.commit()
        return act

    return add


def test_agreement_progress_counts_per_category(make_agreement, add_activity):
    ag = make_agreement(commitments={"study": 4, "event": 2, "service": 1})
    add_activity(ag, "study", date(2026, 3, 10))
    add_activity(ag, "study", date(2026, 7, 5))
    add_activity(ag, "study", date(2026, 7, 20), confirmation="pending")
    add_activity(ag, "study", date(2026, 7, 21), confirmation="disputed")
    add_activity(ag, "study", date(2026, 7, 22), status="withdrawn")
    add_activity(ag, "study", date(2026, 7, 23), status="planned", confirmation="pending")
    add_activity(ag, "event", date(2025, 12, 31))  # last year: not this year's progress
    add_activity(ag, "culture", date(2026, 7, 2))  # no commitment

    july = month_bounds(2026, 7)
    p = agreement_progress([ag], *july)[ag.id]
    study = p["study"]
    assert (study.held, study.confirmed, study.pending, study.disputed) == (3, 1, 1, 1)
    assert study.year_to_date == 2 and study.target == 4 and study.expected == 2
    assert study.status == "on_track"
    assert p["event"].year_to_date == 0 and p["event"].status == "none"
    assert p["service"].status == "on_track"  # 1 a year: nothing expected by July yet
    assert p["culture"].status == "extra" and p["culture"].commitment == 0
    assert p["org"].status == "na"
    assert overall_status(p) == "none"

    march = month_bounds(2026, 3)
    assert agreement_progress([ag], *march)[ag.id]["study"].year_to_date == 1


def test_monthly_held_counts(make_agreement, add_activity):
    ag = make_agreement()
    add_activity(ag, "study", date(2026, 1, 5))
    add_activity(ag, "event", date(2026, 1, 25), confirmation="pending")
    add_activity(ag, "event", date(2026, 3, 1))
    add_activity(ag, "event", date(2025, 12, 1))
    counts = monthly_held_counts([ag.id], date(2026, 1, 1), 12)
    assert counts == {(2026, 1): 2, (2026, 3): 1}


def test_date_driven_reads_give_the_same_figures_as_agreement_driven_ones(app, make_org, make_agreement,
                                                                         add_activity, monkeypatch):
    """Issue 10's plan switch (progress.agreement_in) must never change a figure: compute progress, signals and
    the cockpit's organization totals both ways over a committee's pairings and compare."""
    from coop import cache
    from coop.reports import progress as pg
    from coop.review import queries as review_queries

    committee = make_org("测试党委", kind="committee", relation="group")
    orgs = [make_org(f"支部{i}", parent=committee) for i in range(4)]
    ags = [
        make_agreement(parties=[orgs[i], orgs[(i + 1) % 4]], commitments={"study": 4, "event": 2},
                       starts_on=date(2025, 3, 1), ends_on=date(2027, 2, 28))
        for i in range(4)
    ]
    days = [date(2025, 11, 30), date(2026, 1, 1), date(2026, 6, 15), date(2026, 7, 1), date(2026, 7, 31),
            date(2026, 8, 1), date(2026, 12, 31)]
    for i, ag in enumerate(ags):
        for j, day in enumerate(days[i:]):
            add_activity(ag, ("study", "event", "culture")[j % 3], day,
                         confirmation=("confirmed", "pending", "disputed")[(i + j) % 3])
    shared = add_activity(ags[0], "study", date(2026, 7, 10))  # one activity serving two pairings
    shared.agreement_links.append(ActivityAgreement(agreement_id=ags[1].id))
    db.session.commit()

    def figures(min_agreements: int):
        monkeypatch.setattr(pg, "DATE_DRIVEN_MIN_AGREEMENTS", min_agreements)
        cache.clear()
        out = {}
        for first, last in (month_bounds(2026, 7), (date(2026, 1, 1), date(2026, 12, 31)), quarter_bounds(2026, 3)):
            out[(first, last, "progress")] = pg._agreement_progress(ags, [a.id for a in ags], first, last)
            out[(first, last, "signals")] = pg._pairing_signals(ags, [a.id for a in ags], last)
        for key in ("2026-07", "2026-Q3", "2026"):
            cockpit = review_queries.build_cockpit(committee, review_queries.parse_period(key, date(2026, 12, 31)))
            out[(key, "totals")] = [(t.org.id, dict(t.held), dict(t.confirmed)) for t in cockpit.org_totals]
            out[(key, "cells")] = [(r.agreement.id, r.cells, r.signals) for r in cockpit.rows]
        return out

    def sql(min_agreements: int) -> str:
        monkeypatch.setattr(pg, "DATE_DRIVEN_MIN_AGREEMENTS", min_agreements)
        return str(pg.agreement_in([a.id for a in ags], *month_bounds(2026, 7), ags).compile())

    assert "+" in sql(0) and "+" not in sql(1000)  # the two plans really differ
    date_driven, agreement_driven = figures(0), figures(1000)
    assert date_driven == agreement_driven
    july = agreement_driven[(*month_bounds(2026, 7), "progress")]
    assert sum(p.held for per in july.values() for p in per.values()) == 10  # 8, plus the shared one in both pairings


def test_a_year_whose_share_rounds_to_nothing_owes_nothing(make_agreement, add_activity):
    """Three days of 2025 (29–31 December): the stated rule (pro rata, rounded half up) owes 0 that year, so
    nothing is 尚未开展 in December 2025; 2026 owes the whole commitment."""
    ag = make_agreement(commitments={"study": 4, "event": 2, "service": 1}, starts_on=date(2025, 12, 29),
                        ends_on=date(2026, 12, 28))
    dec = agreement_progress([ag], *month_bounds(2025, 12))[ag.id]
    for code in ("study", "event", "service"):
        assert (dec[code].target, dec[code].expected, dec[code].status) == (0, 0, "on_track"), code
    assert overall_status(dec) == "on_track"
    add_activity(ag, "study", date(2025, 12, 30))  # something done anyway: nothing was owed, so it is done
    assert agreement_progress([ag], *month_bounds(2025, 12))[ag.id]["study"].status == "done"
    assert agreement_progress([ag], date(2026, 1, 1), date(2026, 12, 31))[ag.id]["study"].target == 4


def test_outside_the_term_says_so_instead_of_no_commitment(make_agreement):
    ag = make_agreement(commitments={"study": 4}, starts_on=date(2027, 1, 1), ends_on=date(2027, 12, 31))
    before = agreement_progress([ag], *month_bounds(2026, 11))[ag.id]
    assert before["study"].status == "not_started" and before["org"].status == "na"
    assert overall_status(before) == "not_started"
    after = agreement_progress([ag], *month_bounds(2028, 3))[ag.id]
    assert after["study"].status == "ended" and overall_status(after) == "ended"


def test_extra_activities_never_make_an_agreement_done(make_agreement, add_activity):
    """An uncommitted category with activities is 约定外开展: shown, but neither a completed commitment nor
    the agreement's overall standing."""
    ag = make_agreement(commitments={"study": 4})
    add_activity(ag, "culture", date(2026, 7, 2))
    add_activity(ag, "mass", date(2026, 7, 3), confirmation="pending")
    p = agreement_progress([ag], *month_bounds(2026, 7))[ag.id]
    assert (p["culture"].status, p["culture"].year_to_date) == ("extra", 1)
    assert (p["mass"].status, p["mass"].held, p["mass"].year_to_date) == ("extra", 1, 0)  # held, not yet confirmed
    assert overall_status(p) == "none"  # the study commitment alone decides
    only_extra = make_agreement(commitments={})
    add_activity(only_extra, "culture", date(2026, 7, 2))
    assert overall_status(agreement_progress([only_extra], *month_bounds(2026, 7))[only_extra.id]) == "na"
