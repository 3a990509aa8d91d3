"""Each reminder rule on its own: who hears what, when, once — with an injected clock in Asia/Shanghai."""
from __future__ import annotations

from datetime import date, time

import pytest
import sqlalchemy as sa

from coop.extensions import db
from coop.reminders.models import Delivery, DeliveryChannel, Notification
from coop.reminders.models import ReminderKind as NotificationKind
from tests.fixtures.reminders import local


def kinds_by_person(result, *prefixes):
    """Sorted (name, kind) of a sweep's new notices, optionally only kinds starting with `prefixes`."""
    return sorted((n.user_name, n.kind.value) for n in result.notices if not prefixes or n.kind.value.startswith(prefixes))


def of_kind(result, *prefixes):
    return [n for n in result.notices if n.kind.value.startswith(prefixes)]


# --- upcoming planned activity ---------------------------------------------------------------------------


def test_upcoming_activity_goes_to_every_partys_liaisons_three_days_before(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    act = reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned", start_time=time(14, 30), place="检修基地")

    assert sweep_at("2026-03-16T23:59").notices == []
    first = sweep_at("2026-03-17T00:01")
    # X's named liaison, and Y's liaison-role user because Y named nobody; secretaries are not bothered.
    assert kinds_by_person(first) == [("孙浩", "activity_upcoming"), ("张伟", "activity_upcoming")]
    notice = db.session.get(Notification, first.notices[0].notification_id)
    assert notice.link == f"/activities/{act.id}"
    assert "2026年3月20日（星期五） 14:30" in notice.body and "检修基地" in notice.body and "还有3天" in notice.body
    assert notice.dedupe_key == f"upcoming:activity:{act.id}:user:{notice.user_id}:2026-03-20"

    # Every further sweep until the day finds the same keys and adds nothing.
    for moment in ("2026-03-17T00:16", "2026-03-18T09:00", "2026-03-20T08:00"):
        assert sweep_at(moment).notices == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification)) == 2


def test_rescheduled_activity_is_announced_again_for_its_new_date(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    act = reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned")
    assert len(sweep_at("2026-03-18T09:00").notices) == 2
    act.held_on = date(2026, 3, 27)
    db.session.commit()
    assert sweep_at("2026-03-19T09:00").notices == []
    assert len(sweep_at("2026-03-24T09:00").notices) == 2


def test_named_liaison_replaces_the_role_fallback(reminder_world, make_user, reminder_activity, sweep_at):
    w = reminder_world
    named_y = make_user("secretary", org=w.y, display_name="赵敏的助手")
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1), liaisons={w.x: [w.lx], w.y: [named_y]})
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned")
    assert kinds_by_person(sweep_at("2026-03-18T09:00")) == [("张伟", "activity_upcoming"), ("赵敏的助手", "activity_upcoming")]


def test_past_activity_is_not_announced_after_downtime(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned")
    # The machine was off from the 16th to the 21st: the activity is past, nothing to say.
    assert sweep_at("2026-03-21T09:00").notices == []
    # Back on the day itself: still relevant, announced once as "today".
    other = reminder_activity(agreement, w.x, date(2026, 3, 25), status="planned", title="主题党日")
    result = sweep_at("2026-03-25T07:00")
    assert len(result.notices) == 2
    assert "就在今天" in db.session.get(Notification, result.notices[0].notification_id).body
    assert other.id == db.session.get(Notification, result.notices[0].notification_id).activity_id


# --- partner entry waiting for confirmation, and escalation ---------------------------------------------


def test_confirmation_reminder_then_secretary_then_reviewer(reminder_world, reminder_activity, confirm_activity_rows, sweep_at, notices):
    w = reminder_world
    agreement = w.make(commitments={}, starts_on=date(2026, 2, 1))
    act = reminder_activity(agreement, w.x, date(2026, 2, 10), requested_at=local("2026-02-10T20:00"))

    assert of_kind(sweep_at("2026-02-13T09:00"), "confirmation") == []  # 3 days are up at 20:00
    assert kinds_by_person(sweep_at("2026-02-14T09:00"), "confirmation") == [("孙浩", "confirmation_pending")]
    for day in range(15, 21):
        assert of_kind(sweep_at(f"2026-02-{day}T09:00"), "confirmation") == []
    assert kinds_by_person(sweep_at("2026-02-21T09:00"), "confirmation") == [("赵敏", "confirmation_overdue")]
    for day in range(22, 28):
        assert of_kind(sweep_at(f"2026-02-{day}T09:00"), "confirmation") == []
    assert kinds_by_person(sweep_at("2026-02-28T09:00"), "confirmation") == [("王立新", "confirmation_overdue")]
    confirm_activity_rows(act, local("2026-03-01T10:00"))
    assert of_kind(sweep_at("2026-03-30T09:00"), "confirmation") == []
    # X's people were never involved: it is Y's answer that is missing.
    assert [n[0] for n in notices() if n[1].startswith("confirmation")] == ["孙浩", "赵敏", "王立新"]
    escalated = db.session.execute(sa.select(Notification).where(Notification.level == 2)).scalar_one()
    assert escalated.title == f"营销服务党支部逾期未确认活动：{act.title}"


def test_escalation_never_comes_first_after_downtime(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={}, starts_on=date(2026, 2, 1))
    reminder_activity(agreement, w.x, date(2026, 2, 10), requested_at=local("2026-02-10T20:00"))
    # Off for a month: the entry is long overdue, but the liaison hears of it first, and alone.
    assert kinds_by_person(sweep_at("2026-03-12T09:00"), "confirmation") == [("孙浩", "confirmation_pending")]
    assert of_kind(sweep_at("2026-03-18T09:00"), "confirmation") == []
    assert kinds_by_person(sweep_at("2026-03-19T09:00"), "confirmation") == [("赵敏", "confirmation_overdue")]
    assert kinds_by_person(sweep_at("2026-03-26T09:00"), "confirmation") == [("王立新", "confirmation_overdue")]


def test_secretary_who_is_also_liaison_is_not_told_twice(reminder_world, make_user, reminder_activity, sweep_at):
    w = reminder_world
    both = make_user("secretary", "liaison", org=w.y, display_name="何雨桐")
    agreement = w.make(commitments={}, starts_on=date(2026, 2, 1), liaisons={w.x: [w.lx], w.y: [both]})
    reminder_activity(agreement, w.x, date(2026, 2, 10), requested_at=local("2026-02-10T20:00"))
    assert kinds_by_person(sweep_at("2026-02-14T09:00")) == [("何雨桐", "confirmation_pending")]
    # Level 1 goes to Y's other secretary only; the reviewer's clock runs from that.
    assert kinds_by_person(sweep_at("2026-02-21T09:00")) == [("赵敏", "confirmation_overdue")]
    assert kinds_by_person(sweep_at("2026-02-28T09:00")) == [("王立新", "confirmation_overdue")]


def test_plan_marked_held_waits_from_the_event_not_from_planning(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={}, starts_on=date(2026, 2, 1))
    # Planned (and its confirmation row created) on 1 February; took place on the 20th.
    reminder_activity(agreement, w.x, date(2026, 2, 20), requested_at=local("2026-02-01T10:00"))
    assert sweep_at("2026-02-22T09:00").notices == []
    assert kinds_by_person(sweep_at("2026-02-23T09:00")) == [("孙浩", "confirmation_pending")]


# --- silence, commitments ----------------------------------------------------------------------------------


def test_inactive_agreement_every_thirty_silent_days(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={})
    assert sweep_at("2026-01-30T09:00").notices == []
    assert kinds_by_person(sweep_at("2026-01-31T09:00")) == [("孙浩", "agreement_inactive"), ("张伟", "agreement_inactive")]
    assert sweep_at("2026-03-01T09:00").notices == []  # 59 days
    assert len(sweep_at("2026-03-02T09:00").notices) == 2  # 60 days: once more
    reminder_activity(agreement, w.y, date(2026, 3, 5), confirmed=True)
    assert sweep_at("2026-04-03T09:00").notices == []  # 29 days since the 5th
    second = sweep_at("2026-04-04T09:00")
    assert len(second.notices) == 2
    assert db.session.get(Notification, second.notices[0].notification_id).body.startswith(
        f"协议“{agreement.title}”自2026年3月5日以来已有30天"
    )


def test_commitment_behind_once_per_category_per_month(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    w.make(commitments={"study": 4, "event": 2})
    # study: 1 expected from 2 April (4 × 92/365); event: 1 expected only from 2 July.
    assert of_kind(sweep_at("2026-04-01T09:00"), "commitment") == []
    april = sweep_at("2026-04-02T09:00")
    assert kinds_by_person(april, "commitment") == [("孙浩", "commitment_behind"), ("张伟", "commitment_behind")]
    assert {n.title for n in of_kind(april, "commitment")} == {"党员联学进度滞后：运维检修党支部与营销服务党支部结对共建协议"}
    assert of_kind(sweep_at("2026-04-15T09:00"), "commitment") == []
    # Month ends are local: 23:59 on 30 April is still April; one minute past midnight is May.
    assert of_kind(sweep_at("2026-04-30T23:59"), "commitment") == []
    may = of_kind(sweep_at("2026-05-01T00:01"), "commitment")
    assert len(may) == 2 and all(n.key.endswith(":2026-05") for n in may)


def test_commitment_caught_up_is_not_reminded(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={"study": 4})
    reminder_activity(agreement, w.x, date(2026, 3, 10), confirmed=True)
    reminder_activity(agreement, w.x, date(2026, 3, 30), confirmed=True)
    assert sweep_at("2026-04-02T09:00").notices == []  # 1 expected, 2 confirmed
    # Two expected by 2 July, two confirmed: on track. Three by 1 October, two confirmed: behind.
    assert [n for n in sweep_at("2026-07-02T09:00").notices if n.kind.value == "commitment_behind"] == []
    october = [n for n in sweep_at("2026-10-01T09:00").notices if n.kind.value == "commitment_behind"]
    assert sorted(n.user_name for n in october) == ["孙浩", "张伟"]
    assert of_kind(sweep_at("2026-10-02T09:00"), "commitment") == []
    keys = set(db.session.execute(
        sa.select(Notification.dedupe_key).where(Notification.kind == NotificationKind.commitment_behind)
    ).scalars())
    assert keys == {f"behind:agreement:{agreement.id}:study:user:{w.lx.id}:2026-10",
                    f"behind:agreement:{agreement.id}:study:user:{w.ly.id}:2026-10"}


def test_month_key_follows_shanghai_time_not_utc(reminder_world, app):
    from datetime import datetime, timezone

    from coop.reminders.sweep import run_sweep

    reminder_world.make(commitments={"study": 4})
    # 16:30 UTC on 30 June is 00:30 on 1 July in Shanghai.
    result = run_sweep(datetime(2026, 6, 30, 16, 30, tzinfo=timezone.utc))
    behind = [n for n in result.notices if n.kind.value == "commitment_behind"]
    assert len(behind) == 2 and all(n.key.endswith(":2026-07") for n in behind)


# --- expiry, leap years -------------------------------------------------------------------------------------


def test_expiring_thirty_and_seven_days_before_a_leap_day(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={}, starts_on=date(2027, 3, 1), ends_on=date(2028, 2, 29))
    reminder_activity(agreement, w.x, date(2028, 1, 20), confirmed=True)  # not silent
    assert of_kind(sweep_at("2028-01-29T09:00"), "agreement_expiring") == []  # 31 days left
    thirty = sweep_at("2028-01-30T09:00")
    thirty.notices = of_kind(thirty, "agreement_expiring")
    everyone = [("孙浩", "agreement_expiring"), ("张伟", "agreement_expiring"), ("李红梅", "agreement_expiring"), ("赵敏", "agreement_expiring")]
    assert sorted(kinds_by_person(thirty)) == sorted(everyone)
    assert {n.title for n in thirty.notices} == {f"协议30天后到期：{agreement.title}"}
    assert of_kind(sweep_at("2028-02-21T09:00"), "agreement_expiring") == []  # 8 days left
    seven = sweep_at("2028-02-22T09:00")
    seven.notices = of_kind(seven, "agreement_expiring")
    assert sorted(kinds_by_person(seven)) == sorted(everyone)
    body = db.session.get(Notification, seven.notices[0].notification_id).body
    assert "2028年2月29日到期（7天后）" in body
    assert of_kind(sweep_at("2028-02-29T09:00"), "agreement_expiring") == []
    assert of_kind(sweep_at("2028-03-01T09:00"), "agreement_expiring") == []


def test_expiring_after_downtime_sends_only_the_nearer_notice(reminder_world, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={}, starts_on=date(2026, 12, 20), ends_on=date(2027, 1, 10))
    result = sweep_at("2027-01-05T09:00")
    assert {n.key.split(":user:")[0] for n in result.notices} == {f"expiring:agreement:{agreement.id}:2027-01-10:7"}


def test_renewal_in_progress_silences_expiry(reminder_world, make_agreement, sweep_at):
    w = reminder_world
    old = w.make(commitments={}, starts_on=date(2026, 1, 1), ends_on=date(2026, 12, 31))
    make_agreement(parties=[w.x, w.y], status="signing", commitments={}, renewed_from_id=old.id,
                   starts_on=date(2027, 1, 1), ends_on=date(2027, 12, 31))
    assert [n for n in sweep_at("2026-12-01T09:00").notices if n.kind.value == "agreement_expiring"] == []


# --- signatures (mandatory) ---------------------------------------------------------------------------------


def test_signature_pending_is_mandatory_and_escalates(reminder_world, signing_version, sign_as, sweep_at, set_prefs, app):
    w = reminder_world
    agreement = w.make(commitments={}, status="draft", starts_on=date(2026, 2, 1), ends_on=date(2027, 1, 31))
    version = signing_version(agreement, local("2026-01-05T10:00"))
    set_prefs(w.sx, mode="off", disabled=["agreement_expiring"])
    first = sweep_at("2026-01-05T10:15")
    assert kinds_by_person(first) == [("李红梅", "signature_pending"), ("赵敏", "signature_pending")]
    rows = db.session.execute(sa.select(Delivery).where(Delivery.channel == DeliveryChannel.email)).scalars().all()
    # E-mail off cannot stop a mandatory notice.
    assert {r.user_id for r in rows} == {w.sx.id, w.sy.id} and all(r.mandatory for r in rows)

    sign_as(version, w.x, w.sx, local("2026-01-06T11:00"))
    assert sweep_at("2026-01-12T09:00").notices == []
    follow_up = sweep_at("2026-01-12T10:15")
    assert kinds_by_person(follow_up) == [("赵敏", "signature_overdue")]
    assert follow_up.notices[0].title.startswith("协议仍待签署（已7天）")
    assert kinds_by_person(sweep_at("2026-01-19T10:15")) == [("王立新", "signature_overdue")]
    reviewer_notice = db.session.execute(sa.select(Notification).where(Notification.user_id == w.reviewer.id)).scalar_one()
    assert reviewer_notice.mandatory is False  # the reviewer may switch these off; it is not their signature


def test_fixed_signing_order_reminds_only_whose_turn_it_is(reminder_world, signing_version, sign_as, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={}, status="draft", starts_on=date(2026, 2, 1), ends_on=date(2027, 1, 31))
    version = signing_version(agreement, local("2026-01-05T10:00"), fixed_order=True)
    assert kinds_by_person(sweep_at("2026-01-05T10:15")) == [("李红梅", "signature_pending")]
    sign_as(version, w.x, w.sx, local("2026-01-07T16:00"))
    second = sweep_at("2026-01-07T16:15")
    assert kinds_by_person(second) == [("赵敏", "signature_pending")]
    assert "自2026年1月7日起等待营销服务党支部签署" in db.session.get(Notification, second.notices[0].notification_id).body


# --- monthly reports ----------------------------------------------------------------------------------------


def test_report_ready_once_for_the_first_version(reminder_world, monthly_report_row, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={})
    reminder_activity(agreement, w.x, date(2026, 3, 31), confirmed=True)
    monthly_report_row(agreement, 2026, 3, local("2026-04-01T02:00"))
    result = sweep_at("2026-04-01T09:00")
    assert kinds_by_person(result) == [("孙浩", "report_ready"), ("张伟", "report_ready")]
    assert result.notices[0].title == f"2026年3月报告已生成：{agreement.title}"
    assert db.session.get(Notification, result.notices[0].notification_id).link == f"/reports/agreements/{agreement.id}/2026-03"
    monthly_report_row(agreement, 2026, 3, local("2026-04-10T15:00"), version=2)  # regenerated: not news
    assert sweep_at("2026-04-10T15:15").notices == []
    # A report first made more than two weeks before the sweep is old news.
    monthly_report_row(agreement, 2026, 2, local("2026-03-01T02:00"))
    assert sweep_at("2026-04-10T15:30").notices == []


# --- bookkeeping ---------------------------------------------------------------------------------------------


def test_repeated_sweeps_create_nothing_twice(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={"study": 4})
    reminder_activity(agreement, w.x, date(2026, 4, 10), status="planned")
    reminder_activity(agreement, w.x, date(2026, 4, 1), requested_at=local("2026-04-01T20:00"))
    first = sweep_at("2026-04-08T09:00")
    assert len(first.notices) >= 4
    for _ in range(3):
        assert sweep_at("2026-04-08T09:00").notices == []
    keys = db.session.execute(sa.select(Delivery.key, Delivery.channel)).all()
    assert len(keys) == len(set(keys))


def test_broken_rule_does_not_stop_the_others(reminder_world, reminder_activity, app, monkeypatch):
    from coop.reminders import rules
    from coop.reminders.sweep import run_sweep

    w = reminder_world
    agreement = w.make(commitments={})
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned")

    def boom(ctx):
        raise RuntimeError("坏规则")

    monkeypatch.setitem(rules.RULES, "inactive", (boom, rules.RULES["inactive"][1]))
    result = run_sweep(local("2026-03-18T09:00"))
    assert result.skipped_rules == {"inactive": "RuntimeError: 坏规则"}
    assert {n.kind.value for n in result.notices} == {"activity_upcoming"}


def test_deactivated_people_hear_nothing(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={})
    w.ly.is_active_account = False
    db.session.commit()
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned")
    assert kinds_by_person(sweep_at("2026-03-18T09:00")) == [("张伟", "activity_upcoming"), ("张伟", "agreement_inactive")]


@pytest.mark.parametrize("value", ["2026-10-01T09:00", "2026-10-01T09:00+08:00", "2026-10-01T01:00+00:00"])
def test_cli_now_is_local_unless_an_offset_is_given(app, value):
    from coop.reminders.cli import parse_now

    assert parse_now(value) == local("2026-10-01T09:00")


# --- leap days, and the real operations of the activities domain --------------------------------------------


def test_leap_february_counts_its_29th_day(reminder_world, reminder_activity, sweep_at):
    w = reminder_world
    agreement = w.make(commitments={}, starts_on=date(2028, 2, 1), ends_on=date(2029, 1, 31))
    reminder_activity(agreement, w.x, date(2028, 2, 29), status="planned", title="闰日联学")
    assert of_kind(sweep_at("2028-02-25T09:00"), "activity") == []
    upcoming = of_kind(sweep_at("2028-02-26T09:00"), "activity")
    assert len(upcoming) == 2
    assert "2028年2月29日（星期二）" in db.session.get(Notification, upcoming[0].notification_id).body
    # 30 silent days from 1 February 2028 end on 2 March, not 3 March, because February has 29 days.
    assert of_kind(sweep_at("2028-03-01T09:00"), "agreement_inactive") == []
    assert len(of_kind(sweep_at("2028-03-02T09:00"), "agreement_inactive")) == 2


def test_with_the_activity_operations(reminder_world, app):
    """Logged and confirmed through coop.activities.operations (real clock): remind after 3 days, stop once confirmed."""
    from datetime import datetime, timedelta

    from coop.activities import operations as activity_ops
    from coop.reminders.sweep import run_sweep
    from tests.fixtures.reminders import SHANGHAI

    w = reminder_world
    today = datetime.now(SHANGHAI).date()
    agreement = w.make(commitments={}, starts_on=today - timedelta(days=40), ends_on=today + timedelta(days=300))
    activity = activity_ops.log_activity(
        w.lx, agreements=[agreement], category="study", title="理论联学", held_on=today - timedelta(days=1),
        organization_ids=[w.x.id, w.y.id], party_member_count=12,
    )
    db.session.commit()
    now = datetime.now(SHANGHAI)
    assert of_kind(run_sweep(now + timedelta(days=2, hours=23)), "confirmation") == []
    due = of_kind(run_sweep(now + timedelta(days=3, minutes=1)), "confirmation")
    assert [(n.user_name, n.kind.value) for n in due] == [("孙浩", "confirmation_pending")]
    assert db.session.get(Notification, due[0].notification_id).link == f"/activities/{activity.id}"
    activity_ops.confirm_activity(w.ly, activity)
    db.session.commit()
    # Confirmed: no escalation ever, and the e-mail still waiting for 孙浩's digest is dropped.
    later = run_sweep(now + timedelta(days=11))
    assert of_kind(later, "confirmation") == []
    pending = db.session.execute(sa.select(Delivery).where(Delivery.key == due[0].key, Delivery.channel == DeliveryChannel.email)).scalar_one()
    assert pending.status.value == "skipped" and pending.last_error == "提醒的事项已处理，不再发送"
