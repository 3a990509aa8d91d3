"""The cockpit and the scores as .xlsx, the way committees keep them (coop.spreadsheets writes the file)."""
from __future__ import annotations

from typing import IO, Iterable

from coop.categories import CATEGORY_BY_CODE
from coop.reports.queries import STATUS_SYMBOLS
from coop.review.queries import Cockpit
from coop.review.scoring import OrgScore
from coop.spreadsheets import write_xlsx

COCKPIT_HEADERS = (
    "协议编号", "协议名称", "协议各方", "合作方关系", "类别", "本期开展", "本期已确认", "待确认", "有异议",
    "年度约定次数", "本年目标", "截至期末应完成", "年度累计（已确认）", "状态",
)
SCORE_HEADERS = ("组织", "项目", "次数", "每次分值", "小计", "说明")


def cockpit_rows(cockpit: Cockpit) -> Iterable[list]:
    """One row per pairing × category shown, in the cockpit's order, with the status as text."""
    for row in cockpit.rows:
        a = row.agreement
        for code, p in row.cells.items():
            yield [
                a.number or "", a.title, "、".join(o.name for o in row.parties), "、".join(row.relations),
                CATEGORY_BY_CODE[code].name, p.held, p.confirmed, p.pending, p.disputed, p.commitment, p.target,
                p.expected, p.year_to_date, f"{STATUS_SYMBOLS[p.status]} {p.status_label}",
            ]


def write_cockpit_xlsx(stream: IO[bytes], cockpit: Cockpit) -> int:
    """Write the cockpit of a period to `stream`; returns the number of data rows."""
    title = f"党建共建进度 {cockpit.period.label}"
    return write_xlsx(stream, title, COCKPIT_HEADERS, cockpit_rows(cockpit),
                      column_widths=[14, 36, 48, 16, 12, 10, 12, 10, 10, 14, 10, 16, 18, 14])


def score_rows(scores: Iterable[OrgScore]) -> Iterable[list]:
    """Each organization's rule lines, adjustments and total — the same lines as the "why this score" page."""
    for s in scores:
        for line in s.lines:
            yield [s.org_name, line.label, line.count, line.points, line.subtotal, f"规则来源：{line.source}"]
        for adj in s.adjustments:
            yield [s.org_name, "人工调整", 1, adj.points, adj.points,
                   f"{adj.reason}（{adj.by}，计入 {adj.applies_on.isoformat()}）"]
        yield [s.org_name, "合计", None, None, s.total, ""]


def write_scores_xlsx(stream: IO[bytes], scores: Iterable[OrgScore], period_label: str) -> int:
    """Write the score breakdowns of a period to `stream`; returns the number of data rows."""
    return write_xlsx(stream, f"共建积分 {period_label}", SCORE_HEADERS, score_rows(scores),
                      column_widths=[36, 28, 8, 10, 8, 60])
