"""Party organizations as a tree (党委 → 党总支 → 党支部), with their kind, relation and Party brand."""
from __future__ import annotations

import enum
from typing import Optional

import sqlalchemy as sa
from flask_babel import gettext
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.db import TimestampMixin, enum_column
from coop.extensions import db
from coop.i18n import N_


class OrgKind(enum.Enum):
    committee = "committee"
    general_branch = "general_branch"
    branch = "branch"
    league_branch = "league_branch"
    other = "other"

    @property
    def label(self) -> str:
        """The Chinese name (agreement documents, reports, the API)."""
        return ORG_KIND_LABELS[self]

    @property
    def ui_label(self) -> str:
        """The name in the interface language (screens)."""
        return gettext(ORG_KIND_LABELS[self])


ORG_KIND_LABELS = {
    OrgKind.committee: N_("党委"),
    OrgKind.general_branch: N_("党总支"),
    OrgKind.branch: N_("党支部"),
    OrgKind.league_branch: N_("团支部"),
    OrgKind.other: N_("其他"),
}


class OrgRelation(enum.Enum):
    group = "group"
    company = "company"
    government = "government"
    industry = "industry"
    school = "school"
    other = "other"

    @property
    def label(self) -> str:
        """The Chinese name (agreement documents, reports, the API)."""
        return ORG_RELATION_LABELS[self]

    @property
    def ui_label(self) -> str:
        """The name in the interface language (screens)."""
        return gettext(ORG_RELATION_LABELS[self])


ORG_RELATION_LABELS = {
    OrgRelation.group: N_("集团内部"),
    OrgRelation.company: N_("公司内部"),
    OrgRelation.government: N_("地方部门"),
    OrgRelation.industry: N_("行业单位"),
    OrgRelation.school: N_("学校"),
    OrgRelation.other: N_("其他"),
}


class Organization(TimestampMixin, db.Model):
    """A Party organization. Never hard-deleted: deactivated instead, so history keeps its names."""

    __tablename__ = "organizations"
    __table_args__ = (
        sa.CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
        # Subtree queries are `path LIKE '/1/5/%'`: an index on path makes them range scans.
        sa.Index("ix_organizations_path", "path", postgresql_ops={"path": "text_pattern_ops"}),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(120), nullable=False)
    short_name: Mapped[Optional[str]] = mapped_column(sa.String(40))
    kind: Mapped[OrgKind] = enum_column(OrgKind, name="org_kind", nullable=False)
    relation: Mapped[OrgRelation] = enum_column(OrgRelation, name="org_relation", nullable=False)
    parent_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    # Materialised path of ids, e.g. "/1/5/12/"; maintained by operations.move_organization.
    path: Mapped[str] = mapped_column(sa.String(400), nullable=False, default="/")
    region: Mapped[Optional[str]] = mapped_column(sa.String(80))
    contact_name: Mapped[Optional[str]] = mapped_column(sa.String(40))
    contact_phone: Mapped[Optional[str]] = mapped_column(sa.String(40))
    contact_email: Mapped[Optional[str]] = mapped_column(sa.String(120))
    brand_name: Mapped[Optional[str]] = mapped_column(sa.String(60))
    brand_slogan: Mapped[Optional[str]] = mapped_column(sa.String(200))
    brand_logo_path: Mapped[Optional[str]] = mapped_column(sa.String(200))
    is_active: Mapped[bool] = mapped_column(default=True, nullable=False)

    parent: Mapped[Optional["Organization"]] = relationship(
        remote_side="Organization.id", back_populates="children"
    )
    children: Mapped[list["Organization"]] = relationship(
        back_populates="parent", order_by="Organization.name"
    )

    def __repr__(self) -> str:
        return f"<Organization {self.id} {self.name!r}>"

    @property
    def depth(self) -> int:
        return self.path.strip("/").count("/")

    @property
    def ancestor_ids(self) -> list[int]:
        """Ids from the root down to and including this organization."""
        return [int(p) for p in self.path.strip("/").split("/") if p]

    def is_within(self, other: "Organization") -> bool:
        """True when this organization is `other` or lies in its subtree."""
        return self.path.startswith(other.path)
