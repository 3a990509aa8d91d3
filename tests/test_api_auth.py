"""API tokens: issuing with the sign-in throttle, hashed storage, expiry, revocation, and why cookies never work."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from coop.api.models import ApiToken
from coop.db import now_utc
from coop.extensions import db
from tests.conftest import DEFAULT_PASSWORD


def test_token_for_username_and_password_is_stored_only_as_its_hash(app, api_as, make_user):
    user = make_user("liaison", username="zhangwei")
    resp = api_as().post("/tokens", json={"username": "zhangwei", "password": DEFAULT_PASSWORD})
    assert resp.status_code == 201
    body = resp.json
    assert body["token_type"] == "Bearer" and body["token"].startswith("coop_") and len(body["token"]) > 40
    assert body["expires_at"].endswith("Z")
    row = db.session.execute(sa.select(ApiToken)).scalar_one()
    assert row.user_id == user.id
    assert row.token_hash == hashlib.sha256(body["token"].encode()).hexdigest()
    assert body["token"] not in (row.token_hash, row.prefix)
    # Default lifetime: 30 days.
    assert timedelta(days=29, hours=23) < row.expires_at - row.created_at <= timedelta(days=30)

    me = api_as(token=body["token"]).get("/me")
    assert me.status_code == 200 and me.json["username"] == "zhangwei" and me.json["roles"] == ["liaison"]


def test_token_lifetime_follows_config(app, api_as, make_user):
    app.config["API_TOKEN_DAYS"] = 7
    make_user(username="short")
    resp = api_as().post("/tokens", json={"username": "short", "password": DEFAULT_PASSWORD})
    row = db.session.get(ApiToken, resp.json["id"])
    assert row.expires_at - row.created_at == timedelta(days=7)


def test_wrong_password_is_refused_and_counted_then_locked_like_the_sign_in_page(app, api_as, make_user):
    make_user(username="guess")
    api = api_as()
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        resp = api.post("/tokens", json={"username": "guess", "password": "wrong-1"})
        assert resp.status_code == 401 and resp.json["code"] == "login_refused"
        assert resp.json["message"] == "用户名或密码不正确。"
    locked = api.post("/tokens", json={"username": "guess", "password": DEFAULT_PASSWORD})
    assert locked.status_code == 429 and locked.json["code"] == "too_many_requests"
    assert int(locked.headers["Retry-After"]) > 0
    # The web sign-in shares the same lock.
    page = app.test_client().post("/login", data={"username": "guess", "password": DEFAULT_PASSWORD})
    assert page.status_code == 401 and "登录失败次数过多" in page.get_data(as_text=True)
    assert db.session.execute(sa.select(sa.func.count()).select_from(ApiToken)).scalar_one() == 0


def test_token_request_validation(api_as):
    api = api_as()
    missing = api.post("/tokens", json={"username": "x"})
    assert missing.status_code == 422 and missing.json["fields"] == {"password": "必填。"}
    wrong_type = api.post("/tokens", json={"username": 5, "password": "x"})
    assert wrong_type.status_code == 422 and "username" in wrong_type.json["fields"]
    not_json = api.post("/tokens", data="username=x&password=y", content_type="application/x-www-form-urlencoded")
    assert not_json.status_code == 400 and not_json.json["code"] == "wrong_content_type"
    broken = api.post("/tokens", data='{"username": "x",', content_type="application/json")
    assert broken.status_code == 400 and broken.json["code"] == "malformed_json"
    array = api.post("/tokens", json=["x"])
    assert array.status_code == 400 and array.json["code"] == "bad_request"


def test_unknown_username_is_indistinguishable_from_a_wrong_password(api_as, make_user):
    make_user(username="real")
    unknown = api_as().post("/tokens", json={"username": "nobody", "password": "whatever1"})
    wrong = api_as().post("/tokens", json={"username": "real", "password": "whatever1"})
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json == wrong.json


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nonsense", "Basic dXNlcjpwYXNz", "Bearer coop_" + "x" * 43])
def test_requests_without_a_valid_token_get_401(api_as, header):
    api = api_as()
    headers = {"Authorization": header} if header else {}
    resp = api.get("/me", headers=headers)
    assert resp.status_code == 401 and resp.json["code"] == "unauthorized"
    assert resp.json["message"] and resp.json["message_en"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    if header and header.startswith("Bearer "):
        assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]


def test_expired_token_is_refused(api_as, api_token, make_user):
    user = make_user("liaison")
    secret = api_token(user)
    row = db.session.execute(sa.select(ApiToken)).scalar_one()
    row.expires_at = now_utc() - timedelta(seconds=1)
    db.session.commit()
    assert api_as(token=secret).get("/me").status_code == 401


def test_deactivated_users_token_stops_working(api_as, make_user):
    user = make_user("liaison")
    api = api_as(user)
    assert api.get("/me").status_code == 200
    user.is_active_account = False
    db.session.commit()
    assert api.get("/me").status_code == 401


def test_delete_current_revokes_only_that_token(api_as, api_token, make_user):
    user = make_user("liaison")
    first, second = api_as(token=api_token(user)), api_as(token=api_token(user))
    resp = first.delete("/tokens/current")
    assert resp.status_code == 204 and resp.get_data() == b""
    assert first.get("/me").status_code == 401
    assert second.get("/me").status_code == 200
    revoked = db.session.execute(sa.select(ApiToken).where(ApiToken.revoked_at.is_not(None))).scalars().all()
    assert len(revoked) == 1


def test_last_used_is_recorded(api_as, make_user):
    user = make_user("liaison")
    api = api_as(user)
    row = db.session.execute(sa.select(ApiToken)).scalar_one()
    assert row.last_used_at is None
    api.get("/me")
    db.session.refresh(row)
    assert row.last_used_at is not None and now_utc() - row.last_used_at < timedelta(minutes=1)


def test_password_change_and_reset_revoke_every_token(api_as, make_user):
    from coop.auth import operations as auth_ops

    user = make_user("liaison")
    admin = make_user("admin")
    api = api_as(user)
    auth_ops.change_password(user, old_password=DEFAULT_PASSWORD, new_password="NewPassw0rd!", keep_token=None)
    db.session.commit()
    assert api.get("/me").status_code == 401
    api2 = api_as(user)
    auth_ops.reset_password(user, actor=admin, new_password="Reset1Passw0rd")
    db.session.commit()
    assert api2.get("/me").status_code == 401


def test_a_signed_in_browser_cookie_cannot_act_through_the_api(app, client, login, make_user):
    """The API is exempt from CSRF only because it ignores cookies: prove a cookie gets nothing."""
    admin = make_user("admin")
    login(client, admin)
    assert client.get("/orgs/").status_code == 200  # the cookie is good for the screens
    before = db.session.execute(sa.text("SELECT count(*) FROM organizations")).scalar_one()
    resp = client.post("/api/v1/organizations", json={"name": "跨站创建", "kind": "branch", "relation": "other"})
    assert resp.status_code == 401 and resp.json["code"] == "unauthorized"
    assert client.patch("/api/v1/organizations/1", json={"name": "x"}).status_code == 401
    assert client.get("/api/v1/me").status_code == 401
    assert db.session.execute(sa.text("SELECT count(*) FROM organizations")).scalar_one() == before


class TestWithCsrf:
    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    def test_cookie_post_with_csrf_protection_on_is_still_401_not_a_csrf_error(self, client, login, make_user):
        login(client, make_user("admin"))
        resp = client.post("/api/v1/organizations", json={"name": "跨站创建", "kind": "branch", "relation": "other"})
        assert resp.status_code == 401

    def test_bearer_requests_need_no_csrf_token(self, api_as, make_user):
        resp = api_as(make_user("admin")).post("/organizations", json={"name": "新组织", "kind": "committee",
                                                                      "relation": "group"})
        assert resp.status_code == 201

    def test_profile_lists_tokens_and_revokes_with_csrf(self, app, client, login, make_user, api_token):
        user = make_user("liaison")
        other = make_user("liaison")
        secret = api_token(user)
        others = api_token(other)
        mine = db.session.execute(sa.select(ApiToken).where(ApiToken.user_id == user.id)).scalar_one()
        theirs = db.session.execute(sa.select(ApiToken).where(ApiToken.user_id == other.id)).scalar_one()
        login(client, user)
        page = client.get("/profile").get_data(as_text=True)
        assert "API 访问令牌" in page and mine.prefix in page and theirs.prefix not in page
        assert "从未使用" in page and "有效" in page
        url = f"/profile/api-tokens/{mine.id}/revoke"
        assert client.post(url).status_code == 400  # no CSRF token: refused
        db.session.refresh(mine)
        assert mine.revoked_at is None
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        assert client.post(url, data={"csrf_token": csrf}).status_code == 302
        db.session.refresh(mine)
        assert mine.revoked_at is not None
        assert client.post(f"/profile/api-tokens/{theirs.id}/revoke", data={"csrf_token": csrf}).status_code == 404
        db.session.refresh(theirs)
        assert theirs.revoked_at is None
        from tests.fixtures.api import ApiClient

        assert ApiClient(app.test_client(), secret).get("/me").status_code == 401
        assert ApiClient(app.test_client(), others).get("/me").status_code == 200
        assert "已撤销" in client.get("/profile").get_data(as_text=True)


def test_revoking_needs_a_token(api_as):
    resp = api_as().delete("/tokens/current")
    assert resp.status_code == 401 and resp.json["code"] == "unauthorized"


def test_validation_message_leads_with_the_first_field(api_as):
    resp = api_as().post("/tokens", json={})
    assert resp.status_code == 422
    assert resp.json["message"] == "username：必填。（另有 1 处问题，见 fields）"
    assert resp.json["message_en"] == "Invalid fields: username, password"


def _api_operations():
    import coop.api.views  # noqa: F401 — declaring the views fills the registry
    from coop.api.openapi import OPERATIONS

    return [(op.method, op.path, op.auth) for op in OPERATIONS]


@pytest.mark.parametrize("method, path, needs_token", _api_operations())
def test_every_operation_without_a_token(api_as, make_user, method, path, needs_token):
    """Route × anonymous table, from the registry itself: a new route cannot forget its authentication."""
    make_user("liaison", username="anyone")
    url = re.sub(r"\{\w+\}", "1", path)
    body = {"username": "anyone", "password": "wrong-password"} if method in ("POST", "PATCH") else None
    resp = api_as().client.open(url, method=method, json=body)
    if needs_token:
        assert resp.status_code == 401 and resp.json["code"] == "unauthorized", (method, path)
    elif path.endswith("/tokens"):
        assert resp.status_code == 401 and resp.json["code"] == "login_refused"
    else:
        assert resp.status_code == 200 and resp.json["openapi"] == "3.1.0"
    assert set(_api_operations()) and not [op for op in _api_operations() if not op[2]
                                           and op[1] not in ("/api/v1/tokens", "/api/v1/openapi.json")]


def test_api_responses_set_no_cookie(api_as, make_user, client, login):
    api = api_as(make_user("liaison"))
    for resp in (api.get("/me"), api.get("/organizations"), api_as().get("/me"), api.get("/no-such-thing")):
        assert "Set-Cookie" not in resp.headers, resp.request.path
    # A browser's own session survives its visit to the API untouched.
    login(client, make_user("admin"))
    client.get("/api/v1/me")
    assert client.get("/orgs/").status_code == 200
