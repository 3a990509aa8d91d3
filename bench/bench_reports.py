"""Benchmark monthly reports on whatever data the configured database holds (prints figures; not a test).

    python bench/bench_reports.py [--month 2026-10] [--agreement ID] [--repeat 5] [--no-committee]

For an agreement report (the busiest agreement of the month unless --agreement is given) it prints the time
of the whole report (queries + HTML + PDF, as the archive makes it) and of WeasyPrint alone on the same final
HTML, wall-clock and CPU, the best of --repeat runs (the usual benchmark figure: the run least disturbed by
other processes; the median is shown too). Targets (issue 6): report ≤ 1.3 × WeasyPrint alone and < 0.5 s;
a group-wide committee report < 5 s on one core; memory < 500 MB. CPU time is shown because wall-clock on a
busy machine measures the neighbours too.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


class Timing:
    """Wall-clock and CPU seconds of repeated runs."""

    def __init__(self, walls: list[float], cpus: list[float]):
        self.wall, self.cpu = min(walls), min(cpus)
        self.wall_median, self.cpu_median = statistics.median(walls), statistics.median(cpus)

    def __str__(self) -> str:
        return f"{self.wall:.3f} s（CPU {self.cpu:.3f} s；中位数 {self.wall_median:.3f} s / CPU {self.cpu_median:.3f} s）"


def timed(fn, repeat: int):
    """Run fn `repeat` times; return (Timing, last result)."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        walls.append(time.perf_counter() - w0)
        cpus.append(time.process_time() - c0)
    return Timing(walls, cpus), result


def verdict(ok: bool) -> str:
    return "达标" if ok else "未达标"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--month", help="2026-10; default: the last completed month")
    parser.add_argument("--agreement", type=int, help="agreement id; default: the one with most activities that month")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-committee", action="store_true", help="skip the group-wide committee report")
    args = parser.parse_args()

    import sqlalchemy as sa

    from app import create_app
    from agreements.models import Agreement
    from coop.activities.models import Activity, ActivityAgreement
    from coop.extensions import db
    from coop.formatting import local_today
    from coop.pdf import render_pdf
    from coop.reports import queries
    from coop.reports.pdf import render_report, report_html
    from coop.reports.progress import month_bounds

    app = create_app()
    with app.app_context():
        year, month = queries.parse_month(args.month) if args.month else queries.last_completed_month(local_today())
        first, last = month_bounds(year, month)
        counts = {
            "organizations": "SELECT count(*) FROM organizations",
            "agreements": "SELECT count(*) FROM agreements",
            "activities": "SELECT count(*) FROM activities",
        }
        sizes = {k: db.session.execute(sa.text(q)).scalar() for k, q in counts.items()}
        print(f"数据库：{app.config['SQLALCHEMY_DATABASE_URI'].split('@')[-1]}")
        print("数据量：" + "，".join(f"{k} {v}" for k, v in sizes.items()) + f"；月份 {year}-{month:02d}；CPU {os.cpu_count()} 核")

        if args.agreement:
            agreement = db.session.get(Agreement, args.agreement)
        else:
            busiest = db.session.execute(
                sa.select(ActivityAgreement.agreement_id, sa.func.count())
                .join(Activity, Activity.id == ActivityAgreement.activity_id)
                .where(Activity.held_on >= first, Activity.held_on <= last)
                .group_by(ActivityAgreement.agreement_id).order_by(sa.func.count().desc()).limit(1)
            ).first()
            agreement = db.session.get(Agreement, busiest[0]) if busiest else db.session.execute(
                sa.select(Agreement).where(queries.active_in_month_filter(first, last)).limit(1)).scalar()
        if agreement is None:
            print("没有可用的协议数据：先运行 flask seed-demo 或导入数据。")
            return 1

        # Warm up: imports, fonts, caches — a long-running worker pays these once.
        render_report(queries.agreement_report_data(agreement, year, month), version=1)

        def full_report():
            data = queries.agreement_report_data(agreement, year, month)
            return render_report(data, version=1)

        full, rendered = timed(full_report, args.repeat)
        data_html, html = timed(lambda: report_html(queries.agreement_report_data(agreement, year, month), version=1), args.repeat)
        weasy, _ = timed(lambda: render_pdf(html), args.repeat)
        print(f"\n协议月度报告 #{agreement.id}（{agreement.title}）：{rendered.page_count} 页，{len(rendered.pdf) // 1024} KB")
        print(f"  完整报告（查询 + HTML + PDF）：{full}")
        print(f"  其中查询 + HTML：            {data_html}")
        print(f"  WeasyPrint 单独（同一 HTML）：{weasy}")
        print(f"  报告 / WeasyPrint：墙钟 {full.wall / weasy.wall:.2f}，CPU {full.cpu / weasy.cpu:.2f}（目标 ≤ 1.3，"
              f"{verdict(full.cpu / weasy.cpu <= 1.3)}）")
        print(f"  报告耗时目标 < 0.5 s：墙钟 {verdict(full.wall < 0.5)}，CPU {verdict(full.cpu < 0.5)}")

        if not args.no_committee:
            n = max(1, min(args.repeat, 3))
            c_full, c = timed(lambda: render_report(queries.committee_report_data(None, year, month), version=1), n)
            c_data, c_html = timed(lambda: report_html(queries.committee_report_data(None, year, month), version=1), n)
            c_weasy, _ = timed(lambda: render_pdf(c_html), n)
            print(f"\n全平台党委月度报告：{c.page_count} 页，{len(c.pdf) // 1024} KB，{len(queries.committee_report_data(None, year, month).agreements)} 对结对")
            print(f"  完整报告：{c_full}　目标 < 5 s：墙钟 {verdict(c_full.wall < 5)}，CPU {verdict(c_full.cpu < 5)}")
            print(f"  其中查询 + HTML：{c_data}")
            print(f"  WeasyPrint 单独：{c_weasy}")

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\n进程峰值内存：{peak:.0f} MB（目标 < 500 MB，{verdict(peak < 500)}）")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
