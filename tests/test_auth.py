"""Sign-in, throttling, sessions that really end, CSRF, and user management."""
import re

import pytest
import sqlalchemy as sa

from coop.auth.models import LoginSession, LoginThrottle, Role, User
from coop.auth.passwords import verify_password
from coop.extensions import db
from tests.conftest import DEFAULT_PASSWORD


def do_login(client, username, password=DEFAULT_PASSWORD, **kw):
    return client.post("/login", data={"username": username, "password": password}, **kw)


def test_login_with_right_password_reaches_home(client, make_user):
    user = make_user("liaison", username="zhangsan", display_name="张三")
    resp = do_login(client, "zhangsan")
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/")
    home = client.get("/")
    assert home.status_code == 200
    assert "您好，张三" in home.get_data(as_text=True)
    # The cookie carries a login-session token, never the user id.
    row = db.session.execute(sa.select(LoginSession).where(LoginSession.user_id == user.id)).scalar_one()
    assert row.revoked_at is None


def test_login_is_case_insensitive_on_username(client, make_user):
    make_user(username="LiSi")
    assert do_login(client, "lisi").status_code == 302


def test_login_with_a_non_ascii_capital_in_the_username(app, make_user):
    """SQLite's lower() folds ASCII only: the exact name must still sign in, on both databases."""
    make_user(username="Ðan")
    make_user(username="Émile", password="Other-Pass1")
    assert do_login(app.test_client(), "Ðan").status_code == 302
    assert do_login(app.test_client(), "Émile", "Other-Pass1").status_code == 302
    assert do_login(app.test_client(), "Émile").status_code == 401  # another account's password


def test_wrong_password_and_unknown_user_get_the_same_message(client, make_user):
    make_user(username="wangwu")
    a = do_login(client, "wangwu", "wrong-pass1")
    b = do_login(client, "nobody", "wrong-pass1")
    assert a.status_code == b.status_code == 401
    assert "用户名或密码不正确" in a.get_data(as_text=True)
    assert "用户名或密码不正确" in b.get_data(as_text=True)


def test_deactivated_user_cannot_sign_in(client, make_user):
    make_user(username="gone", is_active_account=False)
    assert do_login(client, "gone").status_code == 401


def test_login_is_throttled_after_repeated_failures(app, client, make_user):
    make_user(username="target")
    limit = app.config["LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        assert do_login(client, "target", "bad-guess1").status_code == 401
    # Even the right password is refused while locked: guessing gains nothing.
    resp = do_login(client, "target")
    assert resp.status_code == 401
    assert "登录失败次数过多" in resp.get_data(as_text=True)
    # The lock lives in the database, so every worker process sees it.
    row = db.session.get(LoginThrottle, "u:target|127.0.0.1")
    assert row.locked_until is not None


def test_success_resets_the_failure_count(app, client, make_user):
    make_user(username="typo")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        do_login(client, "typo", "bad-guess1")
    assert do_login(client, "typo").status_code == 302
    client.post("/logout")
    for _ in range(app.config["LOGIN_MAX_FAILURES"] - 1):
        do_login(client, "typo", "bad-guess1")
    assert do_login(client, "typo").status_code == 302


def test_logout_really_ends_the_session(app, make_user):
    make_user(username="leaver")
    client = app.test_client()
    do_login(client, "leaver")
    assert client.get("/profile").status_code == 200
    # An attacker keeps a copy of the cookie...
    stolen = client.get_cookie("session").value
    client.post("/logout")
    assert client.get("/profile").status_code == 302
    # ...and replays it after logout: the server-side session is revoked.
    other = app.test_client()
    other.set_cookie("session", stolen)
    resp = other.get("/profile")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_password_change_ends_other_sessions_but_keeps_this_one(app, make_user):
    make_user(username="changer")
    laptop, phone = app.test_client(), app.test_client()
    do_login(laptop, "changer")
    do_login(phone, "changer")
    resp = laptop.post("/profile", data={
        "which": "password", "pw-old_password": DEFAULT_PASSWORD,
        "pw-new_password": "N3w-secret!", "pw-confirm": "N3w-secret!",
    })
    assert resp.status_code == 302
    assert laptop.get("/profile").status_code == 200
    assert phone.get("/profile").status_code == 302
    user = db.session.execute(sa.select(User).where(User.username == "changer")).scalar_one()
    db.session.refresh(user)
    assert verify_password(user.password_hash, "N3w-secret!")


def test_password_change_refuses_wrong_current_password_and_weak_new_one(client, make_user, login):
    user = make_user()
    login(client, user)
    resp = client.post("/profile", data={"which": "password", "pw-old_password": "nope-nope1",
                                         "pw-new_password": "N3w-secret!", "pw-confirm": "N3w-secret!"})
    assert "当前密码不正确" in resp.get_data(as_text=True)
    resp = client.post("/profile", data={"which": "password", "pw-old_password": DEFAULT_PASSWORD,
                                         "pw-new_password": "12345678", "pw-confirm": "12345678"})
    assert "字母和数字" in resp.get_data(as_text=True)


def test_passwords_are_argon2id_hashes(make_user):
    user = make_user()
    assert user.password_hash.startswith("$argon2id$")
    assert DEFAULT_PASSWORD not in user.password_hash


def test_open_redirect_after_login_is_refused(client, make_user):
    make_user(username="redir")
    resp = client.post("/login?next=https://evil.example/", data={"username": "redir", "password": DEFAULT_PASSWORD})
    assert resp.headers["Location"] in ("/", "http://localhost/")


class TestCsrf:
    @pytest.fixture
    def app_config(self, app_config):
        return {**app_config, "WTF_CSRF_ENABLED": True}

    def test_post_without_token_is_rejected(self, client, make_user):
        make_user(username="csrf")
        resp = client.post("/login", data={"username": "csrf", "password": DEFAULT_PASSWORD})
        assert resp.status_code == 400
        assert "表单已过期或来源无效" in resp.get_data(as_text=True)

    def test_post_with_token_from_the_form_works(self, client, make_user):
        make_user(username="csrf2")
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
        resp = client.post("/login", data={"username": "csrf2", "password": DEFAULT_PASSWORD, "csrf_token": token})
        assert resp.status_code == 302

    def test_logout_without_token_is_rejected(self, client, make_user, login):
        user = make_user()
        login(client, user)
        assert client.post("/logout").status_code == 400
        assert client.get("/profile").status_code == 200


def test_only_admins_manage_users(client, make_user, make_org, login):
    org = make_org()
    secretary = make_user("secretary", org=org)
    login(client, secretary)
    assert client.get("/admin/users").status_code == 403
    assert client.post("/admin/users/new", data={"username": "x"}).status_code == 403


def test_admin_creates_user_with_several_roles(client, make_user, make_org, login):
    org = make_org(name="第一党支部")
    admin = make_user("admin")
    login(client, admin)
    resp = client.post("/admin/users/new", data={
        "username": "newbie", "display_name": "新人", "organization_id": str(org.id),
        "roles": ["secretary", "liaison"], "password": "Start-2026", "is_active": "y",
    })
    assert resp.status_code == 302
    user = db.session.execute(sa.select(User).where(User.username == "newbie")).scalar_one()
    assert user.roles == {Role.secretary, Role.liaison}
    assert user.organization_id == org.id


def test_organization_roles_need_an_organization(client, make_user, login):
    login(client, make_user("admin"))
    resp = client.post("/admin/users/new", data={
        "username": "orphan", "display_name": "无组织", "organization_id": "",
        "roles": ["liaison"], "password": "Start-2026",
    })
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert '<p class="error" id="organization_id-err">书记、联络员和党委审阅人必须属于一个组织。</p>' in html
    assert 'id="username-err"' not in html  # the message is where the problem is, not under 用户名
    assert db.session.execute(sa.select(User).where(User.username == "orphan")).first() is None


def test_unknown_role_is_refused_in_chinese(client, make_user, login, make_org):
    login(client, make_user("admin"))
    resp = client.post("/admin/users/new", data={
        "username": "crafted", "display_name": "伪造", "organization_id": str(make_org().id),
        "roles": ["liaison", "superuser"], "password": "Start-2026",
    })
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "所选的角色不在可选范围内。" in html and "not a valid choice" not in html
    assert db.session.execute(sa.select(User).where(User.username == "crafted")).first() is None


def test_admin_reset_password_signs_the_user_out_everywhere(app, make_user, login):
    target = make_user(username="forgetful")
    victim_client = app.test_client()
    login(victim_client, target)
    admin_client = app.test_client()
    login(admin_client, make_user("admin"))
    resp = admin_client.post(f"/admin/users/{target.id}/password", data={"reset-new_password": "Fresh-2026"})
    assert resp.status_code == 302
    assert victim_client.get("/profile").status_code == 302


def test_deactivating_a_user_ends_their_sessions(app, make_user, make_org, login):
    org = make_org()
    target = make_user("liaison", org=org)
    c = app.test_client()
    login(c, target)
    admin_client = app.test_client()
    login(admin_client, make_user("admin"))
    resp = admin_client.post(f"/admin/users/{target.id}", data={
        "username": target.username, "display_name": target.display_name, "organization_id": str(org.id),
        "roles": ["liaison"],
    })
    assert resp.status_code == 302
    assert c.get("/profile").status_code == 302
