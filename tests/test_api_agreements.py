"""Agreements through the API: drafting, visibility, submitting, signing with the password, the PDF."""
from __future__ import annotations

from datetime import timedelta

import pytest

from agreements.models import Agreement, AgreementStatus
from coop.auth.models import LoginThrottle
from coop.extensions import db
from coop.formatting import local_today
from tests.conftest import DEFAULT_PASSWORD


def draft_payload(world, **overrides) -> dict:
    today = local_today()
    payload = {
        "title": "运维检修与营销服务党支部结对共建协议",
        "party_ids": [world.a.id, world.b.id],
        "starts_on": (today - timedelta(days=30)).isoformat(),
        "ends_on": (today + timedelta(days=334)).isoformat(),
        "commitments": {"study": 4, "event": 2},
        "liaison_ids": {str(world.a.id): [world.la.id]},
        "purpose": "以党建共建促进业务融合。",
        "clauses": ["各方建立联席会议制度。"],
    }
    payload.update(overrides)
    return payload


def test_secretary_drafts_an_agreement(api_as, api_world):
    resp = api_as(api_world.sa).post("/agreements", json=draft_payload(api_world))
    assert resp.status_code == 201, resp.json
    body = resp.json
    assert body["status"] == "draft" and body["status_label"] == "草稿"
    assert body["party_ids"] == [api_world.a.id, api_world.b.id]
    assert [p["label"] for p in body["parties"]] == ["甲方", "乙方"]
    assert body["commitments"] == {"study": 4, "event": 2}
    # B named nobody: its liaison-role user is taken, as on the screen.
    assert body["liaison_ids"] == {str(api_world.a.id): [api_world.la.id], str(api_world.b.id): [api_world.lb.id]}
    assert body["signing"] is None and body["current_version"] is None
    assert body["pdf_url"] == f"/api/v1/agreements/{body['id']}/pdf"
    assert resp.headers["Location"].endswith(f"/api/v1/agreements/{body['id']}")


def test_only_secretaries_and_reviewers_draft_and_only_for_their_own(api_as, api_world):
    assert api_as(api_world.la).post("/agreements", json=draft_payload(api_world)).status_code == 403
    assert api_as(api_world.admin).post("/agreements", json=draft_payload(api_world)).status_code == 403
    # C's secretary may draft, but not for A and B.
    foreign = api_as(api_world.sc).post("/agreements", json=draft_payload(api_world))
    assert foreign.status_code == 403 and "本组织" in foreign.json["message"]
    assert api_as(api_world.reviewer).post("/agreements", json=draft_payload(api_world)).status_code == 201


@pytest.mark.parametrize("overrides, field", [
    ({"party_ids": ["a", "b"]}, "party_ids"),
    ({"party_ids": [1, 1]}, "party_ids"),
    ({"starts_on": "2026-02-30"}, "starts_on"),
    ({"ends_on": "next year"}, "ends_on"),
    ({"commitments": {"sports": 3}}, "commitments"),
    ({"commitments": {"study": -1}}, "commitments"),
    ({"commitments": {"study": 2.5}}, "commitments"),
    ({"liaison_ids": {"x": [1]}}, "liaison_ids"),
    ({"title": "题" * 201}, "title"),
    ({"signing_order_fixed": "yes"}, "signing_order_fixed"),
    ({"status": "active"}, "status"),
])
def test_draft_validation_names_the_field(api_as, api_world, overrides, field):
    resp = api_as(api_world.sa).post("/agreements", json=draft_payload(api_world, **overrides))
    assert resp.status_code == 422 and field in resp.json["fields"], resp.json


@pytest.mark.parametrize("overrides, text", [
    ({"party_ids": None}, "不能为空"),
    ("one_party", "至少需要两个共建方"),
    ("backwards", "结束日期不能早于开始日期"),
    ({"commitments": {"study": 0}}, "至少在一个"),
    ("stranger_liaison", "不属于"),
    ({"party_ids": "ghost"}, "不存在"),
])
def test_draft_content_rules_come_from_the_domain(api_as, api_world, overrides, text):
    w = api_world
    if overrides == "one_party":
        overrides = {"party_ids": [w.a.id], "liaison_ids": {}}
    elif overrides == "backwards":
        overrides = {"starts_on": "2026-06-01", "ends_on": "2026-05-01"}
    elif overrides == "stranger_liaison":
        overrides = {"liaison_ids": {str(w.a.id): [w.lb.id]}}
    elif overrides == {"party_ids": "ghost"}:
        overrides = {"party_ids": [w.a.id, 999999]}
    resp = api_as(w.sa).post("/agreements", json=draft_payload(w, **overrides))
    assert resp.status_code == 422 and text in resp.json["message"], resp.json


def test_visibility_list_and_detail(api_as, api_world, make_agreement):
    w = api_world
    other = make_agreement(parties=[w.c, w.b], status="draft", title="无关协议")
    party = api_as(w.lb).get("/agreements").json
    assert {a["title"] for a in party["items"]} == {"运维检修—营销服务结对共建协议", "无关协议"}
    mine = api_as(w.la).get("/agreements").json
    assert [a["id"] for a in mine["items"]] == [w.agreement.id]
    reviewer = api_as(w.reviewer).get("/agreements").json
    assert reviewer["total"] == 2  # B is in the committee's subtree
    outsider = api_as(w.lc)
    assert outsider.get("/agreements?status=active").json["items"] == []
    resp = outsider.get(f"/agreements/{w.agreement.id}")
    assert resp.status_code == 404 and resp.json["code"] == "not_found"
    assert "运维" not in resp.get_data(as_text=True)
    assert outsider.get(f"/agreements/{other.id}").status_code == 200
    assert api_as(w.la).get(f"/agreements?party={w.c.id}").json["total"] == 0
    assert api_as(w.lb).get(f"/agreements?party={w.c.id}&status=draft").json["total"] == 1
    assert api_as(w.lb).get("/agreements?status=signed").status_code == 422


def test_submit_permissions_and_state(api_as, api_world, fast_keys):
    w = api_world
    draft = api_as(w.sa).post("/agreements", json=draft_payload(w)).json
    assert api_as(w.la).post(f"/agreements/{draft['id']}/submit").status_code == 403
    assert api_as(w.lc).post(f"/agreements/{draft['id']}/submit").status_code == 404
    resp = api_as(w.sb).post(f"/agreements/{draft['id']}/submit")
    assert resp.status_code == 200 and resp.json["status"] == "signing"
    assert resp.json["signing"]["waiting_org_ids"] == [w.a.id, w.b.id]
    again = api_as(w.sa).post(f"/agreements/{draft['id']}/submit")
    assert again.status_code == 409 and again.json["code"] == "conflict"
    assert "签署中" in again.json["message"]


def test_submit_refuses_a_party_without_a_secretary(api_as, api_world, make_org):
    w = api_world
    lonely = make_org("没有书记的党支部", parent=w.committee)
    draft = api_as(w.sa).post("/agreements", json=draft_payload(w, party_ids=[w.a.id, lonely.id], liaison_ids={})).json
    resp = api_as(w.sa).post(f"/agreements/{draft['id']}/submit")
    assert resp.status_code == 422 and "还没有书记账号" in resp.json["message"]
    assert db.session.get(Agreement, draft["id"]).status is AgreementStatus.draft


def test_signing_by_each_partys_secretary(app, api_as, api_world, fast_keys):
    w = api_world
    draft = api_as(w.sa).post("/agreements", json=draft_payload(w)).json
    api_as(w.sa).post(f"/agreements/{draft['id']}/submit")
    url = f"/agreements/{draft['id']}/signatures"

    assert api_as(w.la).post(url, json={"password": DEFAULT_PASSWORD}).status_code == 403
    assert api_as(w.sc).post(url, json={"password": DEFAULT_PASSWORD}).status_code == 404
    assert api_as(w.sa).post(url, json={}).status_code == 422

    wrong = api_as(w.sa).post(url, json={"password": "not-my-password"})
    assert wrong.status_code == 422 and wrong.json["fields"] == {"password": "密码不正确，未签署。"}
    user_key = f"u:{w.sa.username.lower()}|127.0.0.1"
    assert db.session.get(LoginThrottle, user_key).failures == 1

    first = api_as(w.sa).post(url, json={"password": DEFAULT_PASSWORD})
    assert first.status_code == 201, first.json
    assert first.json["signature"]["organization_id"] == w.a.id and first.json["signature"]["signer_name"] == "李红梅"
    assert first.json["agreement"]["status"] == "signing"
    assert first.json["agreement"]["signing"]["signed_org_ids"] == [w.a.id]
    # A successful signature clears the person's failure count, as the sign page does.
    db.session.expire_all()
    assert db.session.get(LoginThrottle, user_key) is None

    twice = api_as(w.sa).post(url, json={"password": DEFAULT_PASSWORD})
    assert twice.status_code == 409 and "已签署" in twice.json["message"]

    last = api_as(w.sb).post(url, json={"password": DEFAULT_PASSWORD})
    assert last.status_code == 201
    agreement = last.json["agreement"]
    assert agreement["status"] == "active" and agreement["signing"] is None
    assert agreement["current_version"]["version"] == 1 and len(agreement["current_version"]["final_sha256"]) == 64
    assert agreement["current_version"]["verify_url"].startswith("http://coop.test/verify/")

    after = api_as(w.sa).post(url, json={"password": DEFAULT_PASSWORD})
    assert after.status_code == 409


def test_signing_shares_the_sign_in_lock(app, api_as, api_world, fast_keys):
    w = api_world
    draft = api_as(w.sa).post("/agreements", json=draft_payload(w)).json
    api_as(w.sa).post(f"/agreements/{draft['id']}/submit")
    api = api_as(w.sa)
    for _ in range(app.config["LOGIN_MAX_FAILURES"]):
        assert api.post(f"/agreements/{draft['id']}/signatures", json={"password": "guess"}).status_code == 422
    locked = api.post(f"/agreements/{draft['id']}/signatures", json={"password": DEFAULT_PASSWORD})
    assert locked.status_code == 429
    assert db.session.get(Agreement, draft["id"]).signing_version.signatures == []


def test_pdf_of_draft_signing_and_signed_agreement(api_as, api_world, fast_keys):
    w = api_world
    draft = api_as(w.sa).post("/agreements", json=draft_payload(w)).json
    preview = api_as(w.lb).get(f"/agreements/{draft['id']}/pdf")
    assert preview.status_code == 200 and preview.mimetype == "application/pdf"
    assert preview.get_data().startswith(b"%PDF-")
    api_as(w.sa).post(f"/agreements/{draft['id']}/submit")
    for secretary in (w.sa, w.sb):
        api_as(secretary).post(f"/agreements/{draft['id']}/signatures", json={"password": DEFAULT_PASSWORD})
    signed = api_as(w.la).get(f"/agreements/{draft['id']}/pdf")
    assert signed.status_code == 200 and signed.get_data().startswith(b"%PDF-")
    import hashlib

    version = db.session.get(Agreement, draft["id"]).current_version
    assert hashlib.sha256(signed.get_data()).hexdigest() == version.final_sha256
    assert api_as(w.lc).get(f"/agreements/{draft['id']}/pdf").status_code == 404
    assert api_as().get(f"/agreements/{draft['id']}/pdf").status_code == 401
