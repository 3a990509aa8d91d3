"""Monthly report screens: the archive list, downloads, on-screen reports, "generate now", month batches."""
from __future__ import annotations

from datetime import date

import sqlalchemy as sa
from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy.orm import selectinload

from agreements.models import Agreement, AgreementParty
from coop.auth.permissions import committee_scope_root, get_or_404, require
from coop import cache
from coop.cache import memoized
from coop.extensions import db
from coop.formatting import local_today, ui_is_english, ui_month
from coop.i18n import N_
from coop.orgs.models import Organization
from coop.reports import jobs, operations as ops, queries
from coop.reports.charts import monthly_bars_svg
from coop.reports.models import REPORT_KIND_LABELS, MonthlyReport, ReportKind, ReportRun, RunStatus
from coop.reports.pdf import thumbnail_data_uri
from coop.reports.permissions import (
    can_run_month_batch,
    can_see_reports,
    can_view_report,
    can_view_subject,
    visible_reports_filter,
)
from coop.reports.progress import STATUS_LABELS, month_bounds
from coop.reports.uitext import ui_text
from coop.web import add_nav, page_arg

bp = Blueprint("reports", __name__, url_prefix="/reports")

add_nav("reports.index", N_("月度报告"), can_see_reports, order=45)

PER_PAGE = 30


@bp.app_template_filter("ui_text")
def _ui_text_filter(value):
    """Report and cockpit texts computed once in Chinese (coop.reports.uitext), in the reader's language."""
    return ui_text(value)


# --- screens in the interface language (the data and the PDFs stay Chinese) -------------------------------

# The second line of a report's title (queries.REPORT_NOUNS), for screens.
_UI_HEADINGS = {
    "agreement": N_("%(month)s结对共建月度报告"),
    "organization": N_("%(month)s党建共建月度报告"),
    "committee": N_("%(month)s党建共建工作月度报告"),
}
_EN_MONTHS_SHORT = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _ui_heading(data) -> str:
    """2026年10月结对共建月度报告 in Chinese (the same words as the PDF), translated in English."""
    return _(_UI_HEADINGS[data.kind], month=ui_month(data.period.year, data.period.month))


def _ui_title(data) -> str:
    """The page title: the report's printed title in Chinese, "<subject> · <heading>" in English."""
    return _("%(subject)s%(heading)s", subject=ui_text(data.subject_name), heading=_ui_heading(data))


def _chart(points) -> str:
    """The 12-month bars with their texts in the interface language (the PDF draws the Chinese ones)."""
    if not ui_is_english():
        return monthly_bars_svg(points)
    labels = [_EN_MONTHS_SHORT[p.month - 1] + (f" {p.year}" if p.month == 1 or i == 0 else "")
              for i, p in enumerate(points)]
    return monthly_bars_svg(points, label=_("近12个月活动开展情况"), labels=labels,
                            legend=(_("已确认"), _("待确认或有异议"), _("柱顶数字为当月开展活动次数")))


def _month_or_404(text: str) -> tuple[int, int]:
    try:
        return queries.parse_month(text)
    except ValueError:
        abort(404)


def _recent_months(count: int = 12) -> list[str]:
    """The last `count` completed months, newest first, as 2026-10 keys (for month pickers)."""
    y, m = queries.last_completed_month(local_today())
    return [queries.month_key(*queries.shift_month(y, m, -i)) for i in range(count)]


def _subject_url(kind: ReportKind, subject_id: int | None, month: str) -> str:
    if kind is ReportKind.agreement:
        return url_for("reports.agreement_month", agreement_id=subject_id, month=month)
    if kind is ReportKind.organization:
        return url_for("reports.organization_month", org_id=subject_id, month=month)
    return url_for("reports.committee_month", month=month, org=subject_id)


def _report_url(report: MonthlyReport) -> str:
    subject_id = report.agreement_id if report.kind is ReportKind.agreement else report.organization_id
    return _subject_url(report.kind, subject_id, report.month_key)


def _organization_subjects(organization_id: int, month: str) -> tuple[list[tuple[int, str]], str]:
    """([(agreement id, title)] of the organization's agreements in force in the month, the organization's name).

    Issue 10: the archive list shows these on every visit; they are data only (no date but the month's), so
    they are memoised per data generation instead of loading the agreements, their parties and organizations."""
    def compute():
        first, last = month_bounds(*queries.parse_month(month))
        agreements = db.session.execute(
            sa.select(Agreement.id, Agreement.title)
            .where(queries.active_in_month_filter(first, last),
                   Agreement.id.in_(sa.select(AgreementParty.agreement_id)
                                    .where(AgreementParty.organization_id == organization_id)))
            .order_by(Agreement.id)  # the order of queries.agreements_in_month
        ).all()
        name = db.session.execute(sa.select(Organization.name).where(Organization.id == organization_id)).scalar_one()
        return [(a_id, title) for a_id, title in agreements], name

    return memoized("reports.organization_subjects", (organization_id, month), compute, pool="personal")


def _my_subjects(user, month: str) -> list[dict]:
    """Quick links to the reports this user is most likely to want (their organization's and scope's)."""
    links = []
    if user.organization_id is not None:
        agreements, org_name = _organization_subjects(user.organization_id, month)
        for a_id, title in agreements:
            links.append({"label": title, "kind": REPORT_KIND_LABELS[ReportKind.agreement],
                          "url": _subject_url(ReportKind.agreement, a_id, month)})
        links.append({"label": org_name, "kind": REPORT_KIND_LABELS[ReportKind.organization],
                      "url": _subject_url(ReportKind.organization, user.organization_id, month)})
    root = committee_scope_root(user)
    if root is not None:
        links.append({"label": root.name, "kind": REPORT_KIND_LABELS[ReportKind.committee],
                      "url": _subject_url(ReportKind.committee, root.id, month)})
    if user.is_admin:
        for org in queries.committee_scope_roots():
            if root is None or org.id != root.id:
                links.append({"label": org.name, "kind": REPORT_KIND_LABELS[ReportKind.committee],
                              "url": _subject_url(ReportKind.committee, org.id, month)})
        links.append({"label": _("全平台"), "kind": REPORT_KIND_LABELS[ReportKind.committee],
                      "url": _subject_url(ReportKind.committee, None, month)})
    return links


@bp.route("/")
@login_required
def index():
    """The archive list (what the user may see), quick links to this month's reports, month batches."""
    require(can_see_reports(current_user))
    months = _recent_months()
    stmt = (
        sa.select(MonthlyReport)
        .where(visible_reports_filter(current_user))
        .order_by(MonthlyReport.year.desc(), MonthlyReport.month.desc(), MonthlyReport.kind,
                  MonthlyReport.subject_key, MonthlyReport.version.desc())
    )
    month = request.args.get("month", "")
    if month:
        try:
            y, m = queries.parse_month(month)
        except ValueError:
            month = ""
        else:
            stmt = stmt.where(MonthlyReport.year == y, MonthlyReport.month == m)
    kind = request.args.get("kind", "")
    if kind in {k.value for k in ReportKind}:
        stmt = stmt.where(MonthlyReport.kind == ReportKind(kind))
    else:
        kind = ""
    page = cache.paginate(stmt.options(selectinload(MonthlyReport.created_by)), page=page_arg(), per_page=PER_PAGE)
    runs = []
    if can_run_month_batch(current_user):
        runs = db.session.execute(sa.select(ReportRun).order_by(ReportRun.id.desc()).limit(5)).scalars().all()
    quick_month = month if month in months else months[0]
    return render_template(
        "reports/index.html", page=page, months=months, month=month, kind=kind, kinds=REPORT_KIND_LABELS,
        quick_month=quick_month, quick_links=_my_subjects(current_user, quick_month), runs=runs,
        can_batch=can_run_month_batch(current_user), report_url=_report_url, is_stale=ops.is_stale,
        run_message=_run_message,
    )


@bp.route("/<int:report_id>/download")
@login_required
def download(report_id):
    """An archived PDF, by id, after the permission check (404 unknown, 403 not yours)."""
    report = get_or_404(MonthlyReport, report_id)
    require(can_view_report(current_user, report))
    path = ops.archive_path(report)
    if not path.is_file():
        current_app.logger.error("archived report %s missing at %s", report.id, path)
        abort(404)
    resp = send_file(path, mimetype="application/pdf", as_attachment=request.args.get("inline") != "1",
                     download_name=ops.export_file_name(report), max_age=0, etag=report.sha256)
    resp.headers["X-Content-SHA256"] = report.sha256
    return resp


def _page_context(kind: ReportKind, subject_obj, month: str):
    """Load the month's data for an on-screen report (a running month is shown up to today)."""
    y, m = _month_or_404(month)
    today = local_today()
    if date(y, m, 1) > today:
        abort(404)
    subject = {ReportKind.agreement: ops.agreement_subject, ReportKind.organization: ops.organization_subject,
               ReportKind.committee: ops.committee_subject}[kind](subject_obj)
    complete = (y, m) <= queries.last_completed_month(today)
    versions = ops.versions_of(subject, y, m)
    prev_key = queries.month_key(*queries.shift_month(y, m, -1))
    next_key = queries.month_key(*queries.shift_month(y, m, 1)) if not (y, m) >= (today.year, today.month) else None
    return {
        "subject": subject, "month": month, "complete": complete, "versions": versions,
        "next_version": (versions[0].version + 1) if versions else 1,
        "prev_month": prev_key, "next_month": next_key, "months": _recent_months(),
        "status_labels": STATUS_LABELS, "symbols": queries.STATUS_SYMBOLS, "year": y, "month_number": m,
        "ui_heading": _ui_heading, "ui_title": _ui_title,
    }


@bp.route("/agreements/<int:agreement_id>/<month>")
@login_required
def agreement_month(agreement_id, month):
    """An agreement's report on screen: the same figures as its PDF; url_for(..., month='2026-10')."""
    agreement = get_or_404(Agreement, agreement_id)
    require(can_view_subject(current_user, ReportKind.agreement, agreement))
    ctx = _page_context(ReportKind.agreement, agreement, month)
    data = queries.agreement_report_data(agreement, ctx["year"], ctx["month_number"])
    upload_dir = current_app.config["UPLOAD_DIR"]
    photos = [(a, uri) for a in data.activities for t in a.thumbnails if (uri := thumbnail_data_uri(upload_dir, t.path))]
    return render_template("reports/agreement.html", data=data, chart=_chart(data.chart), photos=photos,
                           agreement=agreement, **ctx)


@bp.route("/organizations/<int:org_id>/<month>")
@login_required
def organization_month(org_id, month):
    """An organization's report on screen."""
    org = get_or_404(Organization, org_id)
    require(can_view_subject(current_user, ReportKind.organization, org))
    ctx = _page_context(ReportKind.organization, org, month)
    data = queries.organization_report_data(org, ctx["year"], ctx["month_number"])
    return render_template("reports/organization.html", data=data, chart=_chart(data.chart), **ctx)


@bp.route("/committee/<month>")
@login_required
def committee_month(month):
    """A committee report on screen: ?org=<id> for a reviewer's scope, no org for the whole platform (admins)."""
    org_id = request.args.get("org")
    org = get_or_404(Organization, org_id) if org_id else None
    require(can_view_subject(current_user, ReportKind.committee, org))
    ctx = _page_context(ReportKind.committee, org, month)
    data = queries.committee_report_data(org, ctx["year"], ctx["month_number"])
    return render_template("reports/committee.html", data=data, chart=_chart(data.chart), **ctx)


@bp.route("/generate", methods=["POST"])
@login_required
def generate():
    """Generate one report now (next version) and go back to its page saying which version was made."""
    try:
        kind = ReportKind(request.form.get("kind", ""))
        year, month = queries.parse_month(request.form.get("month", ""))
        raw_id = request.form.get("subject_id") or None
        subject_id = int(raw_id) if raw_id is not None else None
    except ValueError:
        abort(400)
    if subject_id is not None and not -(2**63) <= subject_id < 2**63:  # no such row; SQLite cannot bind it (500)
        abort(404)
    try:
        subject, obj = ops.subject_for(kind, subject_id)
    except ops.ReportError:
        abort(404)
    require(can_view_subject(current_user, kind, obj))
    back = _subject_url(kind, subject_id, queries.month_key(year, month))
    try:
        report = ops.generate_report(kind, subject_id, year, month, actor=current_user)
        db.session.commit()
    except ops.ReportError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(back)
    if report.version > 1:
        flash(_("已生成第 %(version)s 版：%(title)s（此前的版本仍保留在存档中）", version=report.version, title=report.title),
              "success")
    else:
        flash(_("已生成第 %(version)s 版：%(title)s", version=report.version, title=report.title), "success")
    return redirect(back)


# --- month batches ---------------------------------------------------------------------------------------


@bp.route("/runs", methods=["POST"])
@login_required
def start_run():
    """Start a whole month's batch in the background (admins) and show its progress page."""
    require(can_run_month_batch(current_user))
    text = request.form.get("month", "")
    try:
        year, month = queries.parse_month(text)
    except ValueError:
        flash(_("月份格式不正确：“%(text)s”，应为 2026-10 这样的形式。", text=text), "error")
        return redirect(url_for("reports.index"))
    try:
        run = ops.start_report_run(year, month, actor=current_user, force=request.form.get("force") == "1")
        db.session.commit()
    except ops.ReportError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect(url_for("reports.index"))
    jobs.launch_report_run(current_app._get_current_object(), run.id)
    return redirect(url_for("reports.run", run_id=run.id))


def _run_message(run: ReportRun) -> str:
    """A batch's last line for its pages: as stored (Chinese) in Chinese; in another language said again from
    the run's counters (the stored line is written by the background job, outside any request)."""
    if not ui_is_english():
        return run.message
    if ops.is_stale(run) or run.message.startswith("已中断"):
        return _("已中断（处理进程已停止），可重新生成")
    if run.status is RunStatus.running:
        if not run.total and not run.done:
            return _("等待开始")
        return _("已处理 %(done)s / %(total)s 份：新生成 %(created)s 份，失败 %(failed)s 份", done=run.done,
                 total=run.total, created=run.created, failed=run.failed)
    if run.message.startswith("批量生成失败："):
        return _("批量生成失败：%(error)s", error=run.message.split("：", 1)[1])
    return _("完成：新生成 %(created)s 份，已存在 %(skipped)s 份，失败 %(failed)s 份", created=run.created,
             skipped=max(0, run.done - run.created - run.failed), failed=run.failed)


def _run_json(run: ReportRun) -> dict:
    """A batch's state for its page and the page's polling (labels and message in the reader's language)."""
    stale = ops.is_stale(run)
    status = "failed" if stale else run.status.value
    return {
        "id": run.id, "month": run.month_key, "status": status,
        "status_label": _("已中断") if stale else run.status.ui_label,
        "total": run.total, "done": run.done, "created": run.created, "failed": run.failed,
        "percent": round(100 * run.done / run.total) if run.total else (100 if status != "running" else 0),
        "message": _run_message(run), "finished": status != "running",
        "list_url": url_for("reports.index", month=run.month_key),
    }


@bp.route("/runs/<int:run_id>")
@login_required
def run(run_id):
    """A month batch's progress page (polled by static/js/reports.js; can be left and reopened)."""
    require(can_run_month_batch(current_user))
    report_run = get_or_404(ReportRun, run_id)
    return render_template("reports/run.html", run=report_run, state=_run_json(report_run))


@bp.route("/runs/<int:run_id>/progress")
@login_required
def run_progress(run_id):
    """A month batch's counters as JSON."""
    require(can_run_month_batch(current_user))
    report_run = get_or_404(ReportRun, run_id)
    resp = jsonify(_run_json(report_run))
    resp.headers["Cache-Control"] = "no-store"
    return resp
