"""The round trip of the issue, entirely through the API, and the monthly report's figures and PDF."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from agreements.models import Agreement
from coop.extensions import db
from coop.formatting import local_today
from coop.reports import progress
from tests.conftest import DEFAULT_PASSWORD


def token_for(api_as, user) -> "object":
    """Sign in through the API itself (username + password → token)."""
    resp = api_as().post("/tokens", json={"username": user.username, "password": DEFAULT_PASSWORD})
    assert resp.status_code == 201, resp.json
    return api_as(token=resp.json["token"])


def test_draft_sign_log_confirm_and_report_all_through_the_api(api_as, api_world, fast_keys):
    w = api_world
    today = local_today()
    month = f"{today.year}-{today.month:02d}"
    sa, sb, la, lb = (token_for(api_as, u) for u in (w.sa, w.sb, w.la, w.lb))

    # 1. A's secretary drafts a pairing with B; liaisons named for A, B's taken by role.
    draft = sa.post("/agreements", json={
        "title": "运维检修与营销服务党支部结对共建协议", "party_ids": [w.a.id, w.b.id],
        "starts_on": (today - timedelta(days=40)).isoformat(), "ends_on": (today + timedelta(days=324)).isoformat(),
        "commitments": {"study": 4, "event": 2, "service": 1}, "liaison_ids": {str(w.a.id): [w.la.id]},
    })
    assert draft.status_code == 201, draft.json
    agreement_id = draft.json["id"]

    # 2. Submitted, then signed by both parties' secretaries with their passwords.
    assert sa.post(f"/agreements/{agreement_id}/submit").json["status"] == "signing"
    assert sa.post(f"/agreements/{agreement_id}/signatures", json={"password": DEFAULT_PASSWORD}).status_code == 201
    signed = sb.post(f"/agreements/{agreement_id}/signatures", json={"password": DEFAULT_PASSWORD})
    assert signed.status_code == 201 and signed.json["agreement"]["status"] == "active"
    assert sa.get(f"/agreements/{agreement_id}").json["status"] == "active"

    # 3. Both liaisons log what they organised this month; the partner confirms (or disputes).
    def log(api, category, title, partner):
        resp = api.post("/activities", json={
            "agreement_id": agreement_id, "category": category, "title": title, "held_on": today.isoformat(),
            "place": "党员活动室", "organization_ids": [partner.id], "party_member_count": 12, "other_count": 3,
            "summary": "联合开展。", "status": "held",
        })
        assert resp.status_code == 201, resp.json
        return resp.json["id"]

    study1 = log(la, "study", "书记送课上门", w.b)
    study2 = log(la, "study", "联合理论学习", w.b)
    event = log(la, "event", "联合主题党日", w.b)
    service = log(lb, "service", "走访敬老院", w.a)
    planned = lb.post("/activities", json={
        "agreement_id": agreement_id, "category": "mass", "title": "青年联谊", "status": "planned",
        "held_on": (today + timedelta(days=20)).isoformat(), "organization_ids": [w.a.id]}).json["id"]

    for activity_id in (study1, study2):
        assert lb.post(f"/activities/{activity_id}/confirmation", json={"decision": "confirm"}).status_code == 200
    assert lb.post(f"/activities/{event}/confirmation",
                   json={"decision": "dispute", "comment": "日期有误"}).json["confirmation"] == "disputed"
    assert la.post(f"/activities/{service}/confirmation", json={"decision": "confirm"}).status_code == 200
    assert la.post(f"/activities/{planned}/confirmation", json={"decision": "confirm"}).status_code == 409

    # 4. The month's report says exactly what was logged.
    report = la.get(f"/reports/monthly?month={month}&agreement_id={agreement_id}")
    assert report.status_code == 200, report.json
    body = report.json
    assert body["kind"] == "agreement" and body["month"] == month
    assert body["subject"] == {"agreement_id": agreement_id, "organization_id": None,
                               "name": "运维检修与营销服务党支部结对共建协议"}
    rows = {r["code"]: r for r in body["categories"]}
    assert list(rows) == ["org", "brand", "event", "study", "talent", "service", "culture", "mass"]
    figures = {code: (r["held"], r["confirmed"], r["year_to_date"], r["commitment"]) for code, r in rows.items()}
    assert figures["study"] == (2, 2, 2, 4)
    assert figures["event"] == (1, 0, 0, 2)  # disputed: held, not confirmed, does not count
    assert figures["service"] == (1, 1, 1, 1)
    assert figures["mass"] == (0, 0, 0, 0)  # a plan is not a held activity
    assert rows["event"]["disputed"] == 1 and rows["study"]["pending"] == 0
    # The status words are the ones the screens and PDFs compute.
    agreement = db.session.get(Agreement, agreement_id)
    expected = progress.agreement_progress([agreement], date(today.year, today.month, 1), today)[agreement_id]
    assert {code: r["status"] for code, r in rows.items()} == {code: p.status for code, p in expected.items()}
    assert rows["service"]["status"] == "done" and rows["org"]["status"] == "na"
    assert body["totals"]["held"] == 4 and body["totals"]["confirmed"] == 3
    assert {a["id"] for a in body["activities"]} == {study1, study2, event, service}
    assert [a["id"] for a in body["open_items"]] == [event]
    assert body["pdf_url"] == f"/api/v1/reports/monthly.pdf?month={month}&agreement_id={agreement_id}"

    # 5. The PDF variant.
    pdf = lb.get(body["pdf_url"])
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.get_data().startswith(b"%PDF-") and pdf.headers["X-Report-Source"] == "preview"


@pytest.fixture
def month_with_activity(api_as, api_world):
    """A confirmed March 2026 study activity on the world's agreement; returns '2026-03'."""
    w = api_world
    resp = api_as(w.la).post("/activities", json={
        "agreement_id": w.agreement.id, "category": "study", "title": "党课", "held_on": "2026-03-10",
        "organization_ids": [w.b.id]})
    api_as(w.lb).post(f"/activities/{resp.json['id']}/confirmation", json={"decision": "confirm"})
    return "2026-03"


def test_organization_and_committee_reports(api_as, api_world, month_with_activity):
    w = api_world
    org = api_as(w.lb).get(f"/reports/monthly?month=2026-03&organization_id={w.b.id}")
    assert org.status_code == 200, org.json
    assert org.json["kind"] == "organization" and org.json["categories"] == []
    assert org.json["agreements"][0]["agreement_id"] == w.agreement.id
    study = {r["code"]: r for r in org.json["agreements"][0]["categories"]}["study"]
    assert (study["held"], study["confirmed"], study["commitment"]) == (1, 1, 4)
    totals = {t["code"]: t for t in org.json["category_totals"]}
    assert totals["study"]["held"] == 1 and org.json["totals"]["held"] == 1

    committee = api_as(w.reviewer).get("/reports/monthly?month=2026-03")
    assert committee.status_code == 200 and committee.json["kind"] == "committee"
    assert committee.json["subject"]["organization_id"] == w.committee.id
    assert committee.json["agreements"][0]["held"] == 1
    platform = api_as(w.admin).get("/reports/monthly?month=2026-03")
    assert platform.status_code == 200 and platform.json["subject"]["name"] == "全平台"


def test_report_permissions(api_as, api_world, month_with_activity):
    w = api_world
    hidden = api_as(w.lc).get(f"/reports/monthly?month=2026-03&agreement_id={w.agreement.id}")
    assert hidden.status_code == 404 and "运维" not in hidden.get_data(as_text=True)
    assert api_as(w.lc).get(f"/reports/monthly.pdf?month=2026-03&agreement_id={w.agreement.id}").status_code == 404
    assert api_as(w.la).get(f"/reports/monthly?month=2026-03&organization_id={w.b.id}").status_code == 403
    assert api_as(w.la).get("/reports/monthly?month=2026-03").status_code == 403  # no committee scope
    assert api_as(w.reviewer).get(f"/reports/monthly?month=2026-03&organization_id={w.c.id}").status_code == 403
    assert api_as(w.reviewer).get(f"/reports/monthly?month=2026-03&agreement_id={w.agreement.id}").status_code == 200
    assert api_as().get("/reports/monthly?month=2026-03").status_code == 401


@pytest.mark.parametrize("query, fields", [
    ("", {"month"}),
    ("?month=2026-13", {"month"}),
    ("?month=26-03", {"month"}),
    ("?month=2026-03&agreement_id=abc", {"agreement_id"}),
    ("?month=2026-03&agreement_id=1&organization_id=1", {"agreement_id", "organization_id"}),
    ("?month=2999-01", {"month"}),  # not begun yet
])
def test_report_query_validation(api_as, api_world, query, fields):
    for path in ("/reports/monthly", "/reports/monthly.pdf"):
        resp = api_as(api_world.admin).get(f"{path}{query}")
        assert resp.status_code == 422 and set(resp.json["fields"]) == fields, resp.json


def test_archived_report_is_served_when_there_is_one(api_as, api_world, month_with_activity):
    from coop.reports import operations as report_ops
    from coop.reports.models import ReportKind

    w = api_world
    report = report_ops.generate_report(ReportKind.agreement, w.agreement.id, 2026, 3, actor=w.admin)
    db.session.commit()
    resp = api_as(w.la).get(f"/reports/monthly.pdf?month=2026-03&agreement_id={w.agreement.id}")
    assert resp.status_code == 200 and resp.headers["X-Report-Source"] == "archive"
    import hashlib

    assert hashlib.sha256(resp.get_data()).hexdigest() == report.sha256 == resp.headers["X-Content-SHA256"]
    resp.close()  # the archived file is streamed from disk
