"""Who may see or change what — the organization-scope predicates every domain builds on.

Domain packages add their own predicates (e.g. agreements/permissions.py) on top of these; views use
`get_or_404` + `require` so a missing check is easy to spot in review.
"""
from __future__ import annotations

from functools import wraps
from typing import TypeVar

import sqlalchemy as sa
from flask import abort
from flask_login import current_user

from coop.auth.models import Role, User
from coop.extensions import db
from coop.orgs.models import Organization

T = TypeVar("T")


def get_or_404(model: type[T], ident) -> T:
    """Load a row by primary key or answer 404."""
    try:
        ident = int(ident)
    except (TypeError, ValueError):
        abort(404)
    if not -(2**63) <= ident < 2**63:  # no such row, and SQLite cannot even bind the number (a 500)
        abort(404)
    obj = db.session.get(model, ident)
    if obj is None:
        abort(404)
    return obj


def require(allowed: bool) -> None:
    """Answer 403 unless `allowed`."""
    if not allowed:
        abort(403)


def roles_required(*roles: Role):
    """View decorator: signed in and holding one of `roles` (admins pass every role check)."""

    def decorator(view):
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                from coop.extensions import login_manager

                return login_manager.unauthorized()
            if not (current_user.is_admin or current_user.has_role(*roles)):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def subtree_filter(org: Organization):
    """A SQL condition selecting `org` and every organization below it (materialised-path prefix)."""
    return Organization.path.startswith(org.path, autoescape=True)


def committee_scope_root(user: User) -> Organization | None:
    """The organization whose subtree a committee reviewer oversees (None for non-reviewers)."""
    if user.is_authenticated and user.has_role(Role.committee) and user.organization is not None:
        return user.organization
    return None


def scope_org_ids(user: User) -> set[int] | None:
    """Organization ids a user oversees as reviewer: None means everything (admin), empty means none."""
    if user.is_admin:
        return None
    root = committee_scope_root(user)
    if root is None:
        return set()
    return set(db.session.execute(sa.select(Organization.id).where(subtree_filter(root))).scalars())


def oversees(user: User, org: Organization | None) -> bool:
    """True when `user` is an admin, or a committee reviewer whose subtree contains `org`."""
    if org is None or not user.is_authenticated:
        return False
    if user.is_admin:
        return True
    root = committee_scope_root(user)
    return root is not None and org.is_within(root)


def belongs_to(user: User, org_id: int | None) -> bool:
    """True when `user` is a member (any organization role) of the organization `org_id`."""
    return user.is_authenticated and org_id is not None and user.organization_id == org_id


def can_manage_organization(user: User, org: Organization) -> bool:
    """Admins manage every organization; committee reviewers manage those strictly below their own."""
    if user.is_admin:
        return True
    root = committee_scope_root(user)
    return root is not None and org.is_within(root) and org.id != root.id


def can_create_organizations(user: User) -> bool:
    """Admins and committee reviewers may add organizations (reviewers only inside their subtree)."""
    return user.is_authenticated and (user.is_admin or committee_scope_root(user) is not None)


def can_view_organization(user: User, org: Organization) -> bool:
    """Every signed-in user may see an organization's public card (name, kind, brand)."""
    return user.is_authenticated


def can_manage_users(user: User) -> bool:
    """Only admins manage user accounts."""
    return user.is_authenticated and user.is_admin


def can_read_audit(user: User) -> bool:
    """Admins read the whole audit log; committee reviewers read their subtree's entries."""
    return user.is_authenticated and (user.is_admin or committee_scope_root(user) is not None)


def may_place_under(user: User, parent: Organization | None) -> bool:
    """May `user` put an organization under `parent` (None: make it a root)?

    Used by the organization screens and the API alike: admins anywhere; a committee reviewer only under an
    organization they manage or under their own scope root; only admins create roots.
    """
    if user.is_admin:
        return True
    if parent is None:
        return False
    root = committee_scope_root(user)
    return can_manage_organization(user, parent) or (root is not None and parent.id == root.id)
