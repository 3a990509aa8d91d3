"""Sign-in, sessions, passwords and user management. Operations flush and audit; they never commit."""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Callable, Iterable, Optional

import sqlalchemy as sa
from sqlalchemy.orm import joinedload
from flask import current_app
from flask_babel import gettext as _

from coop import cache
from coop.audit.operations import record
from coop.auth.models import LoginSession, LoginThrottle, Role, User, UserRole
from coop.auth.passwords import hash_password, needs_rehash, password_problem, verify_password
from coop.db import now_utc
from coop.extensions import db
from coop.orgs.models import Organization


class AuthError(Exception):
    """A refusal with a message meant for the person (in the interface language)."""


class LoginRefused(AuthError):
    pass


class UserInvalid(AuthError):
    """`field` names the form field the problem is about, when there is one."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


# Other domains hook in here (e.g. re-wrapping a signer's private key with the new password).
# Each hook is called as hook(user, old_password | None, new_password) inside the same transaction.
password_change_hooks: list[Callable[[User, Optional[str], str], None]] = []

# A fixed dummy hash so unknown usernames cost the same time as known ones (no user enumeration by timing).
_DUMMY_HASH = None


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(16))
    return _DUMMY_HASH


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- throttling -------------------------------------------------------------------------------------


def _throttle_keys(username: str, ip: str | None) -> list[tuple[str, int]]:
    cfg = current_app.config
    per_account = cfg["LOGIN_MAX_FAILURES"]
    # An IP gets more room: a whole office may share one address behind NAT.
    return [(f"u:{username.lower()}|{ip or '-'}", per_account), (f"ip:{ip or '-'}", per_account * 10)]


def login_locked_until(username: str, ip: str | None):
    """When sign-in for this username/IP is locked, the UTC time it unlocks; else None."""
    now = now_utc()
    keys = [k for k, _kind in _throttle_keys(username, ip)]
    rows = db.session.execute(sa.select(LoginThrottle).where(LoginThrottle.key.in_(keys))).scalars()
    until = [r.locked_until for r in rows if r.locked_until and r.locked_until > now]
    return max(until) if until else None


def note_login_failure(username: str, ip: str | None) -> None:
    """Count a wrong password (login, signing, API token) towards the lock of this name and address."""
    now = now_utc()
    lock_minutes = current_app.config["LOGIN_LOCK_MINUTES"]
    for key, limit in _throttle_keys(username, ip):
        row = db.session.get(LoginThrottle, key)
        if row is None:
            row = LoginThrottle(key=key, failures=0, window_started_at=now)
            db.session.add(row)
        if now - row.window_started_at > timedelta(minutes=lock_minutes):
            row.failures, row.window_started_at = 0, now
        row.failures += 1
        if row.failures >= limit:
            row.locked_until = now + timedelta(minutes=lock_minutes)
    db.session.flush()


def clear_login_failures(username: str, ip: str | None) -> None:
    """Forget the failures of this name at this address after a correct password."""
    key = _throttle_keys(username, ip)[0][0]
    db.session.execute(sa.delete(LoginThrottle).where(LoginThrottle.key == key))


def authenticate(username: str, password: str, ip: str | None) -> User:
    """Check credentials with throttling; return the user or raise LoginRefused (failures are counted).

    The caller commits in both cases so that a failure is counted even though sign-in is refused.
    """
    username = (username or "").strip()
    if login_locked_until(username, ip):
        raise LoginRefused(
            _("登录失败次数过多，请 %(n)s 分钟后再试。", n=current_app.config['LOGIN_LOCK_MINUTES'])
        )
    # Case-insensitive, plus the exact name: SQLite's lower() folds ASCII only, so "Ðan" would otherwise
    # never match itself. Where two accounts differ only in such a letter, the exact name wins.
    candidates = db.session.execute(
        sa.select(User).where(sa.or_(User.username == username, sa.func.lower(User.username) == username.lower()))
    ).scalars().all()
    user = next((u for u in candidates if u.username == username), candidates[0] if len(candidates) == 1 else None)
    ok = verify_password(user.password_hash if user else _dummy_hash(), password or "")
    if not ok or user is None or not user.is_active:
        note_login_failure(username, ip)
        raise LoginRefused(_("用户名或密码不正确。"))
    clear_login_failures(username, ip)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    # A bookkeeping write: every sign-in would otherwise start a new data generation and make every worker
    # recompute the group's figures (issue 10); no memoised figure shows the last sign-in.
    db.session.execute(
        sa.update(User).where(User.id == user.id).values(last_login_at=now_utc())
        .execution_options(synchronize_session="fetch", **cache.BOOKKEEPING)
    )
    return user


def start_login_session(user: User, ip: str | None, user_agent: str | None) -> str:
    """Create a server-side login session and return its secret token (stored in the cookie)."""
    token = secrets.token_urlsafe(32)
    db.session.add(
        LoginSession(
            token_hash=_token_hash(token), user_id=user.id, ip=ip, user_agent=(user_agent or "")[:200]
        )
    )
    record("auth.login", f"{user.display_name} 登录", actor=user, organization_id=user.organization_id, target=user)
    db.session.flush()
    return token


def user_for_session_token(token: str, *, also: sa.ScalarSelect | None = None) -> Optional[User]:
    """The active user owning a live login session token, or None (revoked, expired, deactivated).

    This runs on every signed-in request, so it is one statement (issue 10): the session, its user, the
    user's roles and organization joined, plus ``also`` — a scalar subquery correlated to ``login_sessions`` that the caller
    wants on the same trip (the top bar's unread count); its value is left in ``user.prefetched``.
    """
    if not token:
        return None
    max_age = timedelta(days=7)
    stmt = (
        sa.select(LoginSession).where(LoginSession.token_hash == _token_hash(token))
        # the user's organization too: the top bar and most pages read it
        .options(joinedload(LoginSession.user).joinedload(User.role_rows),
                 joinedload(LoginSession.user).joinedload(User.organization))
    )
    if also is not None:
        stmt = stmt.add_columns(also)
    found = db.session.execute(stmt).unique().first()
    if found is None:
        return None
    row = found[0]
    if row.revoked_at is not None or now_utc() - row.created_at > max_age:
        return None
    user = row.user
    if user is None or not user.is_active:
        return None
    user.session_token = token
    user.prefetched = found[1] if also is not None else None
    return user


def end_login_session(token: str) -> None:
    """Revoke one login session (sign-out)."""
    db.session.execute(
        sa.update(LoginSession)
        .where(LoginSession.token_hash == _token_hash(token), LoginSession.revoked_at.is_(None))
        .values(revoked_at=now_utc())
    )


def revoke_all_sessions(user: User, except_token: str | None = None) -> int:
    """Revoke every login session of `user` (optionally keeping the current one); returns how many."""
    stmt = sa.update(LoginSession).where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
    if except_token:
        stmt = stmt.where(LoginSession.token_hash != _token_hash(except_token))
    return db.session.execute(stmt.values(revoked_at=now_utc())).rowcount


# --- users ------------------------------------------------------------------------------------------


def _check_password(password: str) -> None:
    problem = password_problem(password or "")
    if problem:
        raise UserInvalid(problem, "password")


def _set_roles(user: User, roles: Iterable[Role]) -> None:
    wanted = set(roles)
    for row in list(user.role_rows):
        if row.role not in wanted:
            user.role_rows.remove(row)
    have = user.roles
    for role in wanted - have:
        user.role_rows.append(UserRole(role=role))


def _validate_roles(roles: set[Role], organization: Optional[Organization]) -> None:
    org_roles = roles & {Role.committee, Role.secretary, Role.liaison}
    if org_roles and organization is None:
        raise UserInvalid(_("书记、联络员和党委审阅人必须属于一个组织。"), "organization_id")
    if organization is not None and not organization.is_active and org_roles:
        raise UserInvalid(_("该组织已停用，不能再分配角色。"), "organization_id")


def create_user(
    *,
    actor: Optional[User],
    username: str,
    password: str,
    display_name: str,
    roles: Iterable[Role],
    organization: Optional[Organization] = None,
    email: str | None = None,
    phone: str | None = None,
    title: str | None = None,
) -> User:
    """Create a user with roles; refuses duplicate usernames and weak passwords."""
    username = (username or "").strip()
    if not username or len(username) > 64 or any(c.isspace() for c in username):
        raise UserInvalid(_("用户名不能为空、不能含空格，最长 64 个字符。"), "username")
    exists = db.session.execute(
        # The exact name too: SQLite's lower() folds ASCII only, so "Ð…" was missed and the INSERT hit the
        # unique constraint (a 500).
        sa.select(User.id).where(sa.or_(User.username == username, sa.func.lower(User.username) == username.lower()))
    ).first()
    if exists:
        raise UserInvalid(_("用户名“%(username)s”已被使用。", username=username), "username")
    _check_password(password)
    roles = set(roles)
    _validate_roles(roles, organization)
    user = User(
        username=username,
        display_name=(display_name or username).strip()[:60],
        password_hash=hash_password(password),
        organization=organization,
        email=email or None,
        phone=phone or None,
        title=title or None,
    )
    _set_roles(user, roles)
    db.session.add(user)
    db.session.flush()
    record(
        "user.create",
        f"创建用户 {user.display_name}（{username}）",
        actor=actor,
        organization_id=user.organization_id,
        target=user,
        detail={"roles": sorted(r.value for r in roles), "organization_id": user.organization_id},
    )
    return user


def update_user(
    user: User,
    *,
    actor: User,
    display_name: str,
    roles: Iterable[Role],
    organization: Optional[Organization],
    email: str | None,
    phone: str | None,
    title: str | None,
    is_active: bool,
) -> User:
    """Change a user's profile, organization, roles and active flag (admin)."""
    roles = set(roles)
    _validate_roles(roles, organization)
    if user.id == actor.id and Role.admin not in roles and actor.is_admin:
        raise UserInvalid(_("不能撤销自己的管理员角色。"), "roles")
    if user.id == actor.id and not is_active:
        raise UserInvalid(_("不能停用自己的账号。"), "is_active")
    before = {
        "display_name": user.display_name,
        "roles": sorted(r.value for r in user.roles),
        "organization_id": user.organization_id,
        "is_active": user.is_active_account,
    }
    user.display_name = (display_name or user.username).strip()[:60]
    user.organization = organization
    user.email, user.phone, user.title = email or None, phone or None, title or None
    _set_roles(user, roles)
    user.is_active_account = is_active
    if not is_active:
        revoke_all_sessions(user)
    after = {
        "display_name": user.display_name,
        "roles": sorted(r.value for r in roles),
        "organization_id": organization.id if organization else None,
        "is_active": is_active,
    }
    changed = {k: [before[k], after[k]] for k in before if before[k] != after[k]}
    db.session.flush()
    record(
        "user.update",
        f"修改用户 {user.display_name}（{user.username}）",
        actor=actor,
        organization_id=user.organization_id,
        target=user,
        detail={"changed": changed},
    )
    return user


def change_password(user: User, *, old_password: str, new_password: str, keep_token: str | None) -> None:
    """A user changes their own password; every other session of theirs is signed out."""
    if not verify_password(user.password_hash, old_password or ""):
        raise UserInvalid(_("当前密码不正确。"))
    _check_password(new_password)
    if old_password == new_password:
        raise UserInvalid(_("新密码不能与当前密码相同。"))
    for hook in password_change_hooks:
        hook(user, old_password, new_password)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = now_utc()
    revoke_all_sessions(user, except_token=keep_token)
    record("user.password", f"{user.display_name} 修改了密码", actor=user, organization_id=user.organization_id, target=user)


def reset_password(user: User, *, actor: User, new_password: str) -> None:
    """An admin sets a new password for a user; all of the user's sessions end."""
    _check_password(new_password)
    for hook in password_change_hooks:
        hook(user, None, new_password)
    user.password_hash = hash_password(new_password)
    user.password_changed_at = now_utc()
    revoke_all_sessions(user)
    record(
        "user.password_reset",
        f"管理员重置了 {user.display_name} 的密码",
        actor=actor,
        organization_id=user.organization_id,
        target=user,
    )


def set_locale(user: User, locale: str) -> None:
    """Remember the user's interface language."""
    if locale not in current_app.config["LOCALES"]:
        raise UserInvalid(_("不支持的语言。"))
    user.locale = locale
