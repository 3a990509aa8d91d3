"""The home page: what needs this person now. Domains contribute panels."""
from __future__ import annotations

from datetime import date
from typing import Any, Callable

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user

from coop.cache import memoized

bp = Blueprint("home", __name__)

# Each domain appends a function(user) -> dict | None describing a panel:
# {"order": int, "template": "agreements/_home_panel.html", ...context}
HOME_PANELS: list = []


def home_memo(user, today: date, name: str, compute: Callable[[], Any]) -> Any:
    """What panel `name` derives from the database for `user` on the local day `today` (plain data: ids, dates,
    counts — never ORM rows), computed once per data generation (coop.cache.memoized), not on every visit.

    One memo entry per person and day holds every panel's value, filled in as the panels ask. The day is part of
    the key because panels depend on it; everything else they read about the person — organization, roles,
    liaison duties — is data, whose change starts a new generation. One entry per person rather than one per
    panel, so that people opening their home page do not push the group-scale figures out of the process's small
    memo. While the session holds uncommitted changes `memoized` hands out a fresh dict on each call: nothing is
    kept then.
    """
    bundle = memoized("home", (user.id, today), dict, pool="personal")
    if name not in bundle:
        bundle[name] = compute()
    return bundle[name]


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
