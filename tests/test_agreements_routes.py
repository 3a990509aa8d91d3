"""Route × role table for the agreement screens: every route is listed, and each role gets what the
table says on a draft agreement. A new route that is not in the table fails the first test."""
from __future__ import annotations

import pytest

# endpoint -> (URL template, who may reach it without signing in)
ROUTES = {
    "agreements.index": ("/agreements/", "login"),
    "agreements.new": ("/agreements/new", "login"),
    "agreements.detail": ("/agreements/{id}", "login"),
    "agreements.edit": ("/agreements/{id}/edit", "login"),
    "agreements.submit": ("/agreements/{id}/submit", "login"),
    "agreements.recall": ("/agreements/{id}/recall", "login"),
    "agreements.sign": ("/agreements/{id}/sign", "login"),
    "agreements.decline": ("/agreements/{id}/decline", "login"),
    "agreements.terminate": ("/agreements/{id}/terminate", "login"),
    "agreements.renew": ("/agreements/{id}/renew", "login"),
    "agreements.amend": ("/agreements/{id}/amend", "login"),
    "agreements.amendment": ("/agreements/{id}/amendment", "login"),
    "agreements.amendment_submit": ("/agreements/{id}/amendment/submit", "login"),
    "agreements.amendment_withdraw": ("/agreements/{id}/amendment/withdraw", "login"),
    "agreements.pdf": ("/agreements/{id}/pdf", "login"),
    "agreements.preview": ("/agreements/{id}/preview.pdf", "login"),
    "agreements.version_pdf": ("/agreements/{id}/versions/1/pdf", "login"),
    "agreements.version_certificate": ("/agreements/{id}/versions/1/certificate", "login"),
    "agreements.verify": ("/verify", "public"),
    "agreements.verify_code": ("/verify/ABCD-EFGH-JKMN", "public"),
    "agreements.verify_root_certificate": ("/verify/platform-root.pem", "public"),
}

ROLES = ("party_secretary", "party_liaison", "stranger_secretary", "reviewer_over", "admin")

# GET on a draft agreement (PDF rendering routes are covered in test_agreements_pdf/views).
EXPECTED_GET = {
    "agreements.detail": (200, 200, 404, 200, 200),
    "agreements.edit": (200, 403, 404, 200, 403),
    "agreements.sign": (403, 403, 404, 403, 403),
    "agreements.terminate": (200, 403, 404, 200, 403),
    "agreements.amendment": (403, 403, 404, 403, 403),
    "agreements.version_pdf": (404, 404, 404, 404, 404),
    "agreements.version_certificate": (404, 404, 404, 404, 404),
    "agreements.new": (200, 403, 200, 200, 403),
}


def test_every_agreement_route_is_in_the_table(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules() if r.endpoint.startswith("agreements.")}
    assert endpoints == set(ROUTES)


@pytest.mark.parametrize("endpoint", sorted(ROUTES))
def test_anonymous_access(endpoint, client, make_agreement):
    url, access = ROUTES[endpoint]
    agreement = make_agreement(status="draft")
    url = url.format(id=agreement.id)
    method = "POST" if endpoint.split(".")[1] in {"submit", "recall", "decline", "renew", "amend",
                                                   "amendment_submit", "amendment_withdraw"} else "GET"
    resp = client.open(url, method=method)
    if access == "login":
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    else:
        assert resp.status_code in (200, 404)  # unknown verification code: 404, never a login wall


@pytest.fixture
def people(make_party, make_org, make_user, make_agreement):
    committee = make_org("电力公司党委", kind="committee")
    party = make_party("营销服务党支部", parent=committee)
    partner = make_party("外单位党支部")
    agreement = make_agreement(parties=[party.org, partner.org], status="draft")
    return agreement, {
        "party_secretary": party.secretary,
        "party_liaison": party.liaison,
        "stranger_secretary": make_party("无关党支部").secretary,
        "reviewer_over": make_user("committee", org=committee),
        "admin": make_user("admin"),
    }


@pytest.mark.parametrize("endpoint", sorted(EXPECTED_GET))
def test_route_role_table(endpoint, people, app, login):
    agreement, users = people
    url = ROUTES[endpoint][0].format(id=agreement.id)
    got = []
    for role in ROLES:
        client = app.test_client()
        login(client, users[role])
        got.append(client.get(url).status_code)
    assert tuple(got) == EXPECTED_GET[endpoint], dict(zip(ROLES, got))
