"""Request-level glue: sessions, locale, security headers, error pages, template helpers."""
from __future__ import annotations

import hashlib
import os
import re
from datetime import timedelta

from flask import current_app, has_request_context, jsonify, render_template, request, session, url_for
from flask_babel import get_locale, gettext
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BuildError, IntegerConverter

from coop import formatting
from coop.categories import CATEGORIES, CATEGORY_BY_CODE, category_label
from coop.db import configure_sqlite_engine, set_sqlite_read_only
from coop.extensions import db, login_manager
from coop.i18n import N_

READ_ONLY_METHODS = {"GET", "HEAD", "OPTIONS"}

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self'; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
)

# (Chinese, English for the JSON API). HTML error pages show the Chinese text in the interface language.
ERROR_TEXT = {
    400: (N_("请求无效"), "Bad request"),
    401: (N_("请先登录"), "Sign-in required"),
    403: (N_("没有权限"), "Forbidden"),
    404: (N_("页面不存在"), "Not found"),
    405: (N_("不支持的请求方式"), "Method not allowed"),
    409: (N_("当前状态不允许此操作"), "Conflict"),
    413: (N_("上传的内容过大"), "Payload too large"),
    422: (N_("提交的内容有误"), "Unprocessable entity"),
    429: (N_("请求过于频繁"), "Too many requests"),
    500: (N_("服务器出错了，我们已记录此问题"), "Internal server error"),
}


def select_locale() -> str:
    """The interface language: the user's choice, else the session's, else Chinese."""
    locales = current_app.config["LOCALES"]
    if not has_request_context():  # CLI, scheduler, background threads: the platform's language
        return current_app.config["DEFAULT_LOCALE"]
    if is_api_request():  # JSON messages are Chinese in "message", English in "message_en"
        return current_app.config["DEFAULT_LOCALE"]
    if current_user and current_user.is_authenticated and current_user.locale in locales:
        return current_user.locale
    lang = session.get("lang")
    return lang if lang in locales else current_app.config["DEFAULT_LOCALE"]


def select_timezone() -> str:
    """Display time zone."""
    return current_app.config["TIMEZONE"]


@login_manager.user_loader
def _load_user(token: str):
    from coop.auth.operations import user_for_session_token
    from coop.reminders.operations import unread_count_column

    # The top bar's unread count rides along with the sign-in lookup (one statement instead of two).
    return user_for_session_token(token, also=unread_count_column())


def is_api_request() -> bool:
    """True for requests to the JSON API (they get JSON errors, never HTML)."""
    return request.path.startswith("/api/")


def error_response(status: int, message_zh: str | None = None, message_en: str | None = None, **extra):
    """An error page, or a JSON error for the API, with a Chinese and an English message."""
    zh, en = ERROR_TEXT.get(status, (N_("出错了"), "Error"))
    message_zh, message_en = message_zh or zh, message_en or en
    if is_api_request():
        code = extra.pop("code", None) or {
            400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
            405: "method_not_allowed", 409: "conflict", 413: "too_large", 422: "invalid",
            429: "too_many_requests", 500: "server_error",
        }.get(status, "error")
        body = {"code": code, "message": message_zh, "message_en": message_en, "fields": extra.pop("fields", {}), **extra}
        return jsonify(body), status
    message = gettext(message_zh)
    if message == message_zh and message_en and formatting.ui_is_english():  # a message without a translation
        message = message_en
    return render_template("errors.html", status=status, message=message), status


def asset(filename: str) -> str:
    """URL of a static file with a content hash, so browsers may cache it for a year. Worked out once per file
    and mount point for each app (pages call this dozens of times: an icon per list row); in debug mode on every
    call."""
    urls = current_app.extensions.setdefault("coop_asset_urls", {})
    key = (filename, request.script_root if has_request_context() else "")
    url = urls.get(key)
    if url is None or current_app.debug:
        path = os.path.join(current_app.static_folder, filename)
        try:
            with open(path, "rb") as fh:
                version = hashlib.sha256(fh.read()).hexdigest()[:10]
        except OSError:
            version = "0"
        url = urls[key] = url_for("static", filename=filename, v=version)
    return url


_FALLBACK_NAME = re.compile(r'(filename=)("?)([^";]*)\2(?=;)')


def ascii_fallback_name(disposition: str) -> str:
    """werkzeug's send_file gives a Chinese download name as filename*=UTF-8''… (what browsers use) plus a plain
    filename= made of the name's ASCII characters alone, e.g. "-1.pdf" for 运维…协议-1.pdf. Where that has no
    letter left, name it download-1.pdf instead, for the clients that only read the plain name."""
    def better(match):
        name = match.group(3)
        stem, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
        if re.search(r"[A-Za-z]", stem):
            return match.group(0)
        return f'{match.group(1)}"download{("-" + stem.strip("-_ ")) if stem.strip("-_ ") else ""}{dot}{ext}"'
    return _FALLBACK_NAME.sub(better, disposition, count=1)


class RowIdConverter(IntegerConverter):
    # At most 18 digits (below 2**63): a longer number matches no route, so it is a plain 404. (A conversion
    # error instead would let werkzeug answer 405 where another method's rule shares the path.)
    regex = r"\d{1,18}"


def init_app(app) -> None:
    """Install hooks, handlers and template helpers on `app`."""
    from coop.i18n import install_template_gettext

    install_template_gettext(app)
    # <int:...> in every route stops at the largest id a database can hold: a longer number is a 404 like any
    # unknown id (SQLite cannot even bind it, which made a 500 of any view that queried before get_or_404).
    app.url_map.converters["int"] = RowIdConverter
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            configure_sqlite_engine(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])

    app.permanent_session_lifetime = timedelta(hours=app.config["SESSION_IDLE_HOURS"])
    # Static URLs carry a content hash (see asset()), so browsers may keep them for a year.
    app.config["SEND_FILE_MAX_AGE_DEFAULT"] = app.config.get("SEND_FILE_MAX_AGE_DEFAULT") or 365 * 24 * 3600
    login_manager.login_view = "auth.login"
    login_manager.login_message = N_("请先登录。")
    login_manager.localize_callback = gettext
    login_manager.login_message_category = "info"
    login_manager.session_protection = None  # our server-side sessions do the real work

    @app.before_request
    def _before():
        set_sqlite_read_only(request.method in READ_ONLY_METHODS)
        session.permanent = True

    @app.after_request
    def _headers(resp):
        h = resp.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "SAMEORIGIN")
        h.setdefault("Referrer-Policy", "same-origin")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        h.setdefault("Permissions-Policy", "geolocation=(), microphone=(), payment=()")
        if app.config["SESSION_COOKIE_SECURE"]:
            h.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.endpoint != "static" and "Cache-Control" not in h:
            h["Cache-Control"] = "no-store" if current_user.is_authenticated else "no-cache"
        if "filename*=" in h.get("Content-Disposition", ""):
            h["Content-Disposition"] = ascii_fallback_name(h["Content-Disposition"])
        return resp

    @app.teardown_request
    def _teardown(_exc):
        set_sqlite_read_only(False)

    @app.errorhandler(CSRFError)
    def _csrf(e):
        return error_response(400, N_("表单已过期或来源无效，请刷新页面后重试。"), "The form expired or came from elsewhere; reload and retry.", code="csrf")

    @app.errorhandler(HTTPException)
    def _http(e):
        if e.code == 401 and not is_api_request():
            return login_manager.unauthorized()
        return error_response(e.code or 500)

    @app.errorhandler(Exception)
    def _crash(e):
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        return error_response(500)

    # Screens and e-mails: dates in the interface language (PDFs have their own Chinese filters, coop.pdf).
    app.jinja_env.filters.update(
        cn_date=formatting.ui_date,
        cn_datetime=formatting.ui_datetime,
        ui_date=formatting.ui_date,
        ui_datetime=formatting.ui_datetime,
        iso_date=formatting.iso_date,
        local_datetime=formatting.local_datetime,
        cn_numeral=formatting.ui_numeral,
    )
    app.jinja_env.globals.update(
        asset=asset,
        CATEGORIES=CATEGORIES,
        CATEGORY_BY_CODE=CATEGORY_BY_CODE,
        category_label=category_label,
        get_locale=get_locale,  # <html lang> of pages and e-mails
        ui_month=formatting.ui_month,
        ui_quarter=formatting.ui_quarter,
        ui_year=formatting.ui_year,
    )
    app.jinja_env.add_extension("jinja2.ext.do")

    @app.context_processor
    def _nav():
        return {"nav_items": nav_items()}


MAX_PAGE = 1_000_000


def page_arg() -> int:
    """?page= of a list: junk reads as 1, and a page number is capped so that the OFFSET it makes still fits
    the database's integers (?page=99999999999999999999 was a 500)."""
    return min(max(request.args.get("page", 1, type=int) or 1, 1), MAX_PAGE)


# Each entry: (endpoint, label, predicate(user) -> bool). Domains append theirs at import time.
NAV: list[tuple[str, str, object]] = []


def add_nav(endpoint: str, label: str, visible, order: int = 50) -> None:
    """Register a top navigation item shown when visible(current_user) is true. Mark `label` with N_():
    it is shown in the interface language."""
    NAV.append((order, endpoint, label, visible))
    NAV.sort(key=lambda item: item[0])


def nav_items() -> tuple[dict, ...]:
    """The navigation entries the current user may use (read-only: the same tuple serves every request with
    the same visible entries, language and mount point in this app — building URLs and labels on every page cost
    ~0.3 ms)."""
    if not current_user or not current_user.is_authenticated:  # None outside a request (e-mails, PDFs)
        return ()
    shown = tuple(i for i, (_order, _endpoint, _label, visible) in enumerate(NAV) if visible(current_user))
    built_for_app = current_app.extensions.setdefault("coop_nav_items", {})
    key = (shown, str(get_locale()), request.script_root, len(NAV))
    items = built_for_app.get(key)
    if items is None:
        built = []
        for i in shown:
            _order, endpoint, label, _visible = NAV[i]
            try:
                built.append({"endpoint": endpoint, "url": url_for(endpoint), "label": gettext(str(label))})
            except BuildError:  # an endpoint of a domain not registered
                continue
        items = built_for_app[key] = tuple(built)
    return items
