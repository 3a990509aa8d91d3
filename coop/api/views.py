"""The JSON API, version 1: the screens' operations and permissions over HTTP + JSON.

Every view is thin in the house way — load (404) → permission (403) → the declared body/query is
already checked → call one domain operation → commit once → JSON. Refusals raised by the domains are
translated by coop.api.errors.domain_error; no business rule is decided here.

Objects a caller may not see answer 404 (never 403), so ids of other organizations' agreements and
activities reveal nothing. Organizations are public cards to every signed-in user, as on the screens.
"""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, g, jsonify, request, send_file, session, url_for
from flask_login import current_user
from sqlalchemy.orm import joinedload, selectinload

from agreements import operations as agreement_ops
from agreements import permissions as agreement_perms
from agreements.content import AgreementContent
from agreements.models import Agreement, AgreementError, AgreementParty, AgreementStatus, AgreementVersion
from agreements.queries import agreements_visible_to
from coop.activities import operations as activity_ops
from coop.activities.models import Activity, ActivityAgreement
from coop.activities.permissions import can_see_agreement_ledger, can_view_activity, confirming_org_ids, liaison_org_ids
from coop.activities.queries import ledger_query
from coop.api import schemas as s
from coop.api import tokens_views
from coop.api.auth import authenticate_request, issue_token, revoke_token
from coop.api.errors import ApiError, conflict, domain_error, forbidden, invalid, not_found
from coop.api.openapi import API_PREFIX, NO_CONTENT, json_reply, openapi_document, operation, pdf_reply
from coop import cache
from coop.auth import operations as auth_ops
from coop.auth.models import Role, User, UserRole
from coop.auth.passwords import password_problem
from coop.auth.permissions import (
    can_create_organizations,
    can_manage_organization,
    can_manage_users,
    committee_scope_root,
    may_place_under,
)
from coop.categories import CATEGORY_CODES
from coop.db import load_into, now_utc
from coop.extensions import csrf, db
from coop.formatting import local_today
from coop.orgs import operations as org_ops
from coop.orgs.models import Organization, OrgKind, OrgRelation
from coop.reminders import operations as reminder_ops
from coop.reminders.models import Notification
from coop.web import is_api_request

bp = Blueprint("api", __name__, url_prefix=API_PREFIX)
# Bearer tokens only, never cookies (see coop.api.auth.authenticate_request): nothing for CSRF to protect.
csrf.exempt(bp)
# The profile page's token list and revoke button are a cookie-and-CSRF screen: their own blueprint, registered
# with this one (the app factory registers one blueprint per domain).
bp.record_once(lambda state: state.app.register_blueprint(tokens_views.bp))


@bp.before_request
def _authenticate():
    authenticate_request()


@bp.after_app_request
def _no_session_cookie(resp):
    # The API never uses the cookie session (the app marks every session permanent before we run): leave it
    # unsaved, so API responses — errors for unknown /api/ paths included — carry no Set-Cookie, and a
    # browser's own cookie is left as it was.
    if is_api_request():
        session.permanent = False
        session.modified = False
    return resp


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError):
    return exc.response()


# --- helpers ----------------------------------------------------------------------------------------------


def _load(model, ident, what_en: str, options=()):
    """A row by id, or a 404 (ids outside the 32-bit range name nothing and must not reach the database)."""
    if not isinstance(ident, int) or not 1 <= ident <= s.MAX_ID:
        raise not_found(what_en)
    obj = db.session.get(model, ident, options=options)
    if obj is None:
        raise not_found(what_en)
    return obj


# How many leading rows of a list the API memoises (see _page).
MEMO_ROWS = 100


def _page(stmt, query: dict, serialise, *, memo: str | None = None) -> dict:
    """One page of a select as {"items", "page", "per_page", "total"}.

    With `memo` (a name), the first pages are memoised per data generation (coop.cache; issue 10): the payload
    is plain data computed from the database only, under a key made of the select itself — SQLAlchemy's cache
    key of its shape plus every bound value, which carry the caller's visibility (organization, scope root,
    user) and the filters — the page, and what the payload's URLs are built from. Only the first
    MEMO_ROWS rows: those are what clients poll (newest first); a client walking every page reads each one
    once per generation, and memoising those would only push the group's figures out of the shared LRU.
    Never for selects over bookkeeping tables that do not bump the generation (notifications …).
    """
    page = query.get("page", 1)
    per_page = query.get("per_page", s.DEFAULT_PER_PAGE)

    def build() -> dict:
        pagination = cache.paginate(stmt, page=page, per_page=per_page)
        return {"items": [serialise(x) for x in pagination.items], "page": page, "per_page": per_page,
                "total": pagination.total or 0}

    if memo is None or page * per_page > MEMO_ROWS:
        return build()
    cache_key = stmt._generate_cache_key()  # None for a statement SQLAlchemy cannot cache  # noqa: SLF001
    if cache_key is None:
        return build()
    key = (cache_key.key, tuple(repr(p.effective_value) for p in cache_key.bindparams), page, per_page,
           _url_base())
    return cache.memoized(memo, key, build, pool="api")


def _url_base() -> tuple:
    """What the URLs inside a memoised payload depend on besides the data (url_for, absolute_url)."""
    return request.script_root, current_app.config.get("BASE_URL")


def _created(payload: dict, location: str):
    resp = jsonify(payload)
    resp.status_code = 201
    resp.headers["Location"] = location
    return resp


def _refused(exc: Exception, **kw) -> ApiError:
    """Roll back what the refused operation did and translate its refusal."""
    db.session.rollback()
    return domain_error(exc, **kw)


# --- meta and tokens --------------------------------------------------------------------------------------


@operation(bp, "/openapi.json", "GET", auth=False, tag="meta", summary="本 API 的 OpenAPI 3.1 描述",
           replies={200: json_reply("OpenAPI 文档", {"type": "object"})})
def openapi_json():
    """The OpenAPI 3.1 document of this API."""
    resp = jsonify(openapi_document())
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@operation(bp, "/tokens", "POST", auth=False, tag="tokens", body=s.TOKEN_BODY, errors=(401, 429),
           summary="用户名和密码换取访问令牌",
           description="与网页登录共用失败次数限制。令牌只在此返回一次；默认 30 天后失效，可在个人中心撤销。",
           replies={201: json_reply("新令牌", s.ref("Token"))})
def create_token(body):
    """Exchange a username and password for a bearer token (sign-in throttling applies)."""
    ip = request.remote_addr
    locked = auth_ops.login_locked_until(body["username"], ip)
    if locked:
        wait = max(1, int((locked - now_utc()).total_seconds()))
        raise ApiError("too_many_requests", f"登录失败次数过多，请 {max(1, wait // 60)} 分钟后再试。",
                       headers={"Retry-After": str(wait)})
    try:
        user = auth_ops.authenticate(body["username"], body["password"], ip)
    except auth_ops.LoginRefused as exc:
        db.session.commit()  # keep the failure count, exactly like the sign-in page
        raise ApiError("login_refused", str(exc)) from None
    secret, token = issue_token(user, ip=ip, user_agent=request.user_agent.string)
    db.session.commit()
    return _created(s.token_json(token, secret), url_for("api.me"))


@operation(bp, "/tokens/current", "DELETE", tag="tokens", summary="撤销本次请求所用的令牌", replies={204: NO_CONTENT})
def revoke_current_token():
    """Revoke the token this request came with."""
    revoke_token(g.api_token, actor=current_user)
    db.session.commit()
    return "", 204


@operation(bp, "/me", "GET", tag="users", summary="令牌所属的用户", replies={200: json_reply("当前用户", s.ref("User"))})
def me():
    """The user the token belongs to."""
    return jsonify(s.user_json(current_user))


# --- organizations ----------------------------------------------------------------------------------------

_kinds = [k.value for k in OrgKind]
_relations = [r.value for r in OrgRelation]


@operation(bp, "/organizations", "GET", tag="organizations", summary="组织列表（按树的顺序）",
           query=s.paged({
               "parent_id": s.Id("只列出此组织的直接下级"), "kind": s.Choice(values=_kinds),
               "relation": s.Choice(values=_relations), "active": s.Bool("true 只列在用的，false 只列已停用的"),
               "q": s.Str("名称包含", max_len=60),
           }),
           replies={200: json_reply("一页组织", s.page_of(s.ref("Organization")))})
def list_organizations(query):
    """Organizations in tree order, filtered and paginated."""
    stmt = sa.select(Organization).order_by(Organization.path, Organization.id)
    if "parent_id" in query:
        stmt = stmt.where(Organization.parent_id == query["parent_id"])
    if "kind" in query:
        stmt = stmt.where(Organization.kind == OrgKind(query["kind"]))
    if "relation" in query:
        stmt = stmt.where(Organization.relation == OrgRelation(query["relation"]))
    if "active" in query:
        stmt = stmt.where(Organization.is_active.is_(query["active"]))
    if query.get("q"):
        stmt = stmt.where(Organization.name.contains(query["q"], autoescape=True))
    return jsonify(_page(stmt, query, s.organization_json))


def _org_fields(body: dict) -> dict:
    return {k: v for k, v in body.items() if k in org_ops.EDITABLE_FIELDS}


def _parent_of(body: dict) -> Organization | None:
    parent_id = body.get("parent_id")
    if parent_id is None:
        return None
    parent = db.session.get(Organization, parent_id)
    if parent is None:
        raise invalid({"parent_id": "上级组织不存在。"})
    return parent


@operation(bp, "/organizations", "POST", tag="organizations", body=s.organization_body(partial=False), errors=(403,),
           summary="新建组织", description="管理员在任何位置；党委审阅人只在其负责范围内。",
           replies={201: json_reply("新组织", s.ref("Organization"))})
def create_organization(body):
    """Create an organization where the caller may place one."""
    if not can_create_organizations(current_user):
        raise forbidden("只有管理员和党委审阅人可以新建组织。")
    parent = _parent_of(body)
    if not may_place_under(current_user, parent):
        raise forbidden("只能在您负责的组织范围内新建组织。" if parent is not None else "只有管理员可以新建顶级组织。")
    try:
        org = org_ops.create_organization(actor=current_user, parent=parent, **_org_fields(body))
    except org_ops.OrgInvalid as exc:
        raise _refused(exc) from None
    db.session.commit()
    return _created(s.organization_json(org), url_for("api.get_organization", org_id=org.id))


@operation(bp, "/organizations/<int:org_id>", "GET", tag="organizations", summary="一个组织",
           replies={200: json_reply("组织", s.ref("Organization"))})
def get_organization(org_id):
    """One organization's public card."""
    return jsonify(s.organization_json(_load(Organization, org_id, "Organization")))


@operation(bp, "/organizations/<int:org_id>", "PATCH", tag="organizations", body=s.organization_body(partial=True),
           errors=(403,), summary="修改组织（只改给出的字段）",
           description="给出 parent_id 即移动组织（连同其下级）；is_active 停用或启用。",
           replies={200: json_reply("修改后的组织", s.ref("Organization"))})
def update_organization(org_id, body):
    """Edit, move and (de)activate an organization; only the fields given change."""
    org = _load(Organization, org_id, "Organization")
    if not can_manage_organization(current_user, org):
        raise forbidden("您不能修改这个组织。")
    moving = "parent_id" in body
    parent = _parent_of(body) if moving else None
    if moving and not may_place_under(current_user, parent):
        raise forbidden("只能移动到您负责的组织范围内。" if parent is not None else "只有管理员可以设置顶级组织。")
    fields = _org_fields(body)
    # Up to three operations, each refusing about one field: the refusal names that field.
    steps = []
    if fields:
        steps.append(("name", lambda: org_ops.update_organization(org, actor=current_user, **fields)))
    if moving:
        steps.append(("parent_id", lambda: org_ops.move_organization(org, parent, actor=current_user)))
    if "is_active" in body:
        steps.append(("is_active", lambda: org_ops.set_organization_active(org, body["is_active"], actor=current_user)))
    for field_name, step in steps:
        try:
            step()
        except org_ops.OrgInvalid as exc:
            db.session.rollback()
            raise invalid({field_name: str(exc)}) from None
    db.session.commit()
    return jsonify(s.organization_json(org))


# --- users ------------------------------------------------------------------------------------------------


@operation(bp, "/users", "GET", tag="users", errors=(403,), summary="用户列表（管理员）",
           query=s.paged({
               "organization_id": s.Id("所属组织"), "role": s.Choice(values=[r.value for r in Role]),
               "active": s.Bool(), "q": s.Str("用户名或姓名包含", max_len=60),
           }),
           replies={200: json_reply("一页用户", s.page_of(s.ref("User")))})
def list_users(query):
    """Users, for admins."""
    if not can_manage_users(current_user):
        raise forbidden("只有管理员可以管理用户。")
    stmt = sa.select(User).order_by(User.username, User.id)
    if "organization_id" in query:
        stmt = stmt.where(User.organization_id == query["organization_id"])
    if "role" in query:
        stmt = stmt.where(User.id.in_(sa.select(UserRole.user_id).where(UserRole.role == Role(query["role"]))))
    if "active" in query:
        stmt = stmt.where(User.is_active_account.is_(query["active"]))
    if query.get("q"):
        like = query["q"]
        stmt = stmt.where(sa.or_(User.username.contains(like, autoescape=True),
                                 User.display_name.contains(like, autoescape=True)))
    return jsonify(_page(stmt, query, s.user_json))


@operation(bp, "/users", "POST", tag="users", body=s.user_body(), errors=(403,), summary="新建用户（管理员）",
           replies={201: json_reply("新用户", s.ref("User"))})
def create_user(body):
    """Create a user (admins)."""
    if not can_manage_users(current_user):
        raise forbidden("只有管理员可以管理用户。")
    org = None
    if body.get("organization_id") is not None:
        org = db.session.get(Organization, body["organization_id"])
        if org is None:
            raise invalid({"organization_id": "组织不存在。"})
    # The domain's own password rule, asked first so the refusal can name the field.
    problem = password_problem(body["password"])
    if problem:
        raise invalid({"password": problem})
    try:
        user = auth_ops.create_user(
            actor=current_user, username=body["username"], password=body["password"],
            display_name=body["display_name"], roles=[Role(r) for r in body["roles"]], organization=org,
            email=body.get("email"), phone=body.get("phone"), title=body.get("title"),
        )
    except auth_ops.AuthError as exc:
        raise _refused(exc) from None
    db.session.commit()
    return _created(s.user_json(user), url_for("api.list_users", q=user.username))


# --- agreements -------------------------------------------------------------------------------------------

_AGREEMENT_LOADS = (
    selectinload(Agreement.parties).selectinload(AgreementParty.organization),
    selectinload(Agreement.commitments),
    selectinload(Agreement.liaisons),
    selectinload(Agreement.versions).selectinload(AgreementVersion.signatures),
)


# GET of one agreement (issue 10), two statements instead of a lazy load per relationship and per organization:
# what the permission check reads — the parties with their organizations — joined to the agreement's row with its
# liaisons (parties × liaisons rows); once the check passed, the commitments and versions agreement_json shows
# (commitments × versions rows; the signatures of a version being signed stay lazy). Plain LEFT OUTER JOINs: an
# inner join nested in an outer one makes SQLite materialise it over whole tables. The writing views keep their
# usual lazy collections.
_AGREEMENT_CHECK_LOADS = (
    joinedload(Agreement.parties).joinedload(AgreementParty.organization),
    joinedload(Agreement.liaisons),
)
_AGREEMENT_JSON_LOADS = (joinedload(Agreement.commitments), joinedload(Agreement.versions))
_AGREEMENT_PARTY_ORGS = (joinedload(Agreement.parties).joinedload(AgreementParty.organization),)


def _visible_agreement(agreement_id, options=()) -> Agreement:
    agreement = _load(Agreement, agreement_id, "Agreement", options)
    if not agreement_perms.can_view_agreement(current_user, agreement):
        raise not_found("Agreement")
    return agreement


@operation(bp, "/agreements", "GET", tag="agreements", summary="您可见的协议",
           query=s.paged({
               "status": s.Choice(values=[st.value for st in AgreementStatus]),
               "party": s.Id("共建方组织编号"),
           }),
           replies={200: json_reply("一页协议（最近更新的在前）", s.page_of(s.ref("Agreement")))})
def list_agreements(query):
    """Agreements the caller may see, most recently updated first."""
    stmt = agreements_visible_to(current_user)
    if "status" in query:
        stmt = stmt.where(Agreement.status == AgreementStatus(query["status"]))
    if "party" in query:
        stmt = stmt.where(sa.exists().where(AgreementParty.agreement_id == Agreement.id,
                                            AgreementParty.organization_id == query["party"]))
    stmt = stmt.options(*_AGREEMENT_LOADS).order_by(Agreement.updated_at.desc(), Agreement.id.desc())
    return jsonify(_page(stmt, query, s.agreement_json, memo="api.agreements"))


@operation(bp, "/agreements", "POST", tag="agreements", body=s.agreement_body(), errors=(403,),
           summary="起草协议",
           description="书记为本组织、党委审阅人为其范围内的组织起草。未指定联络员的一方，默认为该组织的联络员。",
           replies={201: json_reply("协议草稿", s.ref("Agreement"))})
def create_agreement(body):
    """Draft an agreement."""
    if not agreement_perms.can_draft_agreements(current_user):
        raise forbidden("只有书记和党委审阅人可以起草共建协议。")
    content = AgreementContent(
        title=body["title"], starts_on=body["starts_on"], ends_on=body["ends_on"], party_ids=body["party_ids"],
        purpose=body.get("purpose") or "", number=body.get("number") or None,
        commitments={code: (count, "") for code, count in body["commitments"].items()},
        liaisons=dict(body.get("liaison_ids") or {}), clauses=list(body.get("clauses") or []),
        signing_order_fixed=bool(body.get("signing_order_fixed", False)),
    )
    try:
        agreement = agreement_ops.create_draft(content, actor=current_user)
    except AgreementError as exc:
        raise _refused(exc) from None
    db.session.commit()
    return _created(s.agreement_json(agreement), url_for("api.get_agreement", agreement_id=agreement.id))


@operation(bp, "/agreements/<int:agreement_id>", "GET", tag="agreements", summary="一份协议（含状态与签署进度）",
           replies={200: json_reply("协议", s.ref("Agreement"))})
def get_agreement(agreement_id):
    """One agreement with its status and signing progress."""
    agreement = _visible_agreement(agreement_id, _AGREEMENT_CHECK_LOADS)
    return jsonify(s.agreement_json(load_into(agreement, *_AGREEMENT_JSON_LOADS)))


@operation(bp, "/agreements/<int:agreement_id>/submit", "POST", tag="agreements", errors=(403, 409),
           summary="提交签署（草稿 → 签署中）",
           description="冻结文本、生成待签 PDF。只有起草人、共建方书记或上级党委审阅人可以提交。",
           replies={200: json_reply("签署中的协议", s.ref("Agreement"))})
def submit_agreement(agreement_id):
    """Send a draft for signing (draft → signing)."""
    agreement = _visible_agreement(agreement_id)
    if not agreement_perms.is_drafter(current_user, agreement):
        raise forbidden("只有协议起草人、共建方书记或上级党委审阅人可以提交签署。")
    try:
        agreement_ops.submit_for_signing(agreement, actor=current_user)
    except AgreementError as exc:
        raise _refused(exc) from None
    db.session.commit()
    return jsonify(s.agreement_json(agreement))


@operation(bp, "/agreements/<int:agreement_id>/signatures", "POST", tag="agreements", body=s.SIGNATURE_BODY,
           errors=(403, 409, 429), summary="本方书记签署（以登录密码确认）",
           description="与网页签署相同：密码错误计入登录失败次数；最后一方签署后平台加盖签章，协议生效。",
           replies={201: json_reply("签名与协议的最新状态", s.signature_schema())})
def sign_agreement(agreement_id, body):
    """The caller signs for their party, confirming with their password."""
    agreement = _visible_agreement(agreement_id)
    if not agreement_perms.is_secretary_of_party(current_user, agreement.party_org_ids):
        raise forbidden("只有共建方的书记本人可以代表本组织签署。")
    ip = request.remote_addr
    username = current_user.username
    # Signing re-checks the password, so it shares the sign-in lock against guessing (as the sign page does).
    if auth_ops.login_locked_until(username, ip):
        raise ApiError("too_many_requests", "密码错误次数过多，请稍后再试。")
    try:
        signature = agreement_ops.sign_agreement(agreement, actor=current_user, password=body["password"], ip=ip)
    except agreement_ops.WrongPassword as exc:
        db.session.rollback()
        auth_ops.note_login_failure(username, ip)
        db.session.commit()
        raise invalid({"password": str(exc)}) from None
    except AgreementError as exc:
        raise _refused(exc) from None
    auth_ops.clear_login_failures(username, ip)
    db.session.commit()
    return _created(s.signature_json(signature, agreement), url_for("api.get_agreement", agreement_id=agreement.id))


@operation(bp, "/agreements/<int:agreement_id>/pdf", "GET", tag="agreements", summary="协议 PDF",
           description="签署中的文本，否则现行有效的已签署文本，否则草稿预览（不存档）。",
           replies={200: pdf_reply("PDF 文件")})
def agreement_pdf(agreement_id):
    """The agreement's PDF, exactly as the agreement screen serves it."""
    from agreements import views as agreement_views

    agreement = _visible_agreement(agreement_id)
    # The agreements screen decides which document "the PDF" is; the API serves the very same file.
    return agreement_views.pdf(agreement_id=agreement.id)


# --- activities -------------------------------------------------------------------------------------------

_statuses = ["planned", "held", "withdrawn"]
_confirmations = ["pending", "confirmed", "disputed"]


# GET of one activity (issue 10), two statements instead of a lazy load per relationship and organization: what
# the permission check reads — the agreements, their parties with organizations, their liaisons — joined to the
# activity's row (parties × liaisons rows); once the check passed, the collections activity_json lists, joined to
# the activity's row again (confirmations × participants × tags rows; the confirmations' organizations are
# parties', already loaded). Two statements keep each join's rows a small product. Plain LEFT OUTER JOINs: an
# inner join nested in an outer one makes SQLite materialise it over whole tables.
_ACTIVITY_CHECK_LOADS = (
    joinedload(Activity.agreement_links).joinedload(ActivityAgreement.agreement).options(
        joinedload(Agreement.parties).joinedload(AgreementParty.organization),
        joinedload(Agreement.liaisons),
    ),
)
_ACTIVITY_JSON_LOADS = (
    joinedload(Activity.confirmations), joinedload(Activity.participants), joinedload(Activity.tags),
)


def _visible_activity(activity_id, options=()) -> Activity:
    activity = _load(Activity, activity_id, "Activity", options)
    if not can_view_activity(current_user, activity):
        raise not_found("Activity")
    return activity


@operation(bp, "/activities", "GET", tag="activities", summary="您可见的活动台账（日期新的在前）",
           query=s.paged({
               "agreement_id": s.Id("所属协议"), "organization_id": s.Id("参加的组织"),
               "category": s.Choice(values=CATEGORY_CODES), "from": s.Date("起始日期（含）"),
               "to": s.Date("截止日期（含）"), "status": s.Choice(values=_statuses),
               "confirmation": s.Choice(values=_confirmations),
           }),
           replies={200: json_reply("一页活动", s.page_of(s.ref("Activity")))})
def list_activities(query):
    """The ledger the caller may see, newest first, filtered and paginated."""
    stmt = ledger_query(
        current_user, agreement_id=query.get("agreement_id"), org_id=query.get("organization_id"),
        scope="committee", category=query.get("category"), date_from=query.get("from"), date_to=query.get("to"),
        status=query.get("status"), confirmation=query.get("confirmation"),
    )
    return jsonify(_page(stmt, query, s.activity_json, memo="api.activities"))


# The operations name form fields; the API names its own.
_ACTIVITY_FIELDS = {"agreements": "agreement_id", "photos": "photos"}


@operation(bp, "/activities", "POST", tag="activities", body=s.activity_body(), errors=(403, 409),
           summary="登记共建活动（联络员）",
           description="登记人所在一方为发起方；其他参加的协议伙伴各收到一条待确认。"
                       "要求上传照片的类别只能在网页上登记为“已开展”。",
           replies={201: json_reply("新活动", s.ref("Activity"))})
def create_activity(body):
    """Log an activity for the caller's party (liaisons)."""
    agreement = db.session.get(Agreement, body["agreement_id"])
    if agreement is None or not can_see_agreement_ledger(current_user, agreement):
        raise invalid({"agreement_id": "协议不存在或您无权查看。"})
    if not liaison_org_ids(current_user, agreement):
        raise forbidden("只有协议各方的联络员可以登记活动。")
    try:
        activity = activity_ops.log_activity(
            current_user, agreements=[agreement], category=body["category"], title=body["title"],
            held_on=body["held_on"], organization_ids=body["organization_ids"], status=body.get("status", "held"),
            tags=body.get("tags") or (), start_time=body.get("start_time"), end_time=body.get("end_time"),
            place=body.get("place"), party_member_count=body.get("party_member_count", 0),
            other_count=body.get("other_count", 0), summary=body.get("summary") or "",
            outcome=body.get("outcome") or "",
        )
    except activity_ops.ActivityRefused as exc:
        if exc.field == "agreements":
            # The agreement's state (still being signed, ended …) does not allow this entry.
            db.session.rollback()
            raise conflict(str(exc)) from None
        raise _refused(exc, field_map=_ACTIVITY_FIELDS) from None
    db.session.commit()
    return _created(s.activity_json(activity), url_for("api.get_activity", activity_id=activity.id))


@operation(bp, "/activities/<int:activity_id>", "GET", tag="activities", summary="一条活动（含各方确认情况）",
           replies={200: json_reply("活动", s.ref("Activity"))})
def get_activity(activity_id):
    """One activity with every partner's answer."""
    activity = _visible_activity(activity_id, _ACTIVITY_CHECK_LOADS)
    return jsonify(s.activity_json(load_into(activity, *_ACTIVITY_JSON_LOADS)))


@operation(bp, "/activities/<int:activity_id>/confirmation", "POST", tag="activities", body=s.CONFIRMATION_BODY,
           errors=(403, 409), summary="协议伙伴确认或提出异议",
           description="只有参加活动的其他各方的联络员可以回答；提出异议须写明原因。答复可以改变。",
           replies={200: json_reply("活动（含最新确认情况）", s.ref("Activity"))})
def confirm_activity(activity_id, body):
    """A partner's liaison confirms or disputes an activity."""
    activity = _visible_activity(activity_id)
    orgs = confirming_org_ids(current_user, activity)
    if not orgs:
        raise forbidden("只有参加活动的协议伙伴的联络员可以确认或提出异议。")
    org_id = body.get("organization_id")
    if org_id is not None and org_id not in orgs:
        raise invalid({"organization_id": "您不是该组织在这条活动中的联络员。"})
    try:
        activity_ops.confirm_activity(current_user, activity, body["decision"], body.get("comment"),
                                      organization_id=org_id)
    except activity_ops.ActivityRefused as exc:
        raise _refused(exc) from None
    db.session.commit()
    return jsonify(s.activity_json(activity))


# --- reports ----------------------------------------------------------------------------------------------

_REPORT_QUERY = s.Query({
    "month": s.Month("月份 YYYY-MM（进行中的月份统计到今天）", example="2026-10"),
    "agreement_id": s.Id("协议报告"),
    "organization_id": s.Id("组织报告"),
}, required=("month",))


def _report_subject(query: dict):
    """(kind, subject object or None, year, month) for the caller, or a 404/403/422."""
    from coop.reports.models import ReportKind
    from coop.reports.permissions import can_view_subject

    if "agreement_id" in query and "organization_id" in query:
        raise invalid({"agreement_id": "协议报告和组织报告只能二选一。",
                       "organization_id": "协议报告和组织报告只能二选一。"})
    year, month = query["month"]
    if "agreement_id" in query:
        # The check reads the parties and their organizations: joined to the agreement's row (issue 10).
        agreement = db.session.get(Agreement, query["agreement_id"], options=_AGREEMENT_PARTY_ORGS)
        if agreement is None or not can_view_subject(current_user, ReportKind.agreement, agreement):
            raise not_found("Agreement")
        return ReportKind.agreement, agreement, year, month
    if "organization_id" in query:
        org = _load(Organization, query["organization_id"], "Organization")
        if not can_view_subject(current_user, ReportKind.organization, org):
            raise forbidden("您不能查看这个组织的报告。")
        return ReportKind.organization, org, year, month
    root = committee_scope_root(current_user)
    if root is None and not current_user.is_admin:
        raise forbidden("党委报告只对党委审阅人和管理员开放；请指定 agreement_id 或 organization_id。")
    if root is not None and not can_view_subject(current_user, ReportKind.committee, root):
        raise forbidden()
    return ReportKind.committee, root, year, month


def _report_data(kind, subject, year: int, month: int):
    from coop.reports import queries

    try:
        if kind.value == "agreement":
            return queries.agreement_report_data(subject, year, month)
        if kind.value == "organization":
            return queries.organization_report_data(subject, year, month)
        return queries.committee_report_data(subject, year, month)
    except ValueError as exc:  # the month has not begun
        raise invalid({"month": str(exc)}) from None


def _report_ids(kind, subject) -> tuple[int | None, int | None]:
    if kind.value == "agreement":
        return subject.id, None
    return None, (subject.id if subject is not None else None)


@operation(bp, "/reports/monthly", "GET", tag="reports", query=_REPORT_QUERY, errors=(403, 404),
           summary="月度报告的数据",
           description="给出 agreement_id 为协议报告，organization_id 为组织报告，都不给为调用者的党委范围报告"
                       "（管理员：全平台）。数字与报告 PDF、网页完全一致：每个“八联”类别的 held（本月开展）、"
                       "confirmed（本月已确认）、year_to_date（年度累计已确认）、commitment（年度约定）、status。",
           replies={200: json_reply("报告数据", s.ref("Report"))})
def monthly_report(query):
    """A monthly report's figures as JSON."""
    kind, subject, year, month = _report_subject(query)
    agreement_id, organization_id = _report_ids(kind, subject)
    params = {k: v for k, v in {"agreement_id": agreement_id, "organization_id": organization_id}.items()
              if v is not None and (k in query)}
    pdf_url = url_for("api.monthly_report_pdf", month=f"{year}-{month:02d}", **params)

    def build() -> dict:
        data = _report_data(kind, subject, year, month)
        return s.report_json(data, agreement_id=agreement_id, organization_id=organization_id, pdf_url=pdf_url)

    # The payload, like the report data under it (same key: subject, month, today), is memoised per data
    # generation (issue 10: a group's payload is hundreds of agreement summaries). Access was checked above, on
    # every request; the ids and the PDF link are derived from the subject and the request, and in the key.
    key = (kind.value, subject.id if subject is not None else None, year, month, local_today(), pdf_url)
    return jsonify(cache.memoized("api.report_json", key, build, pool="api"))


@operation(bp, "/reports/monthly.pdf", "GET", tag="reports", query=_REPORT_QUERY, errors=(403, 404),
           summary="月度报告 PDF",
           description="已存档的最新版本；该月尚无存档时即时生成一份预览（不存档）。",
           replies={200: pdf_reply("PDF 文件", {"X-Report-Source": "archive（存档）或 preview（即时预览）"})})
def monthly_report_pdf(query):
    """A monthly report as PDF: the latest archived version, else a live preview."""
    from io import BytesIO

    from coop.reports import operations as report_ops
    from coop.reports.pdf import render_report

    kind, subject, year, month = _report_subject(query)
    subject_ref = {"agreement": report_ops.agreement_subject, "organization": report_ops.organization_subject,
                   "committee": report_ops.committee_subject}[kind.value](subject)
    for report in report_ops.versions_of(subject_ref, year, month):
        path = report_ops.archive_path(report)
        if path.is_file():
            resp = send_file(path, mimetype="application/pdf", download_name=report_ops.export_file_name(report),
                             max_age=0, etag=report.sha256)
            resp.headers["X-Report-Source"] = "archive"
            resp.headers["X-Content-SHA256"] = report.sha256
            return resp
        current_app.logger.error("archived report %s missing at %s", report.id, path)
        break
    data = _report_data(kind, subject, year, month)
    rendered = render_report(data, version=None, generated_at=now_utc())
    resp = send_file(BytesIO(rendered.pdf), mimetype="application/pdf", download_name=f"{data.title}-预览.pdf",
                     max_age=0)
    resp.headers["X-Report-Source"] = "preview"
    return resp


# --- notifications ----------------------------------------------------------------------------------------


@operation(bp, "/notifications", "GET", tag="notifications", summary="您的站内通知（新的在前）",
           query=s.paged({"unread": s.Bool("true 只列未读")}),
           replies={200: json_reply("一页通知", s.page_of(s.ref("Notification")))})
def list_notifications(query):
    """The caller's notifications, newest first."""
    stmt = sa.select(Notification).where(Notification.user_id == current_user.id)
    if query.get("unread") is True:
        stmt = stmt.where(Notification.read_at.is_(None))
    elif query.get("unread") is False:
        stmt = stmt.where(Notification.read_at.is_not(None))
    stmt = stmt.order_by(Notification.created_at.desc(), Notification.id.desc())
    return jsonify(_page(stmt, query, s.notification_json))


@operation(bp, "/notifications/<int:notification_id>/read", "POST", tag="notifications", summary="标为已读",
           replies={200: json_reply("通知", s.ref("Notification"))})
def read_notification(notification_id):
    """Mark one of the caller's notifications as read."""
    notification = _load(Notification, notification_id, "Notification")
    if notification.user_id != current_user.id:
        raise not_found("Notification")
    reminder_ops.mark_read(current_user, notification)
    db.session.commit()
    return jsonify(s.notification_json(notification))

