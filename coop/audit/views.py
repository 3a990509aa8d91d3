"""The audit log screen: admins see everything, committee reviewers their subtree."""
from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, render_template, request
from flask_login import current_user, login_required

from coop.audit.models import AuditEntry
from coop.auth.permissions import can_read_audit, committee_scope_root, require
from coop.extensions import db
from coop.forms import clean_text
from coop.i18n import N_
from coop.orgs.models import Organization
from coop.web import add_nav, page_arg

bp = Blueprint("audit", __name__, url_prefix="/audit")

add_nav("audit.index", N_("审计日志"), can_read_audit, order=90)


def visible_audit_entries(user):
    """A select of the audit entries `user` may read, newest first."""
    stmt = sa.select(AuditEntry).order_by(AuditEntry.id.desc())
    if not user.is_admin:
        root = committee_scope_root(user)
        stmt = stmt.join(Organization, Organization.id == AuditEntry.organization_id).where(
            Organization.path.startswith(root.path)
        )
    return stmt


@bp.route("/")
@login_required
def index():
    require(can_read_audit(current_user))
    stmt = visible_audit_entries(current_user)
    kind = clean_text(request.args.get("kind") or "")  # no NUL: PostgreSQL refuses it in a parameter
    if kind:
        stmt = stmt.where(AuditEntry.kind.startswith(kind, autoescape=True))
    q = clean_text(request.args.get("q") or "")
    if q:
        stmt = stmt.where(AuditEntry.summary.contains(q, autoescape=True))
    page = page_arg()
    pagination = db.paginate(stmt, page=page, per_page=50, error_out=False, count=True)
    return render_template("audit/index.html", pagination=pagination, kind=kind, q=q)
