"""Reminder e-mail through a real SMTP server on localhost: content, links, unsubscribe, quiet hours, digests."""
from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from coop.audit.models import AuditEntry
from coop.extensions import db
from coop.reminders.models import Delivery, DeliveryChannel, DeliveryStatus, EmailMode, NotificationPreference
from tests.fixtures.reminders import local


@pytest.fixture
def app_config(app_config, smtp_sink):
    return {**app_config, **smtp_sink.config}


def text_of(msg) -> str:
    return msg.get_body(("plain",)).get_content()


def html_of(msg) -> str:
    return msg.get_body(("html",)).get_content()


def email_rows(user=None, status=None):
    stmt = sa.select(Delivery).where(Delivery.channel == DeliveryChannel.email)
    if user is not None:
        stmt = stmt.where(Delivery.user_id == user.id)
    if status is not None:
        stmt = stmt.where(Delivery.status == status)
    return db.session.execute(stmt.order_by(Delivery.id)).scalars().all()


def test_immediate_email_in_chinese_with_absolute_links(reminder_world, reminder_activity, set_prefs, sweep_at, smtp_sink):
    w = reminder_world
    for u in (w.lx, w.ly):
        set_prefs(u, mode="immediate")
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    act = reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned", title="“七一”主题党日联学")
    result = sweep_at("2026-03-17T09:00")
    assert len(result.emails_sent) == 2

    [msg] = smtp_sink.to("zhangwei@example.cn")
    assert msg["Subject"] == "【党建共建】活动即将开展：“七一”主题党日联学"
    assert "张伟" in str(msg["To"])
    body = text_of(msg)
    assert body.startswith("张伟，您好：")
    assert "定于2026年3月20日（星期五）举行，还有3天" in body
    assert f"查看详情：http://coop.test/activities/{act.id}\n" in body
    assert "http://coop.test/profile#notification-settings" in body
    html = html_of(msg)
    assert f'href="http://coop.test/activities/{act.id}"' in html and "查看详情" in html
    # RFC 2369 + RFC 8058 one-click unsubscribe, pointing at our page.
    unsub = msg["List-Unsubscribe"].strip("<>")
    assert unsub.startswith("http://coop.test/notifications/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # On the wire the URL stays one plain line (an encoded-word would hide it from mail clients).
    [raw] = [r for r in smtp_sink.messages if b"zhangwei@example.cn" in r]
    assert f"List-Unsubscribe: <{unsub}>\r\n".encode() in raw
    assert f"不再接收“活动即将开展”类邮件：{unsub}" in body
    assert msg["Auto-Submitted"] == "auto-generated"

    # Sent once: later sweeps find the row sent and send nothing.
    assert sweep_at("2026-03-17T09:15").emails == []
    assert sweep_at("2026-03-18T09:00").emails == []
    assert len(smtp_sink.received()) == 2
    assert {r.status for r in email_rows()} == {DeliveryStatus.sent}


def test_mandatory_notice_has_no_unsubscribe(reminder_world, signing_version, set_prefs, sweep_at, smtp_sink):
    w = reminder_world
    set_prefs(w.sx, mode="off")
    agreement = w.make(commitments={}, status="draft", starts_on=date(2026, 2, 1), ends_on=date(2027, 1, 31))
    signing_version(agreement, local("2026-01-05T10:00"))
    sweep_at("2026-01-05T10:15")
    [msg] = smtp_sink.to("lihongmei@example.cn")
    assert msg["Subject"] == f"【党建共建】待签署：{agreement.title}"
    assert msg["List-Unsubscribe"] is None and msg["List-Unsubscribe-Post"] is None
    assert "无法退订" in text_of(msg)
    assert f"http://coop.test/agreements/{agreement.id}/sign" in text_of(msg)


def _unsubscribe_path(msg) -> str:
    return urlsplit(msg["List-Unsubscribe"].strip("<>")).path


def test_unsubscribe_get_changes_nothing_post_does(reminder_world, reminder_activity, set_prefs, sweep_at, smtp_sink, client):
    w = reminder_world
    set_prefs(w.lx, mode="immediate")
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned")
    sweep_at("2026-03-17T09:00")
    [msg] = smtp_sink.to("zhangwei@example.cn")
    path = _unsubscribe_path(msg)
    audit_before = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry))

    for _ in range(3):  # a mail scanner following the link, several times
        page = client.get(path)
        assert page.status_code == 200
        assert "确定不再通过邮件接收“活动即将开展”类邮件吗" in page.get_data(as_text=True)
        assert '<form method="post">' in page.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(NotificationPreference, w.lx.id).disabled_kinds == []
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) == audit_before

    done = client.post(path)
    assert done.status_code == 200 and "已停止发送“活动即将开展”类邮件" in done.get_data(as_text=True)
    db.session.expire_all()
    pref = db.session.get(NotificationPreference, w.lx.id)
    assert pref.disabled_kinds == ["activity_upcoming"] and pref.email_mode is EmailMode.immediate

    # The next planned activity reaches the notification centre, but not the mailbox.
    reminder_activity(agreement, w.x, date(2026, 3, 27), status="planned", title="第二次活动")
    result = sweep_at("2026-03-24T09:00")
    assert [n.user_name for n in result.notices if n.kind.value == "activity_upcoming"].count("张伟") == 1
    assert len(smtp_sink.to("zhangwei@example.cn")) == 1


def test_one_click_unsubscribe_post_works_without_session_or_csrf(reminder_world, set_prefs, sweep_at, smtp_sink, app):
    app.config["WTF_CSRF_ENABLED"] = True
    w = reminder_world
    set_prefs(w.lx, mode="daily")
    w.make(commitments={"study": 4})
    sweep_at("2026-04-02T09:00")
    sweep_at("2026-04-03T08:00")  # daily digest
    [digest] = smtp_sink.to("zhangwei@example.cn")
    assert "每日提醒摘要" in digest["Subject"]
    client = app.test_client()
    # What a mail client sends for RFC 8058 one-click: a bare POST with this body.
    resp = client.post(_unsubscribe_path(digest), data="List-Unsubscribe=One-Click",
                       content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 200
    db.session.expire_all()
    assert db.session.get(NotificationPreference, w.lx.id).email_mode is EmailMode.off


def test_forged_or_mandatory_unsubscribe_tokens_are_404(reminder_world, client, app):
    from coop.reminders.delivery import unsubscribe_token

    w = reminder_world
    assert client.get("/notifications/unsubscribe/not-a-token").status_code == 404
    assert client.post("/notifications/unsubscribe/not-a-token").status_code == 404
    assert client.post(f"/notifications/unsubscribe/{unsubscribe_token(w.sx.id, 'signature_pending')}").status_code == 404
    other_key = app.config["SECRET_KEY"]
    app.config["SECRET_KEY"] = "another"
    forged = unsubscribe_token(w.sx.id, "*")
    app.config["SECRET_KEY"] = other_key
    assert client.post(f"/notifications/unsubscribe/{forged}").status_code == 404
    assert db.session.get(NotificationPreference, w.sx.id) is None


def test_quiet_hours_hold_immediate_mail_until_they_end(reminder_world, reminder_activity, set_prefs, sweep_at, smtp_sink):
    w = reminder_world
    set_prefs(w.lx, mode="immediate", quiet=("22:00", "07:00"))
    set_prefs(w.ly, mode="immediate")
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned")
    late = sweep_at("2026-03-16T23:00")  # 3 days before starts at midnight; nothing at 23:00 on the 16th
    assert late.notices == []
    night = sweep_at("2026-03-17T00:15")
    assert len(night.notices) == 2
    assert [e.recipient for e in night.emails] == ["孙浩 <sunhao@example.cn>"]  # no quiet hours for 孙浩
    assert sweep_at("2026-03-17T06:45").emails == []
    morning = sweep_at("2026-03-17T07:00")
    assert [e.recipient for e in morning.emails] == ["张伟 <zhangwei@example.cn>"]
    assert len(smtp_sink.to("zhangwei@example.cn")) == 1


def test_quiet_hours_within_one_day(reminder_world, reminder_activity, set_prefs, sweep_at, smtp_sink):
    w = reminder_world
    set_prefs(w.lx, mode="immediate", quiet=("12:00", "14:00"))
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned")
    noon = sweep_at("2026-03-17T12:30")
    assert len(noon.notices) == 2 and smtp_sink.to("zhangwei@example.cn") == []
    sweep_at("2026-03-17T14:00")
    assert len(smtp_sink.to("zhangwei@example.cn")) == 1


def test_daily_digest_collects_a_days_reminders_at_eight(reminder_world, reminder_activity, set_prefs, sweep_at, smtp_sink):
    w = reminder_world
    set_prefs(w.ly, mode="daily", quiet=("22:00", "07:00"))
    agreement = w.make(commitments={})
    reminder_activity(agreement, w.x, date(2026, 4, 1), requested_at=local("2026-04-01T07:00"))  # Y must confirm
    reminder_activity(agreement, w.x, date(2026, 4, 6), status="planned", title="书记送课上门")
    first = sweep_at("2026-04-03T09:00")  # the upcoming activity for 孙浩
    assert {n.kind.value for n in first.notices if n.user_name == "孙浩"} == {"activity_upcoming"}
    assert sweep_at("2026-04-03T18:00").emails == []
    second = sweep_at("2026-04-04T07:30")  # confirmation reminder now due (3 days after 1 April 20:00)
    assert {n.kind.value for n in second.notices if n.user_name == "孙浩"} == {"confirmation_pending"}
    assert smtp_sink.to("sunhao@example.cn") == []
    digest_sweep = sweep_at("2026-04-04T08:00")
    [digest] = smtp_sink.to("sunhao@example.cn")
    assert digest["Subject"] == "【党建共建】每日提醒摘要：2条待办"
    body = text_of(digest)
    assert "每日提醒摘要（2026年4月4日），共 2 条：" in body
    assert "1. 活动即将开展：书记送课上门" in body and "2. 待确认：04月01日联学活动" in body
    # 张伟 never chose either, so the site default (a daily digest) applies to him too.
    assert sorted(e.recipient for e in digest_sweep.emails if e.digest) == ["孙浩 <sunhao@example.cn>", "张伟 <zhangwei@example.cn>"]
    assert sweep_at("2026-04-04T08:15").emails == [] and sweep_at("2026-04-05T08:00").emails == []
    assert len(smtp_sink.to("sunhao@example.cn")) == 1


def test_weekly_digest_on_monday_drops_what_went_stale(reminder_world, reminder_activity, set_prefs, sweep_at, smtp_sink,
                                                       confirm_activity_rows):
    w = reminder_world
    set_prefs(w.ly, mode="weekly", quiet=None)
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned", title="已过去的活动")  # Friday
    reminder_activity(agreement, w.x, date(2026, 3, 26), status="planned", title="下周四的活动")
    settled = reminder_activity(agreement, w.x, date(2026, 3, 12), requested_at=local("2026-03-12T20:00"), title="已确认的活动")
    open_one = reminder_activity(agreement, w.x, date(2026, 3, 13), requested_at=local("2026-03-13T20:00"), title="仍待确认的活动")
    sweep_at("2026-03-17T09:00")  # Tuesday: upcoming (20th), two confirmations
    confirm_activity_rows(settled, local("2026-03-18T10:00"))
    sweep_at("2026-03-23T07:00")  # Monday before 8: upcoming for the 26th is created
    assert smtp_sink.to("sunhao@example.cn") == []
    result = sweep_at("2026-03-23T08:00")
    [digest] = smtp_sink.to("sunhao@example.cn")
    body = text_of(digest)
    assert "每周提醒摘要" in digest["Subject"]
    assert "仍待确认的活动" in body and "下周四的活动" in body
    assert "已过去的活动" not in body and "已确认的活动" not in body
    skipped = email_rows(w.ly, DeliveryStatus.skipped)
    assert sorted(r.last_error for r in skipped) == ["已过时，不再发送", "提醒的事项已处理，不再发送"]
    [sent] = [e for e in result.emails if e.user_id == w.ly.id]
    assert sorted(k.split(":")[0] for k in sent.keys) == ["confirm", "upcoming"]
    assert f"confirm:activity:{open_one.id}:" in " ".join(sent.keys)


def test_many_at_once_become_one_summary(reminder_world, reminder_activity, set_prefs, sweep_at, smtp_sink):
    w = reminder_world
    set_prefs(w.ly, mode="immediate")
    agreement = w.make(commitments={"study": 4, "event": 2, "service": 2})
    for day in (1, 2, 3, 5):
        reminder_activity(agreement, w.x, date(2026, 7, day), requested_at=local(f"2026-07-0{day}T20:00"))
    # Back after a week off: four confirmations and three commitments behind — one e-mail, not seven.
    result = sweep_at("2026-07-10T09:00")
    mine = [n for n in result.notices if n.user_name == "孙浩"]
    assert len(mine) >= 5
    [msg] = smtp_sink.to("sunhao@example.cn")
    assert msg["Subject"] == f"【党建共建】您有{len(mine)}条新的提醒"
    assert text_of(msg).count("查看：http://coop.test/") == len(mine)


def test_smtp_failure_is_retried_and_sent_once(reminder_world, reminder_activity, set_prefs, sweep_at, smtp_sink, app):
    from tests.fixtures.reminders import free_port

    w = reminder_world
    set_prefs(w.lx, mode="immediate")
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1), liaisons={w.x: [w.lx], w.y: [w.lx]})
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned")
    app.config["MAIL_PORT"] = free_port()  # nothing listens there
    failed = sweep_at("2026-03-17T09:00")
    assert [e.ok for e in failed.emails] == [False]
    [row] = email_rows(w.lx)
    assert row.status is DeliveryStatus.pending and row.attempts == 1 and row.claimed_at is None
    assert "ConnectionRefused" in row.last_error
    app.config["MAIL_PORT"] = smtp_sink.port
    retried = sweep_at("2026-03-17T09:15")
    assert [e.ok for e in retried.emails] == [True]
    db.session.expire_all()
    [row] = email_rows(w.lx)
    assert row.status is DeliveryStatus.sent and row.attempts == 2
    assert len(smtp_sink.to("zhangwei@example.cn")) == 1


def test_gives_up_after_max_attempts(reminder_world, reminder_activity, set_prefs, sweep_at, app):
    from tests.fixtures.reminders import free_port

    w = reminder_world
    set_prefs(w.lx, mode="immediate")
    app.config.update(MAIL_PORT=free_port(), REMINDER_MAX_ATTEMPTS=2)
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned")
    sweep_at("2026-03-17T09:00")
    sweep_at("2026-03-17T09:15")
    assert sweep_at("2026-03-17T09:30").emails == []
    db.session.expire_all()
    assert [r.status for r in email_rows(w.lx)] == [DeliveryStatus.failed]


def test_without_mail_server_messages_land_in_the_outbox(reminder_world, reminder_activity, set_prefs, sweep_at, app, tmp_path):
    app.config["MAIL_SERVER"] = ""
    w = reminder_world
    set_prefs(w.lx, mode="immediate")
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned", title="联学")
    sweep_at("2026-03-17T09:00")
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1
    raw = files[0].read_text("utf-8")
    assert "Subject: 【党建共建】活动即将开展：联学" in raw and "张伟，您好：" in raw
    assert re.search(r"http://coop\.test/activities/\d+", raw)
