"""API errors: one exception type, one JSON shape, and the mapping from the domains' refusals.

Every error body is ``{"code", "message" (Chinese), "message_en", "fields": {name: message}}``. Codes
are part of the contract (integrators branch on them), so they are listed here once and documented in
the OpenAPI description from this table.
"""
from __future__ import annotations

from flask import jsonify

# code -> (HTTP status, default Chinese message, default English message)
ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "malformed_json": (400, "请求体不是合法的 JSON。", "The request body is not valid JSON."),
    "wrong_content_type": (400, "请求体须为 JSON（Content-Type: application/json）。",
                           "The request body must be JSON (Content-Type: application/json)."),
    "bad_request": (400, "请求无效。", "Bad request."),
    "unauthorized": (401, "缺少有效的访问令牌。", "A valid bearer token is required."),
    "login_refused": (401, "用户名或密码不正确。", "Wrong username or password."),
    "forbidden": (403, "没有权限执行此操作。", "You are not allowed to do this."),
    "not_found": (404, "请求的对象不存在。", "Not found."),
    "method_not_allowed": (405, "不支持的请求方式。", "Method not allowed."),
    "conflict": (409, "当前状态不允许此操作。", "The object's current state does not allow this."),
    "too_large": (413, "请求内容过大。", "Payload too large."),
    "invalid": (422, "提交的内容有误。", "Some fields are invalid."),
    "too_many_requests": (429, "尝试次数过多，请稍后再试。", "Too many attempts; try again later."),
    "server_error": (500, "服务器出错了，我们已记录此问题。", "Internal server error."),
}


class ApiError(Exception):
    """An error answered as JSON; `fields` names the request fields at fault (name -> Chinese message)."""

    def __init__(self, code: str, message: str | None = None, message_en: str | None = None, *,
                 fields: dict[str, str] | None = None, status: int | None = None, headers: dict | None = None):
        default_status, zh, en = ERROR_CODES[code]
        super().__init__(message or zh)
        self.code = code
        self.status = status or default_status
        self.message = message or zh
        self.message_en = message_en or en
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})

    def response(self):
        """The Flask response for this error."""
        resp = jsonify({"code": self.code, "message": self.message, "message_en": self.message_en,
                        "fields": self.fields})
        resp.status_code = self.status
        for name, value in self.headers.items():
            resp.headers[name] = value
        return resp


def invalid(fields: dict[str, str], message: str | None = None) -> ApiError:
    """A 422 naming the fields at fault; the first field and its problem lead unless a message is given."""
    lead = message
    if lead is None and fields:
        name, problem = next(iter(fields.items()))
        lead = f"{name}：{problem}" + (f"（另有 {len(fields) - 1} 处问题，见 fields）" if len(fields) > 1 else "")
    en = ("Invalid fields: " + ", ".join(fields)) if fields else "The request breaks a rule (see message)."
    return ApiError("invalid", lead, en, fields=fields)


def not_found(what_en: str = "Not found") -> ApiError:
    """A 404 that says nothing about whether the object exists for somebody else."""
    return ApiError("not_found", "请求的对象不存在或您无权查看。", f"{what_en} does not exist or is not visible to you.")


def forbidden(message: str | None = None) -> ApiError:
    """A 403 with the domain's reason when there is one."""
    return ApiError("forbidden", message)


def conflict(message: str | None = None) -> ApiError:
    """A 409: the move is not allowed in the object's current state."""
    return ApiError("conflict", message)


def domain_error(exc: Exception, *, field_map: dict[str, str] | None = None) -> ApiError:
    """Translate a domain refusal into an API error (403 / 409 / 422) without re-deciding anything.

    The domains classify their refusals with exception types; this only maps types to statuses:
    NotAllowed → 403, IllegalTransition and other lifecycle refusals → 409, content rules → 422.
    """
    from agreements.content import AgreementInvalid
    from agreements.models import AgreementError, IllegalTransition
    from agreements.operations import NotAllowed, WrongPassword
    from coop.activities.operations import ActivityRefused
    from coop.auth.operations import AuthError
    from coop.orgs.operations import OrgInvalid
    from coop.reminders.operations import ReminderRefused
    from coop.reports.operations import ReportError

    message = str(exc)
    field_map = field_map or {}
    if isinstance(exc, NotAllowed):
        return forbidden(message)
    if isinstance(exc, IllegalTransition):
        return conflict(message)
    if isinstance(exc, WrongPassword):
        return invalid({"password": message})
    if isinstance(exc, AgreementInvalid):
        return invalid({}, message)
    if isinstance(exc, AgreementError):
        return conflict(message)  # e.g. "already signed", an amendment in progress
    if isinstance(exc, ActivityRefused):
        if exc.field is None:
            return conflict(message)  # the activity's state (withdrawn, not yet held…)
        name = field_map.get(exc.field, exc.field)
        return invalid({name: message})
    if isinstance(exc, (OrgInvalid, AuthError, ReportError)):
        return invalid({}, message)
    if isinstance(exc, ReminderRefused):
        return forbidden(message)
    raise exc
