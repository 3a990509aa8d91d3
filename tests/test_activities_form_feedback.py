"""What the activity forms tell a liaison when something is off: too much to upload, a stale page, a future
date, a count that is not a number, an old dispute, two agreements with the same title."""
from __future__ import annotations

import io
import re
from datetime import date

import pytest

from coop.activities import operations as ops
from coop.extensions import db
from tests.fixtures.activities import image_bytes


def _new_form(pairing, **overrides):
    data = {
        "agreement_ids": str(pairing.agreement.id), "status": "held", "category": "study", "title": "书记送课上门",
        "held_on": "2026-03-12", "place": "三楼会议室", "organization_ids": [str(pairing.a.id), str(pairing.b.id)],
        "party_member_count": "18", "other_count": "2", "summary": "专题党课", "outcome": "约定每季度联学",
    }
    data.update(overrides)
    return data


# --- 1. a request over MAX_CONTENT_LENGTH comes back to its form -------------------------------------------------


@pytest.fixture
def small_request_limit(app):
    app.config["MAX_CONTENT_LENGTH"] = 60_000


def test_too_large_new_activity_request_leads_back_to_the_form(client, login, pairing, small_request_limit):
    login(client, pairing.la)
    data = _new_form(pairing)
    data["photos"] = [(io.BytesIO(b"\xff\xd8\xff" + b"\0" * 70_000), "IMG_0001.jpg")]
    resp = client.post(f"/activities/new?agreement={pairing.agreement.id}", data=data,
                       content_type="multipart/form-data")
    assert resp.status_code == 303
    assert resp.headers["Location"].endswith(f"/activities/new?agreement={pairing.agreement.id}")
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "上传的照片和文件合计过大" in html and "data-activity-form" in html
    assert "错误代码" not in html


@pytest.mark.parametrize("query", ["endpoint=x", "_external=1&_scheme=https", "_anchor=x"])
def test_too_large_request_with_odd_arguments_still_leads_back(client, login, pairing, small_request_limit, query):
    """Only the form's own arguments are carried back: others must neither crash the handler nor steer the redirect."""
    login(client, pairing.la)
    data = _new_form(pairing)
    data["photos"] = [(io.BytesIO(b"\xff\xd8\xff" + b"\0" * 70_000), "IMG_0001.jpg")]
    resp = client.post(f"/activities/new?date=2026-03-01&{query}", data=data, content_type="multipart/form-data")
    assert resp.status_code == 303
    assert resp.headers["Location"] == "/activities/new?date=2026-03-01"


def test_too_large_attachment_request_leads_back_to_the_activity(client, login, pairing, make_activity,
                                                                small_request_limit):
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.la)
    resp = client.post(f"/activities/{activity.id}/attachments",
                       data={"files": [(io.BytesIO(b"\xff\xd8\xff" + b"\0" * 70_000), "a.jpg")]},
                       content_type="multipart/form-data", follow_redirects=True)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "上传的照片和文件合计过大" in html and activity.title in html


def test_too_large_request_elsewhere_keeps_the_plain_413(client, login, pairing, small_request_limit):
    login(client, pairing.la)
    resp = client.post("/activities/new", data={"title": "x" * 70_000})  # not a multipart upload form
    assert resp.status_code in (303, 413)
    resp = client.post("/activities/pending", data={"x": "y" * 70_000})
    assert resp.status_code in (405, 413)  # not one of the upload forms: untouched


def test_upload_hints_state_the_total_and_the_limits_for_the_script(client, login, pairing, app):
    login(client, pairing.la)
    html = client.get("/activities/new").get_data(as_text=True)
    assert "合计不超过 30 MB" in html
    assert f'data-max-file-bytes="{app.config["UPLOAD_MAX_FILE_BYTES"]}"' in html
    assert f'data-max-total-bytes="{app.config["UPLOAD_MAX_ACTIVITY_BYTES"]}"' in html


def test_attachment_form_tells_the_script_what_is_already_attached(client, login, pairing, make_activity, app):
    activity = make_activity(pairing.la, pairing.agreement)
    ops.add_attachments(pairing.la, activity, [__import__("coop.uploads", fromlist=["x"]).inspect_upload(
        image_bytes("PNG"), "a.png", max_bytes=app.config["UPLOAD_MAX_FILE_BYTES"])])
    db.session.commit()
    login(client, pairing.la)
    html = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert f'data-existing-bytes="{activity.attachments[0].size}"' in html
    assert "合计不超过 30 MB" in html


# --- 2. the real size of a file over the per-file limit ------------------------------------------------------------


def test_a_file_over_the_limit_is_reported_with_its_real_size(client, login, pairing, make_activity, app):
    app.config["UPLOAD_MAX_FILE_BYTES"] = 100_000
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.la)
    big = b"\xff\xd8\xff" + b"\0" * (300 * 1024 - 3)  # 300 KB
    html = client.post(f"/activities/{activity.id}/attachments", data={"files": [(io.BytesIO(big), "大.jpg")]},
                       content_type="multipart/form-data", follow_redirects=True).get_data(as_text=True)
    assert "300 KB" in html and "98 KB" in html
    assert "99 KB" not in html  # not the max_bytes+1 that was read


# --- 3. a stale page: the activity was withdrawn meanwhile ---------------------------------------------------------


@pytest.fixture
def withdrawn(pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    ops.withdraw_activity(pairing.la, activity, "日期记错了")
    db.session.commit()
    return activity


def test_confirming_a_withdrawn_activity_says_it_was_withdrawn(client, login, pairing, withdrawn):
    login(client, pairing.lb)
    resp = client.post(f"/activities/{withdrawn.id}/confirm", data={"decision": "confirm"})
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/activities/{withdrawn.id}")
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "这条活动已被撤回，无需确认。" in html


@pytest.mark.parametrize("method, path, data", [
    ("get", "edit", None),
    ("post", "edit", {"title": "新标题"}),
    ("post", "withdraw", {"reason": "再撤一次"}),
    ("get", "held", None),
])
def test_organizer_on_a_stale_page_is_told_it_was_withdrawn(client, login, pairing, withdrawn, method, path, data):
    login(client, pairing.la)
    resp = getattr(client, method)(f"/activities/{withdrawn.id}/{path}", data=data)
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/activities/{withdrawn.id}")
    html = client.get(resp.headers["Location"]).get_data(as_text=True)
    assert "已撤回" in html and "flash" in html


@pytest.mark.parametrize("who, path, status", [
    ("sa", "confirm", 403),  # a member of the organizer, not a liaison: still no right to answer
    ("lb", "edit", 403),  # the partner never edits
    ("outsider", "confirm", 404),
    ("outsider", "edit", 404),
])
def test_real_permission_failures_stay_403_and_404(client, login, pairing, withdrawn, who, path, status):
    login(client, getattr(pairing, who))
    resp = client.post(f"/activities/{withdrawn.id}/{path}", data={"decision": "confirm", "title": "x"})
    assert resp.status_code == status


# --- 4. the mark-held form with a future date -------------------------------------------------------------------


def test_mark_held_with_a_future_date_fits_that_form(client, login, pairing, make_activity, frozen_today):
    frozen_today(date(2026, 6, 30))
    plan = make_activity(pairing.la, pairing.agreement, status="planned", held_on=date(2026, 7, 10))
    login(client, pairing.la)
    html = client.post(f"/activities/{plan.id}/held", data={
        "held_on": "2026-07-10", "organization_ids": [str(pairing.a.id), str(pairing.b.id)],
    }).get_data(as_text=True)
    assert "计划中" not in html.split("<form", 1)[1]
    assert "实际日期不能晚于今天" in html


def test_mark_held_form_counts_what_the_planned_activity_already_has(client, login, pairing, make_activity):
    """A planned activity may already carry files: the browser's total check on the mark-held form starts from them."""
    from coop.uploads import inspect_upload

    photo = inspect_upload(image_bytes("JPEG"), "a.jpg", max_bytes=10 ** 6)
    plan = make_activity(pairing.la, pairing.agreement, status="planned", held_on=date(2026, 12, 30),
                         attachments=[photo])
    used = sum(a.size for a in plan.attachments)
    login(client, pairing.la)
    html = client.get(f"/activities/{plan.id}/held").get_data(as_text=True)
    assert used > 0 and f'data-existing-bytes="{used}"' in html


# --- 5. the future-date hint sits under 日期, once ----------------------------------------------------------------


def test_future_hint_is_under_the_date_and_not_repeated(client, login, pairing, frozen_today):
    frozen_today(date(2026, 6, 30))
    login(client, pairing.la)
    html = client.get("/activities/new").get_data(as_text=True)
    hint, date_input, place_input = (html.index("data-future-hint"), html.index('name="held_on"'),
                                     html.index('name="place"'))
    assert date_input < hint < place_input
    html = client.post("/activities/new", data=_new_form(pairing, held_on="2026-07-10")).get_data(as_text=True)
    assert "尚未举行的活动请选择“计划中”" in html
    assert html.count("尚未举行的活动请选择“计划中”") == 1


# --- 6. one message for a count that is not a whole number -------------------------------------------------------


@pytest.mark.parametrize("typed", ["abc", "1.5"])
def test_a_count_that_is_not_a_number_gets_one_message(client, login, pairing, typed):
    login(client, pairing.la)
    html = client.post("/activities/new", data=_new_form(pairing, party_member_count=typed)).get_data(as_text=True)
    assert "请填写整数。" in html
    assert "应在 0 到" not in html


# --- 7. an old dispute after an edit reset the answer ---------------------------------------------------------------


def test_old_dispute_is_shown_as_the_earlier_answer(client, login, pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    ops.confirm_activity(pairing.lb, activity, "dispute", "我方只去了 5 人")
    db.session.commit()
    login(client, pairing.la)
    html = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert re.search(r"<span class=\"comment\">“我方只去了 5 人”", html)  # current: shown as the answer
    ops.edit_activity(pairing.la, activity, party_member_count=5)
    db.session.commit()
    html = client.get(f"/activities/{activity.id}").get_data(as_text=True)
    assert "此前的答复：我方只去了 5 人" in html
    assert not re.search(r"<span class=\"comment\">“我方只去了 5 人”", html)


# --- 8. same-titled agreements are told apart by their term --------------------------------------------------------


def test_same_titled_agreements_show_their_terms_and_the_current_one_is_chosen(client, login, make_org, make_user,
                                                                               make_agreement, frozen_today):
    frozen_today(date(2026, 8, 1))
    a, b = make_org("甲党支部"), make_org("乙党支部")
    liaison = make_user("liaison", org=a)
    old = make_agreement(parties=[a, b], title="甲乙结对共建协议", starts_on=date(2025, 8, 1), ends_on=date(2026, 8, 31))
    new = make_agreement(parties=[a, b], title="甲乙结对共建协议", starts_on=date(2026, 8, 1), ends_on=date(2027, 7, 31))
    login(client, liaison)
    html = client.get("/activities/new").get_data(as_text=True)
    assert "2025年8月1日—2026年8月31日" in html and "2026年8月1日—2027年7月31日" in html
    # Both terms contain today: nothing is guessed.
    assert not re.search(r'value="\d+" checked data-agreement-choice', html)
    frozen_today(date(2026, 9, 1))  # now only the renewal runs
    html = client.get("/activities/new").get_data(as_text=True)
    assert re.search(rf'value="{new.id}" checked data-agreement-choice', html)
    assert not re.search(rf'value="{old.id}" checked data-agreement-choice', html)
