"""The notification centre, notification settings, the unsubscribe page and the personal calendar feed."""
from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from coop.auth.models import User
from coop.auth.permissions import get_or_404, require
from coop.auth.views import PROFILE_SECTIONS
from coop.extensions import csrf, db
from coop.home.views import HOME_PANELS
from coop.i18n import ui_force_locale
from coop.reminders import ical
from coop.reminders import operations as ops
from coop.reminders.delivery import UNSUBSCRIBE_ALL, absolute_url, effective_preferences, parse_unsubscribe_token
from coop.reminders.forms import PreferencesForm
from coop.reminders.models import MANDATORY_KINDS, EmailMode, Notification, ReminderKind
from coop.web import page_arg

bp = Blueprint("reminders", __name__)

PROFILE_SECTIONS.append("reminders/_profile_settings.html")


@bp.app_context_processor
def _unread_badge():
    """`unread_notifications` for the top bar, only for signed-in people. A GET reads the count the user
    loader fetched with the user (GET requests never change notifications); after a POST it is counted again."""
    if current_user and current_user.is_authenticated:
        prefetched = getattr(current_user, "prefetched", None)
        if request.method in ("GET", "HEAD") and prefetched is not None:
            return {"unread_notifications": prefetched}
        return {"unread_notifications": ops.unread_count(current_user)}
    return {"unread_notifications": 0}


@bp.app_template_global()
def notification_settings(user: User) -> dict:
    """What the profile section needs: the filled-in form, the feed state, the mandatory kinds."""
    prefs = effective_preferences(user)
    form = PreferencesForm(prefix="n", formdata=None)
    form.email_mode.data = prefs.mode.value
    form.quiet_start.data = prefs.quiet_start
    form.quiet_end.data = prefs.quiet_end
    form.email_kinds.data = [k.value for k in ops.optional_kinds() if k.value not in prefs.disabled_kinds]
    return {
        "form": form,
        "feed": ops.live_feed(user),
        "mandatory": [k.ui_label for k in ReminderKind if k in MANDATORY_KINDS],
        "has_email": bool(user.email),
    }


def _home_panel(user):
    rows = db.session.execute(
        sa.select(Notification)
        .where(Notification.user_id == user.id, Notification.read_at.is_(None))
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(5)
    ).scalars().all()
    if not rows:
        return None
    return {"order": 10, "template": "reminders/_home_panel.html", "notifications": rows}


HOME_PANELS.append(_home_panel)


# --- the notification centre ---------------------------------------------------------------------------


@bp.route("/notifications")
@login_required
def index():
    """The notification centre: newest first, optionally only unread."""
    page = page_arg()
    only_unread = request.args.get("unread") == "1"
    stmt = sa.select(Notification).where(Notification.user_id == current_user.id)
    if only_unread:
        stmt = stmt.where(Notification.read_at.is_(None))
    stmt = stmt.order_by(Notification.created_at.desc(), Notification.id.desc())
    pagination = db.paginate(stmt, page=page, per_page=30, error_out=False)
    return render_template("reminders/index.html", pagination=pagination, only_unread=only_unread)


def _own(notification_id: int) -> Notification:
    n = get_or_404(Notification, notification_id)
    require(n.user_id == current_user.id)
    return n


@bp.route("/notifications/<int:notification_id>/open", methods=["POST"])
@login_required
def open_notification(notification_id):
    """Mark a notice read and go to the thing it is about."""
    n = _own(notification_id)
    ops.mark_read(current_user, n)
    db.session.commit()
    # Only our own paths: a stored link never sends anyone off-site.
    target = n.link if n.link and n.link.startswith("/") and not n.link.startswith("//") else url_for("reminders.index")
    return redirect(target)


@bp.route("/notifications/<int:notification_id>/read", methods=["POST"])
@login_required
def mark_read(notification_id):
    """Mark one notice read."""
    n = _own(notification_id)
    ops.mark_read(current_user, n)
    db.session.commit()
    return redirect(url_for("reminders.index", page=request.form.get("page", type=int) or None))


@bp.route("/notifications/read-all", methods=["POST"])
@login_required
def mark_all_read():
    """Mark every notice of the signed-in person read."""
    count = ops.mark_all_read(current_user)
    db.session.commit()
    flash(_("已将 %(n)s 条通知标为已读。", n=count) if count else _("没有未读通知。"), "success")
    return redirect(url_for("reminders.index"))


# --- settings ------------------------------------------------------------------------------------------


@bp.route("/notifications/settings", methods=["POST"])
@login_required
def save_settings():
    """Store the e-mail settings posted from the profile page."""
    form = PreferencesForm(prefix="n")
    if form.validate_on_submit():
        try:
            ops.save_preferences(
                current_user, email_mode=EmailMode(form.email_mode.data), quiet_start=form.quiet_start.data,
                quiet_end=form.quiet_end.data, email_kinds=form.email_kinds.data or [],
            )
        except ops.ReminderRefused as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(_("提醒设置已保存。"), "success")
    else:
        for errors in form.errors.values():
            for e in errors:
                flash(str(e), "error")  # str: a lazy message would come back from the session as unescaped Markup
    return redirect(url_for("auth.profile") + "#notification-settings")


@bp.route("/notifications/calendar", methods=["POST"])
@login_required
def create_feed():
    """Make (or remake) the calendar feed URL and show it once."""
    token = ops.create_calendar_feed(current_user)
    db.session.commit()
    url = absolute_url(url_for("reminders.calendar_feed", token=token))
    # Shown once, right here: only its hash is stored. Not a redirect, so the secret never sits in a
    # flash cookie or a URL in the browser history.
    return render_template("reminders/feed_created.html", feed_url=url, webcal_url="webcal://" + url.split("://", 1)[1])


@bp.route("/notifications/calendar/revoke", methods=["POST"])
@login_required
def revoke_feed():
    """Stop the calendar feed."""
    if ops.revoke_calendar_feed(current_user):
        db.session.commit()
        flash(_("日历订阅链接已停用，已订阅的日历将不再更新。"), "success")
    else:
        flash(_("当前没有启用的日历订阅链接。"), "info")
    return redirect(url_for("auth.profile") + "#notification-settings")


@bp.route("/calendar/<token>.ics")
def calendar_feed(token):
    """The iCalendar feed behind a secret token (404 when unknown or revoked)."""
    user = ops.feed_owner(token)
    if user is None:
        abort(404)
    body = ical.build_calendar(user, datetime.now(timezone.utc))
    return Response(
        body,
        mimetype="text/calendar",
        headers={
            "Content-Disposition": 'inline; filename="coop-calendar.ics"',
            # The URL is the secret: keep it out of shared caches and referrers.
            "Cache-Control": "private, max-age=900",
            "Referrer-Policy": "no-referrer",
        },
    )


# --- unsubscribe (from an e-mail link; no sign-in) ------------------------------------------------------


def _unsubscribe_target(token: str):
    parsed = parse_unsubscribe_token(token)
    if parsed is None:
        abort(404)
    user = db.session.get(User, parsed[0])
    if user is None or not user.is_active_account:
        abort(404)
    scope = parsed[1]
    if scope != UNSUBSCRIBE_ALL and ReminderKind(scope) in MANDATORY_KINDS:
        abort(404)
    return user, scope


def _unsubscribe_texts(scope: str) -> tuple[str, str]:
    """What the page asks about and what it says once done, in the interface language."""
    if scope == UNSUBSCRIBE_ALL:
        return _("全部提醒邮件（必需的通知除外）"), _("已停止发送提醒邮件（必需的通知除外），站内通知照常保留。")
    kind = ReminderKind(scope).ui_label
    return (_("“%(kind)s”类邮件", kind=kind),
            _("已停止发送“%(kind)s”类邮件，站内通知照常保留。", kind=kind))


def _reader_locale(user: User) -> str:
    """The page reached from an e-mail speaks the recipient's language, unless this browser chose one."""
    locales = current_app.config["LOCALES"]
    for choice in (session.get("lang"), user.locale):
        if choice in locales:
            return choice
    return current_app.config["DEFAULT_LOCALE"]


# Mail clients' one-click unsubscribe (RFC 8058) POSTs "List-Unsubscribe=One-Click" without a session or a
# CSRF token; the signed token in the URL is what authorises it. Mail scanners only GET, and GET changes nothing.
@bp.route("/notifications/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt
def unsubscribe(token):
    """GET asks (changes nothing, mail scanners follow links); POST unsubscribes."""
    user, scope = _unsubscribe_target(token)
    with ui_force_locale(_reader_locale(user)):
        label, done = _unsubscribe_texts(scope)
        if request.method == "POST":
            try:
                ops.unsubscribe(user, scope)  # its Chinese summary goes to the audit log
            except ops.ReminderRefused as exc:
                db.session.rollback()
                return render_template("reminders/unsubscribe.html", user=user, label=label, error=str(exc)), 400
            db.session.commit()
            return render_template("reminders/unsubscribe.html", user=user, label=label, done=done)
        return render_template("reminders/unsubscribe.html", user=user, label=label)
