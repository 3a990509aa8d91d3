"""The activity screens: logging from a phone form, confirming, withdrawing, ledgers, calendar, permissions."""
from __future__ import annotations

import io
import re
from datetime import date

import pytest
import sqlalchemy as sa

from coop.activities import operations as ops
from coop.activities.models import Activity, ActivityStatus, Attachment, ConfirmationState
from coop.extensions import db
from tests.fixtures.activities import gps_exif, image_bytes


def fetch(client, url):
    """GET and close (file responses hold an open file until closed)."""
    resp = client.get(url)
    resp.get_data()
    resp.close()
    return resp


def _new_form(pairing, **overrides):
    data = {
        "agreement_ids": str(pairing.agreement.id),
        "status": "held",
        "category": "study",
        "title": "书记送课上门",
        "held_on": "2026-03-12",
        "start_time": "09:30",
        "end_time": "11:00",
        "place": "三楼会议室",
        "organization_ids": [str(pairing.a.id), str(pairing.b.id)],
        "party_member_count": "18",
        "other_count": "2",
        "summary": "专题党课",
        "outcome": "约定每季度联学",
    }
    data.update(overrides)
    return data


# --- the log form -------------------------------------------------------------------------------------------------


def test_log_form_is_ready_for_a_phone(client, login, pairing, frozen_today):
    frozen_today(date(2026, 6, 30))
    login(client, pairing.la)
    html = client.get("/activities/new").get_data(as_text=True)
    # The only agreement is chosen; every party is pre-checked; the eight categories are offered.
    assert f'name="agreement_ids" value="{pairing.agreement.id}"' in html
    assert re.search(rf'name="organization_ids" value="{pairing.b.id}" checked', html)
    for name in ("组织联合", "品牌联建", "活动联办", "党员联学", "人才联育", "服务联动", "文化联创", "群团联手"):
        assert name in html
    assert 'type="date"' in html and 'type="time"' in html
    assert 'accept="image/*" capture="environment"' in html
    assert "multiple" in html
    assert 'inputmode="numeric"' in html
    assert 'value="2026-06-30"' in html  # today, in Asia/Shanghai


def test_log_form_without_agreements_says_what_to_do(client, login, pairing):
    login(client, pairing.outsider)
    html = client.get("/activities/new").get_data(as_text=True)
    assert "联络员" in html and "data-activity-form" not in html


def test_logging_through_the_form_with_a_photo(client, login, pairing, app):
    login(client, pairing.la)
    data = _new_form(pairing)
    data["photos"] = [(io.BytesIO(image_bytes("JPEG", exif=gps_exif())), "IMG_0001.jpg")]
    resp = client.post("/activities/new", data=data, content_type="multipart/form-data")
    assert resp.status_code == 302
    activity = db.session.scalars(sa.select(Activity)).one()
    assert resp.headers["Location"].endswith(f"/activities/{activity.id}")
    assert activity.title == "书记送课上门" and activity.start_time.strftime("%H:%M") == "09:30"
    assert activity.organizer_org_id == pairing.a.id
    assert [a.kind for a in activity.attachments] == ["image"]
    page = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "书记送课上门" in page and "待确认" in page
    assert f"/activities/attachments/{activity.attachments[0].id}/thumb" in page


def test_a_refused_form_keeps_what_was_typed(client, login, pairing):
    login(client, pairing.la)
    data = _new_form(pairing, held_on="2027-03-12", title="我打的标题", summary="我写的内容很长")
    data["photos"] = [(io.BytesIO(image_bytes("PNG")), "a.png")]
    resp = client.post("/activities/new", data=data, content_type="multipart/form-data")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "期限" in html  # the error, next to the date field
    assert 'value="我打的标题"' in html and "我写的内容很长" in html and 'value="三楼会议室"' in html
    assert re.search(r'value="study"\s+checked', html)
    assert "请重新选择照片" in html  # browsers cannot keep chosen files: say so
    assert db.session.scalar(sa.select(sa.func.count(Activity.id))) == 0
    assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 0


def test_form_refuses_held_activity_on_a_signing_agreement(client, login, pairing, make_agreement):
    signing = make_agreement(parties=[pairing.a, pairing.b], status="signing", title="签署中的协议")
    login(client, pairing.la)
    html = client.post("/activities/new", data=_new_form(pairing, agreement_ids=str(signing.id))).get_data(as_text=True)
    assert "只能登记计划活动" in html
    assert client.post("/activities/new", data=_new_form(pairing, agreement_ids=str(signing.id), status="planned",
                                                         held_on="2026-12-01")).status_code == 302


def test_form_refuses_missing_partner(client, login, pairing):
    login(client, pairing.la)
    resp = client.post("/activities/new", data=_new_form(pairing, organization_ids=[str(pairing.a.id)]))
    assert resp.status_code == 200
    assert "协议伙伴" in resp.get_data(as_text=True)


def test_form_refuses_an_agreement_the_user_is_not_liaison_of(client, login, pairing, make_org, make_agreement):
    other = make_agreement(parties=[pairing.c, make_org()])
    login(client, pairing.la)
    resp = client.post("/activities/new", data=_new_form(pairing, agreement_ids=str(other.id)))
    assert resp.status_code == 200 and "所选协议无效" in resp.get_data(as_text=True)
    assert db.session.scalar(sa.select(sa.func.count(Activity.id))) == 0


# --- confirmation from both sides, dispute, withdrawal, edit ------------------------------------------------------------


def test_partner_sees_it_waiting_and_confirms(client, login, pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.lb)
    home = client.get("/").get_data(as_text=True)
    assert "待您确认的活动" in home and activity.title in home
    pending = client.get("/activities/pending").get_data(as_text=True)
    assert activity.title in pending
    detail = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert "确认属实" in detail and "提出异议" in detail
    resp = client.post(f"/activities/{activity.id}/confirm", data={"decision": "confirm"})
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).confirmation is ConfirmationState.confirmed
    assert activity.title not in client.get("/activities/pending").get_data(as_text=True)


def test_organizer_has_no_confirm_button_and_cannot_post_one(client, login, pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.la)
    assert "确认属实" not in client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert client.post(f"/activities/{activity.id}/confirm", data={"decision": "confirm"}).status_code == 403


def test_dispute_through_the_page(client, login, pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.lb)
    client.post(f"/activities/{activity.id}/confirm", data={"decision": "dispute", "comment": ""})
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).confirmation is ConfirmationState.pending  # refused: no comment
    client.post(f"/activities/{activity.id}/confirm", data={"decision": "dispute", "comment": "日期不对，是 3 月 13 日"})
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).confirmation is ConfirmationState.disputed
    # The organizer sees the dispute and its reason, and where to act.
    client2 = client.application.test_client()
    login(client2, pairing.la)
    assert "日期不对，是 3 月 13 日" in client2.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert activity.title in client2.get("/activities/pending").get_data(as_text=True)  # "伙伴有异议的活动"


def test_edit_through_the_page_shows_history(client, login, pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    ops.confirm_activity(pairing.lb, activity, "confirm")
    db.session.commit()
    login(client, pairing.la)
    form = client.get(f"/activities/{activity.id}/edit").get_data(as_text=True)
    assert "重置" in form  # warned before editing a confirmed activity
    data = {
        "category": "study", "title": "专题党课（更正）", "held_on": "2026-03-12", "start_time": "", "end_time": "",
        "place": activity.place, "organization_ids": [str(pairing.a.id), str(pairing.b.id)],
        "party_member_count": "18", "other_count": "4", "summary": activity.summary, "outcome": activity.outcome,
        "note": "标题写错",
    }
    assert client.post(f"/activities/{activity.id}/edit", data=data).status_code == 302
    page = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert "修改记录" in page and "书记送课上门专题党课" in page and "专题党课（更正）" in page and "标题写错" in page
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).confirmation is ConfirmationState.pending


def test_withdraw_through_the_page(client, login, pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.la)
    client.post(f"/activities/{activity.id}/withdraw", data={"reason": ""})
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).status is ActivityStatus.held
    client.post(f"/activities/{activity.id}/withdraw", data={"reason": "重复登记"})
    db.session.expire_all()
    assert db.session.get(Activity, activity.id).status is ActivityStatus.withdrawn
    ledger = client.get("/activities/").get_data(as_text=True)
    assert activity.title in ledger and "撤回原因：重复登记" in ledger


def test_mark_held_page(client, login, pairing, frozen_today):
    frozen_today(date(2026, 4, 1))
    plan = ops.log_activity(pairing.la, agreements=[pairing.agreement], category="mass", title="青年联谊",
                            held_on=date(2026, 4, 10), organization_ids=[pairing.b.id], status="planned")
    db.session.commit()
    frozen_today(date(2026, 4, 11))
    login(client, pairing.la)
    assert "登记开展情况" in client.get(f"/activities/{plan.id}").get_data(as_text=True)
    resp = client.post(f"/activities/{plan.id}/held", data={
        "held_on": "2026-04-10", "organization_ids": [str(pairing.a.id), str(pairing.b.id)],
        "party_member_count": "12", "other_count": "30", "summary": "联谊", "outcome": "增进了解",
    })
    assert resp.status_code == 302
    db.session.expire_all()
    assert db.session.get(Activity, plan.id).status is ActivityStatus.held


# --- permissions: an unrelated liaison sees nothing and changes nothing ------------------------------------------------


@pytest.fixture
def logged_with_photo(pairing, make_activity):
    from coop.uploads import inspect_upload

    photo = inspect_upload(image_bytes("JPEG"), "合影.jpg", max_bytes=10 * 1024 * 1024)
    sheet_pdf = __import__("tests.fixtures.activities", fromlist=["minimal_pdf"]).minimal_pdf()
    sheet = inspect_upload(sheet_pdf, "签到表.pdf", max_bytes=10 * 1024 * 1024)
    activity = make_activity(pairing.la, pairing.agreement, title="绝密标题", attachments=[photo, sheet])
    return activity


def test_outsider_sees_nothing(client, login, pairing, logged_with_photo):
    activity = logged_with_photo
    photo, sheet = activity.attachments
    login(client, pairing.outsider)
    for url in (
        f"/activities/{activity.id}", f"/activities/{activity.id}/edit", f"/activities/{activity.id}/held",
        f"/activities/attachments/{photo.id}", f"/activities/attachments/{photo.id}/thumb",
        f"/activities/attachments/{sheet.id}", f"/activities/agreement/{pairing.agreement.id}",
        f"/activities/org/{pairing.a.id}", f"/activities/export.xlsx?agreement_id={pairing.agreement.id}",
        f"/activities/agreement/{pairing.agreement.id}/import", "/activities/committee",
    ):
        assert fetch(client, url).status_code in (403, 404), url
    for url in ("/activities/", "/activities/pending", "/activities/calendar?month=2026-03", "/",
                "/activities/export.csv", "/activities/export.csv?scope=committee"):
        resp = client.get(url)
        assert "绝密标题" not in resp.get_data(as_text=True), url


def test_outsider_changes_nothing(client, login, pairing, logged_with_photo):
    activity = logged_with_photo
    photo = activity.attachments[0]
    login(client, pairing.outsider)
    posts = {
        f"/activities/{activity.id}/confirm": {"decision": "dispute", "comment": "x"},
        f"/activities/{activity.id}/withdraw": {"reason": "x"},
        f"/activities/{activity.id}/edit": {"title": "改了", "category": "study", "held_on": "2026-03-12",
                                            "organization_ids": [str(pairing.b.id)]},
        f"/activities/{activity.id}/held": {"held_on": "2026-03-12"},
        f"/activities/{activity.id}/attachments": {"files": [(io.BytesIO(image_bytes()), "x.jpg")]},
        f"/activities/attachments/{photo.id}/delete": {},
    }
    for url, data in posts.items():
        assert client.post(url, data=data, content_type="multipart/form-data").status_code == 404, url
    db.session.expire_all()
    again = db.session.get(Activity, activity.id)
    assert again.title == "绝密标题" and again.status is ActivityStatus.held
    assert again.confirmation is ConfirmationState.pending and len(again.attachments) == 2
    assert not again.revisions


def test_partner_may_see_but_not_edit_or_delete(client, login, pairing, logged_with_photo):
    activity = logged_with_photo
    photo = activity.attachments[0]
    login(client, pairing.lb)
    assert fetch(client, f"/activities/attachments/{photo.id}").status_code == 200
    assert client.get(f"/activities/{activity.id}/edit").status_code == 403
    assert client.post(f"/activities/attachments/{photo.id}/delete").status_code == 403
    assert client.post(f"/activities/{activity.id}/withdraw", data={"reason": "x"}).status_code == 403


def test_attachments_are_served_safely(client, login, pairing, logged_with_photo, app):
    activity = logged_with_photo
    photo, sheet = activity.attachments
    login(client, pairing.la)
    resp = fetch(client, f"/activities/attachments/{photo.id}")
    assert resp.status_code == 200 and resp.mimetype == "image/jpeg"
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in resp.headers["Content-Security-Policy"]
    assert resp.headers["Content-Disposition"].startswith("inline")
    thumb = fetch(client, f"/activities/attachments/{photo.id}/thumb")
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg"
    pdf = fetch(client, f"/activities/attachments/{sheet.id}")
    assert pdf.headers["Content-Disposition"].startswith("attachment")
    assert "filename*=UTF-8''" in pdf.headers["Content-Disposition"]
    assert client.get(f"/activities/attachments/{sheet.id}/thumb").status_code == 404


def test_download_name_cannot_break_the_header(client, login, pairing, make_activity):
    from coop.uploads import inspect_upload

    nasty = inspect_upload(image_bytes("PNG"), '../../etc/"pass\r\nwd".png', max_bytes=10 ** 7)
    activity = make_activity(pairing.la, pairing.agreement, attachments=[nasty])
    login(client, pairing.la)
    resp = fetch(client, f"/activities/attachments/{activity.attachments[0].id}")
    header = resp.headers["Content-Disposition"]
    assert "\r" not in header and "\n" not in header and "/" not in header.split("filename", 1)[1].replace("UTF-8''", "")
    assert activity.attachments[0].stored_path.endswith(".png") and "etc" not in activity.attachments[0].stored_path


@pytest.mark.parametrize("role, sees", [("committee_above", True), ("committee_elsewhere", False), ("admin", True)])
def test_committee_reviewers_see_their_subtree(client, login, make_org, make_user, make_agreement, make_activity,
                                               role, sees):
    group = make_org("集团党委", kind="committee")
    a = make_org("甲支部", parent=group)
    b = make_org("乙支部", relation="government")
    elsewhere = make_org("别的党委", kind="committee")
    la = make_user("liaison", org=a)
    agreement = make_agreement(parties=[a, b])
    activity = make_activity(la, agreement, title="子树里的活动")
    user = {
        "committee_above": lambda: make_user("committee", org=group),
        "committee_elsewhere": lambda: make_user("committee", org=elsewhere),
        "admin": lambda: make_user("admin"),
    }[role]()
    login(client, user)
    assert (client.get(f"/activities/{activity.id}").status_code == 200) is sees
    assert ("子树里的活动" in client.get("/activities/committee").get_data(as_text=True)) is sees


# --- ledgers, search, calendar ---------------------------------------------------------------------------------------------


def test_ledger_filters_and_search(client, login, pairing, make_activity):
    make_activity(pairing.la, pairing.agreement, title="理论联学第一课", category="study", held_on=date(2026, 2, 2))
    make_activity(pairing.la, pairing.agreement, title="篮球友谊赛", category="mass", held_on=date(2026, 6, 6),
                  summary="共青团组织", place="体育馆")
    c = make_activity(pairing.lb, pairing.agreement, title="健康讲座", category="service", held_on=date(2026, 9, 9))
    ops.confirm_activity(pairing.la, c, "confirm")
    db.session.commit()
    login(client, pairing.la)

    def titles(query):
        html = client.get("/activities/" + query).get_data(as_text=True)
        return {t for t in ("理论联学第一课", "篮球友谊赛", "健康讲座") if t in html}

    assert titles("") == {"理论联学第一课", "篮球友谊赛", "健康讲座"}
    assert titles("?category=mass") == {"篮球友谊赛"}
    assert titles("?q=体育馆") == {"篮球友谊赛"}  # place is searched
    assert titles("?q=共青团") == {"篮球友谊赛"}  # and the summary
    assert titles("?q=%25") == set()  # LIKE wildcards are literal
    assert titles("?confirmation=confirmed") == {"健康讲座"}
    assert titles("?date_from=2026-03-01&date_to=2026-07-01") == {"篮球友谊赛"}
    assert titles("?category=bogus&date_from=yesterday") == {"理论联学第一课", "篮球友谊赛", "健康讲座"}  # ignored, not 500
    assert titles(f"?partner={pairing.b.id}") == {"理论联学第一课", "篮球友谊赛", "健康讲座"}
    assert titles("?q=没有这个") == set()
    assert "没有符合条件的活动" in client.get("/activities/?q=没有这个").get_data(as_text=True)
    agreement_page = client.get(f"/activities/agreement/{pairing.agreement.id}").get_data(as_text=True)
    assert "健康讲座" in agreement_page and "导入" in agreement_page


def test_ledger_is_paginated(client, login, pairing, make_activity):
    for i in range(23):
        make_activity(pairing.la, pairing.agreement, title=f"活动{i:02d}", held_on=date(2026, 1, 5 + i))
    login(client, pairing.la)
    first = client.get("/activities/").get_data(as_text=True)
    assert "活动22" in first and "活动02" not in first and "第 1 / 2 页" in first
    second = client.get("/activities/?page=2").get_data(as_text=True)
    assert "活动02" in second and "活动22" not in second


def test_ledger_sql_does_not_grow_with_rows(client, login, pairing, make_activity):
    """A later benchmark counts SQL per request: the ledger must not issue a query per row."""
    from sqlalchemy import event

    login(client, pairing.la)

    def count_queries(url):
        statements = []

        def before(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", before)
        try:
            assert client.get(url).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", before)
        return len(statements)

    make_activity(pairing.la, pairing.agreement, title="一")
    few = {u: count_queries(u) for u in ("/activities/", "/activities/calendar?month=2026-03")}
    for i in range(12):
        make_activity(pairing.la, pairing.agreement, title=f"多{i}", held_on=date(2026, 3, 1 + i))
    many = {u: count_queries(u) for u in few}
    assert many == few


def test_calendar_shows_planned_and_held(client, login, pairing, make_activity, frozen_today):
    frozen_today(date(2026, 3, 15))
    make_activity(pairing.la, pairing.agreement, title="已开展的联学", held_on=date(2026, 3, 3))
    make_activity(pairing.la, pairing.agreement, title="计划中的活动", held_on=date(2026, 3, 25), status="planned")
    w = make_activity(pairing.la, pairing.agreement, title="撤回的活动", held_on=date(2026, 3, 5))
    ops.withdraw_activity(pairing.la, w, "重复")
    db.session.commit()
    login(client, pairing.la)
    html = client.get("/activities/calendar?month=2026-03").get_data(as_text=True)
    assert "2026年3月" in html and "已开展的联学" in html and "计划中的活动" in html
    assert "撤回的活动" not in html
    assert "cal-planned" in html and "cal-held" in html
    assert 'href="/activities/calendar?month=2026-04' in html
    assert client.get("/activities/calendar?month=nonsense").status_code == 200
    home = client.get("/").get_data(as_text=True)
    assert "近期计划活动" in home and "计划中的活动" in home


def test_org_page_links_to_its_ledger(client, login, pairing):
    login(client, pairing.la)
    html = client.get(f"/orgs/{pairing.a.id}").get_data(as_text=True)
    assert f"/activities/org/{pairing.a.id}" in html
    assert client.get(f"/activities/org/{pairing.a.id}").status_code == 200
    assert client.get(f"/activities/org/{pairing.b.id}").status_code == 404


def test_nav_has_the_ledger(client, login, pairing):
    login(client, pairing.la)
    assert "活动台账" in client.get("/").get_data(as_text=True)
