"""The life of an agreement: draft, edit, sign, decline, activate, expire, terminate, renew, amend.

Every function changes models, flushes and writes the audit log — and never commits, so views, the
scheduler, the CLI and tests call them alike. Refusals raise AgreementError subclasses (or
IllegalTransition for a move the lifecycle does not allow) with a message for people in the interface
language (gettext: Chinese outside a request). Audit summaries, close reasons and PDF texts stay Chinese.

Who may edit a draft (the "drafters"): the person who created it, the secretary of any party (who
will sign it, so may as well fix a typo instead of declining), and a committee reviewer whose
subtree contains a party. Admins run the platform but do not write agreements. The same people may
renew or amend an agreement; only a party's own secretary signs, declines or terminates for it.
"""
from __future__ import annotations

import logging
from datetime import date

import sqlalchemy as sa
from flask_babel import gettext as _

from agreements import permissions as perms
from agreements.content import (
    AgreementContent,
    AgreementInvalid,
    apply_content,
    content_digest,
    content_from_json,
    content_of,
    default_liaisons,
    describe_changes,
    party_secretaries,
    snapshot,
    validate_content,
)
from agreements.document import party_label
from agreements.models import (
    Agreement,
    AgreementError,
    AgreementSignature,
    AgreementStatus,
    AgreementVersion,
    TRANSITIONS,
    IllegalTransition,
    VersionKind,
    VersionState,
)
from agreements.presets import one_year_from
from agreements.signatures import (
    discard_signer_keys,
    key_material,
    new_verify_code,
    on_password_change,
    platform_pki,
    read_archive_file,
    render_snapshot_pdf,
    signer_key_for,
    store_archive_file,
    verify_url_for,
)
from coop.audit.operations import record
from coop.auth.models import User
from coop.auth.operations import password_change_hooks
from coop.auth.passwords import verify_password
from coop.db import now_utc
from coop.extensions import db
from coop.formatting import local_today
from coop.i18n import N_
from coop.orgs.models import Organization

logger = logging.getLogger(__name__)

__all__ = [
    "AgreementError", "AgreementInvalid", "IllegalTransition", "NotAllowed", "WrongPassword",
    "create_draft", "update_draft", "submit_for_signing", "recall_signing", "sign_agreement",
    "decline_signing", "terminate_agreement", "expire_due_agreements", "renew_agreement",
    "start_amendment", "update_amendment", "submit_amendment", "withdraw_amendment",
]

MAX_REASON = 500

# Reasons the platform writes itself into close_reason / end_reason: stored in Chinese like every stored
# text; screens show them in the interface language (agreements.views.ui_reason).
RECALLED, AMENDMENT_WITHDRAWN = N_("撤回修改"), N_("撤回修订")
TERMINATED, EXPIRED = N_("协议终止"), N_("协议期满")
SUPERSEDED = N_("被第%(n)s版修订取代")
SYSTEM_REASONS = (RECALLED, AMENDMENT_WITHDRAWN, TERMINATED, EXPIRED)

# Signer keys follow their owner's password (re-wrapped on change, discarded on admin reset).
if on_password_change not in password_change_hooks:
    password_change_hooks.append(on_password_change)


class NotAllowed(AgreementError):
    """The person may not do this to this agreement."""


class WrongPassword(AgreementError):
    """The password typed to confirm a signature is not the signer's."""


# --- helpers -------------------------------------------------------------------------------------


def _audit(kind: str, summary: str, agreement: Agreement, actor: User | None, detail: dict | None = None):
    # An agreement spans organizations; file the entry under the actor's party when there is one,
    # so that party's reviewers see it, else under the first party.
    org_id = None
    if actor is not None and actor.organization_id in agreement.party_org_ids:
        org_id = actor.organization_id
    elif agreement.parties:
        org_id = agreement.parties[0].organization_id
    return record(kind, summary, actor=actor, organization_id=org_id, target=agreement, detail=detail)


def _require(allowed: bool, message: str) -> None:
    if not allowed:
        raise NotAllowed(message)


def _illegal(agreement: Agreement, message: str) -> IllegalTransition:
    """`message` (marked with N_) says what cannot be done; %(status)s is the agreement's status."""
    return IllegalTransition(_(message, status=agreement.status.ui_label))


def _reason(text: str | None, missing: str, too_long: str) -> str:
    """The reason typed, or a refusal: `missing` / `too_long` (%(n)s: the limit) are marked with N_."""
    text = (text or "").strip()
    if not text:
        raise AgreementInvalid(_(missing))
    if len(text) > MAX_REASON:
        raise AgreementInvalid(_(too_long, n=MAX_REASON))
    return text


def _org(org_id: int) -> Organization:
    return db.session.get(Organization, org_id)


def _with_default_liaisons(content: AgreementContent) -> AgreementContent:
    """Parties the drafter named no liaisons for get their organization's liaison-role users."""
    content = content.copy()
    for org_id in content.party_ids:
        if org_id not in content.liaisons:
            content.liaisons[org_id] = default_liaisons(org_id)
    return content


def _check_signable(content: AgreementContent) -> None:
    """Refuse to send for signing what nobody could sign or what is already over."""
    if content.ends_on < local_today():
        raise AgreementInvalid(_("协议期限已过，请修改起止日期后再提交签署。"))
    for org_id in content.party_ids:
        if not party_secretaries(org_id):
            raise AgreementInvalid(_("“%(org)s”还没有书记账号，无法签署。请先由管理员为其添加书记。", org=_org(org_id).name))


def _next_version_number(agreement: Agreement) -> int:
    return max((v.number for v in agreement.versions), default=0) + 1


def _freeze(version: AgreementVersion, content: AgreementContent, actor: User | None) -> None:
    """Freeze content into the version and render its unsigned PDF (the text every party signs)."""
    data = snapshot(content)
    version.content = data
    version.content_sha256 = content_digest(data)
    version.verify_code = new_verify_code()
    pdf, boxes = render_snapshot_pdf(data, verify_code=version.verify_code, version_label=version.label)
    relative, digest = store_archive_file(version.agreement_id, f"v{version.number}-0-unsigned", pdf)
    version.pdf_path, version.unsigned_sha256, version.pdf_sha256 = relative, digest, digest
    version.signature_boxes = boxes
    version.state = VersionState.signing
    version.submitted_at, version.submitted_by_id = now_utc(), actor.id if actor else None


def _close(version: AgreementVersion, state: VersionState, actor: User | None, reason: str | None = None) -> None:
    version.state = state
    version.closed_at = now_utc()
    version.closed_by_id = actor.id if actor else None
    if reason:
        version.close_reason = reason


# --- drafts --------------------------------------------------------------------------------------


def create_draft(content: AgreementContent, *, actor: User, template_code: str | None = None) -> Agreement:
    """Create a draft agreement; the actor must be allowed to draft for one of the parties."""
    _require(perms.may_draft_for(actor, content.party_ids),
             _("您只能为本组织（或您负责范围内的组织）起草共建协议。"))
    content = _with_default_liaisons(content)
    validate_content(content)
    agreement = Agreement(status=AgreementStatus.draft, created_by_id=actor.id, template_code=template_code,
                          title=content.title, starts_on=content.starts_on, ends_on=content.ends_on)
    apply_content(agreement, content)
    db.session.add(agreement)
    db.session.flush()
    _audit("agreement.draft", f"起草协议《{agreement.title}》", agreement, actor,
           {"template": template_code, "parties": content.party_ids})
    return agreement


def update_draft(agreement: Agreement, content: AgreementContent, *, actor: User) -> Agreement:
    """Change a draft's content (drafters only)."""
    if agreement.status is not AgreementStatus.draft:
        raise _illegal(agreement, N_("协议当前状态为“%(status)s”，不能直接修改（已签署的协议请发起修订）。"))
    _require(perms.is_drafter(actor, agreement), _("只有协议起草人、共建方书记或上级党委审阅人可以修改草稿。"))
    # Editing must not take the draft out of the editor's own reach (e.g. a secretary dropping their organization).
    _require(perms.may_draft_for(actor, content.party_ids),
             _("修改后的共建方中须包含您的组织（或您负责范围内的组织）。"))
    content = _with_default_liaisons(content)
    validate_content(content)
    before = content_of(agreement)
    apply_content(agreement, content)
    db.session.flush()
    _audit("agreement.edit", f"修改协议草稿《{agreement.title}》", agreement, actor,
           {"changed": describe_changes(before, content)})
    return agreement


def submit_for_signing(agreement: Agreement, *, actor: User) -> AgreementVersion:
    """Freeze the draft into a new version, render its PDF and open it for the parties' signatures."""
    if agreement.status is not AgreementStatus.draft:
        raise _illegal(agreement, N_("协议当前状态为“%(status)s”，不能提交签署。"))
    _require(perms.is_drafter(actor, agreement), _("只有协议起草人、共建方书记或上级党委审阅人可以提交签署。"))
    content = content_of(agreement)
    validate_content(content)
    _check_signable(content)
    agreement.move_to(AgreementStatus.signing)
    version = AgreementVersion(agreement=agreement, number=_next_version_number(agreement),
                               kind=VersionKind.original, state=VersionState.draft, created_by_id=actor.id)
    db.session.add(version)
    db.session.flush()
    _freeze(version, content, actor)
    db.session.flush()
    _audit("agreement.submit", f"提交协议《{agreement.title}》签署（{version.label}）", agreement, actor,
           {"version": version.number, "sha256": version.unsigned_sha256,
            "signing_order_fixed": content.signing_order_fixed})
    return version


def recall_signing(agreement: Agreement, *, actor: User, reason: str | None = None) -> Agreement:
    """Take an agreement back from signing to draft (drafters), e.g. to fix a mistake before everyone signs."""
    if agreement.status is not AgreementStatus.signing:
        raise _illegal(agreement, N_("协议当前状态为“%(status)s”，不能撤回修改。"))
    _require(perms.is_drafter(actor, agreement), _("只有协议起草人、共建方书记或上级党委审阅人可以撤回。"))
    version = agreement.signing_version
    agreement.move_to(AgreementStatus.draft)
    if version is not None:
        _close(version, VersionState.withdrawn, actor, (reason or "").strip() or RECALLED)
    db.session.flush()
    _audit("agreement.recall", f"撤回协议《{agreement.title}》，退回草稿", agreement, actor,
           {"version": version.number if version else None, "reason": reason})
    return agreement


# --- signing -------------------------------------------------------------------------------------


def _locked_signing_version(agreement: Agreement) -> AgreementVersion:
    version = agreement.signing_version
    if version is None:
        raise _illegal(agreement, N_("协议当前状态为“%(status)s”，不能签署。"))
    # Two parties signing at the same moment must not both append to the same file: lock the row
    # (PostgreSQL; SQLite write transactions are already serialised by BEGIN IMMEDIATE).
    db.session.execute(sa.select(AgreementVersion.id).where(AgreementVersion.id == version.id).with_for_update())
    db.session.refresh(version)
    if version.state is not VersionState.signing:
        raise _illegal(agreement, N_("协议当前状态为“%(status)s”，不能签署。"))
    return version


def _acting_party(actor: User, version: AgreementVersion) -> int:
    """The party the actor signs or declines for; refuses anyone who is not its secretary."""
    _require(perms.is_secretary_of_party(actor, version.party_org_ids),
             _("只有共建方的书记本人可以代表本组织签署或拒签。"))
    return actor.organization_id


def sign_agreement(agreement: Agreement, *, actor: User, password: str, ip: str | None) -> AgreementSignature:
    """The actor signs the version being signed for their party, re-confirming with their password.

    Records signer, time, IP and the document's SHA-256 before and after. When the last party has
    signed, the platform seals the PDF, issues the completion record and the version takes effect.
    """
    from agreements.pki import WrongSignerPassword
    from agreements.signing import SigningError, default_appearance_lines, sign_pdf

    version = _locked_signing_version(agreement)
    org_id = _acting_party(actor, version)
    if org_id in version.signed_org_ids:
        raise AgreementError(_("贵方已签署本协议，无需重复签署。"))
    if org_id not in version.next_signer_org_ids():
        first = version.next_signer_org_ids()[0]
        raise NotAllowed(_("本协议按顺序签署，请等待“%(org)s”先签署。", org=_org(first).name))
    if not password or not verify_password(actor.password_hash, password):
        raise WrongPassword(_("密码不正确，未签署。"))

    org = _org(org_id)
    index = version.party_org_ids.index(org_id)
    page, *box = version.signature_boxes[index]
    before = read_archive_file(version.pdf_path, version.pdf_sha256)
    when = now_utc()
    label = party_label(index)

    def sign_with(key_row):
        return sign_pdf(
            before, key_material(key_row), password, pki=platform_pki(), field_name=f"party-{index + 1}",
            page=page, box=tuple(box), appearance_lines=default_appearance_lines(actor.display_name, org.name, when),
            reason=f"{label}书记签署《{version.content['title']}》", location="党建共建平台",
        )

    key_row = signer_key_for(actor, org.name, password)
    try:
        try:
            after = sign_with(key_row)
        except WrongSignerPassword:
            # The login password is right but the key was wrapped under another one (a password set
            # outside the hooks): that key can never be opened again, so replace it.
            discard_signer_keys(actor, "密钥与登录密码不一致，重新签发")
            key_row = signer_key_for(actor, org.name, password)
            after = sign_with(key_row)
    except SigningError as exc:
        raise AgreementError(_(str(exc))) from exc  # signing.py marks its messages with N_

    relative, digest = store_archive_file(agreement.id, f"v{version.number}-{len(version.signatures) + 1}-{label}", after)
    signature = AgreementSignature(
        version=version, organization_id=org_id, signer_id=actor.id, signer_name=actor.display_name,
        signer_title=actor.title, organization_name=org.name, signed_at=when, ip=ip,
        field_name=f"party-{index + 1}", sha256_before=version.pdf_sha256, sha256_after=digest,
        certificate_serial=key_row.serial, certificate_sha256=key_row.fingerprint_sha256,
    )
    db.session.add(signature)
    version.pdf_path, version.pdf_sha256 = relative, digest
    db.session.flush()
    _audit("agreement.sign", f"{actor.display_name} 代表“{org.name}”签署《{version.content['title']}》（{version.label}）",
           agreement, actor, {"version": version.number, "organization_id": org_id, "ip": ip,
                              "sha256_before": signature.sha256_before, "sha256_after": digest,
                              "certificate_serial": key_row.serial})
    if not version.unsigned_org_ids():
        _complete(agreement, version, actor)
    return signature


def _complete(agreement: Agreement, version: AgreementVersion, actor: User | None) -> None:
    """Seal the fully signed PDF, issue the completion record and put the version in force."""
    from agreements.signing import completion_certificate_pdf, seal_pdf

    pki = platform_pki()
    signed = read_archive_file(version.pdf_path, version.pdf_sha256)
    sealed = seal_pdf(signed, pki=pki)
    relative, final = store_archive_file(agreement.id, f"v{version.number}-final", sealed)
    version.pdf_path, version.pdf_sha256, version.final_sha256 = relative, final, final

    index = {org_id: i for i, org_id in enumerate(version.party_org_ids)}
    events = [
        {
            "role": f"{party_label(index[s.organization_id])}书记",
            "signer_name": s.signer_name,
            "organization": s.organization_name,
            "signed_at": s.signed_at,
            "ip": s.ip or "",
            "document_sha256": s.sha256_after,
            "certificate_serial": s.certificate_serial or "",
        }
        for s in sorted(version.signatures, key=lambda s: s.signed_at)
    ]
    certificate = completion_certificate_pdf(
        events, agreement_title=version.content["title"], document_sha256=final,
        verify_url=verify_url_for(version.verify_code), pki=pki,
        agreement_number=version.content.get("number") or "",
    )
    version.certificate_path, version.certificate_sha256 = store_archive_file(
        agreement.id, f"v{version.number}-certificate", certificate)

    previous = agreement.current_version
    version.state = VersionState.signed
    version.completed_at = now_utc()
    if version.kind is VersionKind.original:
        agreement.move_to(AgreementStatus.active)
        agreement.activated_at = version.completed_at
        kind, summary = "agreement.activate", f"协议《{agreement.title}》各方签署完成，正式生效"
    else:
        if previous is not None:
            _close(previous, VersionState.superseded, actor, SUPERSEDED % {"n": version.number})
        # Only now does the amended text become what activities and reports count against.
        apply_content(agreement, content_from_json(version.content))
        kind, summary = "agreement.amendment_active", f"协议《{agreement.title}》修订（{version.label}）各方签署完成，正式生效"
    db.session.flush()
    _audit(kind, summary, agreement, actor, {"version": version.number, "final_sha256": final,
                                             "certificate_sha256": version.certificate_sha256})


def decline_signing(agreement: Agreement, *, actor: User, reason: str) -> AgreementVersion:
    """A party's secretary declines with a reason: the text goes back to draft for editing."""
    version = _locked_signing_version(agreement) if agreement.signing_version else None
    if version is None:
        raise _illegal(agreement, N_("协议当前状态为“%(status)s”，不能拒签。"))
    org_id = _acting_party(actor, version)
    if org_id in version.signed_org_ids:
        raise AgreementError(_("贵方已签署本协议，不能再拒签；如有异议请与其他共建方协商修订或终止。"))
    reason = _reason(reason, N_("请填写拒签理由。"), N_("拒签理由最长 %(n)s 个字符。"))
    _close(version, VersionState.declined, actor, reason)
    version.declined_org_id = org_id
    if version.kind is VersionKind.original:
        agreement.move_to(AgreementStatus.draft)
    else:
        # The amendment returns to draft as a fresh version; the declined one stays as history.
        db.session.add(AgreementVersion(
            agreement=agreement, number=_next_version_number(agreement), kind=VersionKind.amendment,
            state=VersionState.draft, content=dict(version.content), note=version.note, created_by_id=actor.id,
        ))
    db.session.flush()
    _audit("agreement.decline", f"“{_org(org_id).name}”拒签《{version.content['title']}》：{reason}", agreement, actor,
           {"version": version.number, "organization_id": org_id, "reason": reason})
    return version


# --- end of life ---------------------------------------------------------------------------------


def terminate_agreement(agreement: Agreement, *, actor: User, reason: str) -> Agreement:
    """End an agreement early with a reason (a party's secretary; drafters may also abandon a draft)."""
    if AgreementStatus.terminated not in TRANSITIONS[agreement.status]:
        raise _illegal(agreement, N_("协议当前状态为“%(status)s”，不能终止。"))
    _require(perms.can_terminate(actor, agreement), _("只有共建方的书记可以终止协议。"))
    reason = _reason(reason, N_("请填写终止理由。"), N_("终止理由最长 %(n)s 个字符。"))
    pending = agreement.pending_version
    if pending is not None:
        _close(pending, VersionState.withdrawn, actor, TERMINATED)
    agreement.move_to(AgreementStatus.terminated)
    agreement.ended_at, agreement.ended_by_id, agreement.end_reason = now_utc(), actor.id, reason
    db.session.flush()
    _audit("agreement.terminate", f"终止协议《{agreement.title}》：{reason}", agreement, actor, {"reason": reason})
    return agreement


def expire_due_agreements(today: date | None = None) -> list[Agreement]:
    """Mark active agreements whose term ended before `today` (local date) as expired; returns them.

    Idempotent; called by the scheduler's daily job and `flask agreements expire`.
    """
    today = today or local_today()
    due = db.session.execute(
        sa.select(Agreement).where(Agreement.status == AgreementStatus.active, Agreement.ends_on < today)
        .order_by(Agreement.id)
    ).scalars().all()
    for agreement in due:
        pending = agreement.pending_version
        if pending is not None:
            _close(pending, VersionState.withdrawn, None, EXPIRED)
        agreement.move_to(AgreementStatus.expired)
        agreement.ended_at, agreement.end_reason = now_utc(), EXPIRED
        db.session.flush()
        _audit("agreement.expire", f"协议《{agreement.title}》期满", agreement, None,
               {"ends_on": agreement.ends_on.isoformat(), "today": today.isoformat()})
    return due


def renewal_of(agreement: Agreement) -> Agreement | None:
    """The live (not terminated) agreement renewing this one, if any."""
    return db.session.execute(
        sa.select(Agreement).where(Agreement.renewed_from_id == agreement.id,
                                   Agreement.status != AgreementStatus.terminated)
        .order_by(Agreement.id.desc()).limit(1)
    ).scalar_one_or_none()


def renew_agreement(agreement: Agreement, *, actor: User) -> Agreement:
    """Start the next term: a new draft linked to this one, with parties, commitments and liaisons carried over."""
    if agreement.status not in (AgreementStatus.active, AgreementStatus.expired):
        raise _illegal(agreement, N_("协议当前状态为“%(status)s”，不能续签（只有生效中或已到期的协议可以续签）。"))
    _require(perms.is_drafter(actor, agreement), _("只有共建方书记或上级党委审阅人可以发起续签。"))
    existing = renewal_of(agreement)
    if existing is not None:
        raise AgreementError(_("该协议已发起续签：《%(title)s》（%(status)s）。", title=existing.title,
                               status=existing.status.ui_label))
    content = content_of(agreement)
    active_orgs = {o.id for o in db.session.execute(
        sa.select(Organization).where(Organization.id.in_(content.party_ids), Organization.is_active.is_(True))).scalars()}
    content.party_ids = [o for o in content.party_ids if o in active_orgs]
    if len(content.party_ids) < 2:
        raise AgreementInvalid(_("部分共建方已停用，无法续签；请新建协议。"))
    # Carry over liaisons who are still active members of their party; the drafter edits the rest.
    users = {u.id: u for u in db.session.execute(
        sa.select(User).where(User.id.in_([u for us in content.liaisons.values() for u in us] or [0]))).scalars()}
    content.liaisons = {
        org_id: [u for u in uids if u in users and users[u].is_active and users[u].organization_id == org_id]
        for org_id, uids in content.liaisons.items() if org_id in content.party_ids
    }
    for org_id in content.party_ids:
        content.liaisons.setdefault(org_id, [])
    length = agreement.ends_on - agreement.starts_on
    content.starts_on = agreement.ends_on.fromordinal(agreement.ends_on.toordinal() + 1)
    content.ends_on = one_year_from(content.starts_on) if length.days >= 364 else content.starts_on + length
    content.number = None
    validate_content(content)
    renewal = Agreement(status=AgreementStatus.draft, created_by_id=actor.id, renewed_from_id=agreement.id,
                        template_code=agreement.template_code, title=content.title,
                        starts_on=content.starts_on, ends_on=content.ends_on)
    apply_content(renewal, content)
    db.session.add(renewal)
    db.session.flush()
    _audit("agreement.renew", f"发起续签《{agreement.title}》", agreement, actor, {"renewal_id": renewal.id})
    _audit("agreement.draft", f"续签起草协议《{renewal.title}》", renewal, actor, {"renewed_from_id": agreement.id})
    return renewal


# --- amendments ----------------------------------------------------------------------------------


def start_amendment(agreement: Agreement, *, actor: User, note: str | None = None) -> AgreementVersion:
    """Open an amendment of an active agreement: a draft version holding a copy of the text in force."""
    if agreement.status is not AgreementStatus.active:
        raise _illegal(agreement, N_("协议当前状态为“%(status)s”，不能修订（只有生效中的协议可以修订）。"))
    _require(perms.is_drafter(actor, agreement), _("只有共建方书记或上级党委审阅人可以发起修订。"))
    if agreement.pending_version is not None:
        raise AgreementError(_("该协议已有一份修订正在进行，请先完成或撤回。"))
    version = AgreementVersion(
        agreement=agreement, number=_next_version_number(agreement), kind=VersionKind.amendment,
        state=VersionState.draft, content=snapshot(content_of(agreement)), note=(note or "").strip() or None,
        created_by_id=actor.id,
    )
    db.session.add(version)
    db.session.flush()
    _audit("agreement.amend", f"发起修订《{agreement.title}》（{version.label}）", agreement, actor,
           {"version": version.number, "note": version.note})
    return version


def _amendment(agreement: Agreement, state: VersionState, refusal: str) -> AgreementVersion:
    """The amendment in `state`, else IllegalTransition(`refusal`, a message marked with N_)."""
    version = agreement.pending_version
    if version is None or version.kind is not VersionKind.amendment or version.state is not state:
        raise IllegalTransition(_(refusal))
    return version


def update_amendment(agreement: Agreement, content: AgreementContent, *, actor: User, note: str | None = None) -> AgreementVersion:
    """Edit the amendment draft's text (the parties stay the same; a new party means a new agreement)."""
    version = _amendment(agreement, VersionState.draft, N_("该协议没有待编辑的修订，不能修改。"))
    _require(perms.is_drafter(actor, agreement), _("只有共建方书记或上级党委审阅人可以修改修订稿。"))
    if list(content.party_ids) != version.party_org_ids:
        raise AgreementInvalid(_("修订不能更改共建方；如需增减共建方，请另行签订协议。"))
    content = _with_default_liaisons(content)
    validate_content(content)
    before = content_from_json(version.content)
    version.content = snapshot(content)
    if note is not None:
        version.note = note.strip() or None
    db.session.flush()
    _audit("agreement.amend_edit", f"修改协议《{agreement.title}》的修订稿（{version.label}）", agreement, actor,
           {"version": version.number, "changed": describe_changes(before, content)})
    return version


def submit_amendment(agreement: Agreement, *, actor: User) -> AgreementVersion:
    """Freeze the amendment and open it for signing; the text in force keeps counting meanwhile."""
    version = _amendment(agreement, VersionState.draft, N_("该协议没有待编辑的修订，不能提交签署。"))
    _require(perms.is_drafter(actor, agreement), _("只有共建方书记或上级党委审阅人可以提交修订签署。"))
    content = content_from_json(version.content)
    validate_content(content)
    _check_signable(content)
    if version.content == (agreement.current_version.content if agreement.current_version else None):
        raise AgreementInvalid(_("修订稿与现行文本完全相同，无需签署。"))
    _freeze(version, content, actor)
    db.session.flush()
    _audit("agreement.submit", f"提交协议《{agreement.title}》的修订签署（{version.label}）", agreement, actor,
           {"version": version.number, "sha256": version.unsigned_sha256})
    return version


def withdraw_amendment(agreement: Agreement, *, actor: User, reason: str | None = None) -> AgreementVersion:
    """Abandon the amendment in progress (draft or signing); the text in force is untouched."""
    version = agreement.pending_version
    if version is None or version.kind is not VersionKind.amendment:
        raise IllegalTransition(_("该协议没有进行中的修订，不能撤回。"))
    _require(perms.is_drafter(actor, agreement), _("只有共建方书记或上级党委审阅人可以撤回修订。"))
    _close(version, VersionState.withdrawn, actor, (reason or "").strip() or AMENDMENT_WITHDRAWN)
    db.session.flush()
    _audit("agreement.amend_withdraw", f"撤回协议《{agreement.title}》的修订（{version.label}）", agreement, actor,
           {"version": version.number, "reason": reason})
    return version
