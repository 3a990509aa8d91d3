"""Sign-in / sign-out, the profile page and user management screens."""
from __future__ import annotations

from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user

from coop.auth import operations as ops
from coop.auth.forms import ChangePasswordForm, LoginForm, ProfileForm, ResetPasswordForm, UserForm
from coop.auth.models import Role, User
from coop.auth.permissions import can_manage_users, get_or_404, require
from coop.extensions import db
from coop.formatting import ui_indent
from coop.forms import clean_text
from coop.i18n import N_
from coop.orgs.models import Organization
from coop.web import add_nav, page_arg

bp = Blueprint("auth", __name__)

add_nav("auth.users", N_("用户"), can_manage_users, order=80)


def _safe_next(target: str | None) -> str:
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//"):
            return target
    return url_for("home.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        try:
            user = ops.authenticate(form.username.data, form.password.data, request.remote_addr)
        except ops.LoginRefused as exc:
            db.session.commit()  # keep the failure count
            error = str(exc)
        else:
            token = ops.start_login_session(user, request.remote_addr, request.user_agent.string)
            db.session.commit()
            session.clear()  # a fresh session id after sign-in (no fixation)
            user.session_token = token
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form, error=error), (401 if error else 200)


@bp.route("/logout", methods=["POST"])
def logout():
    token = getattr(current_user, "session_token", None) if current_user.is_authenticated else None
    if token:
        ops.end_login_session(token)
        db.session.commit()
    logout_user()
    session.clear()
    flash(_("您已安全退出。"), "success")
    return redirect(url_for("auth.login"))


@bp.route("/lang", methods=["POST"])
def switch_language():
    lang = request.form.get("lang", "zh")
    if lang not in ("zh", "en"):
        abort(400)
    session["lang"] = lang
    if current_user.is_authenticated:
        ops.set_locale(current_user, lang)
        db.session.commit()
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/profile", methods=["GET", "POST"])
@login_required
def profile():
    form = ProfileForm(obj=current_user, prefix="p")
    pw_form = ChangePasswordForm(prefix="pw")
    if request.method == "POST" and request.form.get("which") == "profile" and form.validate_on_submit():
        current_user.display_name = form.display_name.data
        current_user.email = form.email.data or None
        current_user.phone = form.phone.data or None
        ops.set_locale(current_user, form.locale.data)
        from coop.audit.operations import record

        record("user.profile", f"{current_user.display_name} 更新了个人资料", actor=current_user,
               organization_id=current_user.organization_id, target=current_user)
        db.session.commit()
        flash(_("个人资料已保存。"), "success")
        return redirect(url_for("auth.profile"))
    if request.method == "POST" and request.form.get("which") == "password" and pw_form.validate_on_submit():
        try:
            ops.change_password(
                current_user,
                old_password=pw_form.old_password.data,
                new_password=pw_form.new_password.data,
                keep_token=current_user.session_token,
            )
        except ops.AuthError as exc:
            db.session.rollback()
            pw_form.old_password.errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("密码已修改，其他设备上的登录已全部退出。"), "success")
            return redirect(url_for("auth.profile"))
    return render_template("auth/profile.html", form=form, pw_form=pw_form, profile_extras=PROFILE_SECTIONS)


# Other domains add sections to the profile page (e.g. notification settings, API tokens):
# each entry is a template name rendered with `user` in context.
PROFILE_SECTIONS: list[str] = []


# --- user management (admin) ---------------------------------------------------------------------


def _org_choices():
    orgs = db.session.execute(
        sa.select(Organization).where(Organization.is_active.is_(True)).order_by(Organization.path)
    ).scalars()
    return [("", _("（无）"))] + [(str(o.id), ui_indent(o.depth) + o.name) for o in orgs]


@bp.route("/admin/users")
@login_required
def users():
    require(can_manage_users(current_user))
    q = clean_text(request.args.get("q") or "")  # no NUL: PostgreSQL refuses it in a parameter
    page = page_arg()
    stmt = sa.select(User).order_by(User.username)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(sa.or_(User.username.ilike(like), User.display_name.ilike(like)))
    pagination = db.paginate(stmt, page=page, per_page=50, error_out=False)
    return render_template("auth/users.html", pagination=pagination, q=q)


@bp.route("/admin/users/new", methods=["GET", "POST"])
@login_required
def user_new():
    require(can_manage_users(current_user))
    form = UserForm()
    form.organization_id.choices = _org_choices()
    if form.validate_on_submit():
        org = db.session.get(Organization, int(form.organization_id.data)) if form.organization_id.data else None
        try:
            user = ops.create_user(
                actor=current_user,
                username=form.username.data,
                password=form.password.data or "",
                display_name=form.display_name.data,
                roles=[Role(r) for r in form.roles.data],
                organization=org,
                email=form.email.data,
                phone=form.phone.data,
                title=form.title.data,
            )
        except ops.AuthError as exc:
            db.session.rollback()
            _field_of(form, exc, form.username).errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("用户 %(name)s 已创建。", name=user.display_name), "success")
            return redirect(url_for("auth.users"))
    return render_template("auth/user_form.html", form=form, user=None)


def _field_of(form, exc: ops.AuthError, default):
    """The form field a refusal is about (its message shows there), else `default`."""
    field = getattr(form, getattr(exc, "field", None) or "", None)
    return field if field is not None else default


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@login_required
def user_edit(user_id):
    require(can_manage_users(current_user))
    user = get_or_404(User, user_id)
    form = UserForm(obj=user)
    form.organization_id.choices = _org_choices()
    del form.password
    if request.method == "GET":
        form.roles.data = [r.value for r in user.roles]
        form.organization_id.data = str(user.organization_id or "")
        form.is_active.data = user.is_active_account
    reset_form = ResetPasswordForm(prefix="reset")
    if form.validate_on_submit():
        org = db.session.get(Organization, int(form.organization_id.data)) if form.organization_id.data else None
        try:
            ops.update_user(
                user,
                actor=current_user,
                display_name=form.display_name.data,
                roles=[Role(r) for r in form.roles.data],
                organization=org,
                email=form.email.data,
                phone=form.phone.data,
                title=form.title.data,
                is_active=form.is_active.data,
            )
        except ops.AuthError as exc:
            db.session.rollback()
            _field_of(form, exc, form.roles).errors.append(str(exc))
        else:
            db.session.commit()
            flash(_("用户信息已保存。"), "success")
            return redirect(url_for("auth.users"))
    return render_template("auth/user_form.html", form=form, user=user, reset_form=reset_form)


@bp.route("/admin/users/<int:user_id>/password", methods=["POST"])
@login_required
def user_reset_password(user_id):
    require(can_manage_users(current_user))
    user = get_or_404(User, user_id)
    form = ResetPasswordForm(prefix="reset")
    if form.validate_on_submit():
        try:
            ops.reset_password(user, actor=current_user, new_password=form.new_password.data)
        except ops.AuthError as exc:
            db.session.rollback()
            flash(str(exc), "error")
        else:
            db.session.commit()
            flash(_("已为 %(name)s 设置新密码，其所有登录已退出。", name=user.display_name), "success")
    else:
        for errors in form.errors.values():
            for e in errors:
                flash(str(e), "error")  # str: a lazy message would come back from the session as unescaped Markup
    return redirect(url_for("auth.user_edit", user_id=user.id))
