"""Creating, editing, moving and deactivating organizations. Flush and audit; never commit."""
from __future__ import annotations

from typing import Optional

import sqlalchemy as sa
from flask_babel import gettext as _

from coop.audit.operations import record
from coop.extensions import db
from coop.orgs.models import Organization, OrgKind, OrgRelation


class OrgInvalid(Exception):
    """A refusal with a message meant for the person (in the interface language)."""


EDITABLE_FIELDS = (
    "name", "short_name", "kind", "relation", "region", "contact_name", "contact_phone",
    "contact_email", "brand_name", "brand_slogan",
)


def _clean(fields: dict) -> dict:
    out = {}
    for key in EDITABLE_FIELDS:
        if key not in fields:
            continue
        value = fields[key]
        if isinstance(value, str):
            value = value.strip() or None
        out[key] = value
    if "name" in out and not out["name"]:
        raise OrgInvalid(_("组织名称不能为空。"))
    if "kind" in out and not isinstance(out["kind"], OrgKind):
        try:
            out["kind"] = OrgKind(out["kind"])
        except ValueError:
            raise OrgInvalid(_("组织类型无效。")) from None
    if "relation" in out and not isinstance(out["relation"], OrgRelation):
        try:
            out["relation"] = OrgRelation(out["relation"])
        except ValueError:
            raise OrgInvalid(_("与集团的关系无效。")) from None
    return out


def _check_unique_name(name: str, parent_id: Optional[int], exclude_id: Optional[int] = None) -> None:
    stmt = sa.select(Organization.id).where(
        Organization.name == name,
        Organization.parent_id.is_(None) if parent_id is None else Organization.parent_id == parent_id,
    )
    if exclude_id:
        stmt = stmt.where(Organization.id != exclude_id)
    if db.session.execute(stmt).first():
        raise OrgInvalid(_("同一上级组织下已有名为“%(name)s”的组织。", name=name))


def create_organization(*, actor, parent: Optional[Organization], **fields) -> Organization:
    """Add an organization under `parent` (None for a root)."""
    data = _clean(fields)
    for required in ("name", "kind", "relation"):
        if not data.get(required):
            raise OrgInvalid(_("请填写组织名称、类型和关系。"))
    if parent is not None and not parent.is_active:
        raise OrgInvalid(_("不能在已停用的组织下新建组织。"))
    _check_unique_name(data["name"], parent.id if parent else None)
    org = Organization(parent=parent, path="/", **data)
    db.session.add(org)
    db.session.flush()  # need the id for the path
    org.path = f"{parent.path if parent else '/'}{org.id}/"
    record(
        "org.create",
        f"新建组织 {org.name}",
        actor=actor,
        organization_id=org.id,
        target=org,
        detail={"parent_id": parent.id if parent else None, **{k: getattr(v, "value", v) for k, v in data.items()}},
    )
    db.session.flush()
    return org


def update_organization(org: Organization, *, actor, **fields) -> Organization:
    """Edit an organization's details; records what changed."""
    data = _clean(fields)
    if "name" in data:
        _check_unique_name(data["name"], org.parent_id, exclude_id=org.id)
    changed = {}
    for key, value in data.items():
        old = getattr(org, key)
        if old != value:
            changed[key] = [getattr(old, "value", old), getattr(value, "value", value)]
            setattr(org, key, value)
    if changed:
        record("org.update", f"修改组织 {org.name}", actor=actor, organization_id=org.id, target=org,
               detail={"changed": changed})
    db.session.flush()
    return org


def move_organization(org: Organization, new_parent: Optional[Organization], *, actor) -> Organization:
    """Move an organization (with its whole subtree) under another parent."""
    if new_parent is not None and new_parent.is_within(org):
        raise OrgInvalid(_("不能把组织移动到它自己或它的下级组织之下。"))
    if (new_parent.id if new_parent else None) == org.parent_id:
        return org
    if new_parent is not None and not new_parent.is_active:
        raise OrgInvalid(_("不能移动到已停用的组织之下。"))
    _check_unique_name(org.name, new_parent.id if new_parent else None, exclude_id=org.id)
    old_path = org.path
    old_parent_id = org.parent_id
    new_path = f"{new_parent.path if new_parent else '/'}{org.id}/"
    # One UPDATE rewrites the prefix of every descendant's path.
    db.session.execute(
        sa.update(Organization)
        .where(Organization.path.startswith(old_path, autoescape=True))
        .values(path=sa.func.replace(Organization.path, old_path, new_path))
        .execution_options(synchronize_session=False)
    )
    org.parent = new_parent
    db.session.flush()
    db.session.expire_all()
    record(
        "org.move",
        f"移动组织 {org.name}",
        actor=actor,
        organization_id=org.id,
        target=org,
        detail={"from_parent_id": old_parent_id, "to_parent_id": new_parent.id if new_parent else None},
    )
    return org


def set_organization_active(org: Organization, active: bool, *, actor) -> Organization:
    """Deactivate (or reactivate) an organization. Nothing with history is ever deleted."""
    if org.is_active == active:
        return org
    if not active:
        live_children = [c for c in org.children if c.is_active]
        if live_children:
            raise OrgInvalid(_("请先停用或移走它的下级组织：%(names)s", names=_("、").join(c.name for c in live_children[:5])))
    if active and org.parent is not None and not org.parent.is_active:
        raise OrgInvalid(_("上级组织已停用，请先启用上级组织。"))
    org.is_active = active
    record(
        "org.activate" if active else "org.deactivate",
        f"{'启用' if active else '停用'}组织 {org.name}",
        actor=actor,
        organization_id=org.id,
        target=org,
    )
    db.session.flush()
    return org


def set_organization_logo(org: Organization, relative_path: Optional[str], *, actor) -> None:
    """Point the organization's brand logo at a stored upload (or remove it)."""
    old = org.brand_logo_path
    org.brand_logo_path = relative_path
    record("org.logo", f"更新组织 {org.name} 的品牌标识", actor=actor, organization_id=org.id, target=org,
           detail={"old": old, "new": relative_path})
    db.session.flush()
