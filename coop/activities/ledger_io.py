"""The 工作台账 as committees keep it: export to .xlsx / .csv, import from the same .xlsx layout.

One row per activity, Chinese headers, dates as 2026年11月22日. Cells go through coop.spreadsheets, so a
title such as "=1+2" stays literal text in both formats.

Import is all-or-nothing: every row is checked first with the same rules as the 记录活动 form, each bad
row is reported by its Excel line number, and nothing is written unless every row is good. Imported
activities are logged by the importing liaison for their own party, so the partners confirm them as
usual. The columns 序号, 确认情况, 记录人 and 所属协议 are informative only on import (the importer
becomes the recorder, confirmations start pending, the target agreement is the one chosen). Rows whose
状态 is 已撤回 are skipped and listed, so a whole exported ledger can be imported into another agreement.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any, Callable, Iterable

from agreements.models import Agreement
from coop.activities.models import Activity, ActivityStatus
from coop.activities.operations import (
    ActivityRefused,
    all_category_settings,
    logged_entry,
    new_activity,
    validate_activity,
)
from coop.activities.permissions import can_import_into
from coop.audit.operations import Entry, record_many
from coop.auth.models import User
from coop.categories import CATEGORY_BY_CODE, CATEGORIES
from coop.extensions import db
from coop.formatting import cn_date, local_today
from coop.spreadsheets import HeaderMismatch, SpreadsheetError, read_xlsx_rows, write_csv, write_xlsx

LEDGER_HEADERS: tuple[str, ...] = (
    "序号", "日期", "类别", "活动名称", "地点", "参与组织", "党员人数", "其他人数",
    "活动内容", "活动成效", "状态", "确认情况", "记录人", "所属协议",
)
COLUMN_WIDTHS = (6, 16, 10, 30, 20, 36, 9, 9, 50, 40, 10, 28, 18, 30)
MAX_IMPORT_ROWS = 2000

_ORG_SEPARATORS = re.compile(r"[、，,；;\n]+")
_CN_DATE = re.compile(r"^\s*(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日?\s*$")
_DASH_DATE = re.compile(r"^\s*(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})\s*$")
_CATEGORY_BY_NAME = {c.name: c.code for c in CATEGORIES}


class LedgerImportRejected(Exception):
    """The file cannot be imported; `errors` lists (line number, Chinese message), nothing was written."""

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = errors
        super().__init__("；".join(f"第 {line} 行：{msg}" if line else msg for line, msg in errors[:20]))

    @property
    def messages(self) -> list[str]:
        """One line per problem, ready to show."""
        return [f"第 {line} 行：{msg}" if line else msg for line, msg in self.errors]


@dataclass
class ImportResult:
    """What an import did: the activities created and the rows skipped (line, reason)."""

    created: list[Activity] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class LedgerPlan:
    """A file that passed every check: the rows to log (line, log_activity keywords) and the rows skipped."""

    total: int  # data rows in the file
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (line, reason)


# progress(stage, done, of): stage "checking" (rows of the file) or "writing" (rows to log)
Progress = Callable[[str, int, int], None]


# --- export ----------------------------------------------------------------------------------------------------


def _confirmation_text(activity: Activity) -> str:
    if not activity.confirmations:
        return "—"
    parts = [f"{c.organization.name}{c.state.label}" for c in activity.confirmations]
    return f"{activity.confirmation.label}（{'；'.join(parts)}）"


def _status_text(activity: Activity) -> str:
    if activity.status is ActivityStatus.withdrawn and activity.withdrawn_reason:
        return f"{activity.status.label}（{activity.withdrawn_reason}）"
    return activity.status.label


def _participants_in_agreement_order(activity: Activity) -> list[str]:
    """Participants in the order the parties appear in the activity's (first) agreement, then by name."""
    position: dict[int, int] = {}
    for link in activity.agreement_links:
        for party in link.agreement.parties:
            position.setdefault(party.organization_id, len(position))
    rows = sorted(activity.participants, key=lambda p: (position.get(p.organization_id, len(position)), p.organization.name))
    return [p.organization.name for p in rows]


def ledger_row(number: int, activity: Activity) -> list[Any]:
    """One 工作台账 row for `activity` (participants, confirmations, recorder and agreements preloaded)."""
    recorder = activity.created_by.display_name if activity.created_by else ""
    if activity.organizer_org is not None:
        recorder = f"{recorder}（{activity.organizer_org.name}）"
    return [
        number,
        cn_date(activity.held_on),
        CATEGORY_BY_CODE[activity.category].name if activity.category in CATEGORY_BY_CODE else activity.category,
        activity.title,
        activity.place or "",
        "、".join(_participants_in_agreement_order(activity)),
        activity.party_member_count,
        activity.other_count,
        activity.summary or "",
        activity.outcome or "",
        _status_text(activity),
        _confirmation_text(activity),
        recorder,
        "；".join(l.agreement.title for l in activity.agreement_links),
    ]


def ledger_rows(activities: Iterable[Activity]) -> Iterable[list[Any]]:
    """Rows numbered from 1, in the order given."""
    for number, activity in enumerate(activities, start=1):
        yield ledger_row(number, activity)


def export_xlsx(activities: Iterable[Activity], stream: IO[bytes], sheet_title: str = "工作台账") -> int:
    """Write the 工作台账 workbook to `stream`; returns the number of activities written."""
    return write_xlsx(stream, sheet_title, LEDGER_HEADERS, ledger_rows(activities), COLUMN_WIDTHS)


def export_csv(activities: Iterable[Activity], stream: IO[bytes]) -> int:
    """Write the 工作台账 as UTF-8 CSV (with BOM, for Excel) to `stream`; returns the number of activities."""
    return write_csv(stream, LEDGER_HEADERS, ledger_rows(activities))


# --- import ----------------------------------------------------------------------------------------------------------


def parse_ledger_date(value: Any) -> date:
    """2026年11月22日, 2026-11-22, 2026/11/22 or an Excel date cell → date; ValueError otherwise."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value or "").strip()
    for pattern in (_CN_DATE, _DASH_DATE):
        m = pattern.match(text)
        if m:
            return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    raise ValueError(text)


def _parse_count(value: Any, label: str) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{label}应为整数")
    if isinstance(value, float):
        if value != int(value):
            raise ValueError(f"{label}应为整数")
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip().replace("人", "")
    if not re.fullmatch(r"\d+", text):
        raise ValueError(f"{label}应为整数，现为“{value}”")
    return int(text)


def _parse_status(value: Any, held_on: date | None) -> ActivityStatus | None:
    """None means: skip this row (withdrawn)."""
    text = str(value or "").strip()
    if not text:
        return ActivityStatus.held if held_on is None or held_on <= local_today() else ActivityStatus.planned
    if text.startswith("已撤回"):
        return None
    for status in (ActivityStatus.held, ActivityStatus.planned):
        if text in (status.label, status.value):
            return status
    raise ValueError(f"状态应为“已开展”或“计划中”，现为“{text}”")


def _org_lookup(agreement: Agreement) -> dict[str, int]:
    names: dict[str, int] = {}
    for party in agreement.parties:
        org = party.organization
        names[org.name] = org.id
        if org.short_name:
            names.setdefault(org.short_name, org.id)
    return names


def _row_to_values(row: dict[str, Any], agreement: Agreement, orgs: dict[str, int]) -> tuple[dict[str, Any] | None, str | None]:
    """Turn one sheet row into log_activity keywords; returns (values, None), (None, skip reason) or raises ValueError."""
    problems = []
    held_on = None
    if row.get("日期") in (None, ""):
        problems.append("缺少日期")
    else:
        try:
            held_on = parse_ledger_date(row["日期"])
        except ValueError:
            problems.append(f"日期“{row['日期']}”无法识别，应为 2026年11月22日 或 2026-11-22")
    category_text = str(row.get("类别") or "").strip()
    category = _CATEGORY_BY_NAME.get(category_text) or (category_text if category_text in CATEGORY_BY_CODE else None)
    if not category_text:
        problems.append("缺少类别")
    elif category is None:
        problems.append(f"类别“{category_text}”不是八联之一（" + "、".join(c.name for c in CATEGORIES) + "）")
    title = str(row.get("活动名称") or "").strip()
    if not title:
        problems.append("缺少活动名称")
    counts = {}
    for key, label in (("party_member_count", "党员人数"), ("other_count", "其他人数")):
        try:
            counts[key] = _parse_count(row.get(label), label)
        except ValueError as exc:
            problems.append(str(exc))
    try:
        status = _parse_status(row.get("状态"), held_on)
    except ValueError as exc:
        problems.append(str(exc))
        status = ActivityStatus.held
    org_text = str(row.get("参与组织") or "").strip()
    if org_text:
        org_ids = []
        for name in (n.strip() for n in _ORG_SEPARATORS.split(org_text)):
            if not name:
                continue
            if name not in orgs:
                problems.append(f"参与组织“{name}”不是协议“{agreement.title}”的签约方")
            else:
                org_ids.append(orgs[name])
    else:
        org_ids = list(agreement.party_org_ids)  # the form pre-checks every party too
    if problems:
        raise ValueError("；".join(problems))
    if status is None:
        return None, "已撤回的活动不导入"
    return {
        "held_on": held_on,
        "category": category,
        "title": title,
        "place": str(row.get("地点") or "").strip() or None,
        "organization_ids": org_ids,
        "summary": str(row.get("活动内容") or "").strip(),
        "outcome": str(row.get("活动成效") or "").strip(),
        "status": status,
        **counts,
    }, None


def check_ledger(actor: User, agreement: Agreement, stream: IO[bytes], *,
                 progress: Progress | None = None) -> LedgerPlan:
    """Pass 1 of an import: read the file and check every row with the 记录活动 rules; writes nothing.

    Raises LedgerImportRejected listing each bad row by line number. Calls `progress("checking", n, total)`
    once the file is read and after each row.
    """
    if not can_import_into(actor, agreement):
        raise LedgerImportRejected([(0, "只有生效中协议的联络员可以导入台账。")])
    try:
        rows = read_xlsx_rows(stream, LEDGER_HEADERS, max_rows=MAX_IMPORT_ROWS)
    except HeaderMismatch as exc:
        raise LedgerImportRejected([(1, str(exc).replace("（第 1 行）", ""))]) from None
    except SpreadsheetError as exc:
        raise LedgerImportRejected([(0, str(exc))]) from None
    if not rows:
        raise LedgerImportRejected([(0, "文件中没有活动数据（第 2 行起每行一条活动）。")])

    orgs = _org_lookup(agreement)
    settings = all_category_settings()
    errors: list[tuple[int, str]] = []
    plan = LedgerPlan(total=len(rows))
    if progress:
        progress("checking", 0, plan.total)
    for checked, (line, row) in enumerate(rows, start=1):
        try:
            values, skip = _row_to_values(row, agreement, orgs)
            if values is None:
                plan.skipped.append((line, skip))
            else:
                validate_activity(actor, agreements=[agreement], settings=settings, **values)
                plan.rows.append((line, values))
        except (ValueError, ActivityRefused) as exc:
            errors.append((line, str(exc)))
        if progress:
            progress("checking", checked, plan.total)
    if errors:
        raise LedgerImportRejected(errors)
    if not plan.rows:
        raise LedgerImportRejected([(0, "文件中没有可导入的活动（已撤回的活动不导入）。")])
    return plan


def write_ledger(actor: User, agreement: Agreement, plan: LedgerPlan, *, progress: Progress | None = None,
                 detail: dict[str, Any] | None = None) -> ImportResult:
    """Pass 2 of an import: log every checked row as the actor's activity (flushes, never commits).

    Each row is checked again as it is logged (the agreement may have changed since pass 1): a refusal
    raises LedgerImportRejected and the caller rolls back, so still nothing is written. Calls
    `progress("writing", n, rows)` before the first row and after each. `detail` is added to the audit entry.
    """
    result = ImportResult(skipped=list(plan.skipped))
    if progress:
        progress("writing", 0, len(plan.rows))
    # Every row is added first and flushed once at the end, so the ORM inserts each table's rows in a few
    # multi-row statements, and the audit entries are appended in one go: a flush and an audit append per row
    # held SQLite's write lock for 4.4 s over 2,000 rows, this for 1.3-1.6 s (every other writer waits meanwhile).
    settings = all_category_settings()
    with db.session.no_autoflush:
        for written, (line, values) in enumerate(plan.rows, start=1):
            try:
                result.created.append(new_activity(actor, agreements=[agreement], settings=settings, **values))
            except ActivityRefused as exc:
                raise LedgerImportRejected([(line, str(exc))]) from None
            if progress:
                progress("writing", written, len(plan.rows))
    db.session.flush()
    record_many([logged_entry(actor, activity) for activity in result.created] + [Entry(
        "activity.imported",
        f"从台账文件导入 {len(result.created)} 条活动到协议“{agreement.title}”",
        actor=actor, organization_id=actor.organization_id, target=agreement,
        detail={"agreement_id": agreement.id, "activity_ids": [a.id for a in result.created],
                "skipped_lines": [line for line, _ in result.skipped], **(detail or {})},
    )])
    return result


def import_ledger(actor: User, agreement: Agreement, stream: IO[bytes], *,
                  progress: Progress | None = None) -> ImportResult:
    """Import every row of a 工作台账 .xlsx into `agreement` as the actor's activities — all rows or none.

    Raises LedgerImportRejected listing each bad row by line number; writes nothing in that case.
    (coop.activities.jobs runs the two passes in separate transactions, with progress, for the screens.)
    """
    return write_ledger(actor, agreement, check_ledger(actor, agreement, stream, progress=progress), progress=progress)


def export_filename(label: str, extension: str, today: date | None = None) -> str:
    """A download name like 工作台账-运维检修党支部-20261122.xlsx (path characters removed)."""
    today = today or local_today()
    cleaned = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "", label).strip()[:60] or "台账"
    return f"工作台账-{cleaned}-{today:%Y%m%d}.{extension}"

