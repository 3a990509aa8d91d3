"""Activity ledger screens: log from a phone, confirm the partner's entries, find, export, import.

Visibility failures answer 404 (an unrelated user learns nothing, not even that an id exists); a
person who may see an activity but not act on it gets 403.
"""
from __future__ import annotations

import calendar
import re
import tempfile
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from babel.dates import format_date as babel_format_date
from babel.dates import format_skeleton
from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import joinedload
from werkzeug.exceptions import RequestEntityTooLarge

from agreements.models import Agreement, AgreementParty, AgreementStatus
from coop.activities import jobs as import_jobs
from coop.activities import operations as ops
from coop.activities.forms import (
    AttachmentForm,
    ConfirmForm,
    EditActivityForm,
    ImportForm,
    LedgerFilterForm,
    LogActivityForm,
    MarkHeldForm,
    WithdrawForm,
    filter_values,
)
from coop.activities.ledger_export import export_csv_streamed, export_xlsx_streamed
from coop.activities.ledger_io import export_filename
from coop.activities.models import (
    Activity,
    ActivityStatus,
    Attachment,
    ConfirmationState,
    ImportRun,
    ImportStatus,
)
from coop.activities.permissions import (
    can_confirm_activity,
    can_edit_activity,
    can_import_into,
    can_log_under,
    can_see_agreement_ledger,
    can_view_activity,
    can_view_import_run,
    can_view_committee_ledger,
    can_view_org_ledger,
    can_withdraw_activity,
    confirming_org_ids,
    liaison_org_ids,
    organizer_liaison,
    user_liaison_org_ids,
)
from coop.activities.queries import (
    DETAIL_CHECK_LOADS,
    DETAIL_LOADS,
    ITEM_LOADS,
    LEDGER_LOADS,
    PERMISSION_LOADS,
    activities_by_ids,
    agreement_choices,
    agreements_for_logging,
    awaiting_confirmation,
    ledger_page,
    ledger_query,
    planned_between,
)
from coop import cache
from coop.auth.permissions import get_or_404, require
from coop.categories import CATEGORY_BY_CODE
from coop.db import load_into
from coop.extensions import db
from coop.forms import parse_id
from coop.formatting import local_today, ui_date, ui_is_english, ui_month
from coop.home.views import HOME_PANELS, home_memo
from coop.i18n import N_
from coop.orgs.models import Organization
from coop.orgs.views import DETAIL_SECTIONS
from coop.uploads import UploadRejected, inspect_upload
from coop.web import add_nav, page_arg

bp = Blueprint("activities", __name__, url_prefix="/activities")

PER_PAGE = 20


def _has_ledger(user) -> bool:
    return user.organization_id is not None or can_view_committee_ledger(user)


add_nav("activities.ledger", N_("活动台账"), _has_ledger, order=30)


@bp.app_context_processor
def _template_helpers():
    return {"can_view_org_ledger": can_view_org_ledger}


# --- loading with permission ---------------------------------------------------------------------------------


def _activity_or_404(activity_id, options=()) -> Activity:
    if options and isinstance(activity_id, int) and 0 < activity_id < 2**63:
        activity = db.session.get(Activity, activity_id, options=options)
        if activity is None:
            abort(404)
    else:
        activity = get_or_404(Activity, activity_id)
    if not can_view_activity(current_user, activity):
        abort(404)
    return activity


def _stream_size(storage) -> int | None:
    """The size of an uploaded file, from its (seekable) spooled stream; None when it cannot be told."""
    try:
        stream = storage.stream
        here = stream.tell()
        size = stream.seek(0, 2)
        stream.seek(here)
        return size
    except (AttributeError, OSError, ValueError):
        return None


def _checked_uploads(*file_lists):
    """Inspect every chosen file by content; raises UploadRejected naming the file."""
    max_bytes = current_app.config["UPLOAD_MAX_FILE_BYTES"]
    checked = []
    for files in file_lists:
        for storage in files or []:
            if storage is None or not getattr(storage, "filename", ""):
                continue
            size = _stream_size(storage)  # before reading: a byte over the limit is all that is read
            data = storage.read(max_bytes + 1)
            try:
                checked.append(inspect_upload(data, storage.filename, max_bytes=max_bytes, size=size))
            except UploadRejected as exc:
                raise UploadRejected(_("“%(name)s”：%(problem)s", name=storage.filename, problem=exc.message),
                                     exc.reason) from None
    return checked


def _files_lost(form) -> bool:
    """True when a re-shown form had files chosen: browsers cannot keep them, so say so."""
    if request.method != "POST":
        return False
    chosen = list(form.photos.data or []) + list(form.sheets.data or [])
    return any(getattr(f, "filename", "") for f in chosen)


def _put_error(form, exc: ops.ActivityRefused) -> None:
    """Show a refusal next to its field when the form has it, else as a flash message."""
    name = {"agreements": "agreement_ids"}.get(exc.field, exc.field)
    if not name or not hasattr(form, name):
        flash(str(exc), "error")
        return
    getattr(form, name).errors = list(getattr(form, name).errors) + [str(exc)]


# The forms that upload files, and where a request too large to read (over MAX_CONTENT_LENGTH) sends the person back.
_NEW_FORM_ARGS = ("agreement", "date", "status", "category")
_UPLOAD_FORMS = {
    # Only the new form's own prefill arguments go back (others could clash with url_for's, e.g. ?endpoint=).
    "activities.new": lambda args: url_for("activities.new", **{k: request.args[k] for k in _NEW_FORM_ARGS
                                                                if k in request.args}),
    "activities.mark_held": lambda args: url_for("activities.mark_held", activity_id=args["activity_id"]),
    "activities.add_attachments":
        lambda args: url_for("activities.detail", activity_id=args["activity_id"]) + "#attachments",
}


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    """Werkzeug refuses the whole request before any form code runs, so nothing typed can be kept: rather than a bare
    413 page, go back to the form and say what happened. (activities.js checks the sizes before sending, so this is
    the net for browsers without it.)"""
    back = _UPLOAD_FORMS.get(request.endpoint)
    if back is None:
        return exc
    max_mb = current_app.config["UPLOAD_MAX_ACTIVITY_BYTES"] // (1024 * 1024)
    flash(_("上传的照片和文件合计过大，表单没有保存。请少选几张照片（合计不超过 %(mb)s MB）后重新填写并保存。", mb=max_mb),
          "error")
    return redirect(back(request.view_args or {}), 303)


def _withdrawn_redirect(activity: Activity, may_act: bool, message: str):
    """A page opened before the activity was withdrawn: back to the activity, saying so. None when the activity is
    not withdrawn or the person could not have acted on it anyway (then the usual 403 applies)."""
    if activity.status is not ActivityStatus.withdrawn or not may_act:
        return None
    flash(message, "info")
    return redirect(url_for("activities.detail", activity_id=activity.id))


# --- logging ----------------------------------------------------------------------------------------------------


def _party_options(agreements: list[Agreement], user) -> list[dict]:
    """Every party of the user's agreements once, with the agreements it belongs to (for the checkboxes)."""
    options: dict[int, dict] = {}
    for agreement in agreements:
        own = liaison_org_ids(user, agreement)
        for party in agreement.parties:
            entry = options.setdefault(party.organization_id, {
                "id": party.organization_id, "name": party.organization.name, "agreement_ids": [], "own": False,
            })
            entry["agreement_ids"].append(agreement.id)
            entry["own"] = entry["own"] or party.organization_id in own
    return sorted(options.values(), key=lambda o: (not o["own"], o["name"]))


def _current_among_renewals(agreements: list[Agreement], today: date) -> list[Agreement]:
    """[the agreement running today] when every choice is the same pairing under one title (an agreement and its
    renewal) and exactly one of them runs today; else [] — with different pairings to choose from, nothing is guessed."""
    if len({a.title for a in agreements}) != 1:
        return []
    running = [a for a in agreements if a.starts_on <= today <= a.ends_on]
    return running if len(running) == 1 else []


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    agreements = agreements_for_logging(current_user, [AgreementStatus.active, AgreementStatus.signing])
    form = LogActivityForm()
    if not agreements:
        return render_template("activities/new.html", form=form, agreements=[], party_options=[])
    by_id = {a.id: a for a in agreements}
    if request.method == "GET":
        wanted = request.args.get("agreement", type=int)
        if wanted in by_id:
            form.agreement_ids.data = [wanted]
        elif len(agreements) == 1 or sum(1 for a in agreements if a.status is AgreementStatus.active) == 1:
            only = agreements[0] if len(agreements) == 1 else next(a for a in agreements if a.status is AgreementStatus.active)
            form.agreement_ids.data = [only.id]
        else:
            form.agreement_ids.data = [a.id for a in _current_among_renewals(agreements, local_today())]
        chosen = [by_id[i] for i in form.agreement_ids.data]
        form.organization_ids.data = sorted({o for a in chosen for o in a.party_org_ids})
        form.held_on.data = request.args.get("date", type=date.fromisoformat) if request.args.get("date") else local_today()
        if request.args.get("status") == "planned":
            form.status.data = ActivityStatus.planned.value
        if request.args.get("category") in CATEGORY_BY_CODE:
            form.category.data = request.args["category"]
    elif form.validate_on_submit():
        unknown = [i for i in form.agreement_ids.data if i not in by_id]
        if unknown:
            form.agreement_ids.errors.append(_("所选协议无效，请重新选择。"))
        else:
            try:
                uploads = _checked_uploads(form.photos.data, form.sheets.data)
                activity = ops.log_activity(
                    current_user,
                    agreements=[by_id[i] for i in form.agreement_ids.data],
                    status=form.status.data,
                    category=form.category.data,
                    tags=form.tags.data or [],
                    title=form.title.data,
                    held_on=form.held_on.data,
                    start_time=form.start_time.data,
                    end_time=form.end_time.data,
                    place=form.place.data,
                    organization_ids=form.organization_ids.data,
                    party_member_count=form.party_member_count.data,
                    other_count=form.other_count.data,
                    summary=form.summary.data,
                    outcome=form.outcome.data,
                    attachments=uploads,
                )
                db.session.commit()
            except UploadRejected as exc:
                db.session.rollback()
                form.photos.errors = list(form.photos.errors) + [exc.message]
            except ops.ActivityRefused as exc:
                db.session.rollback()
                _put_error(form, exc)
            else:
                partners = len(activity.confirmations)
                if activity.status is ActivityStatus.planned:
                    flash(_("计划活动已记录，将显示在日历上；活动开展后请点“登记开展情况”。"), "success")
                else:
                    flash(_("活动已记录，已请 %(n)s 个伙伴组织确认。", n=partners), "success")
                return redirect(url_for("activities.detail", activity_id=activity.id))
    return render_template(
        "activities/new.html", form=form, agreements=agreements,
        party_options=_party_options(agreements, current_user), files_lost=_files_lost(form),
        today=local_today(),
    )


# --- one activity ----------------------------------------------------------------------------------------------------


# Revision values stored as Chinese labels / category names (message ids) and dates as 2026年11月22日.
_LABEL_FIELDS = {"category", "tags", "status", "confirmation"}
_STORED_DATE = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日")


def _change_value(field: str, value):
    """A value of the change history in the interface language; what people typed is shown as typed."""
    if isinstance(value, list):
        return [_change_value(field, v) for v in value]
    if not isinstance(value, str):
        return value
    if field in _LABEL_FIELDS:
        return _(value)
    match = _STORED_DATE.fullmatch(value) if field == "held_on" else None
    if match:
        return ui_date(date(*(int(g) for g in match.groups())))
    return value


def _revision_note(note: str) -> str:
    """A revision's note: the parts the operations wrote in the interface language, the editor's words as typed."""
    parts = note.split("；")
    if not any(p in ops.REVISION_NOTES for p in parts):
        return note
    return _("；").join(_(p) if p in ops.REVISION_NOTES else p for p in parts)


@bp.route("/<int:activity_id>")
@login_required
def detail(activity_id):
    activity = load_into(_activity_or_404(activity_id, DETAIL_CHECK_LOADS), *DETAIL_LOADS)
    confirm_orgs = confirming_org_ids(current_user, activity) if can_confirm_activity(current_user, activity) else set()
    return render_template(
        "activities/detail.html",
        activity=activity,
        can_edit=can_edit_activity(current_user, activity),
        can_withdraw=can_withdraw_activity(current_user, activity),
        confirm_orgs=confirm_orgs,
        confirm_form=ConfirmForm(),
        withdraw_form=WithdrawForm(),
        attachment_form=AttachmentForm(),
        field_labels=ops.FIELD_LABELS, change_value=_change_value, revision_note=_revision_note,
    )


@bp.route("/<int:activity_id>/edit", methods=["GET", "POST"])
@login_required
def edit(activity_id):
    activity = _activity_or_404(activity_id)
    stale = _withdrawn_redirect(activity, organizer_liaison(current_user, activity), _("已撤回的活动不能修改。"))
    if stale:
        return stale
    require(can_edit_activity(current_user, activity))
    form = EditActivityForm(obj=activity)
    if request.method == "GET":
        form.tags.data = [t.category for t in activity.tags]
        form.organization_ids.data = activity.participant_org_ids
    if form.validate_on_submit():
        try:
            revision = ops.edit_activity(
                current_user, activity, note=form.note.data or None,
                category=form.category.data, tags=form.tags.data or [], title=form.title.data,
                held_on=form.held_on.data, start_time=form.start_time.data, end_time=form.end_time.data,
                place=form.place.data, organization_ids=form.organization_ids.data,
                party_member_count=form.party_member_count.data, other_count=form.other_count.data,
                summary=form.summary.data, outcome=form.outcome.data,
            )
            db.session.commit()
        except ops.ActivityRefused as exc:
            db.session.rollback()
            _put_error(form, exc)
        else:
            if revision is None:
                flash(_("没有修改任何内容。"), "info")
            elif revision.note and ops.NOTE_RESET in revision.note:
                flash(_("已保存。内容有变动，已请伙伴重新确认。"), "success")
            else:
                flash(_("已保存，修改记录可在页面下方查看。"), "success")
            return redirect(url_for("activities.detail", activity_id=activity.id))
    agreements = [l.agreement for l in activity.agreement_links]
    return render_template(
        "activities/edit.html", form=form, activity=activity,
        party_options=_party_options(agreements, current_user),
    )


@bp.route("/<int:activity_id>/held", methods=["GET", "POST"])
@login_required
def mark_held(activity_id):
    activity = _activity_or_404(activity_id)
    stale = _withdrawn_redirect(activity, organizer_liaison(current_user, activity),
                                _("这条活动已被撤回，不能再登记开展情况。"))
    if stale:
        return stale
    require(can_edit_activity(current_user, activity))
    if activity.status is not ActivityStatus.planned:
        flash(_("这条活动不是计划中的活动。"), "info")
        return redirect(url_for("activities.detail", activity_id=activity.id))
    form = MarkHeldForm(obj=activity)
    if request.method == "GET":
        form.organization_ids.data = activity.participant_org_ids
        if activity.held_on > local_today():
            form.held_on.data = local_today()
    if form.validate_on_submit():
        try:
            uploads = _checked_uploads(form.photos.data, form.sheets.data)
            ops.mark_held(
                current_user, activity, held_on=form.held_on.data, start_time=form.start_time.data,
                end_time=form.end_time.data, place=form.place.data, organization_ids=form.organization_ids.data,
                party_member_count=form.party_member_count.data or 0, other_count=form.other_count.data or 0,
                summary=form.summary.data or "", outcome=form.outcome.data or "", attachments=uploads,
            )
            db.session.commit()
        except UploadRejected as exc:
            db.session.rollback()
            form.photos.errors = list(form.photos.errors) + [exc.message]
        except ops.ActivityRefused as exc:
            db.session.rollback()
            _put_error(form, exc)
        else:
            flash(_("已登记开展情况，已请伙伴确认。"), "success")
            return redirect(url_for("activities.detail", activity_id=activity.id))
    agreements = [l.agreement for l in activity.agreement_links]
    return render_template(
        "activities/held.html", form=form, activity=activity,
        party_options=_party_options(agreements, current_user), files_lost=_files_lost(form),
    )


@bp.route("/<int:activity_id>/confirm", methods=["POST"])
@login_required
def confirm(activity_id):
    activity = _activity_or_404(activity_id)
    stale = _withdrawn_redirect(activity, bool(confirming_org_ids(current_user, activity)),
                                _("这条活动已被撤回，无需确认。"))
    if stale:
        return stale
    require(can_confirm_activity(current_user, activity))
    form = ConfirmForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for e in errors:
                flash(str(e), "error")  # str: a lazy message would come back from the session as unescaped Markup
        return redirect(url_for("activities.detail", activity_id=activity.id) + "#confirm")
    try:
        ops.confirm_activity(current_user, activity, form.decision.data, form.comment.data,
                             organization_id=form.organization_id.data)
        db.session.commit()
    except ops.ActivityRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(_("已确认，这条活动将计入双方台账。") if form.decision.data == "confirm"
              else _("已提出异议，对方联络员会看到您的说明。"), "success")
    return redirect(url_for("activities.detail", activity_id=activity.id))


@bp.route("/<int:activity_id>/withdraw", methods=["POST"])
@login_required
def withdraw(activity_id):
    activity = _activity_or_404(activity_id)
    stale = _withdrawn_redirect(activity, organizer_liaison(current_user, activity), _("这条活动已经撤回。"))
    if stale:
        return stale
    require(can_withdraw_activity(current_user, activity))
    form = WithdrawForm()
    if not form.validate_on_submit():
        flash(_("请写明撤回原因。"), "error")
        return redirect(url_for("activities.detail", activity_id=activity.id) + "#withdraw")
    try:
        ops.withdraw_activity(current_user, activity, form.reason.data)
        db.session.commit()
    except ops.ActivityRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(_("活动已撤回，撤回原因对伙伴和党委可见。"), "success")
    return redirect(url_for("activities.detail", activity_id=activity.id))


# --- attachments ---------------------------------------------------------------------------------------------------


@bp.route("/<int:activity_id>/attachments", methods=["POST"])
@login_required
def add_attachments(activity_id):
    activity = _activity_or_404(activity_id)
    stale = _withdrawn_redirect(activity, organizer_liaison(current_user, activity),
                                _("这条活动已被撤回，不能再添加附件。"))
    if stale:
        return stale
    require(can_edit_activity(current_user, activity))
    form = AttachmentForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        uploads = _checked_uploads(form.files.data)
        ops.add_attachments(current_user, activity, uploads)
        db.session.commit()
    except UploadRejected as exc:
        db.session.rollback()
        flash(exc.message, "error")
    except ops.ActivityRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(_("已上传 %(n)s 个文件。", n=len(uploads)), "success")
    return redirect(url_for("activities.detail", activity_id=activity.id) + "#attachments")


def _attachment_or_404(attachment_id) -> Attachment:
    attachment = get_or_404(Attachment, attachment_id)
    if not can_view_activity(current_user, attachment.activity):
        abort(404)
    return attachment


def _send_stored(relative_path: str, mime: str, download_name: str, as_attachment: bool):
    from coop.uploads import resolve_stored

    try:
        path = resolve_stored(Path(current_app.config["UPLOAD_DIR"]), relative_path)
    except ValueError:
        abort(404)
    if not path.is_file():
        abort(404)
    resp = send_file(path, mimetype=mime, as_attachment=as_attachment, download_name=download_name,
                     max_age=0, conditional=True)
    # Private: only people who may see the activity get it, so no shared cache may keep a copy.
    resp.headers["Cache-Control"] = "private, max-age=3600"
    resp.headers["Content-Security-Policy"] = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
    return resp


@bp.route("/attachments/<int:attachment_id>")
@login_required
def attachment(attachment_id):
    att = _attachment_or_404(attachment_id)
    # Images open in the browser; PDFs download (their viewers run code we did not write).
    return _send_stored(att.stored_path, att.mime, att.original_name, as_attachment=att.kind != "image")


@bp.route("/attachments/<int:attachment_id>/thumb")
@login_required
def thumbnail(attachment_id):
    att = _attachment_or_404(attachment_id)
    if not att.thumb_path:
        abort(404)
    stem = att.original_name.rsplit(".", 1)[0]
    return _send_stored(att.thumb_path, "image/jpeg", f"{stem}-缩略图.jpg", as_attachment=False)


@bp.route("/attachments/<int:attachment_id>/delete", methods=["POST"])
@login_required
def delete_attachment(attachment_id):
    att = _attachment_or_404(attachment_id)
    activity = att.activity
    require(can_edit_activity(current_user, activity))
    form = AttachmentForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        ops.remove_attachment(current_user, att)
        db.session.commit()
    except ops.ActivityRefused as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        flash(_("附件已删除。"), "success")
    return redirect(url_for("activities.detail", activity_id=activity.id) + "#attachments")


# --- ledgers -------------------------------------------------------------------------------------------------------------


def _filter_form(partner_options: list[tuple[str, str]],
                 agreement_options: list[tuple[str, str]] | None) -> LedgerFilterForm:
    form = LedgerFilterForm(formdata=request.args)
    form.partner.choices = [("", _("全部伙伴"))] + partner_options
    if agreement_options is not None:
        form.agreement.choices = [("", _("全部协议"))] + agreement_options
    # filter_values checks a chosen partner or agreement against these choices (a set, and only when one is
    # chosen); WTForms' own check would walk a group's hundreds of choices on every request (issue 10).
    form.partner.validate_choice = form.agreement.validate_choice = False
    form.validate()
    return form


def _ledger_memo(user, name: str, compute):
    """What the ledger pages derive for `user` besides the activities (filter choices, whether the user may log):
    plain data, computed once per data generation (coop.cache.memoized; issue 10 — a group reviewer's filters list
    hundreds of agreements with their parties). The key is the person and their scope (organization, roles);
    what else it depends on (agreements, parties, liaisons) is data, whose change starts a new generation. One
    memo entry per person holding every value, so that people browsing ledgers do not push the group-scale
    figures out of the process's small memo."""
    scope = (user.id, user.organization_id, tuple(sorted(r.value for r in user.roles)))
    bundle = cache.memoized("activities.ledger", scope, dict, pool="personal")
    if name not in bundle:
        bundle[name] = compute()
    return bundle[name]


def _filter_choices(user, anchor: int | None) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(partner choices, agreement choices) of the ledger's filters: the user's visible agreements — those
    `anchor` (an organization) is party to, when given — and their other parties by name."""
    visible = agreement_choices(user)
    seen: dict[int, str] = {}
    for a in visible:
        if anchor is not None and anchor not in a.party_org_ids:
            continue
        for org_id, name in a.parties:
            if org_id != anchor:
                seen[org_id] = name
    partners = sorted(seen.items(), key=lambda item: item[1])
    if anchor is not None:
        visible = [a for a in visible if anchor in a.party_org_ids]
    return [(str(org_id), name) for org_id, name in partners], [(str(a.id), a.title) for a in visible]


def _ledger_context(*, title: str, scope: str = "mine", agreement: Agreement | None = None,
                    org: Organization | None = None, endpoint: str, endpoint_args: dict, export_base: dict):
    """Shared by every ledger view: filters, the page of activities, export links."""
    if agreement is not None:
        partners = [(str(p.organization.id), p.organization.name) for p in agreement.parties]
        agreements = None
    else:
        anchor = org.id if org is not None else (current_user.organization_id if scope == "mine" else None)
        partners, agreements = _ledger_memo(current_user, f"choices:{anchor}",
                                            lambda: _filter_choices(current_user, anchor))
    form = _filter_form(partners, agreements)
    filters = filter_values(form)
    if agreement is not None:
        filters["agreement_id"] = agreement.id
    page = ledger_page(current_user, page=page_arg(), per_page=PER_PAGE, loads=ITEM_LOADS,
                       org_id=org.id if org is not None else None, scope=scope, **filters)
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    can_log = _ledger_memo(current_user, "can_log", lambda: bool(agreements_for_logging(
        current_user, [AgreementStatus.active, AgreementStatus.signing])))
    return {
        "title": title, "scope": scope, "agreement": agreement, "org": org, "form": form, "page": page,
        "filtered": bool(set(filters) - {"agreement_id"}), "endpoint": endpoint, "endpoint_args": endpoint_args,
        "export_args": {**args, **export_base}, "can_log": can_log,
        "show_committee_tab": can_view_committee_ledger(current_user),
        "filters_open": bool(set(filters) - {"agreement_id", "q"}),
    }


@bp.route("/")
@login_required
def ledger():
    require(_has_ledger(current_user))
    if current_user.organization_id is None:
        return redirect(url_for("activities.committee"))
    org = current_user.organization
    ctx = _ledger_context(title=_("%(org)s · 工作台账", org=org.name), scope="mine", endpoint="activities.ledger",
                          endpoint_args={},
                          export_base={"scope": "mine"})
    return render_template("activities/ledger.html", **ctx)


@bp.route("/committee")
@login_required
def committee():
    require(can_view_committee_ledger(current_user))
    title = _("全部活动") if current_user.is_admin else _("%(org)s范围 · 活动台账", org=current_user.organization.name)
    ctx = _ledger_context(title=title, scope="committee", endpoint="activities.committee", endpoint_args={},
                          export_base={"scope": "committee"})
    return render_template("activities/ledger.html", **ctx)


@bp.route("/agreement/<int:agreement_id>")
@login_required
def by_agreement(agreement_id):
    # The page names every party: loaded with the agreement, in its statement (get_or_404 with a loader option).
    if not -(2**63) <= agreement_id < 2**63:
        abort(404)
    agreement = db.session.get(Agreement, agreement_id,
                               options=[joinedload(Agreement.parties).joinedload(AgreementParty.organization)])
    if agreement is None:
        abort(404)
    if not can_see_agreement_ledger(current_user, agreement):
        abort(404)
    ctx = _ledger_context(title=_("%(agreement)s · 工作台账", agreement=agreement.title), agreement=agreement,
                          scope="committee",
                          endpoint="activities.by_agreement", endpoint_args={"agreement_id": agreement.id},
                          export_base={"agreement_id": agreement.id})
    ctx["can_import"] = can_import_into(current_user, agreement)
    ctx["can_log_here"] = can_log_under(current_user, agreement, ActivityStatus.planned)
    return render_template("activities/ledger.html", **ctx)


@bp.route("/org/<int:org_id>")
@login_required
def by_org(org_id):
    org = get_or_404(Organization, org_id)
    if not can_view_org_ledger(current_user, org):
        abort(404)
    ctx = _ledger_context(title=_("%(org)s · 工作台账", org=org.name), org=org, scope="committee",
                          endpoint="activities.by_org", endpoint_args={"org_id": org.id},
                          export_base={"org_id": org.id})
    return render_template("activities/ledger.html", **ctx)


def _export_statement():
    """The activities an export link stands for: the same scope and filters as the page it came from."""
    agreement_id = request.args.get("agreement_id", type=int)
    org_id = request.args.get("org_id", type=int)
    label = "本组织"
    scope = request.args.get("scope", "mine")
    agreement = org = None
    if agreement_id is not None:
        agreement = get_or_404(Agreement, agreement_id)
        if not can_see_agreement_ledger(current_user, agreement):
            abort(404)
        label, scope = agreement.title, "committee"
    elif org_id is not None:
        org = get_or_404(Organization, org_id)
        if not can_view_org_ledger(current_user, org):
            abort(404)
        label, scope = org.name, "committee"
    elif scope == "committee":
        require(can_view_committee_ledger(current_user))
        label = "党委范围"
    else:
        scope = "mine"
        if current_user.organization is not None:
            label = current_user.organization.name
    form = LedgerFilterForm(formdata=request.args)
    # Partner and agreement filters are checked against what the user may see inside ledger_query.
    form.partner.choices = [("", "")] + [(v, v) for v in request.args.getlist("partner") if parse_id(v) is not None]
    form.agreement.choices = [("", "")] + [(v, v) for v in request.args.getlist("agreement") if parse_id(v) is not None]
    form.validate()
    filters = filter_values(form)
    if agreement is not None:
        filters["agreement_id"] = agreement.id
    stmt = ledger_query(current_user, org_id=org.id if org is not None else None, scope=scope, **filters)
    # A ledger reads oldest first.
    stmt = stmt.order_by(None).order_by(Activity.held_on, Activity.start_time, Activity.id)
    return stmt, label


@bp.route("/export.<fmt>")
@login_required
def export(fmt):
    if fmt not in ("xlsx", "csv"):
        abort(404)
    stmt, label = _export_statement()
    # Issue 10: streamed (coop/activities/ledger_export.py), so time and memory stay reasonable for a
    # group's 60,000 rows (ORM objects for all of them took 35 s and 650 MB): batches of plain columns, and
    # the file is built in a temporary file on disk rather than in memory.
    buffer = tempfile.TemporaryFile()
    if fmt == "xlsx":
        export_xlsx_streamed(stmt, buffer)
        mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    else:
        export_csv_streamed(stmt, buffer)
        mime = "text/csv; charset=utf-8"
    buffer.seek(0)
    resp = send_file(buffer, mimetype=mime, as_attachment=True, download_name=export_filename(label, fmt), max_age=0)
    resp.response, resp.direct_passthrough = _read_then_close(buffer), False
    return resp


def _read_then_close(fh, size: int = 256 * 1024):
    """The body of a temporary file, closing it once sent (whoever consumes the response)."""
    try:
        while chunk := fh.read(size):
            yield chunk
    finally:
        fh.close()


@bp.route("/agreement/<int:agreement_id>/import", methods=["GET", "POST"])
@login_required
def import_file(agreement_id):
    """Upload a 工作台账 .xlsx: the import runs in the background and its page shows the progress."""
    agreement = get_or_404(Agreement, agreement_id)
    if not can_see_agreement_ledger(current_user, agreement):
        abort(404)
    require(can_import_into(current_user, agreement))
    form = ImportForm()
    errors: list[str] = []
    live_run = None
    if form.validate_on_submit():
        storage = form.file.data
        if storage is None or not getattr(storage, "filename", ""):
            errors = [_("请选择要导入的 .xlsx 文件。")]
        else:
            data = storage.read(import_jobs.MAX_IMPORT_BYTES + 1)  # a byte over the limit is enough to refuse
            try:
                run = import_jobs.start_import_run(current_user, agreement, data, storage.filename)
                db.session.commit()
            except import_jobs.ImportRefused as exc:
                db.session.rollback()
                errors, live_run = [str(exc)], exc.live_run
            else:
                import_jobs.launch_import_run(current_app._get_current_object(), run.id)
                return redirect(url_for("activities.import_run", run_id=run.id))
    recent = db.session.execute(
        sa.select(ImportRun).where(ImportRun.agreement_id == agreement.id).order_by(ImportRun.id.desc()).limit(5)
    ).scalars().all()
    return render_template("activities/import.html", form=form, agreement=agreement, errors=errors,
                           live_run=live_run, recent=recent, status_label=import_jobs.status_label,
                           is_stale=import_jobs.is_stale, max_mb=import_jobs.MAX_IMPORT_BYTES // (1024 * 1024))


def _import_run_or_404(run_id: int) -> ImportRun:
    run = get_or_404(ImportRun, run_id)
    if not can_view_import_run(current_user, run):
        abort(404)
    return run


def _import_run_json(run: ImportRun) -> dict:
    stale = import_jobs.is_stale(run)
    status = ImportStatus.failed.value if stale else run.status.value
    finished = stale or run.status.finished
    if finished:
        percent = 100
    elif run.total and run.checked >= run.total:
        percent = None  # writing, in one transaction: the bar shows activity without a figure
    else:
        percent = round(100 * run.checked / run.total) if run.total else 0
    return {
        "id": run.id, "status": status, "status_label": import_jobs.status_label(run), "finished": finished,
        "total": run.total, "checked": run.checked, "written": run.written, "skipped": run.skipped,
        "errors": len(run.errors), "percent": percent, "message": import_jobs.outcome_text(run),
        "ledger_url": url_for("activities.by_agreement", agreement_id=run.agreement_id),
    }


@bp.route("/imports/<int:run_id>")
@login_required
def import_run(run_id):
    """An import's progress page (polled through static/js/app.js), then its outcome; can be left and reopened."""
    run = _import_run_or_404(run_id)
    return render_template("activities/import_run.html", run=run, state=_import_run_json(run),
                           errors=import_jobs.error_lines(run), can_import=can_import_into(current_user, run.agreement))


@bp.route("/imports/<int:run_id>/progress")
@login_required
def import_run_progress(run_id):
    """An import's counters as JSON."""
    resp = jsonify(_import_run_json(_import_run_or_404(run_id)))
    resp.headers["Cache-Control"] = "no-store"
    return resp


# --- calendar and the confirmation inbox ----------------------------------------------------------------------------


def _month_arg() -> tuple[int, int]:
    raw = request.args.get("month", "")
    try:
        year, month = (int(p) for p in raw.split("-", 1))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return year, month
    except ValueError:
        pass
    today = local_today()
    return today.year, today.month


def _day_heading(day: date) -> tuple[str, str]:
    """A day of the calendar's list and its weekday: 11月14日 / 周六 in Chinese, Nov 14 / Sat in English."""
    locale = get_locale()
    return format_skeleton("MMMd", day, locale=locale), babel_format_date(day, "EEE", locale=locale)


def _weekday_heads(week: list[date]) -> list[str]:
    """The calendar's column heads: 一 … 日 in Chinese, Mon … Sun in English."""
    locale = get_locale()
    return [babel_format_date(day, "EEE" if ui_is_english() else "EEEEE", locale=locale) for day in week]


@bp.route("/calendar")
@login_required
def calendar_view():
    require(_has_ledger(current_user))
    year, month = _month_arg()
    first = date(year, month, 1)
    last = date(year, month, calendar.monthrange(year, month)[1])
    scope = request.args.get("scope", "mine")
    agreement_id = request.args.get("agreement_id", type=int)
    agreement = None
    if agreement_id is not None:
        agreement = get_or_404(Agreement, agreement_id)
        if not can_see_agreement_ledger(current_user, agreement):
            abort(404)
        scope = "committee"
    elif scope == "committee":
        require(can_view_committee_ledger(current_user))
    elif current_user.organization_id is None:
        scope = "committee"
    stmt = ledger_query(current_user, agreement_id=agreement_id, scope=scope, date_from=first, date_to=last)
    stmt = stmt.where(Activity.status != ActivityStatus.withdrawn).order_by(None).order_by(
        Activity.held_on, Activity.start_time, Activity.id)
    activities = db.session.scalars(stmt).all()
    by_day: dict[date, list[Activity]] = {}
    for a in activities:
        by_day.setdefault(a.held_on, []).append(a)
    weeks = calendar.Calendar(firstweekday=0).monthdatescalendar(year, month)
    prev_month = (first - timedelta(days=1)).strftime("%Y-%m")
    next_month = (last + timedelta(days=1)).strftime("%Y-%m")
    return render_template(
        "activities/calendar.html", weeks=weeks, by_day=by_day, year=year, month=month,
        month_title=ui_month(year, month), prev_month=prev_month, next_month=next_month,
        today=local_today(), scope=scope, agreement=agreement, activities=activities,
        show_committee_tab=can_view_committee_ledger(current_user) and current_user.organization_id is not None,
        weekday_heads=_weekday_heads(weeks[0]), day_heading=_day_heading,
    )


def _pending_for(user, *, rows: bool = True) -> list[Activity]:
    """Held activities waiting for an answer from an organization the user is liaison of (rows=False: without
    what a ledger row shows, see awaiting_confirmation)."""
    seen: dict[int, Activity] = {}
    for org_id in sorted(user_liaison_org_ids(user)):
        # unique(): the loads may join a collection (CONFIRM_CHECK_LOADS joins the confirmations)
        for activity in db.session.scalars(awaiting_confirmation(org_id, rows=rows)).unique():
            if activity.id not in seen and can_confirm_activity(user, activity):
                seen[activity.id] = activity
    return sorted(seen.values(), key=lambda a: (a.held_on, a.id))


def _disputed_for(user) -> list[Activity]:
    """Activities the user's party organized that a partner disputed — the organizer should act."""
    orgs = user_liaison_org_ids(user)
    if not orgs:
        return []
    stmt = (
        sa.select(Activity)
        .where(Activity.organizer_org_id.in_(orgs), Activity.confirmation == ConfirmationState.disputed,
               Activity.status != ActivityStatus.withdrawn)
        .order_by(Activity.held_on.desc())
        .options(*LEDGER_LOADS, *PERMISSION_LOADS)
    )
    return [a for a in db.session.scalars(stmt) if can_edit_activity(user, a)]


@bp.route("/pending")
@login_required
def pending():
    return render_template(
        "activities/pending.html", pending=_pending_for(current_user), disputed=_disputed_for(current_user),
        is_liaison=bool(user_liaison_org_ids(current_user)), confirm_form=ConfirmForm(),
    )


# --- home panels and the organization page -------------------------------------------------------------------------


def _pending_shown(user) -> tuple[list[int], int] | None:
    """(ids of the five oldest activities waiting for the user's answer, how many wait), None when none do."""
    if not user_liaison_org_ids(user):
        return None
    items = _pending_for(user, rows=False)
    if not items:
        return None
    return [a.id for a in items[:5]], len(items)


def _pending_panel(user):
    # Issue 10: which activities wait (a busy party has a hundred, each checked) is memoised per data generation;
    # a visit loads only the five shown, with what their list item shows, in one statement.
    found = home_memo(user, local_today(), "activities.pending", lambda: _pending_shown(user))
    if found is None:
        return None
    ids, total = found
    return {"order": 10, "template": "activities/_home_pending.html",
            "pending_items": activities_by_ids(ids, *ITEM_LOADS), "pending_total": total}


def _planned_ids(user, today) -> list[int] | None:
    """Ids of the next planned activities of the user's liaison organizations, None for non-liaisons."""
    orgs = user_liaison_org_ids(user)
    if not orgs:
        return None
    return [a.id for a in db.session.scalars(
        planned_between(today - timedelta(days=7), today + timedelta(days=45), orgs).limit(6))]


def _planned_panel(user):
    today = local_today()
    ids = home_memo(user, today, "activities.planned", lambda: _planned_ids(user, today))  # memoised as above
    if ids is None:
        return None
    return {"order": 20, "template": "activities/_home_planned.html",
            "planned_items": activities_by_ids(ids, *ITEM_LOADS), "today": today}


HOME_PANELS.append(_pending_panel)
HOME_PANELS.append(_planned_panel)
DETAIL_SECTIONS.append("activities/_org_section.html")
