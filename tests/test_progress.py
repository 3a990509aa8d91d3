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
        (1, date(2026, 12, 1), date(2027, 11, 30), 2026, 1),  # a started year never owes nothing
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
        (1, 0, 0, True, "done"),
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
    assert p["culture"].status == "done" and p["culture"].commitment == 0
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
