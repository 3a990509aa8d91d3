"""Agreement screens: list, detail, draft/edit, sign (phone-first), terminate, renew, amend, PDFs,
and the public verification pages (/verify, /verify/<code>)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import aliased, joinedload, selectinload

from agreements import operations as ops
from agreements import permissions as perms
from agreements.content import content_from_json, content_of, snapshot
from agreements.document import PARTY_LABELS
from agreements.forms import AgreementFilterForm, AgreementForm, AmendmentForm, ReasonForm, SignForm, VerifyForm
from agreements.models import (
    Agreement,
    AgreementError,
    AgreementLiaison,
    AgreementParty,
    AgreementStatus,
    AgreementVersion,
    SignerKey,
    VersionState,
)
from agreements.presets import DEFAULT_TEMPLATE, TEMPLATE_BY_CODE, TEMPLATES
from agreements.queries import (
    agreement_for_detail,
    agreement_history,
    agreements_visible_to,
    awaiting_signature,
    version_by_code,
    version_by_file_hash,
)
from agreements.signatures import (
    ArchiveError,
    normalise_verify_code,
    platform_pki,
    read_archive_file,
    render_snapshot_pdf,
    sha256_hex,
)
from coop import cache
from coop.auth.models import Role, User, UserRole
from coop.auth.permissions import get_or_404, require
from coop.auth.views import PROFILE_SECTIONS
from coop.extensions import db
from coop.forms import clean_text, parse_id
from coop.formatting import local_today, ui_date
from coop.home.views import HOME_PANELS, home_memo
from coop.i18n import N_
from coop.orgs.models import Organization
from coop.web import add_nav, page_arg

bp = Blueprint("agreements", __name__)

add_nav("agreements.index", N_("协议"), lambda u: u.is_authenticated, order=20)

PER_PAGE = 20
EXPIRING_DAYS = 30
DEFAULT_VERIFY_MAX_BYTES = 20 * 1024 * 1024


# --- helpers -------------------------------------------------------------------------------------


def _load(agreement_id) -> Agreement:
    """The agreement if the user may see it. One it may not see answers 404 like a missing one, so nobody
    learns which ids exist (as the ledger, the API and the reports do)."""
    agreement = get_or_404(Agreement, agreement_id)
    if not perms.can_view_agreement(current_user, agreement):
        abort(404)
    return agreement


def _client_ip() -> str | None:
    # Behind a proxy, ProxyFix (configured by the deployment) makes remote_addr the client's address.
    return request.remote_addr


def _refused(exc: Exception, agreement: Agreement | None = None, endpoint: str = "agreements.detail"):
    db.session.rollback()
    flash(str(exc), "error")
    if agreement is None:
        return redirect(url_for("agreements.index"))
    return redirect(url_for(endpoint, agreement_id=agreement.id))


def _org_choices_for(user) -> list[tuple[str, str]]:
    """Active organizations a drafter may pick as parties (any active organization: partners are often outside)."""
    orgs = db.session.execute(
        sa.select(Organization).where(Organization.is_active.is_(True)).order_by(Organization.path)
    ).scalars()
    # Indented by depth with EM SPACEs: as wide as the ideographic space, and no Chinese in an English page.
    return [(str(o.id), "\u2003" * o.depth + o.name) for o in orgs]


def _liaison_groups(party_ids: list[int]) -> list[dict]:
    """Per party: the organization and its active users, for ticking liaisons."""
    if not party_ids:
        return []
    orgs = {o.id: o for o in db.session.execute(sa.select(Organization).where(Organization.id.in_(party_ids))).scalars()}
    users = db.session.execute(
        sa.select(User).where(User.organization_id.in_(party_ids), User.is_active_account.is_(True))
        .order_by(User.display_name)
    ).scalars().all()
    return [
        {"org": orgs[o], "users": [u for u in users if u.organization_id == o]}
        for o in party_ids if o in orgs
    ]


def _shown_liaison_orgs() -> set[int]:
    # The form says which parties' liaison lists it displayed; only those are taken as explicit.
    return {i for v in request.form.getlist("liaison_orgs") if (i := parse_id(v)) is not None}


def _pdf_response(data: bytes, name: str):
    from io import BytesIO

    resp = send_file(BytesIO(data), mimetype="application/pdf", download_name=name, as_attachment=False,
                     max_age=0)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


# --- list ----------------------------------------------------------------------------------------


@bp.route("/agreements/")
@login_required
def index():
    form = AgreementFilterForm(request.args)
    form.status.choices = [("", _("全部状态"))] + [(s.value, s.ui_label) for s in AgreementStatus]
    visible = agreements_visible_to(current_user)
    # The party filter's choices: every organization in an agreement this user sees (a group reviewer: all
    # ~300), as plain (id, name) pairs memoised per data generation — the user's roles and organization are
    # data too, so the user's id is the whole key (issue 10).
    party_orgs = cache.memoized("agreement_party_choices", current_user.id, lambda: [tuple(r) for r in db.session.execute(
        sa.select(Organization.id, Organization.name)
        .join(AgreementParty, AgreementParty.organization_id == Organization.id)
        .where(AgreementParty.agreement_id.in_(visible.with_only_columns(Agreement.id).scalar_subquery()))
        .distinct().order_by(Organization.name)
    )], pool="personal")
    form.party.choices = [("", _("全部共建方"))] + [(str(org_id), name) for org_id, name in party_orgs]

    stmt = visible
    if form.status.data in {s.value for s in AgreementStatus}:
        stmt = stmt.where(Agreement.status == AgreementStatus(form.status.data))
    if parse_id(form.party.data) is not None:
        stmt = stmt.where(sa.exists().where(AgreementParty.agreement_id == Agreement.id,
                                            AgreementParty.organization_id == parse_id(form.party.data)))
    today = local_today()
    if form.expiring.data:
        stmt = stmt.where(Agreement.status == AgreementStatus.active, Agreement.ends_on >= today,
                          Agreement.ends_on <= today + timedelta(days=EXPIRING_DAYS))
    q = clean_text(request.args.get("q") or "")  # no NUL: PostgreSQL refuses it in a parameter
    if q:
        stmt = stmt.where(Agreement.title.contains(q, autoescape=True))
    stmt = stmt.options(selectinload(Agreement.parties).selectinload(AgreementParty.organization),
                        selectinload(Agreement.versions))
    order = Agreement.ends_on if form.expiring.data else Agreement.updated_at.desc()
    page = page_arg()
    pagination = cache.paginate(stmt.order_by(order, Agreement.id.desc()), page=page, per_page=PER_PAGE)
    return render_template(
        "agreements/index.html", pagination=pagination, form=form, q=q, today=today,
        expiring_limit=today + timedelta(days=EXPIRING_DAYS),
        can_draft=perms.can_draft_agreements(current_user), perms=perms,
    )


# --- drafting ------------------------------------------------------------------------------------


@bp.route("/agreements/new", methods=["GET", "POST"])
@login_required
def new():
    require(perms.can_draft_agreements(current_user))
    template = TEMPLATE_BY_CODE.get(request.args.get("template") or DEFAULT_TEMPLATE) or TEMPLATES[0]
    form = AgreementForm()
    form.set_party_choices(_org_choices_for(current_user))
    if request.method == "GET":
        # The drafter's own organization is usually 甲方: preselect it.
        own = [current_user.organization_id] if current_user.organization_id and current_user.has_role(Role.secretary) else []
        form.fill(template.content(party_ids=own))
    if form.validate_on_submit():
        content = form.to_content()
        try:
            agreement = ops.create_draft(content, actor=current_user, template_code=template.code)
        except AgreementError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("协议草稿已保存。请核对联络员，确认无误后提交签署。"), "success")
            return redirect(url_for("agreements.detail", agreement_id=agreement.id))
    return render_template("agreements/form.html", form=form, agreement=None, template=template,
                           templates=TEMPLATES, liaison_groups=[], parties_locked=False, amendment=None)


@bp.route("/agreements/<int:agreement_id>/edit", methods=["GET", "POST"])
@login_required
def edit(agreement_id):
    agreement = _load(agreement_id)
    require(perms.can_edit_draft(current_user, agreement))
    form = AgreementForm()
    form.set_party_choices(_org_choices_for(current_user))
    if request.method == "GET":
        form.fill(content_of(agreement))
    if form.validate_on_submit():
        content = form.to_content(shown_liaison_orgs=_shown_liaison_orgs())
        try:
            ops.update_draft(agreement, content, actor=current_user)
        except AgreementError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("草稿已保存。"), "success")
            return redirect(url_for("agreements.detail", agreement_id=agreement.id))
    return render_template("agreements/form.html", form=form, agreement=agreement, template=None, templates=(),
                           liaison_groups=_liaison_groups(agreement.party_org_ids), parties_locked=False,
                           amendment=None)


def _carry_out(agreement: Agreement, action, done: str):
    """Run one state change on `agreement`: commit and go back to its page with `done`, or explain the refusal."""
    try:
        action()
    except AgreementError as exc:
        return _refused(exc, agreement)
    db.session.commit()
    flash(done, "success")
    return redirect(url_for("agreements.detail", agreement_id=agreement.id))


@bp.route("/agreements/<int:agreement_id>/submit", methods=["POST"])
@login_required
def submit(agreement_id):
    agreement = _load(agreement_id)
    require(perms.can_submit(current_user, agreement))
    return _carry_out(agreement, lambda: ops.submit_for_signing(agreement, actor=current_user),
                      _("协议已提交签署：各方书记的首页即显示“待您签署”，签署提醒随后发出。"))


@bp.route("/agreements/<int:agreement_id>/recall", methods=["POST"])
@login_required
def recall(agreement_id):
    agreement = _load(agreement_id)
    require(perms.can_recall(current_user, agreement))
    return _carry_out(agreement, lambda: ops.recall_signing(agreement, actor=current_user, reason=request.form.get("note")),
                      _("协议已撤回为草稿，已有的签署作废。"))


# --- detail --------------------------------------------------------------------------------------


@bp.route("/agreements/<int:agreement_id>")
@login_required
def detail(agreement_id):
    # Everything the page shows, loaded up front (issue 10): otherwise the template lazy-loads each
    # relationship, and each party's organization and named liaison, one query at a time.
    # _load then finds the agreement in the session's identity map (held here: that map keeps weak references).
    preloaded = agreement_for_detail(agreement_id)
    agreement = _load(agreement_id)
    del preloaded  # held until _load found it
    secretaries, renewal = cache.memoized("agreement_detail_people", (agreement.id, tuple(agreement.party_org_ids)),
                                          lambda: _secretaries_and_renewal(agreement), pool="personal")
    return render_template(
        "agreements/detail.html", agreement=agreement, perms=perms, history=agreement_history(agreement),
        secretaries=secretaries, renewal=renewal, today=local_today(), VersionState=VersionState,
        pending=agreement.pending_version, signing=agreement.signing_version,
        amendment_content=_amendment_view(agreement),
        party_labels=_party_labels(agreement.party_org_ids),
    )


@dataclass(frozen=True)
class RenewalLink:
    """The agreement renewing this one, as the detail page links to it (plain data: memoised)."""

    id: int
    title: str
    status: AgreementStatus


def _secretaries_and_renewal(agreement: Agreement) -> tuple[dict[int, list[str]], RenewalLink | None]:
    """Every party's active secretaries' names (one query for all parties) and the live renewal, if any: plain
    data the detail page memoises per data generation (issue 10: two statements on every view)."""
    secretaries: dict[int, list[str]] = {o: [] for o in agreement.party_org_ids}
    for org_id, name in db.session.execute(
        sa.select(User.organization_id, User.display_name)
        .join(UserRole, UserRole.user_id == User.id)
        .where(User.organization_id.in_(list(secretaries)), UserRole.role == Role.secretary,
               User.is_active_account.is_(True))
        .order_by(User.id)
    ):
        secretaries[org_id].append(name)
    renewal = ops.renewal_of(agreement)
    return secretaries, (RenewalLink(renewal.id, renewal.title, renewal.status) if renewal else None)


def ui_party_label(index: int) -> str:
    """甲方 for 0, 乙方 for 1 … in the interface language (Party A, Party B …); the document's own labels
    are agreements.document.party_label."""
    if index < len(PARTY_LABELS):
        return _(PARTY_LABELS[index])
    return _("第%(n)s方", n=index + 1)


def _party_labels(org_ids: list[int]) -> dict[int, str]:
    return {o: ui_party_label(i) for i, o in enumerate(org_ids)}


def ui_reason(text: str | None) -> str:
    """A stored close/end reason for screens: the ones the platform writes itself are translated, what people
    typed is shown as it is."""
    if not text:
        return ""
    if text in ops.SYSTEM_REASONS:
        return _(text)
    superseded = re.fullmatch(r"被第(\d+)版修订取代", text)
    if superseded:
        return _(ops.SUPERSEDED, n=int(superseded.group(1)))
    return text


def _amendment_view(agreement: Agreement) -> dict | None:
    """The pending amendment's proposed text, for showing next to the text in force."""
    v = agreement.pending_version
    if v is None or v.kind.value != "amendment":
        return None
    return v.content


# --- signing -------------------------------------------------------------------------------------


@bp.route("/agreements/<int:agreement_id>/sign", methods=["GET", "POST"])
@login_required
def sign(agreement_id):
    agreement = _load(agreement_id)
    version = agreement.signing_version
    require(version is not None and perms.signing_party_of(current_user, agreement) is not None)
    form = SignForm()
    decline_form = ReasonForm(prefix="decline")
    my_org = current_user.organization_id
    if form.validate_on_submit():
        from coop.auth.operations import clear_login_failures, note_login_failure, login_locked_until
        from coop.db import now_utc

        ip = _client_ip()
        # Signing re-checks the password, so it shares the sign-in lock against guessing.
        locked_until = login_locked_until(current_user.username, ip)
        if locked_until:
            minutes = max(1, math.ceil((locked_until - now_utc()).total_seconds() / 60))
            form.password.errors.append(_("密码错误次数过多，签署和登录暂停，请 %(n)s 分钟后再试。", n=minutes))
        else:
            try:
                ops.sign_agreement(agreement, actor=current_user, password=form.password.data, ip=ip)
            except ops.WrongPassword as exc:
                db.session.rollback()
                note_login_failure(current_user.username, ip)
                db.session.commit()
                form.password.errors.append(str(exc))
            except AgreementError as exc:
                return _refused(exc, agreement, "agreements.sign" if agreement.signing_version else "agreements.detail")
            else:
                clear_login_failures(current_user.username, ip)
                db.session.commit()
                if agreement.status is AgreementStatus.active and version.state is VersionState.signed:
                    if agreement.starts_on > local_today():
                        flash(_("签署成功。各方均已签署，协议将于%(date)s起生效。", date=ui_date(agreement.starts_on)),
                              "success")
                    else:
                        flash(_("签署成功。各方均已签署，协议正式生效。"), "success")
                else:
                    flash(_("签署成功。"), "success")
                return redirect(url_for("agreements.detail", agreement_id=agreement.id))
    return render_template(
        "agreements/sign.html", agreement=agreement, version=version, form=form, decline_form=decline_form,
        my_org=my_org, can_sign_now=perms.can_sign(current_user, agreement),
        can_decline=perms.can_decline(current_user, agreement),
        party_labels=_party_labels(version.party_org_ids),
        orgs={o.id: o for o in db.session.execute(sa.select(Organization).where(
            Organization.id.in_(version.party_org_ids))).scalars()},
    )


@bp.route("/agreements/<int:agreement_id>/decline", methods=["POST"])
@login_required
def decline(agreement_id):
    agreement = _load(agreement_id)
    require(perms.can_decline(current_user, agreement))
    form = ReasonForm(prefix="decline")
    if not form.validate_on_submit():
        flash(_("请填写拒签理由。"), "error")
        return redirect(url_for("agreements.sign", agreement_id=agreement.id))
    return _carry_out(agreement, lambda: ops.decline_signing(agreement, actor=current_user, reason=form.reason.data),
                      _("已拒签，协议退回草稿，起草人可修改后重新提交。"))


# --- end of life, renewal, amendment -------------------------------------------------------------


@bp.route("/agreements/<int:agreement_id>/terminate", methods=["GET", "POST"])
@login_required
def terminate(agreement_id):
    agreement = _load(agreement_id)
    require(perms.can_terminate(current_user, agreement))
    form = ReasonForm()
    if form.validate_on_submit():
        try:
            ops.terminate_agreement(agreement, actor=current_user, reason=form.reason.data)
        except AgreementError as exc:
            return _refused(exc, agreement)
        db.session.commit()
        flash(_("协议已终止。"), "success")
        return redirect(url_for("agreements.detail", agreement_id=agreement.id))
    return render_template("agreements/terminate.html", agreement=agreement, form=form)


@bp.route("/agreements/<int:agreement_id>/renew", methods=["POST"])
@login_required
def renew(agreement_id):
    agreement = _load(agreement_id)
    require(perms.can_renew(current_user, agreement))
    try:
        renewal = ops.renew_agreement(agreement, actor=current_user)
    except AgreementError as exc:
        return _refused(exc, agreement)
    db.session.commit()
    flash(_("已生成续签草稿，共建内容和联络员已带入，请核对后提交签署。"), "success")
    return redirect(url_for("agreements.edit", agreement_id=renewal.id))


@bp.route("/agreements/<int:agreement_id>/amend", methods=["POST"])
@login_required
def amend(agreement_id):
    agreement = _load(agreement_id)
    require(perms.can_amend(current_user, agreement))
    try:
        ops.start_amendment(agreement, actor=current_user, note=request.form.get("note"))
    except AgreementError as exc:
        return _refused(exc, agreement)
    db.session.commit()
    flash(_("已创建修订稿。修订签署完成前，现行协议继续有效。"), "success")
    return redirect(url_for("agreements.amendment", agreement_id=agreement.id))


@bp.route("/agreements/<int:agreement_id>/amendment", methods=["GET", "POST"])
@login_required
def amendment(agreement_id):
    agreement = _load(agreement_id)
    require(perms.can_edit_amendment(current_user, agreement))
    version = agreement.pending_version
    current = content_from_json(version.content)
    form = AmendmentForm()
    if request.method == "GET":
        form.fill(current)
        form.note.data = version.note
    if form.validate_on_submit():
        content = form.to_content(party_ids=version.party_org_ids, shown_liaison_orgs=_shown_liaison_orgs())
        try:
            ops.update_amendment(agreement, content, actor=current_user, note=form.note.data)
        except AgreementError as exc:
            db.session.rollback()
            form.form_errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("修订稿已保存。"), "success")
            return redirect(url_for("agreements.detail", agreement_id=agreement.id))
    return render_template("agreements/form.html", form=form, agreement=agreement, template=None, templates=(),
                           liaison_groups=_liaison_groups(version.party_org_ids), parties_locked=True,
                           amendment=version)


@bp.route("/agreements/<int:agreement_id>/amendment/submit", methods=["POST"])
@login_required
def amendment_submit(agreement_id):
    agreement = _load(agreement_id)
    require(perms.can_edit_amendment(current_user, agreement))
    return _carry_out(agreement, lambda: ops.submit_amendment(agreement, actor=current_user),
                      _("修订稿已提交签署。各方签署完成后修订生效。"))


@bp.route("/agreements/<int:agreement_id>/amendment/withdraw", methods=["POST"])
@login_required
def amendment_withdraw(agreement_id):
    agreement = _load(agreement_id)
    require(perms.can_withdraw_amendment(current_user, agreement))
    return _carry_out(agreement, lambda: ops.withdraw_amendment(agreement, actor=current_user, reason=request.form.get("note")),
                      _("修订已撤回，现行协议不变。"))


# --- PDFs ----------------------------------------------------------------------------------------


def _file_name(title: str, suffix: str) -> str:
    safe = "".join(ch for ch in title if ch not in '\\/:*?"<>|').strip() or "协议"
    return f"{safe}-{suffix}.pdf"


@bp.route("/agreements/<int:agreement_id>/pdf")
@login_required
def pdf(agreement_id):
    """The document as it stands: being signed, else in force, else a draft preview."""
    agreement = _load(agreement_id)
    version = agreement.signing_version or agreement.current_version
    if version is None:
        return preview(agreement_id)
    return version_pdf(agreement_id, version.number)


@bp.route("/agreements/<int:agreement_id>/preview.pdf")
@login_required
def preview(agreement_id):
    """An unsigned preview of the draft (or of the amendment draft); nothing is stored."""
    agreement = _load(agreement_id)
    pending = agreement.pending_version
    if agreement.status is AgreementStatus.draft:
        data = snapshot(content_of(agreement))
    elif pending is not None and pending.state is VersionState.draft:
        data = pending.content
    else:
        abort(404)
    pdf_bytes, _boxes = render_snapshot_pdf(data, version_label="草稿")
    return _pdf_response(pdf_bytes, _file_name(data["title"], "草稿预览"))


@bp.route("/agreements/<int:agreement_id>/versions/<int:number>/pdf")
@login_required
def version_pdf(agreement_id, number):
    agreement = _load(agreement_id)
    version = next((v for v in agreement.versions if v.number == number), None)
    if version is None or not version.pdf_path:
        abort(404)
    try:
        data = read_archive_file(version.pdf_path, version.pdf_sha256)
    except ArchiveError as exc:
        current_app.logger.error("agreement %s version %s: %s", agreement.id, number, exc)
        abort(500)
    state = {VersionState.signing: "签署中", VersionState.signed: "已签署", VersionState.superseded: "已被取代",
             VersionState.declined: "被拒签", VersionState.withdrawn: "已撤回"}.get(version.state, "")
    return _pdf_response(data, _file_name(version.content["title"], f"{version.label}{state}"))


@bp.route("/agreements/<int:agreement_id>/versions/<int:number>/certificate")
@login_required
def version_certificate(agreement_id, number):
    agreement = _load(agreement_id)
    version = next((v for v in agreement.versions if v.number == number), None)
    if version is None or not version.certificate_path:
        abort(404)
    try:
        data = read_archive_file(version.certificate_path, version.certificate_sha256)
    except ArchiveError as exc:
        current_app.logger.error("agreement %s version %s certificate: %s", agreement.id, number, exc)
        abort(500)
    return _pdf_response(data, _file_name(version.content["title"], f"{version.label}签署完成证明"))


# --- public verification -------------------------------------------------------------------------


def _public_summary(version: AgreementVersion) -> dict:
    """What anyone holding the code may see: no purpose, commitments, liaisons or IPs."""
    agreement = version.agreement
    return {
        "title": version.content["title"],
        "number": version.content.get("number") or "",
        "parties": [p["name"] for p in version.content["parties"]],
        "starts_on": version.content["starts_on"],
        "ends_on": version.content["ends_on"],
        "version": version,
        "signatures": sorted(version.signatures, key=lambda s: s.signed_at),
        "agreement_status": agreement.status,
        "is_current": version.state is VersionState.signed,
    }


@bp.route("/verify", methods=["GET", "POST"])
def verify():
    """Upload a PDF: is it an intact agreement fully signed on this platform, and by whom?"""
    from agreements.signing import verify_pdf

    form = VerifyForm()
    outcome = None
    code_error = None
    if request.method == "GET" and request.args.get("code"):
        code = normalise_verify_code(request.args["code"])
        if code:
            return redirect(url_for("agreements.verify_code", code=code))
        code_error = _("验证码格式不正确（形如 ABCD-EFGH-JKMN）。")
    if form.validate_on_submit():
        limit = current_app.config.get("AGREEMENT_VERIFY_MAX_BYTES", DEFAULT_VERIFY_MAX_BYTES)
        upload = request.files.get("file")
        data = upload.stream.read(limit + 1) if upload is not None and upload.filename else b""
        if not data:
            outcome = {"ok": False, "unchecked": True, "message": _("请选择要验证的 PDF 文件。")}
        elif len(data) > limit:
            outcome = {"ok": False, "unchecked": True,
                       "message": _("文件超过 %(mb)s MB，无法验证。", mb=limit // (1024 * 1024))}
        elif not data.startswith(b"%PDF-"):
            outcome = {"ok": False, "message": _("该文件不是 PDF 文件。")}
        else:
            outcome = _verify_bytes(data, verify_pdf)
        status = 200 if outcome["ok"] else 422
        return render_template("agreements/verify.html", form=form, outcome=outcome, code_error=None), status
    return render_template("agreements/verify.html", form=form, outcome=outcome, code_error=code_error)


def _why_invalid(result) -> str:
    """The first reason, in plain words, why a file is not a valid agreement of this platform."""
    if result.error:
        return _(result.error)  # agreements.signing marks its errors with N_
    if not result.signatures:
        return _("文件中没有电子签名。")
    if any(not (s.intact and s.valid) for s in result.signatures):
        return _("文件在签名之后被改动过（哪怕只改一个字节，签名也会失效）。")
    if any(not s.trusted for s in result.signatures):
        return _("文件中的签名证书不是本平台签发的。")
    if any(not s.modifications_ok for s in result.signatures):
        return _("文件在签名之后被做了不允许的修改。")
    if not result.signatures[-1].covers_whole_document:
        return _("最后一个签名之后，文件又被追加了内容。")
    if not result.sealed:
        return _("文件缺少平台签章，签署流程尚未完成。")
    return _("签名无效。")


def _verify_bytes(data: bytes, verify_pdf) -> dict:
    digest = sha256_hex(data)
    result = verify_pdf(data, pki=platform_pki())
    version, which = version_by_file_hash(digest)
    base = {"sha256": digest, "result": result, "version": version, "which": which}
    if not result.is_fully_valid or not result.sealed:
        return {**base, "ok": False, "message": _why_invalid(result)}
    if version is None:
        # Cryptographically fine but not a file this platform archived as a final document.
        return {**base, "ok": False, "message": _("文件签名完整，但与本平台存档的任何协议文件都不一致。")}
    if which == "certificate":
        return {**base, "ok": True, "summary": _public_summary(version),
                "message": _("这是本平台出具的签署完成证明，内容完整、未被篡改。")}
    if which != "final":
        return {**base, "ok": False, "message": _("这是签署过程中的中间文件，尚未完成全部签署。")}
    if version.state is VersionState.signed:
        message = _("验证通过：这是本平台签发、经各方完整签署的协议，文件未被篡改。")
    else:
        message = _("验证通过：这是本平台签发、经各方完整签署的协议，文件未被篡改（该版本当前状态：%(state)s，请以最新版本为准）。",
                    state=version.state.ui_label)
    return {**base, "ok": True, "summary": _public_summary(version), "message": message}


@bp.route("/verify/platform-root.pem")
def verify_root_certificate():
    """The platform's root certificate, for checking signatures in other software."""
    resp = current_app.response_class(platform_pki().root_cert_pem, mimetype="application/x-pem-file")
    resp.headers["Content-Disposition"] = "attachment; filename=platform-root.pem"
    return resp


@bp.route("/verify/<code>")
def verify_code(code):
    """Reached from the QR code: the public summary of the signed agreement."""
    canonical = normalise_verify_code(code)
    if canonical is None:
        abort(404)
    if canonical != code:
        return redirect(url_for("agreements.verify_code", code=canonical))
    version = version_by_code(canonical)
    if version is None or version.state in (VersionState.draft,):
        abort(404)
    return render_template("agreements/verify_code.html", s=_public_summary(version),
                           root_fingerprint=platform_pki().root_fingerprint)


# --- home panel and profile section --------------------------------------------------------------


def _home_panel_ids(user, today) -> tuple[list, list[int]]:
    """([(agreement id, waiting since)] for this secretary to sign, [ids of visible agreements ending soon])."""
    to_sign = []
    if user.has_role(Role.secretary) and user.organization_id:
        to_sign = [(a.id, since) for a, _org, since in awaiting_signature(user.organization_id)]
    # As the expiry reminder (coop.reminders.rules.rule_expiring): a renewal drafted, being signed or signed
    # answers it.
    renewal = aliased(Agreement)
    renewed = sa.exists().where(renewal.renewed_from_id == Agreement.id, renewal.status.in_(
        [AgreementStatus.draft, AgreementStatus.signing, AgreementStatus.active]))
    expiring = db.session.execute(
        agreements_visible_to(user)
        .where(Agreement.status == AgreementStatus.active, Agreement.ends_on >= today,
               Agreement.ends_on <= today + timedelta(days=EXPIRING_DAYS), ~renewed)
        .order_by(Agreement.ends_on).limit(10)
    ).scalars().all()
    return to_sign, [a.id for a in expiring]


def _agreements_by_ids(ids, *options) -> dict[int, Agreement]:
    if not ids:
        return {}
    return {a.id: a for a in db.session.scalars(sa.select(Agreement).where(Agreement.id.in_(ids)).options(*options))}


def home_panel(user) -> dict | None:
    """Home page: agreements waiting for this secretary's signature, and visible agreements ending soon."""
    if not user.is_authenticated:
        return None
    today = local_today()
    # Issue 10: which agreements (awaiting_signature reads every version being signed, group-wide) is memoised
    # per data generation; a visit loads only the agreements shown.
    to_sign_ids, expiring_ids = home_memo(user, today, "agreements.home", lambda: _home_panel_ids(user, today))
    if not to_sign_ids and not expiring_ids:
        return None
    signing = _agreements_by_ids({i for i, _since in to_sign_ids},
                                 selectinload(Agreement.parties).joinedload(AgreementParty.organization))
    ending = _agreements_by_ids(expiring_ids)
    return {"order": 10, "template": "agreements/_home_panel.html",
            "to_sign": [(signing[i], since) for i, since in to_sign_ids if i in signing],
            "expiring": [ending[i] for i in expiring_ids if i in ending], "today": today}


HOME_PANELS.append(home_panel)


def _signer_key_rows(user):
    return db.session.execute(
        sa.select(SignerKey).where(SignerKey.user_id == user.id).order_by(SignerKey.id.desc()).limit(5)
    ).scalars().all()


PROFILE_SECTIONS.append("agreements/_profile_keys.html")


@bp.context_processor
def _agreement_screen_helpers():
    """Only the agreement pages: 甲方/乙方 labels and stored reasons in the interface language."""
    return {"ui_party_label": ui_party_label, "ui_reason": ui_reason}


@bp.app_context_processor
def _agreement_helpers():
    return {"agreement_signer_keys": _signer_key_rows}
