"""Organization tree screens: browse, create, edit, move, deactivate, brand logo."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from coop.auth.permissions import (
    can_create_organizations,
    can_manage_organization,
    can_view_organization,
    committee_scope_root,
    may_place_under,
    get_or_404,
    require,
)
from coop.extensions import db
from coop.formatting import ui_indent
from coop.forms import clean_text
from coop.i18n import N_
from coop.orgs import operations as ops
from coop.orgs.forms import LogoForm, OrganizationForm
from coop.orgs.models import Organization
from coop.web import add_nav

bp = Blueprint("orgs", __name__, url_prefix="/orgs")

add_nav("orgs.index", N_("组织"), lambda u: True, order=60)


def _parent_choices(user, exclude: Organization | None = None):
    stmt = sa.select(Organization).where(Organization.is_active.is_(True)).order_by(Organization.path)
    root = None if user.is_admin else committee_scope_root(user)
    if root is not None:
        stmt = stmt.where(Organization.path.startswith(root.path))
    choices = [] if root is not None else [("", _("（顶级组织）"))]
    for o in db.session.execute(stmt).scalars():
        if exclude is not None and o.is_within(exclude):
            continue
        choices.append((str(o.id), ui_indent(o.depth) + o.name))
    return choices


@bp.route("/")
@login_required
def index():
    show_inactive = request.args.get("inactive") == "1"
    stmt = sa.select(Organization).order_by(Organization.path)
    if not show_inactive:
        stmt = stmt.where(Organization.is_active.is_(True))
    q = clean_text(request.args.get("q") or "")  # no NUL: PostgreSQL refuses it in a parameter
    if q:
        stmt = stmt.where(Organization.name.contains(q, autoescape=True))
    orgs = db.session.execute(stmt).scalars().all()
    return render_template(
        "orgs/index.html", orgs=orgs, q=q, show_inactive=show_inactive,
        can_create=can_create_organizations(current_user),
    )


@bp.route("/<int:org_id>")
@login_required
def detail(org_id):
    org = get_or_404(Organization, org_id)
    require(can_view_organization(current_user, org))
    can_manage = can_manage_organization(current_user, org)
    live_agreements = _live_agreement_count(org) if can_manage and org.is_active else 0
    above = org.ancestor_ids[:-1]
    names = dict(db.session.execute(sa.select(Organization.id, Organization.name).where(Organization.id.in_(above))).all())
    return render_template(
        "orgs/detail.html", org=org, can_manage=can_manage, live_agreements=live_agreements,
        logo_form=LogoForm(), detail_sections=DETAIL_SECTIONS,
        ancestors=[(i, names[i]) for i in above if i in names],
    )


def _live_agreement_count(org: Organization) -> int:
    """Agreements this organization is a party to that are being signed or in force (deactivating it stops its
    secretary from signing: the manager is told before confirming)."""
    from agreements.models import Agreement, AgreementParty, AgreementStatus

    return db.session.scalar(
        sa.select(sa.func.count(sa.distinct(Agreement.id)))
        .join(AgreementParty, AgreementParty.agreement_id == Agreement.id)
        .where(AgreementParty.organization_id == org.id,
               Agreement.status.in_([AgreementStatus.signing, AgreementStatus.active]))
    ) or 0


# Other domains add sections to an organization's page: template names rendered with `org`.
DETAIL_SECTIONS: list[str] = []


def _form_fields(form: OrganizationForm) -> dict:
    return {
        "name": form.name.data, "short_name": form.short_name.data, "kind": form.kind.enum_value,
        "relation": form.relation.enum_value, "region": form.region.data,
        "contact_name": form.contact_name.data, "contact_phone": form.contact_phone.data,
        "contact_email": form.contact_email.data, "brand_name": form.brand_name.data,
        "brand_slogan": form.brand_slogan.data,
    }


def _chosen_parent(form) -> Organization | None:
    value = form.parent_id.data
    return db.session.get(Organization, int(value)) if value else None


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    require(can_create_organizations(current_user))
    form = OrganizationForm()
    form.parent_id.choices = _parent_choices(current_user)
    if request.method == "GET" and request.args.get("parent"):
        form.parent_id.data = request.args.get("parent")
    if form.validate_on_submit():
        parent = _chosen_parent(form)
        if not may_place_under(current_user, parent):
            form.parent_id.errors.append(_("只能在您负责的组织范围内新建组织。"))
        else:
            try:
                org = ops.create_organization(actor=current_user, parent=parent, **_form_fields(form))
            except ops.OrgInvalid as exc:
                db.session.rollback()
                form.name.errors.append(str(exc))
            else:
                db.session.commit()
                flash(_("组织“%(name)s”已创建。", name=org.name), "success")
                return redirect(url_for("orgs.detail", org_id=org.id))
    return render_template("orgs/form.html", form=form, org=None)


@bp.route("/<int:org_id>/edit", methods=["GET", "POST"])
@login_required
def edit(org_id):
    org = get_or_404(Organization, org_id)
    require(can_manage_organization(current_user, org))
    form = OrganizationForm(obj=org)
    form.parent_id.choices = _parent_choices(current_user, exclude=org)
    if request.method == "GET":
        form.parent_id.data = str(org.parent_id or "")
    if form.validate_on_submit():
        parent = _chosen_parent(form)
        if parent is None and not current_user.is_admin:
            form.parent_id.errors.append(_("只有管理员可以设置顶级组织。"))
        elif not may_place_under(current_user, parent):
            form.parent_id.errors.append(_("只能移动到您负责的组织范围内。"))
        else:
            try:
                ops.update_organization(org, actor=current_user, **_form_fields(form))
                ops.move_organization(org, parent, actor=current_user)
            except ops.OrgInvalid as exc:
                db.session.rollback()
                form.name.errors.append(str(exc))
            else:
                db.session.commit()
                flash(_("组织信息已保存。"), "success")
                return redirect(url_for("orgs.detail", org_id=org.id))
    return render_template("orgs/form.html", form=form, org=org)


@bp.route("/<int:org_id>/active", methods=["POST"])
@login_required
def set_active(org_id):
    org = get_or_404(Organization, org_id)
    require(can_manage_organization(current_user, org))
    active = request.form.get("active") == "1"
    try:
        ops.set_organization_active(org, active, actor=current_user)
    except ops.OrgInvalid as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(_("组织已启用。") if active else _("组织已停用（历史记录保留）。"), "success")
    return redirect(url_for("orgs.detail", org_id=org.id))


@bp.route("/<int:org_id>/logo", methods=["POST"])
@login_required
def upload_logo(org_id):
    from pathlib import Path

    from coop.uploads import UploadRejected, delete_stored, inspect_upload, store_upload

    org = get_or_404(Organization, org_id)
    require(can_manage_organization(current_user, org))
    form = LogoForm()
    file = request.files.get("logo")
    if not form.validate_on_submit() or file is None or not file.filename:
        flash(_("请选择一张图片。"), "error")
        return redirect(url_for("orgs.detail", org_id=org.id))
    root = Path(current_app.config["UPLOAD_DIR"])
    try:
        checked = inspect_upload(file.read(), file.filename, max_bytes=2 * 1024 * 1024)
        if checked.kind != "image":
            raise UploadRejected(_("品牌标识只能是图片（JPEG、PNG 或 WebP）。"))
    except UploadRejected as exc:
        flash(str(exc), "error")
        return redirect(url_for("orgs.detail", org_id=org.id))
    stored = store_upload(root, checked)
    try:
        ops.set_organization_logo(org, stored.relative_path, actor=current_user)
        db.session.commit()
    except Exception:
        db.session.rollback()
        delete_stored(root, stored.relative_path)
        if stored.thumb_relative_path:
            delete_stored(root, stored.thumb_relative_path)
        raise
    flash(_("品牌标识已更新。"), "success")
    return redirect(url_for("orgs.detail", org_id=org.id))


@bp.route("/<int:org_id>/logo")
@login_required
def logo(org_id):
    from pathlib import Path

    from coop.uploads import resolve_stored

    org = get_or_404(Organization, org_id)
    require(can_view_organization(current_user, org))
    if not org.brand_logo_path:
        return ("", 404)
    path = resolve_stored(Path(current_app.config["UPLOAD_DIR"]), org.brand_logo_path)
    return send_file(path, max_age=3600)
