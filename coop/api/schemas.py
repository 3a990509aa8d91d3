"""What goes in and what comes out of the JSON API, described once.

Request fields (`Str`, `Int`, `Date`, … gathered in a `Body` or a `Query`) both *check* incoming values —
collecting one Chinese message per field at fault — and *describe* themselves as JSON Schema for the
OpenAPI document, so the document cannot drift from what the code accepts. Checks here are about the
shape of the input only (types, lengths, known codes); every business rule stays in the domains'
operations. Text is cleaned exactly like the screens' form fields (coop.forms.clean_text).

Responses are plain dicts built by the `*_json` functions below, each next to the JSON Schema that the
OpenAPI document publishes for it (and that the fuzzing test checks responses against).
"""
from __future__ import annotations

import re
from datetime import date, datetime, time, timezone
from typing import Any, Iterable

from flask import current_app, url_for

from coop.categories import CATEGORY_BY_CODE, CATEGORY_CODES
from coop.forms import clean_text
from coop.reports.progress import STATUS_LABELS

MAX_ID = 2**31 - 1  # ids are 32-bit integers in PostgreSQL; larger numbers cannot name anything
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20


_SURROGATE = re.compile("[\ud800-\udfff]")


class FieldInvalid(Exception):
    """One field's value is unacceptable; the message is for people (Chinese)."""


# --- request fields --------------------------------------------------------------------------------------


class Field:
    """A request value: checks and cleans it, and describes itself as JSON Schema."""

    json_type = "string"

    def __init__(self, description: str = "", *, nullable: bool = False, example: Any = None):
        self.description = description
        self.nullable = nullable
        self.example = example

    def schema(self) -> dict:
        """The JSON Schema of the value."""
        s = self._schema()
        if self.nullable:
            s["type"] = [s["type"], "null"]
        if self.description:
            s["description"] = self.description
        if self.example is not None:
            s["examples"] = [self.example]
        return s

    def clean(self, value):
        """The cleaned value, or FieldInvalid."""
        if value is None:
            if self.nullable:
                return None
            raise FieldInvalid("不能为空。")
        return self._clean(value)

    def parse_query(self, raw: str):
        """The cleaned value of a query-string parameter (always text on the wire)."""
        return self.clean(raw)

    def _schema(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _clean(self, value):  # pragma: no cover - abstract
        raise NotImplementedError


class Str(Field):
    """Text, cleaned like the screens' fields; `min_len=1` makes it required to say something."""

    def __init__(self, description: str = "", *, max_len: int, min_len: int = 0, multiline: bool = False,
                 raw: bool = False, **kw):
        super().__init__(description, **kw)
        self.max_len, self.min_len, self.multiline = max_len, min_len, multiline
        # Passwords are taken exactly as typed: cleaning would change what the person chose.
        self.raw = raw

    def _schema(self) -> dict:
        s = {"type": "string", "maxLength": self.max_len}
        if self.min_len:
            s["minLength"] = self.min_len
        return s

    def _clean(self, value):
        if not isinstance(value, str):
            raise FieldInvalid("应为文本。")
        if len(value) > self.max_len:  # as published (JSON Schema counts what was sent, before cleaning)
            raise FieldInvalid(f"最长 {self.max_len} 个字符。")
        if self.raw and _SURROGATE.search(value):
            raise FieldInvalid("包含无效的字符。")  # lone surrogates cannot be encoded, so cannot be hashed
        text = value if self.raw else (clean_text(value, multiline=self.multiline) or "")
        if len(text) < self.min_len:
            raise FieldInvalid("不能为空。")
        if len(text) > self.max_len:
            raise FieldInvalid(f"最长 {self.max_len} 个字符。")
        return text


class Choice(Field):
    """One of a fixed set of codes (kind, relation, status, category …)."""

    def __init__(self, description: str = "", *, values: Iterable[str], **kw):
        super().__init__(description, **kw)
        self.values = list(values)

    def _schema(self) -> dict:
        return {"type": "string", "enum": list(self.values)}

    def _clean(self, value):
        if not isinstance(value, str) or value not in self.values:
            raise FieldInvalid("应为以下之一：" + "、".join(self.values) + "。")
        return value


class Int(Field):
    """A whole number within bounds (JSON booleans and fractions are refused)."""

    json_type = "integer"

    def __init__(self, description: str = "", *, minimum: int = 0, maximum: int = MAX_ID, **kw):
        super().__init__(description, **kw)
        self.minimum, self.maximum = minimum, maximum

    def _schema(self) -> dict:
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}

    def _clean(self, value):
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldInvalid("应为整数。")
        if not self.minimum <= value <= self.maximum:
            raise FieldInvalid(f"应在 {self.minimum} 到 {self.maximum} 之间。")
        return value

    def parse_query(self, raw: str):
        if not re.fullmatch(r"-?\d{1,12}", raw or ""):
            raise FieldInvalid("应为整数。")
        return self.clean(int(raw))


def Id(description: str = "", **kw) -> Int:
    """A database id (a positive 32-bit integer)."""
    return Int(description, minimum=1, maximum=MAX_ID, **kw)


class Bool(Field):
    """true or false (in a query string also 1/0)."""

    def _schema(self) -> dict:
        return {"type": "boolean"}

    def _clean(self, value):
        if not isinstance(value, bool):
            raise FieldInvalid("应为 true 或 false。")
        return value

    def parse_query(self, raw: str):
        lowered = (raw or "").strip().lower()
        if lowered in ("true", "1"):
            return True
        if lowered in ("false", "0"):
            return False
        raise FieldInvalid("应为 true 或 false。")


class Date(Field):
    """A calendar date as YYYY-MM-DD (local dates: activities and terms are days in Asia/Shanghai)."""

    def _schema(self) -> dict:
        return {"type": "string", "format": "date"}

    def _clean(self, value):
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise FieldInvalid("日期格式应为 YYYY-MM-DD。")
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise FieldInvalid("不是有效的日期。") from None


class Time(Field):
    """A wall-clock time as HH:MM (or HH:MM:SS), local time."""

    def _schema(self) -> dict:
        return {"type": "string", "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?$"}

    def _clean(self, value):
        if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?", value):
            raise FieldInvalid("时间格式应为 HH:MM。")
        return time.fromisoformat(value)


class Month(Field):
    """A calendar month as YYYY-MM."""

    def _schema(self) -> dict:
        return {"type": "string", "pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])$"}

    def _clean(self, value):
        if not isinstance(value, str) or not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", value):
            raise FieldInvalid("月份格式应为 YYYY-MM，例如 2026-10。")
        year, month = int(value[:4]), int(value[5:])
        if not 2000 <= year <= 2999:
            raise FieldInvalid("月份超出范围。")
        return year, month


class List(Field):
    """A JSON array of one kind of item; duplicates are refused when `unique`."""

    def __init__(self, item: Field, description: str = "", *, max_items: int, min_items: int = 0,
                 unique: bool = True, **kw):
        super().__init__(description, **kw)
        self.item, self.max_items, self.min_items, self.unique = item, max_items, min_items, unique

    def _schema(self) -> dict:
        s = {"type": "array", "items": self.item.schema(), "maxItems": self.max_items}
        if self.min_items:
            s["minItems"] = self.min_items
        if self.unique:
            s["uniqueItems"] = True
        return s

    def _clean(self, value):
        if not isinstance(value, list):
            raise FieldInvalid("应为数组。")
        if len(value) > self.max_items:
            raise FieldInvalid(f"最多 {self.max_items} 项。")
        if len(value) < self.min_items:
            raise FieldInvalid(f"至少 {self.min_items} 项。")
        out = []
        for i, v in enumerate(value):
            try:
                out.append(self.item.clean(v))
            except FieldInvalid as exc:
                raise FieldInvalid(f"第 {i + 1} 项：{exc}") from None
        if self.unique and len(set(map(repr, out))) != len(out):
            raise FieldInvalid("不能有重复项。")
        return out


class CategoryCounts(Field):
    """{"study": 4, "event": 2, …}: a yearly count per 八联 category code."""

    def __init__(self, description: str = "", *, maximum: int = 366, **kw):
        super().__init__(description, **kw)
        self.count = Int(minimum=0, maximum=maximum)

    def _schema(self) -> dict:
        return {"type": "object", "properties": {c: self.count.schema() for c in CATEGORY_CODES},
                "additionalProperties": False}

    def _clean(self, value):
        if not isinstance(value, dict):
            raise FieldInvalid("应为对象，如 {\"study\": 4}。")
        out = {}
        for code, count in value.items():
            if code not in CATEGORY_BY_CODE:
                raise FieldInvalid(f"未知的共建类别“{code}”。")
            try:
                out[code] = self.count.clean(count)
            except FieldInvalid as exc:
                raise FieldInvalid(f"{code}：{exc}") from None
        return out


class IdListMap(Field):
    """{"<organization id>": [user ids]}: keys are ids written as text (JSON object keys are text)."""

    def __init__(self, description: str = "", *, max_items: int = 50, **kw):
        super().__init__(description, **kw)
        self.ids = List(Id(), max_items=max_items)

    def _schema(self) -> dict:
        return {"type": "object", "patternProperties": {"^[1-9][0-9]{0,8}$": self.ids.schema()},
                "additionalProperties": False}

    def _clean(self, value):
        if not isinstance(value, dict):
            raise FieldInvalid("应为对象，如 {\"12\": [5, 6]}。")
        out = {}
        for key, ids in value.items():
            if not re.fullmatch(r"[1-9]\d{0,8}", key):
                raise FieldInvalid(f"“{key[:20]}”不是组织编号。")
            try:
                out[int(key)] = self.ids.clean(ids)
            except FieldInvalid as exc:
                raise FieldInvalid(f"{key}：{exc}") from None
        return out


class _Fields:
    """Named fields, some required; shared by request bodies and query strings."""

    def __init__(self, fields: dict[str, Field], required: Iterable[str] = ()):
        self.fields = fields
        self.required = [n for n in fields if n in set(required)]


class Body(_Fields):
    """A JSON object request body: unknown names and missing required fields are each reported."""

    def schema(self) -> dict:
        """The JSON Schema of the body."""
        s = {"type": "object", "properties": {n: f.schema() for n, f in self.fields.items()},
             "additionalProperties": False}
        if self.required:
            s["required"] = list(self.required)
        return s

    def clean(self, data: dict) -> tuple[dict, dict[str, str]]:
        """(cleaned values of the fields present, {field: message} for every problem)."""
        values, errors = {}, {}
        for name in data:
            if name not in self.fields:
                errors[str(name)[:60]] = "未知字段。"
        for name, f in self.fields.items():
            if name not in data:
                if name in self.required:
                    errors[name] = "必填。"
                continue
            try:
                values[name] = f.clean(data[name])
            except FieldInvalid as exc:
                errors[name] = str(exc)
        return values, errors


class Query(_Fields):
    """Query-string parameters; an unknown name is an error (a misspelt filter must not silently match all)."""

    def parameters(self) -> list[dict]:
        """OpenAPI parameter objects."""
        return [
            {"name": n, "in": "query", "required": n in self.required, "schema": f.schema(),
             **({"description": f.description} if f.description else {})}
            for n, f in self.fields.items()
        ]

    def clean(self, args) -> tuple[dict, dict[str, str]]:
        """(cleaned values of the parameters given, {parameter: message} for every problem)."""
        values, errors = {}, {}
        for name in args:
            if name not in self.fields:
                errors[str(name)[:60]] = "未知参数。"
        for name, f in self.fields.items():
            raw = args.get(name)
            # `?category=` is a value (an empty one), not an absent parameter: it is checked like any other.
            if raw is None:
                if name in self.required:
                    errors[name] = "必填。"
                continue
            try:
                values[name] = f.parse_query(raw)
            except FieldInvalid as exc:
                errors[name] = str(exc)
        return values, errors


PAGING = {
    "page": Int("页码，从 1 开始。", minimum=1, maximum=1_000_000),
    "per_page": Int(f"每页条数，默认 {DEFAULT_PER_PAGE}，最多 {MAX_PER_PAGE}。", minimum=1, maximum=MAX_PER_PAGE),
}


def paged(fields: dict[str, Field] | None = None, required: Iterable[str] = ()) -> Query:
    """A query with the page / per_page parameters and the given filters."""
    return Query({**PAGING, **(fields or {})}, required)


# --- response schemas --------------------------------------------------------------------------------------

INT = {"type": "integer"}
STR = {"type": "string"}
BOOL = {"type": "boolean"}
DATE = {"type": "string", "format": "date"}
DATETIME = {"type": "string", "format": "date-time"}


def nullable(s: dict) -> dict:
    """The same schema, also allowing null."""
    return {**s, "type": [s["type"], "null"]}


def obj(props: dict, required: Iterable[str] | None = None, **extra) -> dict:
    """An object schema; every listed property is required unless `required` says otherwise."""
    return {"type": "object", "properties": props, "required": list(props if required is None else required), **extra}


def arr(items: dict) -> dict:
    """An array schema."""
    return {"type": "array", "items": items}


def ref(name: str) -> dict:
    """A reference to a named schema in the OpenAPI components."""
    return {"$ref": f"#/components/schemas/{name}"}


def enum_of(values: Iterable[str]) -> dict:
    """A string limited to `values`."""
    return {"type": "string", "enum": list(values)}


def page_of(item: dict) -> dict:
    """A page of a list endpoint."""
    return obj({"items": arr(item), "page": INT, "per_page": INT, "total": INT})


ERROR_SCHEMA = obj({
    "code": STR,
    "message": {"type": "string", "description": "中文说明"},
    "message_en": {"type": "string", "description": "English message"},
    "fields": {"type": "object", "additionalProperties": STR,
               "description": "出错的字段及原因（字段名 → 中文说明）"},
}, required=["code", "message", "message_en"])


# --- serialisation ------------------------------------------------------------------------------------------


def iso_datetime(value: datetime | None) -> str | None:
    """An aware datetime as RFC 3339 in UTC (2026-10-05T08:30:00Z)."""
    if value is None:
        return None
    return value.astimezone(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def iso_date(value: date | None) -> str | None:
    """A date as YYYY-MM-DD."""
    return value.isoformat() if value is not None else None


def absolute_url(path: str | None) -> str | None:
    """A site path as an absolute URL under BASE_URL (what people open in a browser)."""
    if not path:
        return None
    return current_app.config["BASE_URL"].rstrip("/") + path


def _kinds():
    from coop.orgs.models import OrgKind, OrgRelation

    return [k.value for k in OrgKind], [r.value for r in OrgRelation]


# Organizations -------------------------------------------------------------------------------------------

ORG_TEXT_FIELDS = {
    "short_name": 40, "region": 80, "contact_name": 40, "contact_phone": 40, "contact_email": 120,
    "brand_name": 60, "brand_slogan": 200,
}


def organization_body(*, partial: bool) -> Body:
    """POST (all of name/kind/relation required) or PATCH (anything, at least nothing) of an organization."""
    kinds, relations = _kinds()
    fields: dict[str, Field] = {
        "name": Str("组织名称", max_len=120, min_len=1, example="运维检修党支部"),
        "kind": Choice("组织类型", values=kinds),
        "relation": Choice("与集团的关系", values=relations),
        "parent_id": Id("上级组织编号；null 为顶级组织（仅管理员）", nullable=True),
    }
    fields.update({name: Str(max_len=n, nullable=True) for name, n in ORG_TEXT_FIELDS.items()})
    if partial:
        fields["is_active"] = Bool("false 停用组织（历史保留），true 重新启用")
    return Body(fields, required=() if partial else ("name", "kind", "relation"))


def organization_schema() -> dict:
    """The published shape of an organization."""
    kinds, relations = _kinds()
    return obj({
        "id": INT, "name": STR, "kind": enum_of(kinds), "kind_label": STR, "relation": enum_of(relations),
        "relation_label": STR, "parent_id": nullable(INT), "ancestor_ids": arr(INT), "is_active": BOOL,
        **{name: nullable(STR) for name in ORG_TEXT_FIELDS},
        "created_at": DATETIME, "updated_at": DATETIME,
    })


def organization_json(org) -> dict:
    """An organization's public card."""
    return {
        "id": org.id, "name": org.name, "kind": org.kind.value, "kind_label": org.kind.label,
        "relation": org.relation.value, "relation_label": org.relation.label, "parent_id": org.parent_id,
        "ancestor_ids": org.ancestor_ids[:-1], "is_active": org.is_active,
        **{name: getattr(org, name) for name in ORG_TEXT_FIELDS},
        "created_at": iso_datetime(org.created_at), "updated_at": iso_datetime(org.updated_at),
    }


# Users ---------------------------------------------------------------------------------------------------


def _roles() -> list[str]:
    from coop.auth.models import Role

    return [r.value for r in Role]


def user_body() -> Body:
    """POST /users."""
    return Body({
        "username": Str("登录名（不含空格）", max_len=64, min_len=1, example="zhangwei"),
        "password": Str("初始密码：至少 8 位，同时包含字母和数字", max_len=200, min_len=1, raw=True),
        "display_name": Str("姓名", max_len=60, min_len=1, example="张伟"),
        "organization_id": Id("所属组织编号", nullable=True),
        "roles": List(Choice(values=_roles()), "角色", max_items=4),
        "email": Str(max_len=120, nullable=True),
        "phone": Str(max_len=40, nullable=True),
        "title": Str("职务，如 党支部书记", max_len=60, nullable=True),
    }, required=("username", "password", "display_name", "roles"))


def user_schema() -> dict:
    """The published shape of a user."""
    return obj({
        "id": INT, "username": STR, "display_name": STR, "organization_id": nullable(INT),
        "roles": arr(enum_of(_roles())), "is_active": BOOL, "email": nullable(STR), "phone": nullable(STR),
        "title": nullable(STR), "created_at": DATETIME, "last_login_at": nullable(DATETIME),
    })


def user_json(user) -> dict:
    """A user account (never the password hash)."""
    return {
        "id": user.id, "username": user.username, "display_name": user.display_name,
        "organization_id": user.organization_id, "roles": sorted(r.value for r in user.roles),
        "is_active": user.is_active_account, "email": user.email, "phone": user.phone, "title": user.title,
        "created_at": iso_datetime(user.created_at), "last_login_at": iso_datetime(user.last_login_at),
    }


# Tokens --------------------------------------------------------------------------------------------------

TOKEN_BODY = Body({
    "username": Str("登录名", max_len=64, min_len=1),
    "password": Str("密码", max_len=200, min_len=1, raw=True),
}, required=("username", "password"))

TOKEN_SCHEMA = obj({
    "id": INT, "token": {"type": "string", "description": "只显示这一次；请求时放在 Authorization: Bearer 之后"},
    "token_type": enum_of(["Bearer"]), "expires_at": DATETIME,
})


def token_json(token, secret: str) -> dict:
    """A newly issued token, with its secret (shown once)."""
    return {"id": token.id, "token": secret, "token_type": "Bearer",  # the token type name  # nosec B105
            "expires_at": iso_datetime(token.expires_at)}


# Agreements ----------------------------------------------------------------------------------------------


def _agreement_statuses() -> list[str]:
    from agreements.models import AgreementStatus

    return [s.value for s in AgreementStatus]


def agreement_body() -> Body:
    """POST /agreements: a draft's content."""
    return Body({
        "title": Str("协议名称", max_len=200, min_len=1, example="党支部结对共建协议"),
        "party_ids": List(Id(), "共建方组织编号，按甲方、乙方……的顺序", max_items=20, example=[3, 7]),
        "starts_on": Date("开始日期"),
        "ends_on": Date("结束日期"),
        "commitments": CategoryCounts("每个“八联”类别的年度约定次数", example={"study": 4, "event": 2}),
        "liaison_ids": IdListMap("各方联络员：{\"组织编号\": [用户编号]}；未给出的一方默认为该组织的联络员"),
        "purpose": Str("共建目标", max_len=10000, multiline=True),
        "number": Str("协议编号（文号）", max_len=60, nullable=True),
        "clauses": List(Str(max_len=2000, min_len=1, multiline=True), "其他条款", max_items=50, unique=False),
        "signing_order_fixed": Bool("true：各方须按甲方、乙方……顺序签署"),
    }, required=("title", "party_ids", "starts_on", "ends_on", "commitments"))


SIGNATURE_BODY = Body({"password": Str("签署人本人的登录密码（确认签署）", max_len=200, min_len=1, raw=True)},
                      required=("password",))


def agreement_schema() -> dict:
    """The published shape of an agreement."""
    party = obj({"organization_id": INT, "name": STR, "label": STR, "position": INT})
    signature = obj({
        "organization_id": INT, "organization_name": STR, "signer_id": INT, "signer_name": STR,
        "signed_at": DATETIME, "sha256_after": STR,
    })
    signing = obj({
        "version": INT, "submitted_at": nullable(DATETIME), "signed_org_ids": arr(INT),
        "waiting_org_ids": arr(INT), "next_signer_org_ids": arr(INT), "signatures": arr(signature),
    })
    current = obj({
        "version": INT, "completed_at": nullable(DATETIME), "final_sha256": nullable(STR),
        "verify_code": nullable(STR), "verify_url": nullable(STR),
    })
    return obj({
        "id": INT, "title": STR, "number": nullable(STR), "purpose": STR, "status": enum_of(_agreement_statuses()),
        "status_label": STR, "starts_on": DATE, "ends_on": DATE, "party_ids": arr(INT), "parties": arr(party),
        "commitments": {"type": "object", "additionalProperties": INT},
        "liaison_ids": {"type": "object", "additionalProperties": arr(INT)},
        "clauses": arr(STR), "signing_order_fixed": BOOL, "renewed_from_id": nullable(INT),
        "created_by_id": nullable(INT), "created_at": DATETIME, "updated_at": DATETIME,
        "activated_at": nullable(DATETIME), "ended_at": nullable(DATETIME), "end_reason": nullable(STR),
        "signing": {"oneOf": [signing, {"type": "null"}]},
        "current_version": {"oneOf": [current, {"type": "null"}]},
        "pdf_url": STR,
    })


def _signature_json(s) -> dict:
    return {
        "organization_id": s.organization_id, "organization_name": s.organization_name, "signer_id": s.signer_id,
        "signer_name": s.signer_name, "signed_at": iso_datetime(s.signed_at), "sha256_after": s.sha256_after,
    }


def agreement_json(agreement) -> dict:
    """An agreement as its parties see it (no signer IP addresses, no key material)."""
    from agreements.document import party_label
    from agreements.signatures import verify_url_for

    liaisons: dict[str, list[int]] = {}
    for l in sorted(agreement.liaisons, key=lambda l: l.id or 0):
        liaisons.setdefault(str(l.organization_id), []).append(l.user_id)
    signing = agreement.signing_version
    current = agreement.current_version
    return {
        "id": agreement.id, "title": agreement.title, "number": agreement.number, "purpose": agreement.purpose or "",
        "status": agreement.status.value, "status_label": agreement.status.label,
        "starts_on": iso_date(agreement.starts_on), "ends_on": iso_date(agreement.ends_on),
        "party_ids": agreement.party_org_ids,
        "parties": [
            {"organization_id": p.organization_id, "name": p.organization.name, "label": party_label(i),
             "position": p.position}
            for i, p in enumerate(agreement.parties)
        ],
        "commitments": {c.category: c.count_per_year for c in agreement.commitments},
        "liaison_ids": liaisons,
        "clauses": list(agreement.clauses or []),
        "signing_order_fixed": bool(agreement.signing_order_fixed),
        "renewed_from_id": agreement.renewed_from_id, "created_by_id": agreement.created_by_id,
        "created_at": iso_datetime(agreement.created_at), "updated_at": iso_datetime(agreement.updated_at),
        "activated_at": iso_datetime(agreement.activated_at), "ended_at": iso_datetime(agreement.ended_at),
        "end_reason": agreement.end_reason,
        "signing": None if signing is None else {
            "version": signing.number, "submitted_at": iso_datetime(signing.submitted_at),
            "signed_org_ids": sorted(signing.signed_org_ids), "waiting_org_ids": signing.unsigned_org_ids(),
            "next_signer_org_ids": signing.next_signer_org_ids(),
            "signatures": [_signature_json(s) for s in sorted(signing.signatures, key=lambda s: s.signed_at)],
        },
        "current_version": None if current is None else {
            "version": current.number, "completed_at": iso_datetime(current.completed_at),
            "final_sha256": current.final_sha256, "verify_code": current.verify_code,
            "verify_url": verify_url_for(current.verify_code) if current.verify_code else None,
        },
        "pdf_url": url_for("api.agreement_pdf", agreement_id=agreement.id, _external=False),
    }


def signature_schema() -> dict:
    """The published shape of a new signature."""
    return obj({"signature": obj({
        "organization_id": INT, "organization_name": STR, "signer_id": INT, "signer_name": STR,
        "signed_at": DATETIME, "sha256_after": STR,
    }), "agreement": ref("Agreement")})


def signature_json(signature, agreement) -> dict:
    """A signature just made, with the agreement as it now stands."""
    return {"signature": _signature_json(signature), "agreement": agreement_json(agreement)}


# Activities ----------------------------------------------------------------------------------------------


def _activity_enums():
    from coop.activities.models import ActivityStatus, ConfirmationState

    return [s.value for s in ActivityStatus], [c.value for c in ConfirmationState]


def activity_body() -> Body:
    """POST /activities: one joint activity, logged once by a liaison of one party."""
    return Body({
        "agreement_id": Id("所属共建协议编号"),
        "category": Choice("“八联”类别", values=CATEGORY_CODES),
        "title": Str("活动名称", max_len=200, min_len=1, example="书记送课上门"),
        "held_on": Date("活动日期"),
        "place": Str("地点", max_len=200, nullable=True),
        "organization_ids": List(Id(), "参加的组织（协议签约方）；登记人所在一方自动计入", max_items=20),
        "party_member_count": Int("党员人数", minimum=0, maximum=100_000),
        "other_count": Int("其他人数", minimum=0, maximum=1_000_000),
        "summary": Str("活动内容", max_len=5000, multiline=True, nullable=True),
        "outcome": Str("活动成效", max_len=5000, multiline=True, nullable=True),
        "status": Choice("held 已开展（默认）或 planned 计划中", values=["held", "planned"]),
        "tags": List(Choice(values=CATEGORY_CODES), "其他涉及的类别", max_items=8),
        "start_time": Time("开始时间 HH:MM", nullable=True),
        "end_time": Time("结束时间 HH:MM", nullable=True),
    }, required=("agreement_id", "category", "title", "held_on", "organization_ids"))


CONFIRMATION_BODY = Body({
    "decision": Choice("confirm 确认，dispute 提出异议", values=["confirm", "dispute"]),
    "comment": Str("说明（提出异议时必填）", max_len=1000, multiline=True, nullable=True),
    "organization_id": Id("代表哪一方（同时担任多方联络员时）", nullable=True),
}, required=("decision",))


def activity_schema() -> dict:
    """The published shape of an activity."""
    statuses, confirmations = _activity_enums()
    confirmation = obj({
        "organization_id": INT, "organization_name": STR, "state": enum_of(confirmations),
        "decided_at": nullable(DATETIME), "decided_by_id": nullable(INT), "comment": nullable(STR),
    })
    return obj({
        "id": INT, "agreement_id": INT, "agreement_ids": arr(INT), "category": enum_of(CATEGORY_CODES),
        "category_name": STR, "tags": arr(enum_of(CATEGORY_CODES)), "title": STR, "held_on": DATE,
        "start_time": nullable(STR), "end_time": nullable(STR), "place": nullable(STR),
        "organizer_org_id": INT, "organization_ids": arr(INT), "party_member_count": INT, "other_count": INT,
        "summary": STR, "outcome": STR, "status": enum_of(statuses), "confirmation": enum_of(confirmations),
        "confirmations": arr(confirmation), "created_by_id": INT, "created_at": DATETIME, "updated_at": DATETIME,
        "withdrawn_at": nullable(DATETIME), "withdrawn_reason": nullable(STR), "url": STR,
    })


def _hhmm(value: time | None) -> str | None:
    return value.strftime("%H:%M") if value is not None else None


def activity_json(activity) -> dict:
    """One activity with every partner's answer."""
    return {
        "id": activity.id, "agreement_id": activity.agreement_ids[0] if activity.agreement_ids else 0,
        "agreement_ids": activity.agreement_ids, "category": activity.category,
        "category_name": CATEGORY_BY_CODE[activity.category].name, "tags": [t.category for t in activity.tags],
        "title": activity.title, "held_on": iso_date(activity.held_on), "start_time": _hhmm(activity.start_time),
        "end_time": _hhmm(activity.end_time), "place": activity.place, "organizer_org_id": activity.organizer_org_id,
        "organization_ids": activity.participant_org_ids, "party_member_count": activity.party_member_count,
        "other_count": activity.other_count, "summary": activity.summary or "", "outcome": activity.outcome or "",
        "status": activity.status.value, "confirmation": activity.confirmation.value,
        "confirmations": [
            {"organization_id": c.organization_id, "organization_name": c.organization.name, "state": c.state.value,
             "decided_at": iso_datetime(c.decided_at), "decided_by_id": c.decided_by_id, "comment": c.comment}
            for c in activity.confirmations
        ],
        "created_by_id": activity.created_by_id, "created_at": iso_datetime(activity.created_at),
        "updated_at": iso_datetime(activity.updated_at), "withdrawn_at": iso_datetime(activity.withdrawn_at),
        "withdrawn_reason": activity.withdrawn_reason,
        "url": absolute_url(url_for("activities.detail", activity_id=activity.id)),
    }


# Notifications -------------------------------------------------------------------------------------------


def _reminder_kinds() -> list[str]:
    from coop.reminders.models import ReminderKind

    return [k.value for k in ReminderKind]


def notification_schema() -> dict:
    """The published shape of a notification."""
    return obj({
        "id": INT, "kind": enum_of(_reminder_kinds()), "kind_label": STR, "title": STR, "body": STR,
        "read": BOOL, "read_at": nullable(DATETIME), "created_at": DATETIME, "mandatory": BOOL,
        "link": nullable(STR), "url": nullable(STR), "agreement_id": nullable(INT), "activity_id": nullable(INT),
    })


def notification_json(n) -> dict:
    """One notice of the caller's notification centre."""
    link = n.link if n.link and n.link.startswith("/") and not n.link.startswith("//") else None
    return {
        "id": n.id, "kind": n.kind.value, "kind_label": n.kind.label, "title": n.title, "body": n.body or "",
        "read": n.read_at is not None, "read_at": iso_datetime(n.read_at), "created_at": iso_datetime(n.created_at),
        "mandatory": bool(n.mandatory), "link": link, "url": absolute_url(link),
        "agreement_id": n.agreement_id, "activity_id": n.activity_id,
    }


# Reports -------------------------------------------------------------------------------------------------

REPORT_STATUSES = list(STATUS_LABELS)  # every status a report row can carry, as coop.reports.progress defines them

CATEGORY_ROW_SCHEMA = obj({
    "code": enum_of(CATEGORY_CODES), "name": STR, "held": INT, "confirmed": INT, "pending": INT, "disputed": INT,
    "year_to_date": INT, "commitment": INT, "target": INT, "expected": INT, "status": enum_of(REPORT_STATUSES),
    "status_label": STR, "percent": INT,
})

AGREEMENT_SUMMARY_SCHEMA = obj({
    "agreement_id": INT, "title": STR, "status": enum_of(_agreement_statuses()), "starts_on": DATE, "ends_on": DATE,
    "party_ids": arr(INT), "party_names": STR, "overall_status": enum_of(REPORT_STATUSES), "overall_label": STR,
    "held": INT, "confirmed": INT, "pending": INT, "disputed": INT, "year_to_date": INT, "target": INT,
    "lagging": arr(STR), "last_held_on": nullable(DATE), "days_silent": INT, "stalled": BOOL, "one_sided": BOOL,
    "one_sided_reason": STR, "summary": STR, "categories": arr(ref("ReportCategory")),
})

CATEGORY_TOTAL_SCHEMA = obj({
    "code": enum_of(CATEGORY_CODES), "name": STR, "held": INT, "confirmed": INT, "previous_held": INT, "trend": INT,
    "committed": INT, "status_counts": {"type": "object", "additionalProperties": INT},
})

REPORT_ACTIVITY_SCHEMA = obj({
    "id": INT, "held_on": DATE, "title": STR, "place": STR, "category": enum_of(CATEGORY_CODES), "status": STR,
    "confirmation": STR, "organizer": STR, "participants": arr(STR), "party_member_count": INT, "other_count": INT,
    "note": STR,
})


def report_schema() -> dict:
    """The published shape of a monthly report's figures."""
    return obj({
        "kind": enum_of(["agreement", "organization", "committee"]), "month": STR, "title": STR,
        "period": obj({"first": DATE, "last": DATE, "complete": BOOL}),
        "subject": obj({"agreement_id": nullable(INT), "organization_id": nullable(INT), "name": STR}),
        "categories": {**arr(ref("ReportCategory")),
                       "description": "协议报告：本协议各类别；组织与党委报告：为空，见 agreements[].categories"},
        "category_totals": arr(CATEGORY_TOTAL_SCHEMA),
        "agreements": arr(ref("ReportAgreement")),
        "totals": {"type": "object", "additionalProperties": INT},
        "activities": arr(REPORT_ACTIVITY_SCHEMA),
        "open_items": arr(REPORT_ACTIVITY_SCHEMA),
        "pdf_url": STR,
    })


# The report's figures are read straight from coop.reports.queries' dataclasses, field by field: the same values as
# `data.as_dict()` (dates as ISO strings), without converting the parts the API does not publish — a group's
# report data holds hundreds of summaries, each with parties, liaisons and categories (issue 10).


def _iso(value) -> str | None:
    """A date (or None) as reports' as_dict() gives it."""
    return value.isoformat() if value is not None else None


def _category_row(c) -> dict:
    return {
        "code": c.code, "name": c.name, "held": c.held, "confirmed": c.confirmed, "pending": c.pending,
        "disputed": c.disputed, "year_to_date": c.year_to_date, "commitment": c.commitment, "target": c.target,
        "expected": c.expected, "status": c.status, "status_label": c.status_label, "percent": c.percent,
    }


def _summary(s) -> dict:
    return {
        "agreement_id": s.agreement_id, "title": s.title, "status": s.status, "starts_on": _iso(s.starts_on),
        "ends_on": _iso(s.ends_on), "party_ids": [p.organization_id for p in s.parties],
        "party_names": s.party_names, "overall_status": s.overall_status, "overall_label": s.overall_label,
        "held": s.held, "confirmed": s.confirmed, "pending": s.pending, "disputed": s.disputed,
        "year_to_date": s.year_to_date, "target": s.target, "lagging": list(s.lagging),
        "last_held_on": _iso(s.last_held_on), "days_silent": s.days_silent, "stalled": s.stalled,
        "one_sided": s.one_sided, "one_sided_reason": s.one_sided_reason, "summary": s.one_line,
        "categories": [_category_row(c) for c in s.categories],
    }


def _activity_line(a) -> dict:
    return {
        "id": a.id, "held_on": _iso(a.held_on), "title": a.title, "place": a.place, "category": a.category,
        "status": a.status, "confirmation": a.confirmation, "organizer": a.organizer,
        "participants": list(a.participants), "party_member_count": a.party_member_count,
        "other_count": a.other_count, "note": a.note,
    }


def _category_total(t) -> dict:
    return {
        "code": t.code, "name": t.name, "held": t.held, "confirmed": t.confirmed, "previous_held": t.previous_held,
        "trend": t.trend, "committed": t.committed, "status_counts": {str(k): v for k, v in t.status_counts.items()},
    }


def report_json(data, *, agreement_id: int | None, organization_id: int | None, pdf_url: str) -> dict:
    """A monthly report's figures (coop.reports.queries data) as the API publishes them."""
    period = data.period
    if data.kind == "agreement":
        summaries = [data.summary]
        categories = [_category_row(c) for c in data.categories]
        totals = {k: getattr(data.summary, k) for k in ("held", "confirmed", "pending", "disputed", "year_to_date",
                                                         "target")}
        category_totals = []
    else:
        summaries = data.agreements
        categories = []
        totals = {str(k): v for k, v in data.totals.items() if isinstance(v, int)}
        category_totals = [_category_total(t) for t in data.category_totals]
    return {
        "kind": data.kind, "month": f"{period.year}-{period.month:02d}", "title": data.title,
        "period": {"first": _iso(period.first), "last": _iso(period.last), "complete": period.complete},
        "subject": {"agreement_id": agreement_id, "organization_id": organization_id, "name": data.subject_name},
        "categories": categories,
        "category_totals": category_totals,
        "agreements": [_summary(s) for s in summaries],
        "totals": totals,
        "activities": [_activity_line(a) for a in getattr(data, "activities", [])],
        "open_items": [_activity_line(a) for a in getattr(data, "open_items", [])],
        "pdf_url": pdf_url,
    }


def component_schemas() -> dict:
    """The named schemas of the OpenAPI document."""
    return {
        "Error": ERROR_SCHEMA,
        "Token": TOKEN_SCHEMA,
        "User": user_schema(),
        "Organization": organization_schema(),
        "Agreement": agreement_schema(),
        "Activity": activity_schema(),
        "Notification": notification_schema(),
        "ReportCategory": CATEGORY_ROW_SCHEMA,
        "ReportAgreement": AGREEMENT_SUMMARY_SCHEMA,
        "Report": report_schema(),
    }
