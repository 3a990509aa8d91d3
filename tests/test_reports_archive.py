"""The archive (versions, hashes, files never changed), month generation, the schedule and the CLI."""
import hashlib
import os
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from coop.audit.models import AuditEntry
from coop.extensions import db
from coop.reports import operations as ops
from coop.reports.jobs import generate_month, run_monthly_reports
from coop.reports.models import MonthlyReport, ReportKind

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _reports(**where):
    stmt = sa.select(MonthlyReport).order_by(MonthlyReport.id)
    for k, v in where.items():
        stmt = stmt.where(getattr(MonthlyReport, k) == v)
    return db.session.execute(stmt).scalars().all()


def test_generate_report_archives_file_with_its_hash(report_month, app, make_user):
    user = report_month.ops_liaison
    report = ops.generate_report(ReportKind.agreement, report_month.agreement.id, 2026, 10, actor=user)
    db.session.commit()
    path = ops.archive_path(report)
    data = path.read_bytes()
    assert data.startswith(b"%PDF-") and report.byte_size == len(data)
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert path.is_relative_to(Path(app.config["ARCHIVE_DIR"])) and not Path(report.file_path).is_absolute()
    assert (report.kind, report.agreement_id, report.organization_id, report.version) == (
        ReportKind.agreement, report_month.agreement.id, None, 1)
    assert report.created_by_id == user.id and report.page_count == 2
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # archived files are read-only
    audit = db.session.execute(sa.select(AuditEntry).where(AuditEntry.kind == "report.generated")).scalar_one()
    assert "（第1版）" in audit.summary and audit.target_id == report.id


def test_regenerating_makes_version_two_and_leaves_version_one_untouched(report_month):
    v1 = ops.generate_report(ReportKind.agreement, report_month.agreement.id, 2026, 10)
    db.session.commit()
    before = ops.archive_path(v1).read_bytes()
    v2 = ops.generate_report(ReportKind.agreement, report_month.agreement.id, 2026, 10)
    db.session.commit()
    assert v2.version == 2 and v2.file_path != v1.file_path
    assert ops.archive_path(v1).read_bytes() == before and hashlib.sha256(before).hexdigest() == v1.sha256
    assert [r.version for r in ops.versions_of(ops.agreement_subject(report_month.agreement), 2026, 10)] == [2, 1]


def test_a_failed_transaction_leaves_no_file(report_month, app):
    report = ops.generate_report(ReportKind.organization, report_month.ops.id, 2026, 10)
    path = ops.archive_path(report)
    assert path.exists()
    db.session.rollback()
    assert not path.exists()
    assert _reports() == []


def test_archived_files_are_never_overwritten(app, tmp_path):
    target = tmp_path / "a.pdf"
    ops._write_new_file(target, b"%PDF-1")
    with pytest.raises(FileExistsError):
        ops._write_new_file(target, b"%PDF-2")
    assert target.read_bytes() == b"%PDF-1" and os.listdir(tmp_path) == ["a.pdf"]  # no temp file left


@pytest.mark.parametrize("year, month", [(2026, 11), (2026, 12)])
def test_running_or_future_months_are_refused(report_month, year, month):
    with pytest.raises(ops.ReportError, match="尚未结束"):
        ops.check_month_reportable(year, month, today=datetime(2026, 11, 22).date())


def test_agreement_outside_its_term_is_refused(report_month, make_agreement):
    from datetime import date

    later = make_agreement(starts_on=date(2026, 11, 1), ends_on=date(2027, 10, 31))
    with pytest.raises(ops.ReportError, match="不在有效期内"):
        ops.generate_report(ReportKind.agreement, later.id, 2026, 10)


def test_month_subjects(report_month):
    keys = [s.key for s in ops.month_subjects(2026, 10)]
    a, q = report_month.agreement.id, report_month.quiet.id
    orgs = sorted([report_month.ops.id, report_month.cdc.id, report_month.sales.id, report_month.school.id])
    assert keys == [f"agreement:{a}", f"agreement:{q}", *[f"organization:{o}" for o in orgs],
                    f"committee:{report_month.committee_org.id}", "committee:*"]


def test_generate_month_is_idempotent_and_force_makes_new_versions(report_month, fast_render):
    seen = []
    first = generate_month(2026, 10, processes=1, progress=lambda p: seen.append((p.done, p.total, p.created)))
    assert first.progress.created == 8 and first.progress.failed == 0 and len(first.report_ids) == 8
    assert seen[0] == (0, 8, 0) and seen[-1] == (8, 8, 8)
    kinds = sorted(r.kind.value for r in _reports())
    assert kinds == ["agreement"] * 2 + ["committee"] * 2 + ["organization"] * 4
    platform = _reports(subject_key="committee:*")[0]
    assert platform.organization_id is None and platform.created_by_id is None
    again = generate_month(2026, 10, processes=1)
    assert (again.progress.created, again.progress.skipped) == (0, 8) and len(_reports()) == 8
    forced = generate_month(2026, 10, processes=1, force=True)
    assert forced.progress.created == 8 and sorted({r.version for r in _reports()}) == [1, 2]
    for r in _reports():
        assert hashlib.sha256(ops.archive_path(r).read_bytes()).hexdigest() == r.sha256
    assert fast_render.count(f"agreement:{report_month.agreement.id}") == 2  # rendered once per version


def test_generate_month_uses_a_pool_of_two_processes(report_month):
    result = generate_month(2026, 10, processes=2)
    assert result.progress.created == 8 and result.failures == []
    reports = _reports()
    assert len(reports) == 8 and all(ops.archive_path(r).read_bytes()[:5] == b"%PDF-" for r in reports)


def test_one_broken_report_does_not_stop_the_month(report_month, fast_render, monkeypatch):
    real = ops.render_subject

    def flaky(subject, *args, **kwargs):
        if subject.kind is ReportKind.organization and subject.organization_id == report_month.cdc.id:
            raise RuntimeError("模拟的渲染错误")
        return real(subject, *args, **kwargs)

    monkeypatch.setattr(ops, "render_subject", flaky)
    result = generate_month(2026, 10, processes=1)
    assert (result.progress.created, result.progress.failed) == (7, 1)
    assert "模拟的渲染错误" in result.failures[0]
    # The next scheduled run makes only the missing one.
    monkeypatch.setattr(ops, "render_subject", real)
    assert generate_month(2026, 10, processes=1).progress.created == 1


def _at(day, hour=2):
    return datetime(2026, 11, day, hour, 0, tzinfo=SHANGHAI)


def test_schedule_makes_each_month_once(report_month, app, fast_render):
    first = run_monthly_reports(app, now=_at(1))
    assert (first.year, first.month, first.progress.created) == (2026, 10, 8) and len(fast_render) == 8
    second = run_monthly_reports(app, now=_at(1, 3))
    assert second.progress.created == 0 and len(_reports()) == 8
    assert db.session.execute(sa.select(sa.func.count()).select_from(AuditEntry).where(
        AuditEntry.kind == "report.month_generated")).scalar() == 1  # a run with nothing to do leaves no trace


def test_schedule_catches_up_after_downtime_once(report_month, app, fast_render):
    # The machine was off on the 1st; the scheduler starts on the 5th.
    late = run_monthly_reports(app, now=_at(5, 9))
    assert (late.year, late.month, late.progress.created) == (2026, 10, 8)
    assert run_monthly_reports(app, now=_at(5, 10)).progress.created == 0 and len(fast_render) == 8
    assert {(r.year, r.month) for r in _reports()} == {(2026, 10)}


def test_schedule_uses_the_shanghai_calendar(report_month, app, fast_render):
    # 2026-10-31 17:30 UTC is already 1 November in Shanghai: October is complete.
    result = run_monthly_reports(app, now=datetime(2026, 10, 31, 17, 30, tzinfo=timezone.utc))
    assert (result.year, result.month) == (2026, 10)
    # …while 2026-10-31 15:30 UTC is still 31 October there: the newest complete month is September.
    before = run_monthly_reports(app, now=datetime(2026, 10, 31, 15, 30, tzinfo=timezone.utc))
    assert (before.year, before.month) == (2026, 9)


def test_cli_writes_every_report_into_the_folder(report_month, app, tmp_path, fast_render):
    out = tmp_path / "out"
    runner = app.test_cli_runner()
    result = runner.invoke(args=["reports", "monthly", "--month", "2026-10", "--out", str(out), "--processes", "1"])
    assert result.exit_code == 0, result.output
    assert "[0/8]" in result.output and "[8/8]" in result.output and "新生成：" in result.output
    pdfs = sorted(p.name for p in out.glob("*.pdf"))
    assert len(pdfs) == 8 and any("运维检修党支部与疾控中心第一党支部" in n for n in pdfs)
    sums = (out / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    for line in sums:
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    again = runner.invoke(args=["reports", "monthly", "--month", "2026-10", "--out", str(out), "--processes", "1"])
    assert again.exit_code == 0 and "新生成 0 份，已存在 8 份" in again.output
    bad = runner.invoke(args=["reports", "monthly", "--month", "2026-13", "--out", str(out)])
    assert bad.exit_code != 0 and "月份格式不正确" in bad.output
