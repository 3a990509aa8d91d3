"""Bearer tokens for the API: issue, look up, revoke — and who the current API request is.

A token is `coop_` followed by 43 random URL-safe characters. Only its SHA-256 is stored, so neither
a database dump nor a backup reveals a usable token. Tokens expire after API_TOKEN_DAYS (default 30),
are revoked by their owner (profile page, or DELETE /api/v1/tokens/current), and all of a person's
tokens end when their password changes or is reset — the same as their browser sessions.

API requests authenticate *only* with the Authorization header: the session cookie is ignored under
/api/v1, which is what makes it safe to exempt the API from cookie-based CSRF protection.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app, g, request
from sqlalchemy.exc import OperationalError

from coop.api.models import ApiToken
from coop.audit.operations import record
from coop.auth.models import User
from coop.auth.operations import password_change_hooks
from coop.db import now_utc
from coop.extensions import db, login_manager

TOKEN_PREFIX = "coop_"  # a visible prefix of every token, not a secret  # nosec B105
DEFAULT_TOKEN_DAYS = 30
# last_used_at is bookkeeping for the profile page: writing it at most once a minute keeps reads cheap.
LAST_USED_GRANULARITY = timedelta(minutes=1)


def token_hash(secret: str) -> str:
    """The stored form of a token secret."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def token_days() -> int:
    """How many days a new token lives (config API_TOKEN_DAYS)."""
    return int(current_app.config.get("API_TOKEN_DAYS") or DEFAULT_TOKEN_DAYS)


# --- operations (flush and audit; never commit) ----------------------------------------------------------


def issue_token(user: User, *, ip: str | None, user_agent: str | None) -> tuple[str, ApiToken]:
    """Create a token for `user`; returns (secret, row). The secret is not kept anywhere."""
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = now_utc()
    token = ApiToken(user_id=user.id, token_hash=token_hash(secret), prefix=secret[:12], created_at=now,
                     expires_at=now + timedelta(days=token_days()), created_ip=ip,
                     user_agent=(user_agent or "")[:200] or None)
    db.session.add(token)
    db.session.flush()
    record("api.token_issued", f"{user.display_name} 创建了 API 访问令牌 {token.prefix}…", actor=user,
           organization_id=user.organization_id, target=user,
           detail={"token_id": token.id, "expires_at": token.expires_at.isoformat(), "ip": ip})
    return secret, token


def token_for_secret(secret: str | None) -> ApiToken | None:
    """The live token with this secret whose owner is still active, or None."""
    if not secret or not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    token = db.session.execute(
        sa.select(ApiToken).where(ApiToken.token_hash == token_hash(secret))
    ).scalar_one_or_none()
    if token is None or not token.is_live():
        return None
    if token.user is None or not token.user.is_active:
        return None
    return token


def revoke_token(token: ApiToken, *, actor: User) -> bool:
    """Revoke one token (its owner); False when it was already revoked."""
    if token.revoked_at is not None:
        return False
    token.revoked_at = now_utc()
    db.session.flush()
    record("api.token_revoked", f"{actor.display_name} 撤销了 API 访问令牌 {token.prefix}…", actor=actor,
           organization_id=token.user.organization_id if token.user else None, target=token.user,
           detail={"token_id": token.id})
    return True


def revoke_user_tokens(user: User) -> int:
    """Revoke every live token of `user`; returns how many."""
    result = db.session.execute(
        sa.update(ApiToken)
        .where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now_utc())
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def tokens_of(user: User, limit: int = 20) -> list[ApiToken]:
    """The person's tokens for the profile page: live ones first, then the most recent others."""
    rows = db.session.execute(
        sa.select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        .limit(limit)
    ).scalars().all()
    now = now_utc()
    return sorted(rows, key=lambda t: not t.is_live(now))


def _on_password_change(user: User, _old_password, _new_password) -> None:
    # A changed (or reset) password signs out every browser; scripts holding tokens must re-authenticate too.
    revoke_user_tokens(user)


if _on_password_change not in password_change_hooks:
    password_change_hooks.append(_on_password_change)


# --- the current request ---------------------------------------------------------------------------------


def bearer_secret() -> str | None:
    """The token in `Authorization: Bearer <token>`, if the request carries one."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def authenticate_request() -> None:
    """Make the bearer token's owner (or nobody) the current user of this API request.

    Runs before every API view. The cookie session is never consulted, so a browser's cookies cannot
    act through the API (and the API needs no CSRF token).
    """
    g.api_token = None
    g.api_token_presented = False
    secret = bearer_secret()
    token = None
    if secret is not None:
        g.api_token_presented = True
        token = token_for_secret(secret)
    login_manager._update_request_context_with_user(token.user if token else None)
    if token is None:
        return
    g.api_token = token
    now = now_utc()
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_GRANULARITY:
        token.last_used_at = now
        try:
            db.session.commit()
        except OperationalError:
            # A busy SQLite database: the usage stamp is not worth failing the request for.
            db.session.rollback()
