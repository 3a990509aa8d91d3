"""Cross-cutting web behaviour: security headers, error pages, language, phone layout, static caching."""
import pytest


def test_security_headers_on_every_page(client):
    resp = client.get("/login")
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    assert "object-src 'none'" in csp and "frame-ancestors 'self'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert resp.headers["Referrer-Policy"] == "same-origin"


def test_pages_have_no_inline_script(client, make_user, login):
    import re

    login(client, make_user("admin"))
    for path in ("/", "/orgs/", "/admin/users", "/audit/", "/profile", "/admin/users/new", "/orgs/new"):
        html = client.get(path).get_data(as_text=True)
        for tag in re.findall(r"<script[^>]*>", html):
            assert "src=" in tag, (path, tag)
        assert not re.search(r"\son[a-z]+=\"", html), path  # no inline event handlers


def test_phone_viewport_and_chinese_by_default(client):
    html = client.get("/login").get_data(as_text=True)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert 'lang="zh-CN"' in html and "登录党建共建平台" in html


def test_not_found_is_a_friendly_page_and_json_for_the_api(client):
    page = client.get("/no-such-page")
    assert page.status_code == 404 and "页面不存在" in page.get_data(as_text=True)
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.is_json
    assert api.json["code"] == "not_found" and api.json["message"] and api.json["message_en"]


def test_unexpected_errors_give_a_500_page_not_a_traceback(app, client):
    @app.route("/boom-test")
    def boom():
        raise RuntimeError("secret internals")

    resp = client.get("/boom-test")
    assert resp.status_code == 500
    body = resp.get_data(as_text=True)
    assert "secret internals" not in body and "服务器出错了" in body


def test_language_switch_to_english_is_remembered_in_session(client):
    client.post("/lang", data={"lang": "en", "next": "/login"})
    with client.session_transaction() as sess:
        assert sess["lang"] == "en"
    assert client.post("/lang", data={"lang": "xx"}).status_code == 400


def test_static_assets_are_versioned_and_cacheable(client):
    html = client.get("/login").get_data(as_text=True)
    import re

    href = re.search(r'href="(/static/css/app\.css\?v=[0-9a-f]{10})"', html).group(1)
    resp = client.get(href)
    resp.close()
    assert resp.status_code == 200
    assert "max-age=31536000" in resp.headers["Cache-Control"]


@pytest.mark.parametrize("path", ["/", "/orgs/", "/profile", "/admin/users", "/audit/"])
def test_signed_in_pages_are_not_cached_by_shared_proxies(client, make_user, login, path):
    login(client, make_user("admin"))
    assert client.get(path).headers["Cache-Control"] == "no-store"


def test_production_cookie_flags_on_sign_in(app, client, make_user):
    from tests.conftest import DEFAULT_PASSWORD

    # What a deployment behind HTTPS sets (README: COOP_SESSION_COOKIE_SECURE=true).
    app.config.update(SESSION_COOKIE_SECURE=True, WTF_CSRF_ENABLED=False)
    user = make_user("liaison")
    resp = client.post("/login", data={"username": user.username, "password": DEFAULT_PASSWORD})
    assert resp.status_code == 302
    cookie = next(h for h in resp.headers.getlist("Set-Cookie") if h.startswith("session="))
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"secure", "httponly", "samesite"} <= flags
    assert "samesite=lax" in cookie.lower()
