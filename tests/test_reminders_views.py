"""Screens: the notification centre, the unread badge, settings on the profile page, the calendar feed."""
from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone

import pytest
import sqlalchemy as sa
from flask import template_rendered
from icalendar import Calendar

from coop.extensions import db
from coop.reminders.models import CalendarFeed, EmailMode, Notification, NotificationPreference
from tests.fixtures.reminders import SHANGHAI


@pytest.fixture
def rendered(app):
    """Contexts of templates rendered during the test: [(template name, context)]."""
    seen = []

    def record(sender, template, context, **extra):
        seen.append((template.name, context))

    template_rendered.connect(record, app)
    try:
        yield seen
    finally:
        template_rendered.disconnect(record, app)


@pytest.fixture
def with_notices(reminder_world, reminder_activity, sweep_at):
    """张伟 (and 孙浩) get an upcoming-activity notice (17 March), then an inactivity notice (31 March)."""
    w = reminder_world
    agreement = w.make(commitments={}, starts_on=date(2026, 3, 1))
    act = reminder_activity(agreement, w.x, date(2026, 3, 20), status="planned", title="联学活动")
    assert len(sweep_at("2026-03-17T09:00").notices) == 2
    assert len(sweep_at("2026-03-31T09:00").notices) == 2
    return w, agreement, act


def test_centre_lists_newest_first_with_unread_badge(with_notices, client, login, rendered):
    w, agreement, act = with_notices
    login(client, w.lx)
    page = client.get("/notifications")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.index("未开展活动") < html.index("活动即将开展：联学活动")
    ctx = dict(rendered)["reminders/index.html"]
    assert ctx["unread_notifications"] == 2
    assert [n.kind.value for n in ctx["pagination"].items] == ["agreement_inactive", "activity_upcoming"]
    # Someone else's centre shows none of it.
    client.post("/logout")
    login(client, w.sx)
    rendered.clear()
    client.get("/notifications")
    assert dict(rendered)["reminders/index.html"]["pagination"].items == []


def test_badge_costs_one_count_query(with_notices, app, login):
    from flask_login import login_user

    from coop.reminders.views import _unread_badge

    w, _agreement, _act = with_notices
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    with app.test_request_context("/"):
        login_user(w.lx)
        sa.event.listen(db.engine, "before_cursor_execute", count)
        try:
            assert _unread_badge() == {"unread_notifications": 2}
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(statements) == 1 and "count(" in statements[0].lower()


def test_signed_in_page_fetches_user_roles_and_badge_in_one_statement(with_notices, app, client, login, rendered):
    """Every signed-in page starts with one statement for the session, the user, the roles and the badge
    (issue 10: it was three), and the badge is still the live count on the next page."""
    w, _agreement, _act = with_notices
    login(client, w.lx)
    statements = []

    def keep(conn, cursor, statement, *args):
        statements.append(" ".join(statement.lower().split()))

    sa.event.listen(db.engine, "before_cursor_execute", keep)
    try:
        assert client.get("/agreements/").status_code == 200
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", keep)
    about_user = [s for s in statements if "login_sessions" in s or "from user_roles" in s or "read_at is null" in s]
    assert len(about_user) == 1, about_user
    assert "user_roles" in about_user[0] and "notifications" in about_user[0]
    assert dict(rendered)["agreements/index.html"]["unread_notifications"] == 2
    rendered.clear()
    client.get("/notifications")
    assert dict(rendered)["reminders/index.html"]["unread_notifications"] == 2
    # A notice written after this page (by the sweep, another process) shows on the next one.
    db.session.add(Notification(user_id=w.lx.id, kind="agreement_inactive", item_key="x", dedupe_key="x-extra",
                                title="又一条"))
    db.session.commit()
    rendered.clear()
    client.get("/notifications")
    assert dict(rendered)["reminders/index.html"]["unread_notifications"] == 3


def test_open_marks_read_and_goes_to_the_thing(with_notices, client, login):
    w, _agreement, act = with_notices
    login(client, w.lx)
    notice = db.session.execute(
        sa.select(Notification).where(Notification.user_id == w.lx.id, Notification.kind == "activity_upcoming")
    ).scalar_one()
    assert client.get(f"/notifications/{notice.id}/open").status_code == 405  # GET changes nothing
    resp = client.post(f"/notifications/{notice.id}/open")
    assert resp.status_code == 302 and resp.headers["Location"] == f"/activities/{act.id}"
    db.session.expire_all()
    assert db.session.get(Notification, notice.id).read_at is not None


def test_cannot_touch_someone_elses_notice(with_notices, client, login):
    w, _agreement, _act = with_notices
    theirs = db.session.execute(sa.select(Notification).where(Notification.user_id == w.ly.id).limit(1)).scalar_one()
    login(client, w.lx)
    assert client.post(f"/notifications/{theirs.id}/read").status_code == 403
    assert client.post(f"/notifications/{theirs.id}/open").status_code == 403
    assert client.post("/notifications/999999/read").status_code == 404
    db.session.expire_all()
    assert db.session.get(Notification, theirs.id).read_at is None


def test_mark_one_then_all_read(with_notices, client, login, rendered):
    w, _agreement, _act = with_notices
    login(client, w.lx)
    mine = db.session.execute(
        sa.select(Notification).where(Notification.user_id == w.lx.id).order_by(Notification.id)
    ).scalars().all()
    assert client.post(f"/notifications/{mine[0].id}/read").status_code == 302
    client.get("/notifications")
    assert dict(rendered)["reminders/index.html"]["unread_notifications"] == 1
    resp = client.post("/notifications/read-all", follow_redirects=True)
    assert "已将 1 条通知标为已读。" in resp.get_data(as_text=True)
    db.session.expire_all()
    assert all(n.read_at is not None for n in db.session.execute(
        sa.select(Notification).where(Notification.user_id == w.lx.id)).scalars())
    # 孙浩's notices are untouched.
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Notification).where(
        Notification.user_id == w.ly.id, Notification.read_at.is_(None))) == 2


def test_home_panel_shows_unread(with_notices, client, login):
    w, _agreement, _act = with_notices
    login(client, w.lx)
    html = client.get("/").get_data(as_text=True)
    assert "新通知" in html and "活动即将开展：联学活动" in html


def test_centre_posts_need_a_csrf_token(with_notices, client, login, app):
    w, _agreement, _act = with_notices
    app.config["WTF_CSRF_ENABLED"] = True
    login(client, w.lx)
    assert client.post("/notifications/read-all").status_code == 400
    html = client.get("/notifications").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    assert client.post("/notifications/read-all", data={"csrf_token": token}).status_code == 302


def test_centre_requires_sign_in(client):
    resp = client.get("/notifications")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


# --- settings on the profile page ----------------------------------------------------------------------


def test_profile_shows_settings_with_defaults(reminder_world, client, login):
    w = reminder_world
    login(client, w.sx)
    html = client.get("/profile").get_data(as_text=True)
    assert 'id="notification-settings"' in html
    assert re.search(r'value="daily"[^>]*checked|checked[^>]*value="daily"', html)
    assert 'value="22:00"' in html and 'value="07:00"' in html
    assert "始终发送，无法关闭：协议待本组织签署、协议逾期未签署（督办）" in html
    assert 'value="signature_pending"' not in html  # a mandatory kind offers no checkbox


def test_save_settings(reminder_world, client, login):
    w = reminder_world
    login(client, w.lx)
    resp = client.post("/notifications/settings", data={
        "n-email_mode": "weekly", "n-quiet_start": "21:30", "n-quiet_end": "06:30",
        "n-email_kinds": ["activity_upcoming", "confirmation_pending"],
    })
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/profile#notification-settings")
    row = db.session.get(NotificationPreference, w.lx.id)
    assert row.email_mode is EmailMode.weekly
    assert (row.quiet_start, row.quiet_end) == (time(21, 30), time(6, 30))
    assert row.disabled_kinds == sorted(["agreement_expiring", "agreement_inactive", "commitment_behind",
                                         "confirmation_overdue", "report_ready"])
    html = client.get("/profile").get_data(as_text=True)
    assert 'value="21:30"' in html


@pytest.mark.parametrize("data, message", [
    ({"n-email_mode": "daily", "n-quiet_start": "22:00", "n-quiet_end": ""}, "请同时填写开始和结束时间"),
    ({"n-email_mode": "daily", "n-quiet_start": "25:00", "n-quiet_end": "07:00"}, "请按 22:00 这样的格式填写时间"),
    ({"n-email_mode": "hourly"}, "不是有效的选择"),
    ({"n-email_mode": "daily", "n-email_kinds": ["signature_pending"]}, "包含无效或不可关闭的提醒类型"),
])
def test_invalid_settings_are_refused(reminder_world, client, login, data, message):
    w = reminder_world
    login(client, w.lx)
    resp = client.post("/notifications/settings", data=data, follow_redirects=True)
    assert message in resp.get_data(as_text=True)
    assert db.session.get(NotificationPreference, w.lx.id) is None


def test_clearing_quiet_hours(reminder_world, client, login):
    w = reminder_world
    login(client, w.lx)
    client.post("/notifications/settings", data={"n-email_mode": "immediate", "n-quiet_start": "", "n-quiet_end": ""})
    row = db.session.get(NotificationPreference, w.lx.id)
    assert row.email_mode is EmailMode.immediate and row.quiet_start is None and row.quiet_end is None


# --- the calendar feed -------------------------------------------------------------------------------------


def _new_feed(client) -> str:
    html = client.post("/notifications/calendar").get_data(as_text=True)
    url = re.search(r'id="feed-url"[^>]*value="([^"]+)"', html).group(1)
    assert url.startswith("http://coop.test/calendar/") and url.endswith(".ics")
    return url[len("http://coop.test"):]


def test_calendar_feed_contents(reminder_world, reminder_activity, signing_version, make_agreement, make_org, client, login, app):
    w = reminder_world
    today = datetime.now(SHANGHAI).date()  # the feed is served at the real time
    agreement = w.make(commitments={}, starts_on=today - timedelta(days=100), ends_on=today + timedelta(days=200))
    planned = reminder_activity(agreement, w.y, today + timedelta(days=30), status="planned",
                                start_time=time(14, 30), place="红色教育基地", title="主题党日")
    allday = reminder_activity(agreement, w.x, today + timedelta(days=36), status="planned", title="书记送课上门")
    gone = reminder_activity(agreement, w.x, today + timedelta(days=37), status="withdrawn", title="已撤回的活动")
    stranger_pair = make_agreement(parties=[make_org(), make_org()], commitments={})
    reminder_activity(stranger_pair, make_org(), today + timedelta(days=38), status="planned", partners=[], title="别人的活动")
    to_sign = w.make(commitments={}, status="draft", title="第二份协议", starts_on=today + timedelta(days=250),
                     ends_on=today + timedelta(days=600))
    submitted = datetime.now(timezone.utc).replace(microsecond=0)
    signing_version(to_sign, submitted)

    login(client, w.sx)
    path = _new_feed(client)
    client.post("/logout")
    anonymous = app.test_client()  # calendar apps fetch without a session
    resp = anonymous.get(path)
    assert resp.status_code == 200
    assert resp.mimetype == "text/calendar"
    cal = Calendar.from_ical(resp.data)
    assert str(cal["X-WR-CALNAME"]) == "党建共建 · 李红梅"
    assert [str(tz["TZID"]) for tz in cal.walk("VTIMEZONE")] == ["Asia/Shanghai"]
    events = {str(e["UID"]): e for e in cal.walk("VEVENT")}
    host = "coop.test"
    timed = events[f"coop-activity-{planned.id}@{host}"]
    assert str(timed["SUMMARY"]) == "主题党日" and str(timed["LOCATION"]) == "红色教育基地"
    start = timed.decoded("DTSTART")
    assert start == datetime.combine(today + timedelta(days=30), time(14, 30), tzinfo=SHANGHAI)
    assert str(start.tzinfo) == "Asia/Shanghai"
    assert timed.decoded("DTEND") - start == timedelta(hours=2)
    assert str(timed["URL"]) == f"http://coop.test/activities/{planned.id}"
    whole_day = events[f"coop-activity-{allday.id}@{host}"]
    assert whole_day.decoded("DTSTART") == today + timedelta(days=36)
    end = events[f"coop-agreement-{agreement.id}-end@{host}"]
    assert str(end["SUMMARY"]) == f"协议到期：{agreement.title}" and end.decoded("DTSTART") == today + timedelta(days=200)
    sign = events[f"coop-agreement-{to_sign.id}-sign-{w.x.id}@{host}"]
    assert str(sign["SUMMARY"]) == "签署期限：第二份协议"
    assert sign.decoded("DTSTART") == (submitted + timedelta(days=7)).astimezone(SHANGHAI).date()
    assert f"coop-activity-{gone.id}@{host}" not in events
    assert not any("别人的活动" in str(e["SUMMARY"]) for e in events.values())
    # UIDs are stable between fetches, so subscribers update events instead of duplicating them.
    again = {str(e["UID"]) for e in Calendar.from_ical(anonymous.get(path).data).walk("VEVENT")}
    assert again == set(events)


def test_feed_token_is_stored_hashed_and_revocable(reminder_world, client, login, app):
    w = reminder_world
    login(client, w.lx)
    path = _new_feed(client)
    token = path[len("/calendar/"):-len(".ics")]
    row = db.session.execute(sa.select(CalendarFeed)).scalar_one()
    assert row.token_hash != token and token not in row.token_hash and len(row.token_hash) == 64
    outsider = app.test_client()
    assert outsider.get(path).status_code == 200

    # Regenerate: the old link stops working at once, the new one works.
    new_path = _new_feed(client)
    assert new_path != path
    assert outsider.get(path).status_code == 404
    assert outsider.get(new_path).status_code == 200
    profile = client.get("/profile").get_data(as_text=True)
    assert "重新生成订阅链接" in profile and new_path not in profile  # shown once, never again

    resp = client.post("/notifications/calendar/revoke", follow_redirects=True)
    assert "日历订阅链接已停用" in resp.get_data(as_text=True)
    assert outsider.get(new_path).status_code == 404
    assert outsider.get("/calendar/made-up-token.ics").status_code == 404
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CalendarFeed).where(CalendarFeed.revoked_at.is_(None))) == 0


def test_feed_of_deactivated_user_is_404(reminder_world, client, login, app):
    w = reminder_world
    login(client, w.lx)
    path = _new_feed(client)
    w.lx.is_active_account = False
    db.session.commit()
    assert app.test_client().get(path).status_code == 404


def test_feed_pages_need_post_and_sign_in(reminder_world, client):
    assert client.get("/notifications/calendar").status_code == 405
    resp = client.post("/notifications/calendar")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CalendarFeed)) == 0
