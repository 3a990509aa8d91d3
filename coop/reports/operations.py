"""Making and archiving monthly reports. Operations flush and audit; callers commit.

Archive consistency: the PDF file is written (atomically, never over an existing file) *before* its row is
flushed, and the file is registered with the session. If the transaction then rolls back, the file is
deleted again; if it commits, it stays. So a row never points at a missing file, and a failed transaction
leaves no stray file behind (a crash between the two can leave an orphan file, never a dangling row).
"""
from __future__ import annotations

import os
import re
import secrets
import tempfile
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import event
from sqlalchemy.orm import Session

from agreements.models import Agreement, AgreementParty
from coop.audit.operations import record
from coop.db import now_utc
from coop.extensions import db
from coop.formatting import local_today, ui_month
from coop.orgs.models import Organization
from coop.reports import queries
from coop.reports.models import MonthlyReport, ReportKind, ReportRun, RunStatus, subject_key
from coop.reports.pdf import RenderedReport, render_report
from coop.reports.progress import month_bounds

# A batch whose counters have not moved for this long is taken as interrupted (its process died).
STALE_RUN_AFTER = timedelta(minutes=15)


class ReportError(Exception):
    """A refusal fit to show to the user (in the interface language; Chinese outside a request)."""


# --- subjects ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What one report is about: an agreement, an organization, or a committee scope (None = platform)."""

    kind: ReportKind
    agreement_id: int | None
    organization_id: int | None
    name: str

    @property
    def key(self) -> str:
        return subject_key(self.kind, self.agreement_id, self.organization_id)

    @property
    def subject_id(self) -> int | None:
        return self.agreement_id if self.kind is ReportKind.agreement else self.organization_id


def agreement_subject(agreement: Agreement) -> Subject:
    """The subject of an agreement's report."""
    return Subject(ReportKind.agreement, agreement.id, None, agreement.title)


def organization_subject(org: Organization) -> Subject:
    """The subject of an organization's report."""
    return Subject(ReportKind.organization, None, org.id, org.name)


def committee_subject(root: Organization | None) -> Subject:
    """The subject of a committee report: a reviewer's organization, or None for the whole platform."""
    return Subject(ReportKind.committee, None, root.id if root else None, root.name if root else "全平台")


def month_subjects(year: int, month: int) -> list[Subject]:
    """Every report a month has: each agreement in force, each organization party to one, each committee
    scope (organizations with a committee reviewer) and the whole platform."""
    first, last = month_bounds(year, month)
    agreements = queries.agreements_in_month(first, last)
    subjects = [agreement_subject(a) for a in agreements]
    org_ids = sorted({p.organization_id for a in agreements for p in a.parties})
    orgs = {o.id: o for o in db.session.execute(sa.select(Organization).where(Organization.id.in_(org_ids))).scalars()}
    subjects += [organization_subject(orgs[i]) for i in org_ids]
    subjects += [committee_subject(root) for root in queries.committee_scope_roots()]
    subjects.append(committee_subject(None))
    return subjects


def subject_for(kind: ReportKind, subject_id: int | None) -> tuple[Subject, Agreement | Organization | None]:
    """Load a subject by kind and id; raises ReportError when it does not exist."""
    if kind is ReportKind.agreement:
        agreement = db.session.get(Agreement, subject_id) if subject_id is not None else None
        if agreement is None:
            raise ReportError(_("协议不存在。"))
        return agreement_subject(agreement), agreement
    org = db.session.get(Organization, subject_id) if subject_id is not None else None
    if subject_id is not None and org is None:
        raise ReportError(_("组织不存在。"))
    if kind is ReportKind.organization:
        if org is None:
            raise ReportError(_("组织报告需要指定组织。"))
        return organization_subject(org), org
    return committee_subject(org), org


# --- the archive -------------------------------------------------------------------------------------


def archive_root() -> Path:
    """ARCHIVE_DIR (instance/archive unless configured)."""
    return Path(current_app.config["ARCHIVE_DIR"])


def archive_path(report: MonthlyReport) -> Path:
    """The absolute path of an archived report's file."""
    return archive_root() / report.file_path


_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f]+')


def export_file_name(report: MonthlyReport) -> str:
    """A readable, file-system-safe name for downloads and exports: 2026-10-协议-12-<title>-v1.pdf."""
    kind = {"agreement": "协议", "organization": "组织", "committee": "党委"}[report.kind.value]
    title = _UNSAFE_NAME.sub("_", report.title).strip(" ._")[:120]
    return f"{report.month_key}-{kind}-{report.id}-{title}-v{report.version}.pdf"


def existing_versions(year: int, month: int) -> dict[str, int]:
    """{subject_key: highest archived version} for a month."""
    rows = db.session.execute(
        sa.select(MonthlyReport.subject_key, sa.func.max(MonthlyReport.version))
        .where(MonthlyReport.year == year, MonthlyReport.month == month)
        .group_by(MonthlyReport.subject_key)
    )
    return {key: int(v) for key, v in rows}


def versions_of(subject: Subject, year: int, month: int) -> list[MonthlyReport]:
    """Every archived version of one report, newest first."""
    return list(db.session.execute(
        sa.select(MonthlyReport)
        .where(MonthlyReport.subject_key == subject.key, MonthlyReport.year == year, MonthlyReport.month == month)
        .order_by(MonthlyReport.version.desc())
    ).scalars())


_NEW_FILES = "coop.reports.new_files"


@event.listens_for(Session, "after_commit")
def _keep_new_files(session):
    session.info.pop(_NEW_FILES, None)


@event.listens_for(Session, "after_rollback")
def _drop_new_files(session):
    for path in session.info.pop(_NEW_FILES, []):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _write_new_file(path: Path, data: bytes) -> None:
    """Write `path` atomically and read-only; refuses to replace an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".pdf")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o444)
        # link() fails if the name exists, so an archived file can never be overwritten — even by a race.
        os.link(tmp, path)
    finally:
        os.unlink(tmp)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)  # the new name survives a power cut once the row commits
    finally:
        os.close(dir_fd)


def store_report(subject: Subject, year: int, month: int, rendered: RenderedReport, *, version: int, title: str,
                 actor_id: int | None, created_at: datetime | None = None) -> MonthlyReport:
    """Archive a rendered PDF as `version`: file first, then the row (flushed, not committed)."""
    relative = f"reports/{year}/{month:02d}/{subject.key.replace(':', '-').replace('*', 'all')}-v{version}-{secrets.token_hex(4)}.pdf"
    path = archive_root() / relative
    _write_new_file(path, rendered.pdf)
    db.session.info.setdefault(_NEW_FILES, []).append(str(path))
    report = MonthlyReport(
        kind=subject.kind, agreement_id=subject.agreement_id, organization_id=subject.organization_id,
        subject_key=subject.key, year=year, month=month, version=version, title=title[:300],
        sha256=rendered.sha256, file_path=relative, byte_size=len(rendered.pdf), page_count=rendered.page_count,
        created_at=created_at or now_utc(), created_by_id=actor_id,
    )
    db.session.add(report)
    db.session.flush()
    return report


def render_subject(subject: Subject, year: int, month: int, *, version: int | None, generated_at: datetime) -> tuple[RenderedReport, str]:
    """Build a subject's report data and render it (reads the database, writes nothing); returns (pdf, title)."""
    data = queries.report_data(subject.kind.value, subject.subject_id, year, month)
    return render_report(data, version=version, generated_at=generated_at), data.title


def _audit_org_id(subject: Subject) -> int | None:
    if subject.kind is ReportKind.agreement:
        return db.session.execute(
            sa.select(AgreementParty.organization_id)
            .where(AgreementParty.agreement_id == subject.agreement_id)
            .order_by(AgreementParty.position).limit(1)
        ).scalar_one_or_none()
    return subject.organization_id


def check_month_reportable(year: int, month: int, today: date | None = None) -> None:
    """Refuse months that have not ended yet (a report is made only for a completed month)."""
    last_y, last_m = queries.last_completed_month(today or local_today())
    if (year, month) > (last_y, last_m):
        raise ReportError(_("%(month)s尚未结束，只能为已结束的月份生成报告。", month=ui_month(year, month)))
    if year < 2000:
        raise ReportError(_("月份无效。"))


def generate_report(kind: ReportKind, subject_id: int | None, year: int, month: int, *, actor=None) -> MonthlyReport:
    """Make one report now (synchronously) as the next version; flushes and audits, the caller commits."""
    check_month_reportable(year, month)
    subject, obj = subject_for(kind, subject_id)
    if kind is ReportKind.agreement:
        first, last = month_bounds(year, month)
        in_force = db.session.execute(
            sa.select(Agreement.id).where(Agreement.id == obj.id, queries.active_in_month_filter(first, last))
        ).first()
        if in_force is None:
            raise ReportError(_("该协议在%(month)s不在有效期内（或尚未生效），没有可报告的内容。", month=ui_month(year, month)))
    version = existing_versions(year, month).get(subject.key, 0) + 1
    made_at = now_utc()
    rendered, title = render_subject(subject, year, month, version=version, generated_at=made_at)
    report = store_report(subject, year, month, rendered, version=version, title=title,
                          actor_id=getattr(actor, "id", None), created_at=made_at)
    record(
        "report.generated", f"生成{title}（第{version}版）", actor=actor, organization_id=_audit_org_id(subject),
        target=report, detail={"kind": kind.value, "year": year, "month": month, "version": version,
                               "sha256": rendered.sha256},
    )
    return report


# --- batch runs started from the screen ---------------------------------------------------------------


def is_stale(run: ReportRun, now: datetime | None = None) -> bool:
    """A running batch whose counters stopped moving (its process is gone)."""
    return run.status is RunStatus.running and (now or now_utc()) - run.updated_at > STALE_RUN_AFTER


def start_report_run(year: int, month: int, *, actor, force: bool = False) -> ReportRun:
    """Record a new batch for a month (the caller commits, then launches it); refuses a second live one."""
    check_month_reportable(year, month)
    running = db.session.execute(
        sa.select(ReportRun).where(ReportRun.status == RunStatus.running).order_by(ReportRun.id)
    ).scalars().all()
    for run in running:
        if is_stale(run):
            run.status = RunStatus.failed
            run.finished_at = now_utc()
            run.message = "已中断（处理进程已停止），可重新生成"
        else:
            raise ReportError(_("%(month)s的批量生成正在进行，请等待其完成。", month=ui_month(run.year, run.month)))
    run = ReportRun(year=year, month=month, force=force, status=RunStatus.running, created_by_id=actor.id,
                    message="等待开始")
    db.session.add(run)
    db.session.flush()
    record("report.run_started", f"开始批量生成{year}年{month}月的月度报告" + ("（重新生成全部）" if force else ""),
           actor=actor, target=run, detail={"year": year, "month": month, "force": force})
    return run
