"""Users, their roles, server-side login sessions and login throttling."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Optional

import sqlalchemy as sa
from flask_babel import gettext, pgettext
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from coop.db import TimestampMixin, UTCDateTime, enum_column, now_utc
from coop.extensions import db
from coop.i18n import N_

if TYPE_CHECKING:
    from coop.orgs.models import Organization


class Role(enum.Enum):
    admin = "admin"
    committee = "committee"  # reviewer over its organization's subtree
    secretary = "secretary"  # signatory of its organization
    liaison = "liaison"  # liaison of its organization

    @property
    def label(self) -> str:
        """The Chinese name (documents, the API, CLI)."""
        return ROLE_LABELS[self]

    @property
    def ui_label(self) -> str:
        """The name in the interface language (screens)."""
        return gettext(ROLE_LABELS[self])


ROLE_LABELS = {
    Role.admin: N_("管理员"),
    Role.committee: N_("党委审阅人"),
    Role.secretary: N_("书记"),
    Role.liaison: N_("联络员"),
}


class User(UserMixin, TimestampMixin, db.Model):
    """A person who signs in. Never hard-deleted: deactivated, so signatures and logs keep their author."""

    __tablename__ = "users"
    __table_args__ = (sa.UniqueConstraint("username"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    display_name: Mapped[str] = mapped_column(sa.String(60), nullable=False)
    email: Mapped[Optional[str]] = mapped_column(sa.String(120))
    phone: Mapped[Optional[str]] = mapped_column(sa.String(40))
    title: Mapped[Optional[str]] = mapped_column(sa.String(60))  # 职务, e.g. 党支部书记
    password_hash: Mapped[str] = mapped_column(sa.String(200), nullable=False)
    password_changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    organization_id: Mapped[Optional[int]] = mapped_column(sa.ForeignKey("organizations.id"), index=True)
    locale: Mapped[Optional[str]] = mapped_column(sa.String(8))
    is_active_account: Mapped[bool] = mapped_column("is_active", default=True, nullable=False)
    last_login_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    organization: Mapped[Optional["Organization"]] = relationship()
    role_rows: Mapped[list["UserRole"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    # The secret of the login session this request came with (set by the user loader); not stored.
    session_token = None  # type: Optional[str]
    # What the user loader fetched on the same trip for this request (see user_for_session_token); not stored.
    prefetched = None

    def __repr__(self) -> str:
        return f"<User {self.id} {self.username!r}>"

    def get_id(self) -> Optional[str]:
        """Flask-Login keeps the login-session token in the cookie, never the user id, so that
        sign-out and password changes can revoke it on the server."""
        return self.session_token

    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.is_active_account

    @property
    def status_label(self) -> str:
        """启用 / 已停用 in the interface language (an account's state, not the button that activates one)."""
        return pgettext("account status", "启用") if self.is_active_account else gettext("已停用")

    @property
    def roles(self) -> set[Role]:
        return {r.role for r in self.role_rows}

    def has_role(self, *roles: Role) -> bool:
        """True when the user holds any of `roles`."""
        mine = self.roles
        return any(r in mine for r in roles)

    @property
    def is_admin(self) -> bool:
        return Role.admin in self.roles


class UserRole(db.Model):
    """One role held by a user; organization roles apply to the user's own organization."""

    __tablename__ = "user_roles"
    __table_args__ = (sa.UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    role: Mapped[Role] = enum_column(Role, name="role", nullable=False)

    user: Mapped[User] = relationship(back_populates="role_rows")

    def __repr__(self) -> str:
        return f"<UserRole {self.user_id} {self.role.value}>"


class LoginSession(db.Model):
    """A server-side record of a signed-in browser; logout or a password change revokes it for real."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), nullable=False, unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)
    ip: Mapped[Optional[str]] = mapped_column(sa.String(64))
    user_agent: Mapped[Optional[str]] = mapped_column(sa.String(200))

    user: Mapped[User] = relationship()

    def __repr__(self) -> str:
        return f"<LoginSession {self.id} user={self.user_id} revoked={self.revoked_at is not None}>"


class LoginThrottle(db.Model):
    """Failed sign-in counters per key (user+IP, IP). In the database so limits hold across workers."""

    __tablename__ = "login_throttles"

    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0, nullable=False)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now_utc, nullable=False)
    locked_until: Mapped[Optional[datetime]] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<LoginThrottle {self.key} failures={self.failures}>"
