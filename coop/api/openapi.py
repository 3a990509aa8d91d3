"""The API's one description: every route is declared through `operation(...)`, which registers the Flask
route, checks the request against the declared body and query, and records what the OpenAPI 3.1
document (`GET /api/v1/openapi.json`) says about it. The document is built from that registry, so a
route cannot exist undocumented, and what is documented is what is enforced.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import wraps
from typing import Callable

from flask import Blueprint, request
from flask_login import current_user

from coop.api.errors import ERROR_CODES, ApiError, invalid
from coop.api.schemas import MAX_ID, Body, Query, component_schemas, ref

API_PREFIX = "/api/v1"
API_VERSION = "1.0.0"

# (status, description) of every error an operation may answer; which ones apply is worked out per operation.
ERROR_DESCRIPTIONS = {
    400: "请求体不是 JSON 对象、JSON 格式错误或 Content-Type 不是 application/json（code: malformed_json, wrong_content_type, bad_request）",
    401: "缺少、无效、过期或已撤销的访问令牌（code: unauthorized）；换取令牌时用户名或密码错误（code: login_refused）",
    403: "已登录但无权执行此操作（code: forbidden）",
    404: "对象不存在，或您无权查看它（code: not_found）",
    409: "对象当前的状态不允许此操作，例如重复签署、已生效的协议再提交签署（code: conflict）",
    422: "字段不合规则，fields 逐一说明（code: invalid）",
    429: "密码错误次数过多，暂时锁定（code: too_many_requests），见 Retry-After",
}

TAGS = [
    {"name": "tokens", "description": "访问令牌"},
    {"name": "organizations", "description": "党组织"},
    {"name": "users", "description": "用户（管理员）"},
    {"name": "agreements", "description": "结对共建协议"},
    {"name": "activities", "description": "共建活动台账"},
    {"name": "reports", "description": "月度报告"},
    {"name": "notifications", "description": "站内通知"},
    {"name": "meta", "description": "API 描述"},
]


@dataclass(frozen=True)
class Reply:
    """A documented success response: JSON with a schema, a PDF, or nothing (204)."""

    description: str
    schema: dict | None = None
    media_type: str | None = "application/json"
    headers: dict = field(default_factory=dict)

    def openapi(self) -> dict:
        """The OpenAPI response object."""
        out: dict = {"description": self.description}
        if self.media_type is not None:
            schema = self.schema if self.schema is not None else {"type": "string", "format": "binary"}
            out["content"] = {self.media_type: {"schema": schema}}
        if self.headers:
            out["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                              for name, text in self.headers.items()}
        return out


def json_reply(description: str, schema: dict) -> Reply:
    """A JSON success response."""
    return Reply(description, schema)


def pdf_reply(description: str, headers: dict | None = None) -> Reply:
    """A PDF success response."""
    return Reply(description, None, "application/pdf", headers or {})


NO_CONTENT = Reply("完成，无内容", None, None)


@dataclass
class Operation:
    """One documented route × method."""

    rule: str  # Flask rule inside the blueprint, e.g. /agreements/<int:agreement_id>
    method: str
    endpoint: str
    summary: str
    description: str
    tag: str
    auth: bool
    body: Body | None
    query: Query | None
    replies: dict[int, Reply]
    errors: tuple[int, ...]

    @property
    def path(self) -> str:
        """The OpenAPI path: /api/v1/agreements/{agreement_id}."""
        return API_PREFIX + re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", self.rule)

    @property
    def path_params(self) -> list[tuple[str, str]]:
        """(name, converter) of each path parameter."""
        return [(name, conv or "string") for conv, name in re.findall(r"<(?:([a-z]+):)?(\w+)>", self.rule)]

    def error_statuses(self) -> list[int]:
        """The error statuses this operation can answer (documented with the shared Error schema)."""
        statuses = set(self.errors)
        if self.auth:
            statuses.add(401)
        if self.body is not None:
            statuses |= {400, 422}
        if self.query is not None and self.query.fields:
            statuses.add(422)
        if self.path_params:
            statuses.add(404)
        return sorted(statuses)

    def openapi(self) -> dict:
        """The OpenAPI operation object."""
        params = []
        for name, conv in self.path_params:
            schema = {"type": "integer", "minimum": 1, "maximum": MAX_ID} if conv == "int" else {"type": "string"}
            params.append({"name": name, "in": "path", "required": True, "schema": schema})
        if self.query is not None:
            params += self.query.parameters()
        out: dict = {
            "operationId": self.endpoint,
            "summary": self.summary,
            "tags": [self.tag],
            "security": [{"bearerAuth": []}] if self.auth else [],
            "responses": {str(s): r.openapi() for s, r in sorted(self.replies.items())},
        }
        if self.description:
            out["description"] = self.description
        if params:
            out["parameters"] = params
        if self.body is not None:
            out["requestBody"] = {"required": True, "content": {"application/json": {"schema": self.body.schema()}}}
        for status in self.error_statuses():
            out["responses"][str(status)] = {"$ref": f"#/components/responses/E{status}"}
        return out


# Every operation, in declaration order (the document lists them in this order).
OPERATIONS: list[Operation] = []


def _json_body(body: Body) -> dict:
    """The request's JSON object, checked against `body`; raises ApiError (400 / 422)."""
    mimetype = request.mimetype or ""
    if mimetype != "application/json" and not (mimetype.startswith("application/") and mimetype.endswith("+json")):
        raise ApiError("wrong_content_type")

    def refuse_constant(name):
        raise ValueError(f"{name} is not JSON")

    try:
        data = json.loads(request.get_data(cache=True), parse_constant=refuse_constant)
    except (ValueError, RecursionError):
        raise ApiError("malformed_json") from None
    if not isinstance(data, dict):
        raise ApiError("bad_request", "请求体须为 JSON 对象（{…}）。", "The request body must be a JSON object.")
    values, errors = body.clean(data)
    if errors:
        raise invalid(errors)
    return values


def _query_values(query: Query) -> dict:
    values, errors = query.clean(request.args)
    if errors:
        raise invalid(errors)
    return values


def unauthorized() -> ApiError:
    """The 401 for a request without a usable token (says why when a token was presented)."""
    from flask import g

    presented = getattr(g, "api_token_presented", False)
    if presented:
        return ApiError("unauthorized", "访问令牌无效、已过期或已被撤销，请重新获取。",
                        "The bearer token is invalid, expired or revoked.",
                        headers={"WWW-Authenticate": 'Bearer realm="coop", error="invalid_token"'})
    return ApiError("unauthorized", headers={"WWW-Authenticate": 'Bearer realm="coop"'})


def operation(bp: Blueprint, rule: str, method: str, *, summary: str, tag: str, replies: dict[int, Reply],
              auth: bool = True, body: Body | None = None, query: Query | None = None, errors: tuple[int, ...] = (),
              description: str = "") -> Callable:
    """Declare an API route: registers it on `bp`, enforces auth/body/query, and documents it.

    The view receives its path parameters, plus `body=` (cleaned JSON fields) and/or `query=` (cleaned
    query parameters) when the operation declares them.
    """

    def decorator(view):
        op = Operation(rule=rule, method=method.upper(), endpoint=view.__name__, summary=summary,
                       description=description, tag=tag, auth=auth, body=body, query=query, replies=replies,
                       errors=tuple(errors))
        OPERATIONS.append(op)

        @wraps(view)
        def wrapped(**kwargs):
            # Authentication first: a caller without a token learns nothing, not even what is malformed.
            if auth and not current_user.is_authenticated:
                raise unauthorized()
            if body is not None:
                kwargs["body"] = _json_body(body)
            if query is not None:
                kwargs["query"] = _query_values(query)
            return view(**kwargs)

        bp.add_url_rule(rule, endpoint=view.__name__, view_func=wrapped, methods=[op.method])
        return wrapped

    return decorator


def openapi_document() -> dict:
    """The OpenAPI 3.1 document of every declared operation."""
    paths: dict[str, dict] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = op.openapi()
    codes = "\n".join(f"| `{code}` | {status} | {zh} |" for code, (status, zh, _en) in ERROR_CODES.items())
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "党建共建平台 API",
            "version": API_VERSION,
            "description": (
                "与页面相同的业务操作和权限。先用 `POST /api/v1/tokens` 以用户名和密码换取访问令牌，"
                "之后每个请求带上 `Authorization: Bearer <token>`。\n\n"
                "错误响应均为 `{\"code\", \"message\", \"message_en\", \"fields\"}`：\n\n"
                "| code | HTTP | 含义 |\n|---|---|---|\n" + codes + "\n\n"
                "列表接口分页：`?page=1&per_page=20`（最多 100），返回 `{\"items\", \"page\", \"per_page\", \"total\"}`。"
                "日期为 YYYY-MM-DD（北京时间的日期），时间戳为 UTC 的 RFC 3339。"
            ),
        },
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": component_schemas(),
            "responses": {
                f"E{status}": {"description": text, "content": {"application/json": {"schema": ref("Error")}}}
                for status, text in ERROR_DESCRIPTIONS.items()
            },
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer",
                               "description": "POST /api/v1/tokens 返回的 token"},
            },
        },
    }
