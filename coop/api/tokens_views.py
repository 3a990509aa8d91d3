"""The profile page's API-token section: list a person's tokens and revoke one (a normal CSRF-protected form).

Tokens are created through POST /api/v1/tokens (a script has the password anyway); people come here to
see which tokens exist, when each was last used, and to switch one off.
"""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from coop.api.auth import revoke_token, token_days, tokens_of
from coop.api.models import ApiToken
from coop.auth.permissions import get_or_404
from coop.auth.views import PROFILE_SECTIONS
from coop.db import now_utc
from coop.extensions import db

bp = Blueprint("api_tokens", __name__)

PROFILE_SECTIONS.append("api/_profile_tokens.html")


@bp.app_context_processor
def _token_helpers():
    return {"api_tokens_of": tokens_of, "api_token_days": token_days, "api_now": now_utc}


@bp.route("/profile/api-tokens/<int:token_id>/revoke", methods=["POST"])
@login_required
def revoke(token_id):
    """Revoke one of the signed-in person's own tokens."""
    token = get_or_404(ApiToken, token_id)
    if token.user_id != current_user.id:
        abort(404)  # somebody else's token: answer as if it did not exist
    if revoke_token(token, actor=current_user):
        db.session.commit()
        flash(_("访问令牌 %(prefix)s… 已撤销，使用它的脚本将无法再访问。", prefix=token.prefix), "success")
    else:
        flash(_("该令牌已经撤销。"), "info")
    return redirect(url_for("auth.profile") + "#api-tokens")
