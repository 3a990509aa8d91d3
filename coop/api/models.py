"""API tokens: bearer secrets for scripts and integrations, stored only as their SHA-256."""
from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.db import UTCDateTime, now_utc
from coop.extensions import db

if TYPE_CHECKING:
    from coop.auth.models import User


class ApiToken(db.Model):
    """One issued token. The secret is shown once at creation; a leaked database leaks no usable token."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        sa.UniqueConstraint("token_hash"),
        # The profile page lists a person's tokens; revoking "all of them" filters the same way.
        sa.Index("ix_api_tokens_user_revoked", "user_id", "revoked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False)
    token_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    # The first characters of the secret, shown on the profile page so a person can tell tokens apart.
    prefix: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    created_ip: Mapped[Optional[str]] = mapped_column(sa.String(64))
    user_agent: Mapped[Optional[str]] = mapped_column(sa.String(200))

    user: Mapped["User"] = relationship()

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} user={self.user_id} revoked={self.revoked_at is not None}>"

    def is_live(self, now: datetime | None = None) -> bool:
        """Not revoked and not expired."""
        return self.revoked_at is None and self.expires_at > (now or now_utc())
