"""Logging, confirming, disputing, editing and withdrawing joint activities — the operations, without HTTP."""
from __future__ import annotations

from datetime import date, time

import pytest
import sqlalchemy as sa

from coop.activities import operations as ops
from coop.activities.models import (
    Activity,
    ActivityStatus,
    CategorySetting,
    ConfirmationState,
)
from coop.audit.models import AuditEntry
from coop.extensions import db


def kinds() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEntry.kind).order_by(AuditEntry.id)))


# --- logging ---------------------------------------------------------------------------------------------------


def test_liaison_logs_activity_and_partner_is_asked_to_confirm(pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement, tags=["event", "study"], start_time=time(9, 30),
                             end_time=time(11, 0))
    assert activity.organizer_org_id == pairing.a.id
    assert activity.created_by_id == pairing.la.id
    assert activity.status is ActivityStatus.held
    assert sorted(activity.participant_org_ids) == sorted([pairing.a.id, pairing.b.id])
    # One request, to the partner only; the organizer never confirms itself.
    assert [(c.organization_id, c.state) for c in activity.confirmations] == [(pairing.b.id, ConfirmationState.pending)]
    assert activity.confirmation is ConfirmationState.pending
    assert not activity.counts
    assert [t.category for t in activity.tags] == ["event"]  # the primary category is not repeated as a tag
    assert activity.agreement_ids == [pairing.agreement.id]
    assert "activity.logged" in kinds()


def test_only_category_title_date_and_orgs_are_required(pairing):
    activity = ops.log_activity(pairing.la, agreements=[pairing.agreement], category="mass", title="篮球友谊赛",
                                held_on=date(2026, 5, 4), organization_ids=[pairing.b.id])
    db.session.commit()
    assert activity.place is None and activity.summary == "" and activity.party_member_count == 0
    assert sorted(activity.participant_org_ids) == sorted([pairing.a.id, pairing.b.id])  # organizer always added


@pytest.mark.parametrize("field, value, message", [
    ("category", "party", "类别"),
    ("title", "   ", "活动名称"),
    ("held_on", None, "日期"),
    ("held_on", date(2025, 12, 31), "期限"),
    ("held_on", date(2027, 1, 2), "期限"),
    ("party_member_count", -1, "党员人数"),
    ("other_count", "many", "其他人数"),
    ("end_time", time(8, 0), "结束时间"),
])
def test_refuses_invalid_content_with_a_field(pairing, field, value, message):
    values = dict(category="study", title="联学", held_on=date(2026, 4, 1), organization_ids=[pairing.b.id],
                  start_time=time(9, 0))
    values[field] = value
    with pytest.raises(ops.ActivityRefused) as exc:
        ops.log_activity(pairing.la, agreements=[pairing.agreement], **values)
    assert message in str(exc.value)
    assert exc.value.field == field
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(Activity.id))) == 0


def test_held_activity_cannot_be_in_the_future_but_a_plan_can(pairing, frozen_today):
    frozen_today(date(2026, 6, 30))
    with pytest.raises(ops.ActivityRefused, match="计划中"):
        ops.log_activity(pairing.la, agreements=[pairing.agreement], category="study", title="联学",
                         held_on=date(2026, 7, 15), organization_ids=[pairing.b.id])
    plan = ops.log_activity(pairing.la, agreements=[pairing.agreement], category="study", title="联学",
                            held_on=date(2026, 7, 15), organization_ids=[pairing.b.id], status="planned")
    assert plan.status is ActivityStatus.planned


def test_co_building_is_joint_no_partner_no_activity(pairing):
    with pytest.raises(ops.ActivityRefused, match="协议伙伴") as exc:
        ops.log_activity(pairing.la, agreements=[pairing.agreement], category="study", title="自学",
                         held_on=date(2026, 4, 1), organization_ids=[pairing.a.id])
    assert exc.value.field == "organization_ids"


def test_participants_must_be_parties(pairing):
    with pytest.raises(ops.ActivityRefused, match="签约方"):
        ops.log_activity(pairing.la, agreements=[pairing.agreement], category="study", title="联学",
                         held_on=date(2026, 4, 1), organization_ids=[pairing.b.id, pairing.c.id])


@pytest.mark.parametrize("who", ["sa", "outsider"])
def test_only_party_liaisons_log(pairing, who):
    with pytest.raises(ops.ActivityRefused, match="联络员"):
        ops.log_activity(getattr(pairing, who), agreements=[pairing.agreement], category="study", title="联学",
                         held_on=date(2026, 4, 1), organization_ids=[pairing.a.id, pairing.b.id])


def test_named_liaison_without_the_role_may_log_for_their_party(make_org, make_user, make_agreement):
    a, b = make_org(), make_org()
    named = make_user("secretary", org=a)  # no liaison role, but named on the agreement
    agreement = make_agreement(parties=[a, b], liaisons={a: [named]})
    activity = ops.log_activity(named, agreements=[agreement], category="org", title="联席会议",
                                held_on=date(2026, 2, 1), organization_ids=[b.id])
    assert activity.organizer_org_id == a.id


@pytest.mark.parametrize("agreement_status, activity_status, allowed", [
    ("active", "held", True),
    ("active", "planned", True),
    ("signing", "planned", True),
    ("signing", "held", False),
    ("draft", "planned", False),
    ("expired", "held", False),
    ("terminated", "planned", False),
])
def test_agreement_state_decides_what_may_be_logged(pairing, make_agreement, agreement_status, activity_status, allowed):
    agreement = make_agreement(parties=[pairing.a, pairing.b], status=agreement_status)
    kwargs = dict(agreements=[agreement], category="study", title="联学", held_on=date(2026, 4, 1),
                  organization_ids=[pairing.b.id], status=activity_status)
    if allowed:
        assert ops.log_activity(pairing.la, **kwargs).status.value == activity_status
    else:
        with pytest.raises(ops.ActivityRefused, match="协议"):
            ops.log_activity(pairing.la, **kwargs)


def test_one_activity_under_two_agreements(pairing, make_org, make_user, make_agreement):
    d = make_org("第三方党支部")
    second = make_agreement(parties=[pairing.a, d])
    activity = ops.log_activity(pairing.la, agreements=[pairing.agreement, second], category="event",
                                title="三方主题党日", held_on=date(2026, 7, 1),
                                organization_ids=[pairing.b.id, d.id])
    db.session.commit()
    assert sorted(activity.agreement_ids) == sorted([pairing.agreement.id, second.id])
    assert sorted(c.organization_id for c in activity.confirmations) == sorted([pairing.b.id, d.id])
    # Under each agreement a partner of that agreement must take part.
    with pytest.raises(ops.ActivityRefused, match=second.title):
        ops.log_activity(pairing.la, agreements=[pairing.agreement, second], category="event", title="x",
                         held_on=date(2026, 7, 1), organization_ids=[pairing.b.id])


def test_category_settings_make_place_outcome_and_photo_mandatory_for_held(pairing):
    db.session.add(CategorySetting(category="service", requires_photo=True, requires_outcome=True, requires_place=True))
    db.session.commit()
    base = dict(agreements=[pairing.agreement], category="service", title="走访敬老院", held_on=date(2026, 9, 9),
                organization_ids=[pairing.b.id])
    with pytest.raises(ops.ActivityRefused) as exc:
        ops.log_activity(pairing.la, **base)
    assert exc.value.field == "place"
    with pytest.raises(ops.ActivityRefused) as exc:
        ops.log_activity(pairing.la, place="福利院", **base)
    assert exc.value.field == "outcome"
    with pytest.raises(ops.ActivityRefused) as exc:
        ops.log_activity(pairing.la, place="福利院", outcome="送去慰问品", **base)
    assert exc.value.field == "photos"
    # A plan has no photos or results yet: the settings apply once it is held.
    plan = ops.log_activity(pairing.la, status="planned", **base)
    assert plan.status is ActivityStatus.planned


# --- confirmation ----------------------------------------------------------------------------------------------


def test_partner_confirms_and_activity_counts(pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    conf = ops.confirm_activity(pairing.lb, activity, "confirm")
    db.session.commit()
    assert conf.state is ConfirmationState.confirmed and conf.decided_by_id == pairing.lb.id
    assert activity.confirmation is ConfirmationState.confirmed
    assert activity.held_confirmed_at is not None
    assert activity.counts
    assert kinds()[-1] == "activity.confirmed"


def test_confirmation_works_from_either_side(pairing, make_activity):
    """B logs, A confirms: the same flow mirrored."""
    activity = make_activity(pairing.lb, pairing.agreement, title="疾控进企业健康讲座", category="service")
    assert activity.organizer_org_id == pairing.b.id
    assert [c.organization_id for c in activity.confirmations] == [pairing.a.id]
    with pytest.raises(ops.ActivityRefused):
        ops.confirm_activity(pairing.lb, activity, "confirm")  # the organizer cannot confirm itself
    ops.confirm_activity(pairing.la, activity, "confirm")
    assert activity.confirmation is ConfirmationState.confirmed


def test_all_partners_must_confirm(pairing, make_org, make_user, make_agreement):
    d = make_org()
    ld = make_user("liaison", org=d)
    agreement = make_agreement(parties=[pairing.a, pairing.b, d])
    activity = ops.log_activity(pairing.la, agreements=[agreement], category="culture", title="联合宣传",
                                held_on=date(2026, 8, 8), organization_ids=[pairing.b.id, d.id])
    ops.confirm_activity(pairing.lb, activity, "confirm")
    assert activity.confirmation is ConfirmationState.pending
    assert activity.held_confirmed_at is None
    ops.confirm_activity(ld, activity, "confirm")
    assert activity.confirmation is ConfirmationState.confirmed


def test_dispute_needs_a_comment_and_marks_the_activity(pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    with pytest.raises(ops.ActivityRefused, match="原因"):
        ops.confirm_activity(pairing.lb, activity, "dispute", "  ")
    ops.confirm_activity(pairing.lb, activity, "dispute", "我方只去了 3 人，不是 18 人")
    db.session.commit()
    assert activity.confirmation is ConfirmationState.disputed
    assert activity.confirmations[0].comment == "我方只去了 3 人，不是 18 人"
    assert not activity.counts
    assert kinds()[-1] == "activity.disputed"
    # Settled by phone: the partner may change the answer.
    ops.confirm_activity(pairing.lb, activity, "confirm")
    assert activity.confirmation is ConfirmationState.confirmed


def test_outsider_and_secretary_cannot_confirm(pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    for user in (pairing.outsider, pairing.sa):
        with pytest.raises(ops.ActivityRefused):
            ops.confirm_activity(user, activity, "confirm")
    assert activity.confirmation is ConfirmationState.pending


def test_planned_activity_is_confirmed_only_after_it_is_held(pairing, frozen_today):
    frozen_today(date(2026, 5, 1))
    plan = ops.log_activity(pairing.la, agreements=[pairing.agreement], category="talent", title="技能比武",
                            held_on=date(2026, 5, 20), organization_ids=[pairing.b.id], status="planned")
    with pytest.raises(ops.ActivityRefused, match="尚未开展"):
        ops.confirm_activity(pairing.lb, plan, "confirm")
    frozen_today(date(2026, 5, 21))
    ops.mark_held(pairing.la, plan, party_member_count=20, other_count=35, summary="技能比武三个项目",
                  outcome="评出技术能手 3 名")
    db.session.commit()
    assert plan.status is ActivityStatus.held
    assert plan.party_member_count == 20
    assert plan.revisions[-1].changes["status"] == ["计划中", "已开展"]
    assert plan.revisions[-1].changes["party_member_count"] == [0, 20]
    ops.confirm_activity(pairing.lb, plan, "confirm")
    assert plan.counts


def test_mark_held_requires_an_active_agreement_and_a_past_date(pairing, make_agreement, frozen_today):
    frozen_today(date(2026, 3, 1))
    signing = make_agreement(parties=[pairing.a, pairing.b], status="signing")
    plan = ops.log_activity(pairing.la, agreements=[signing], category="org", title="首次联席会",
                            held_on=date(2026, 3, 10), organization_ids=[pairing.b.id], status="planned")
    frozen_today(date(2026, 3, 11))
    with pytest.raises(ops.ActivityRefused, match="签署中"):
        ops.mark_held(pairing.la, plan)
    with pytest.raises(ops.ActivityRefused):
        ops.mark_held(pairing.lb, plan)  # not the organizer


# --- editing and history ---------------------------------------------------------------------------------------------


def test_edit_keeps_history_field_by_field(pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    revision = ops.edit_activity(pairing.la, activity, title="专题党课：学习新党章", party_member_count=20,
                                 note="更正人数")
    db.session.commit()
    assert revision.changes == {"title": ["书记送课上门专题党课", "专题党课：学习新党章"], "party_member_count": [18, 20]}
    assert revision.changed_by_id == pairing.la.id and revision.note == "更正人数"
    assert activity.title == "专题党课：学习新党章"
    assert ops.edit_activity(pairing.la, activity, title="专题党课：学习新党章") is None  # nothing changed, no revision
    assert len(activity.revisions) == 1
    assert kinds()[-1] == "activity.edited"


def test_editing_a_confirmed_activity_resets_confirmations(pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    ops.confirm_activity(pairing.lb, activity, "confirm")
    db.session.commit()
    revision = ops.edit_activity(pairing.la, activity, held_on=date(2026, 3, 13))
    db.session.commit()
    assert activity.confirmation is ConfirmationState.pending
    assert activity.confirmations[0].state is ConfirmationState.pending
    assert activity.confirmations[0].decided_by_id is None
    assert activity.held_confirmed_at is None
    assert revision.changes["held_on"] == ["2026年3月12日", "2026年3月13日"]
    assert revision.changes["confirmation"] == ["已确认", "待确认"]
    assert "重置" in revision.note


def test_changing_only_tags_keeps_confirmation(pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    ops.confirm_activity(pairing.lb, activity, "confirm")
    ops.edit_activity(pairing.la, activity, tags=["culture"])
    assert activity.confirmation is ConfirmationState.confirmed


def test_edit_participants_adds_and_removes_confirmation_requests(pairing, make_org, make_user, make_agreement):
    d = make_org("第三方")
    agreement = make_agreement(parties=[pairing.a, pairing.b, d])
    activity = ops.log_activity(pairing.la, agreements=[agreement], category="study", title="联学",
                                held_on=date(2026, 4, 4), organization_ids=[pairing.b.id])
    ops.edit_activity(pairing.la, activity, organization_ids=[pairing.a.id, d.id])
    db.session.commit()
    assert sorted(activity.participant_org_ids) == sorted([pairing.a.id, d.id])
    assert [c.organization_id for c in activity.confirmations] == [d.id]
    assert activity.revisions[-1].changes["organization_ids"] == [
        [pairing.a.name, pairing.b.name], [pairing.a.name, d.name]]


def test_only_the_organizers_liaisons_edit(pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    for user in (pairing.lb, pairing.outsider, pairing.sa):
        with pytest.raises(ops.ActivityRefused):
            ops.edit_activity(user, activity, title="改掉")
    assert activity.title == "书记送课上门专题党课"


# --- withdrawal ---------------------------------------------------------------------------------------------------------


def test_withdrawal_needs_a_reason_and_stays_visible(pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    ops.confirm_activity(pairing.lb, activity, "confirm")
    with pytest.raises(ops.ActivityRefused, match="原因"):
        ops.withdraw_activity(pairing.la, activity, " ")
    with pytest.raises(ops.ActivityRefused):
        ops.withdraw_activity(pairing.lb, activity, "不是我们发起的")
    ops.withdraw_activity(pairing.la, activity, "与 3 月 10 日的记录重复")
    db.session.commit()
    db.session.expire_all()
    again = db.session.get(Activity, activity.id)  # still there: nothing is deleted
    assert again.status is ActivityStatus.withdrawn
    assert again.withdrawn_reason == "与 3 月 10 日的记录重复" and again.withdrawn_by_id == pairing.la.id
    assert not again.counts
    assert again.revisions[-1].changes["status"] == ["已开展", "已撤回"]
    with pytest.raises(ops.ActivityRefused, match="已撤回"):
        ops.edit_activity(pairing.la, again, title="x")
    with pytest.raises(ops.ActivityRefused, match="撤回"):
        ops.confirm_activity(pairing.lb, again, "confirm")
    with pytest.raises(ops.ActivityRefused, match="已经撤回"):
        ops.withdraw_activity(pairing.la, again, "再撤一次")
