"""The home page: what needs this person now. Domains contribute panels."""
from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

bp = Blueprint("home", __name__)

# Each domain appends a function(user) -> dict | None describing a panel:
# {"order": int, "template": "agreements/_home_panel.html", ...context}
HOME_PANELS: list = []


@bp.route("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    panels = []
    for build in HOME_PANELS:
        panel = build(current_user)
        if panel:
            panels.append(panel)
    panels.sort(key=lambda p: p.get("order", 50))
    return render_template("home/index.html", panels=panels)


@bp.route("/healthz")
def healthz():
    from coop.extensions import db

    db.session.execute(db.text("SELECT 1"))
    return {"status": "ok"}
