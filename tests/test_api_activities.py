"""Activities and notifications through the API: one entry logged by a liaison, confirmed by the partner."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from coop.activities.models import Activity, ConfirmationState
from coop.db import now_utc
from coop.extensions import db


def activity_payload(world, **overrides) -> dict:
    payload = {
        "agreement_id": world.agreement.id, "category": "study", "title": "书记送课上门", "held_on": "2026-03-12",
        "place": "营销服务中心三楼会议室", "organization_ids": [world.b.id], "party_member_count": 18,
        "other_count": 4, "summary": "李红梅书记讲授专题党课。", "status": "held",
    }
    payload.update(overrides)
    return payload


@pytest.fixture
def logged(api_as, api_world):
    """A held study activity logged by A's liaison, waiting for B."""
    resp = api_as(api_world.la).post("/activities", json=activity_payload(api_world))
    assert resp.status_code == 201, resp.json
    return resp.json


def test_liaison_logs_an_activity_and_the_partner_is_asked(logged, api_world):
    w = api_world
    assert logged["organizer_org_id"] == w.a.id and logged["organization_ids"] == [w.a.id, w.b.id]
    assert logged["agreement_id"] == w.agreement.id and logged["agreement_ids"] == [w.agreement.id]
    assert logged["status"] == "held" and logged["confirmation"] == "pending"
    assert [(c["organization_id"], c["state"]) for c in logged["confirmations"]] == [(w.b.id, "pending")]
    assert logged["category_name"] == "党员联学" and logged["held_on"] == "2026-03-12"
    assert logged["url"] == f"http://coop.test/activities/{logged['id']}"


def test_planned_activity_with_times_and_tags(api_as, api_world):
    resp = api_as(api_world.lb).post("/activities", json=activity_payload(
        api_world, status="planned", held_on="2026-12-20", category="event", tags=["culture", "event"],
        start_time="09:30", end_time="11:00", organization_ids=[api_world.a.id]))
    assert resp.status_code == 201, resp.json
    assert resp.json["status"] == "planned" and resp.json["tags"] == ["culture"]
    assert (resp.json["start_time"], resp.json["end_time"]) == ("09:30", "11:00")
    assert resp.json["organizer_org_id"] == api_world.b.id


def test_who_may_log(api_as, api_world):
    w = api_world
    assert api_as(w.sa).post("/activities", json=activity_payload(w)).status_code == 403  # secretary, not liaison
    assert api_as(w.reviewer).post("/activities", json=activity_payload(w)).status_code == 403
    outsider = api_as(w.lc).post("/activities", json=activity_payload(w))
    assert outsider.status_code == 422 and "agreement_id" in outsider.json["fields"]  # not even visible
    ghost = api_as(w.la).post("/activities", json=activity_payload(w, agreement_id=999999))
    assert ghost.status_code == 422 and ghost.json["fields"]["agreement_id"] == outsider.json["fields"]["agreement_id"]


def test_logging_under_an_agreement_being_signed_is_a_conflict(api_as, api_world, make_agreement):
    w = api_world
    signing = make_agreement(parties=[w.a, w.b], status="signing", liaisons={w.a: [w.la]})
    resp = api_as(w.la).post("/activities", json=activity_payload(w, agreement_id=signing.id))
    assert resp.status_code == 409 and "只能登记计划活动" in resp.json["message"]
    planned = api_as(w.la).post("/activities", json=activity_payload(w, agreement_id=signing.id, status="planned",
                                                                      held_on="2026-11-01"))
    assert planned.status_code == 201


@pytest.mark.parametrize("overrides, field", [
    ({"category": "sports"}, "category"),
    ({"held_on": "2026/03/12"}, "held_on"),
    ({"held_on": "2025-12-31"}, "held_on"),  # outside the agreement's term (a domain rule, named by the domain)
    ({"organization_ids": []}, "organization_ids"),  # nobody from the partner took part
    ({"organization_ids": [999999]}, "organization_ids"),
    ({"party_member_count": -1}, "party_member_count"),
    ({"party_member_count": True}, "party_member_count"),
    ({"other_count": "4"}, "other_count"),
    ({"status": "withdrawn"}, "status"),
    ({"title": ""}, "title"),
    ({"start_time": "25:00"}, "start_time"),
    ({"start_time": "10:00", "end_time": "09:00"}, "end_time"),
    ({"tags": ["study", "study"]}, "tags"),
    ({"photos": ["a.jpg"]}, "photos"),
])
def test_bad_activity_fields_are_named(api_as, api_world, overrides, field):
    resp = api_as(api_world.la).post("/activities", json=activity_payload(api_world, **overrides))
    assert resp.status_code == 422 and field in resp.json["fields"], resp.json


def test_a_held_activity_cannot_be_in_the_future(api_as, api_world):
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    resp = api_as(api_world.la).post("/activities", json=activity_payload(api_world, held_on=tomorrow))
    assert resp.status_code == 422 and "held_on" in resp.json["fields"]


def test_text_is_cleaned_like_the_screens(api_as, api_world):
    resp = api_as(api_world.la).post("/activities", json=activity_payload(
        api_world, title="  党课\u202e\u0000学习  ", summary="第一行\n第二行\u0007"))
    assert resp.status_code == 201
    assert resp.json["title"] == "党课学习" and resp.json["summary"] == "第一行\n第二行"


def test_partner_confirms_and_the_activity_counts(api_as, api_world, logged):
    w = api_world
    url = f"/activities/{logged['id']}/confirmation"
    assert api_as(w.la).post(url, json={"decision": "confirm"}).status_code == 403  # the organizer cannot
    assert api_as(w.sb).post(url, json={"decision": "confirm"}).status_code == 403  # a secretary is no liaison
    assert api_as(w.lc).post(url, json={"decision": "confirm"}).status_code == 404  # outsiders see nothing
    resp = api_as(w.lb).post(url, json={"decision": "confirm", "comment": "属实"})
    assert resp.status_code == 200 and resp.json["confirmation"] == "confirmed"
    answer = resp.json["confirmations"][0]
    assert answer["state"] == "confirmed" and answer["decided_by_id"] == w.lb.id and answer["comment"] == "属实"
    assert db.session.get(Activity, logged["id"]).counts


def test_dispute_needs_a_reason_and_can_be_changed(api_as, api_world, logged):
    w = api_world
    url = f"/activities/{logged['id']}/confirmation"
    api = api_as(w.lb)
    silent = api.post(url, json={"decision": "dispute"})
    assert silent.status_code == 422 and "comment" in silent.json["fields"]
    assert api.post(url, json={"decision": "maybe"}).status_code == 422
    assert api.post(url, json={"decision": "confirm", "organization_id": w.a.id}).status_code == 422
    disputed = api.post(url, json={"decision": "dispute", "comment": "人数不对，实到 12 人"})
    assert disputed.status_code == 200 and disputed.json["confirmation"] == "disputed"
    settled = api.post(url, json={"decision": "confirm"})
    assert settled.json["confirmation"] == "confirmed"


def test_planned_activity_cannot_be_confirmed_yet(api_as, api_world):
    w = api_world
    planned = api_as(w.la).post("/activities", json=activity_payload(w, status="planned", held_on="2026-12-01")).json
    resp = api_as(w.lb).post(f"/activities/{planned['id']}/confirmation", json={"decision": "confirm"})
    assert resp.status_code == 409 and "尚未开展" in resp.json["message"]


def test_activity_detail_visibility(api_as, api_world, logged):
    w = api_world
    for user in (w.la, w.lb, w.sa, w.reviewer, w.admin):
        assert api_as(user).get(f"/activities/{logged['id']}").status_code == 200, user
    hidden = api_as(w.lc).get(f"/activities/{logged['id']}")
    assert hidden.status_code == 404 and "书记送课" not in hidden.get_data(as_text=True)
    assert api_as(w.la).get("/activities/424242").status_code == 404


def test_list_filters_and_pagination(api_as, api_world):
    w = api_world
    la = api_as(w.la)
    for day, category in [("2026-03-01", "study"), ("2026-03-15", "event"), ("2026-04-02", "study")]:
        assert la.post("/activities", json=activity_payload(w, held_on=day, category=category)).status_code == 201
    api = api_as(w.lb)
    everything = api.get("/activities").json
    assert everything["total"] == 3
    assert [a["held_on"] for a in everything["items"]] == ["2026-04-02", "2026-03-15", "2026-03-01"]
    assert api.get("/activities?category=study").json["total"] == 2
    march = api.get("/activities?from=2026-03-01&to=2026-03-31").json
    assert {a["held_on"] for a in march["items"]} == {"2026-03-01", "2026-03-15"}
    assert api.get(f"/activities?agreement_id={w.agreement.id}&status=held&confirmation=pending").json["total"] == 3
    assert api.get("/activities?confirmation=confirmed").json["total"] == 0
    assert api.get(f"/activities?organization_id={w.c.id}").json["total"] == 0
    paged = api.get("/activities?per_page=2&page=2").json
    assert len(paged["items"]) == 1 and paged["per_page"] == 2 and paged["total"] == 3
    assert api_as(w.lc).get("/activities").json["total"] == 0
    assert api_as(w.lc).get(f"/activities?agreement_id={w.agreement.id}").json["total"] == 0
    bad = api.get("/activities?from=yesterday&category=x&per_page=0&page=-1")
    assert bad.status_code == 422 and set(bad.json["fields"]) == {"from", "category", "per_page", "page"}


# --- notifications ------------------------------------------------------------------------------------


def test_notifications_newest_first_and_only_ones_own(api_as, api_world, api_notification):
    w = api_world
    old = api_notification(w.la, title="旧通知", created_at=now_utc() - timedelta(days=2), read=True)
    new = api_notification(w.la, title="新通知", kind="signature_pending", agreement_id=w.agreement.id)
    api_notification(w.lb, title="别人的通知")
    resp = api_as(w.la).get("/notifications")
    assert resp.status_code == 200
    items = resp.json["items"]
    assert [n["title"] for n in items] == ["新通知", "旧通知"]
    assert items[0]["kind"] == "signature_pending" and items[0]["read"] is False
    assert items[0]["agreement_id"] == w.agreement.id and items[0]["link"] == "/activities/1"
    assert items[0]["url"] == "http://coop.test/activities/1" and items[1]["read"] is True
    assert [n["id"] for n in api_as(w.la).get("/notifications?unread=true").json["items"]] == [new.id]
    assert [n["id"] for n in api_as(w.la).get("/notifications?unread=false").json["items"]] == [old.id]


def test_mark_read(api_as, api_world, api_notification):
    w = api_world
    mine = api_notification(w.la)
    theirs = api_notification(w.lb)
    resp = api_as(w.la).post(f"/notifications/{mine.id}/read")
    assert resp.status_code == 200 and resp.json["read"] is True and resp.json["read_at"]
    again = api_as(w.la).post(f"/notifications/{mine.id}/read")
    assert again.json["read_at"] == resp.json["read_at"]
    assert api_as(w.la).post(f"/notifications/{theirs.id}/read").status_code == 404
    db.session.refresh(theirs)
    assert theirs.read_at is None


def test_unsafe_notification_links_are_not_published(api_as, api_world, api_notification):
    api_notification(api_world.la, link="//evil.example/x")
    item = api_as(api_world.la).get("/notifications").json["items"][0]
    assert item["link"] is None and item["url"] is None


def test_confirmation_state_in_the_model_matches_the_api(api_as, api_world, logged):
    api_as(api_world.lb).post(f"/activities/{logged['id']}/confirmation", json={"decision": "confirm"})
    assert db.session.get(Activity, logged["id"]).confirmation is ConfirmationState.confirmed


def test_notification_filters_are_checked_and_anonymous_is_refused(api_as, api_world, api_notification):
    mine = api_notification(api_world.la)
    assert api_as(api_world.la).get("/notifications?unread=maybe").status_code == 422
    assert api_as().get("/notifications").status_code == 401
    assert api_as().post(f"/notifications/{mine.id}/read").status_code == 401
    db.session.refresh(mine)
    assert mine.read_at is None
