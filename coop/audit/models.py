"""The one audit log: who did what, when, to what — chained by hash so tampering shows."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.db import UTCDateTime, now_utc
from coop.extensions import db


class AuditEntry(db.Model):
    """One state change. Written only by coop.audit.operations.record()."""

    __tablename__ = "audit_log"
    __table_args__ = (
        sa.Index("ix_audit_log_org_created", "organization_id", "created_at"),
        sa.Index("ix_audit_log_target", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False, index=True)
    actor_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(sa.String(80), nullable=False)  # kept if the user is renamed
    kind: Mapped[str] = mapped_column(sa.String(60), nullable=False, index=True)
    summary: Mapped[str] = mapped_column(sa.String(300), nullable=False)
    detail: Mapped[dict[str, Any]] = mapped_column(sa.JSON, nullable=False, default=dict)
    # The organization whose scope this entry belongs to (committees see their subtree's entries).
    organization_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("organizations.id"))
    target_type: Mapped[Optional[str]] = mapped_column(sa.String(40))
    target_id: Mapped[Optional[int]] = mapped_column()
    ip: Mapped[Optional[str]] = mapped_column(sa.String(64))
    prev_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    entry_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)

    actor = relationship("User")
    organization = relationship("Organization")

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.kind}>"
