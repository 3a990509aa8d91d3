"""The 工作台账 as committees keep it: export to .xlsx / .csv, import from the same .xlsx layout.

One row per activity, Chinese headers, dates as 2026年11月22日. Cells go through coop.spreadsheets, so a
title such as "=1+2" stays literal text in both formats.

Import is all-or-nothing: every row is checked first with the same rules as the 记录活动 form, each bad
row is reported by its Excel line number, and nothing is written unless every row is good. Imported
activities are logged by the importing liaison for their own party, so the partners confirm them as
usual. The columns 序号, 确认情况, 记录人 and 所属协议 are informative only on import (the importer
becomes the recorder, confirmations start pending, the target agreement is the one chosen). Rows whose
状态 is 已撤回 are skipped and listed, so a whole exported ledger can be imported into another agreement.
So are duplicates: a row with the date, category and title (trimmed) of an activity the target agreement
already has (not withdrawn), and a row repeating an earlier row of the file — importing an agreement's own
export back into it therefore adds nothing. A file with nothing left to import is refused, saying why.

Messages are in the interface language of the moment (the importer's: coop.activities.jobs runs the checks
in it); the sheet's headers and cell values stay Chinese, they are the format.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import IO, Any, Callable, Iterable

import sqlalchemy as sa
from flask_babel import gettext as _

from agreements.models import Agreement
from coop.activities.models import Activity, ActivityAgreement, ActivityStatus
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
from coop.forms import clean_text
from coop.formatting import cn_date, local_today, ui_date
from coop.i18n import N_
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


def line_message(line: int, message: str) -> str:
    """A problem as listed ("第 3 行：…") in the interface language; one with the whole file (line 0) has no line."""
    return _("第 %(line)d 行：%(message)s", line=line, message=message) if line else message


class LedgerImportRejected(Exception):
    """The file cannot be imported; `errors` lists (line number, message in the interface language of the
    moment), nothing was written."""

    def __init__(self, errors: list[tuple[int, str]]):
        self.errors = errors
        super().__init__(_("；").join(line_message(line, msg) for line, msg in errors[:20]))

    @property
    def messages(self) -> list[str]:
        """One line per problem, ready to show."""
        return [line_message(line, msg) for line, msg in self.errors]


# Why a row was skipped (SkippedRow.kind); stored with a finished ImportRun, so the reason is worded when shown,
# in the reader's language.
WITHDRAWN, DUPLICATE_OF_ACTIVITY, DUPLICATE_OF_ROW = "withdrawn", "activity", "row"


@dataclass(frozen=True)
class SkippedRow:
    """A row not imported, and why: `kind` WITHDRAWN (no detail), DUPLICATE_OF_ACTIVITY (detail: the recorded
    activity's held_on ISO date, category code and title) or DUPLICATE_OF_ROW (detail: the earlier line)."""

    line: int
    kind: str
    detail: Any = None

    @property
    def is_duplicate(self) -> bool:
        return self.kind in (DUPLICATE_OF_ACTIVITY, DUPLICATE_OF_ROW)

    @property
    def reason(self) -> str:
        """Why the row was skipped, in the interface language."""
        if self.kind == DUPLICATE_OF_ACTIVITY:
            d = self.detail or {}
            category = CATEGORY_BY_CODE.get(d.get("category"))
            return _("与已登记的活动重复（%(date)s %(category)s “%(title)s”）",
                     date=ui_date(date.fromisoformat(d["held_on"])) if d.get("held_on") else "",
                     category=category.label if category else d.get("category", ""), title=d.get("title", ""))
        if self.kind == DUPLICATE_OF_ROW:
            return _("与第 %(line)d 行重复", line=int(self.detail))
        return _("已撤回的活动不导入")

    def to_json(self) -> list:
        """[line, kind, detail], as ImportRun.skipped_lines keeps it."""
        return [self.line, self.kind, self.detail]

    @classmethod
    def from_json(cls, value: Any) -> "SkippedRow":
        """Back from ImportRun.skipped_lines; a bare line number (runs recorded before duplicates were
        skipped) was a withdrawn row."""
        if isinstance(value, (list, tuple)):
            return cls(int(value[0]), str(value[1]) if len(value) > 1 else WITHDRAWN,
                       value[2] if len(value) > 2 else None)
        return cls(int(value), WITHDRAWN)


@dataclass
class ImportResult:
    """What an import did: the activities created and the rows skipped."""

    created: list[Activity] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)


@dataclass
class LedgerPlan:
    """A file that passed every check: the rows to log (line, log_activity keywords) and the rows skipped."""

    total: int  # data rows in the file
    rows: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)


def line_list(lines: Iterable[int], limit: int = 20) -> str:
    """Line numbers for a message: "2、5、9" (", " in English), the first `limit` then "…"."""
    lines = list(lines)
    text = _("、").join(str(line) for line in lines[:limit])
    return text + ("…" if len(lines) > limit else "")


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


def _parse_count(value: Any, column: str) -> int:
    if value is None or (isinstance(value, str) and not value.strip()):
        return 0
    if isinstance(value, bool):
        raise ValueError(_("%(column)s应为整数", column=column))
    if isinstance(value, float):
        if value != int(value):
            raise ValueError(_("%(column)s应为整数", column=column))
        return int(value)
    if isinstance(value, int):
        return value
    text = str(value).strip().replace("人", "")
    if not re.fullmatch(r"\d+", text):
        raise ValueError(_("%(column)s应为整数，现为“%(value)s”", column=column, value=value))
    return int(text)


def _parse_status(value: Any, held_on: date | None) -> ActivityStatus | None:
    """None means: skip this row (withdrawn)."""
    text = str(value or "").strip()
    if not text:
        return ActivityStatus.held if held_on is None or held_on <= local_today() else ActivityStatus.planned
    if text.startswith(ActivityStatus.withdrawn.label):
        return None
    for status in (ActivityStatus.held, ActivityStatus.planned):
        if text in (status.label, status.value):
            return status
    # The sheet's values are Chinese whatever the interface language: they are quoted as they must be written.
    raise ValueError(_("%(column)s应为“%(held)s”或“%(planned)s”，现为“%(value)s”", column="状态",
                       held=ActivityStatus.held.label, planned=ActivityStatus.planned.label, value=text))


def _org_lookup(agreement: Agreement) -> dict[str, int]:
    names: dict[str, int] = {}
    for party in agreement.parties:
        org = party.organization
        names[org.name] = org.id
        if org.short_name:
            names.setdefault(org.short_name, org.id)
    return names


def _row_to_values(row: dict[str, Any], agreement: Agreement, orgs: dict[str, int]) -> dict[str, Any] | None:
    """Turn one sheet row into log_activity keywords; None for a withdrawn row (skipped); raises ValueError
    naming every problem of the row."""
    problems = []
    held_on = None
    if row.get("日期") in (None, ""):
        problems.append(_("缺少%(column)s", column="日期"))
    else:
        try:
            held_on = parse_ledger_date(row["日期"])
        except ValueError:
            problems.append(_("%(column)s“%(value)s”无法识别，应为 %(example)s 或 2026-11-22",
                              column="日期", value=row["日期"], example="2026年11月22日"))
    category_text = str(row.get("类别") or "").strip()
    category = _CATEGORY_BY_NAME.get(category_text) or (category_text if category_text in CATEGORY_BY_CODE else None)
    if not category_text:
        problems.append(_("缺少%(column)s", column="类别"))
    elif category is None:
        problems.append(_("%(column)s“%(value)s”不是八联之一（%(names)s）", column="类别", value=category_text,
                          names="、".join(c.name for c in CATEGORIES)))
    title = str(row.get("活动名称") or "").strip()
    if not title:
        problems.append(_("缺少%(column)s", column="活动名称"))
    counts = {}
    for key, column in (("party_member_count", "党员人数"), ("other_count", "其他人数")):
        try:
            counts[key] = _parse_count(row.get(column), column)
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
                problems.append(_("%(column)s“%(name)s”不是协议“%(agreement)s”的签约方", column="参与组织",
                                  name=name, agreement=agreement.title))
            else:
                org_ids.append(orgs[name])
    else:
        org_ids = list(agreement.party_org_ids)  # the form pre-checks every party too
    if problems:
        raise ValueError(_("；").join(problems))
    if status is None:
        return None
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
    }


ActivityKey = tuple[date, str, str]  # held_on, category code, title (trimmed): what makes two entries the same


def _key(values: dict[str, Any]) -> ActivityKey:
    # Cleaned as a stored title is (NFC, no control characters), so a hand-made file's row matches its activity.
    return values["held_on"], values["category"], clean_text(values["title"]) or ""


def recorded_keys(agreement: Agreement) -> dict[ActivityKey, dict[str, str]]:
    """The date, category and trimmed title of every activity of the agreement that is not withdrawn, in one
    query: key -> the skipped row's detail (DUPLICATE_OF_ACTIVITY)."""
    rows = db.session.execute(
        sa.select(Activity.held_on, Activity.category, Activity.title)
        .join(ActivityAgreement, ActivityAgreement.activity_id == Activity.id)
        .where(ActivityAgreement.agreement_id == agreement.id, Activity.status != ActivityStatus.withdrawn)
    ).all()
    return {(held_on, category, clean_text(title) or ""): {"held_on": held_on.isoformat(), "category": category,
                                                           "title": title.strip()}
            for held_on, category, title in rows}


def _nothing_to_import(skipped: list[SkippedRow]) -> str:
    """Why a file whose every row was skipped imports nothing."""
    by_kind: dict[str, list[int]] = {}
    for row in skipped:
        by_kind.setdefault(row.kind, []).append(row.line)
    wording = {
        DUPLICATE_OF_ACTIVITY: N_("与本协议已登记的活动重复（日期、类别、活动名称相同）%(count)d 行：第 %(lines)s 行"),
        DUPLICATE_OF_ROW: N_("与文件中前面的行重复 %(count)d 行：第 %(lines)s 行"),
        WITHDRAWN: N_("已撤回的活动 %(count)d 行：第 %(lines)s 行"),
    }
    reasons = [_(wording[kind], count=len(lines), lines=line_list(lines))
               for kind, lines in by_kind.items()]
    return _("文件中没有可导入的活动：每一行都已跳过（%(reasons)s）。", reasons=_("；").join(reasons))


def check_ledger(actor: User, agreement: Agreement, stream: IO[bytes], *,
                 progress: Progress | None = None) -> LedgerPlan:
    """Pass 1 of an import: read the file and check every row with the 记录活动 rules; writes nothing.

    Withdrawn rows and duplicates (of an activity the agreement has, or of an earlier row) are skipped.
    Raises LedgerImportRejected listing each bad row by line number, or saying why nothing is left to import.
    Calls `progress("checking", n, total)` once the file is read and after each row.
    """
    if not can_import_into(actor, agreement):
        raise LedgerImportRejected([(0, _("只有生效中协议的联络员可以导入台账。"))])
    try:
        rows = read_xlsx_rows(stream, LEDGER_HEADERS, max_rows=MAX_IMPORT_ROWS)
    except HeaderMismatch as exc:
        raise LedgerImportRejected([(1, exc.detail)]) from None
    except SpreadsheetError as exc:
        raise LedgerImportRejected([(0, str(exc))]) from None
    if not rows:
        raise LedgerImportRejected([(0, _("文件中没有活动数据（第 2 行起每行一条活动）。"))])

    orgs = _org_lookup(agreement)
    settings = all_category_settings()
    recorded = recorded_keys(agreement)
    first_line: dict[ActivityKey, int] = {}  # rows of this file to import, by key
    errors: list[tuple[int, str]] = []
    plan = LedgerPlan(total=len(rows))
    if progress:
        progress("checking", 0, plan.total)
    for checked, (line, row) in enumerate(rows, start=1):
        try:
            values = _row_to_values(row, agreement, orgs)
            if values is None:
                plan.skipped.append(SkippedRow(line, WITHDRAWN))
            elif (key := _key(values)) in recorded:
                plan.skipped.append(SkippedRow(line, DUPLICATE_OF_ACTIVITY, recorded[key]))
            elif key in first_line:
                plan.skipped.append(SkippedRow(line, DUPLICATE_OF_ROW, first_line[key]))
            else:
                validate_activity(actor, agreements=[agreement], settings=settings, **values)
                plan.rows.append((line, values))
                first_line[key] = line
        except (ValueError, ActivityRefused) as exc:
            errors.append((line, str(exc)))
        if progress:
            progress("checking", checked, plan.total)
    if errors:
        raise LedgerImportRejected(errors)
    if not plan.rows:
        raise LedgerImportRejected([(0, _nothing_to_import(plan.skipped))])
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
                "skipped_lines": [row.line for row in result.skipped],
                "duplicate_lines": [row.line for row in result.skipped if row.is_duplicate], **(detail or {})},
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

