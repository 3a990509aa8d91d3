"""`flask reports monthly --month 2026-10 --out DIR [--force]`: every report of a month, archived and copied out."""
from __future__ import annotations

import shutil
from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import AppGroup

from coop.extensions import db

reports_cli = AppGroup("reports", help="月度报告：生成、导出。")


def register(app) -> None:
    """Attach `flask reports …` to the app."""
    app.cli.add_command(reports_cli)


@reports_cli.command("monthly")
@click.option("--month", "month_text", required=True, help="月份，例如 2026-10")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="导出目录")
@click.option("--force", is_flag=True, help="已存档的报告也重新生成（生成新版本，旧版本保留）")
@click.option("--processes", type=click.IntRange(1, 16), help="并行进程数（默认取配置 REPORTS_PROCESSES，否则 2）")
def monthly_command(month_text, out_dir, force, processes):
    """Generate (archive) every report of a month and write the newest versions into OUT."""
    from coop.reports.jobs import generate_month
    from coop.reports.models import MonthlyReport
    from coop.reports.operations import ReportError, archive_path, export_file_name, month_subjects
    from coop.reports.queries import parse_month

    try:
        year, month = parse_month(month_text)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--month") from None

    def show(p):
        width = len(str(p.total))
        click.echo(f"[{p.done:>{width}}/{p.total}] 新生成 {p.created} · 已存在 {p.skipped} · 失败 {p.failed}　{p.message}")

    try:
        result = generate_month(year, month, force=force, progress=show, processes=processes)
    except ReportError as exc:
        raise click.ClickException(str(exc)) from None

    out_dir.mkdir(parents=True, exist_ok=True)
    keys = {s.key for s in month_subjects(year, month)}
    newest = sa.select(MonthlyReport.subject_key, sa.func.max(MonthlyReport.version).label("v")).where(
        MonthlyReport.year == year, MonthlyReport.month == month).group_by(MonthlyReport.subject_key).subquery()
    reports = db.session.execute(
        sa.select(MonthlyReport).join(newest, sa.and_(MonthlyReport.subject_key == newest.c.subject_key,
                                                      MonthlyReport.version == newest.c.v))
        .order_by(MonthlyReport.kind, MonthlyReport.id)
    ).scalars().all()
    sums = []
    for report in reports:
        if report.subject_key not in keys:
            continue
        name = export_file_name(report)
        shutil.copyfile(archive_path(report), out_dir / name)
        sums.append(f"{report.sha256}  {name}")
    (out_dir / "SHA256SUMS").write_text("\n".join(sums) + "\n", encoding="utf-8")
    p = result.progress
    click.echo(f"完成：新生成 {p.created} 份，已存在 {p.skipped} 份，失败 {p.failed} 份；已导出 {len(sums)} 份到 {out_dir}")
    if p.worker_peak_mb:
        click.echo(f"生成进程峰值内存 {p.worker_peak_mb} MB")
    if p.failed:
        for line in result.failures:
            click.echo(line, err=True)
        raise click.ClickException(f"{p.failed} 份报告生成失败。")
