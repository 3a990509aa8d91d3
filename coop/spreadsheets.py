"""Ledger exports and imports: .xlsx (the way committees keep ledgers) and UTF-8 CSV.

Every text cell comes from users (activity titles, places, descriptions), so exports are built to be opened
safely: in CSV, text that a spreadsheet would read as a formula gets a leading apostrophe; in .xlsx, text is
always written as a string cell, which Excel and WPS display literally and never evaluate.

The .xlsx writer streams (openpyxl write-only mode, inline strings), so memory stays flat however many rows
the ledger has.

Import errors are worded in the interface language of the moment (Chinese outside an app context); the header
names they quote stay as the sheet has them.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from os import PathLike
from typing import IO, Any
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from openpyxl import Workbook, load_workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

# Characters that make Excel, WPS or LibreOffice treat a typed-in value as a formula (or DDE command).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
DATE_FORMAT = "yyyy-mm-dd"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DISPLAY_TIMEZONE = "Asia/Shanghai"
MAX_CELL_CHARS = 32767  # Excel's hard limit; longer text would make the file "need repair"
# Control characters that are illegal in XML (openpyxl refuses them); users paste them in from Word.
_ILLEGAL_XML_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_SHEET_TITLE_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")


class SpreadsheetError(ValueError):
    """A spreadsheet that cannot be imported; the message is shown to the user."""


class HeaderMismatch(SpreadsheetError):
    """The first row is not the expected header row; `missing`, `unexpected` and `duplicated` say what differs,
    `detail` says it without naming line 1 (for a caller that lists problems by line)."""

    def __init__(self, message: str, missing: Sequence[str], unexpected: Sequence[str],
                 duplicated: Sequence[str] = (), detail: str = ""):
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.duplicated = list(duplicated)
        self.detail = detail or message


def safe_cell(value: Any) -> Any:
    """Neutralise formula injection for CSV: text starting (after blanks) with = + - @ tab CR gets a leading '."""
    # Spreadsheets skip leading blanks before deciding, so " =1+1" is as dangerous as "=1+1".
    if isinstance(value, str) and (
        value.startswith(FORMULA_TRIGGERS) or value.lstrip(" \t\r\n\u3000").startswith(FORMULA_TRIGGERS)
    ):
        return "'" + value
    return value


def write_xlsx(
    path_or_stream: str | PathLike | IO[bytes],
    sheet_title: str,
    headers: Sequence[str],
    rows: Iterable[Sequence[Any]],
    column_widths: Sequence[float | None] | None = None,
    *,
    timezone: str = DISPLAY_TIMEZONE,
) -> int:
    """Stream a one-sheet workbook (bold frozen header, filter, date formats); returns the data row count."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=_sheet_title(sheet_title))
    display_tz = ZoneInfo(timezone)
    # Column widths and panes must be set before the first row is written in write-only mode.
    widths = list(column_widths or [])
    for index, header in enumerate(headers, start=1):
        width = widths[index - 1] if index - 1 < len(widths) and widths[index - 1] else _default_width(header)
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.freeze_panes = "A2"
    bold = Font(bold=True)
    fill = PatternFill("solid", fgColor="F2F2F2")
    centre = Alignment(horizontal="center", vertical="center")
    header_cells = []
    for header in headers:
        cell = _string_cell(ws, str(header))
        cell.font, cell.fill, cell.alignment = bold, fill, centre
        header_cells.append(cell)
    ws.append(header_cells)
    count = 0
    for row in rows:
        ws.append([_xlsx_cell(ws, value, display_tz) for value in row])
        count += 1
    if headers:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(headers))}{count + 1}"
    wb.save(path_or_stream)
    return count


def write_csv(stream: IO[bytes] | IO[str], headers: Sequence[str], rows: Iterable[Sequence[Any]], *, timezone: str = DISPLAY_TIMEZONE) -> int:
    """Write UTF-8 CSV with a BOM (so Excel reads Chinese correctly) and formula-safe cells; returns row count.

    `stream` may be binary (wrapped here, left open) or text opened with encoding="utf-8" (not "utf-8-sig",
    which would add a second BOM).
    """
    text = stream if isinstance(stream, io.TextIOBase) else io.TextIOWrapper(stream, encoding="utf-8", newline="")
    display_tz = ZoneInfo(timezone)
    text.write("\ufeff")
    # CRLF is what Excel writes and expects.
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow([safe_cell(str(h)) for h in headers])
    count = 0
    for row in rows:
        writer.writerow([_csv_value(value, display_tz) for value in row])
        count += 1
    text.flush()
    if text is not stream:
        text.detach()  # leave the caller's binary stream open
    return count


def read_xlsx_rows(
    stream: str | PathLike | IO[bytes], expected_headers: Sequence[str], *, max_rows: int = 10000
) -> list[tuple[int, dict[str, Any]]]:
    """Read the first sheet as (Excel row number, {header: value}) pairs, checking the header row first."""
    try:
        wb = load_workbook(stream, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 — zipfile, XML and openpyxl errors all mean "not a usable xlsx"
        raise SpreadsheetError(_("无法读取文件：请上传 Excel 工作簿（.xlsx），不支持 .xls 或 CSV")) from exc
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header_row = next(rows, None)
        if header_row is None:
            raise SpreadsheetError(_("工作表是空的：第 1 行应为表头"))
        found = [_clean_header(h) for h in header_row]
        while found and found[-1] == "":
            found.pop()
        _check_headers(found, list(expected_headers))
        positions = {header: found.index(header) for header in expected_headers}
        result: list[tuple[int, dict[str, Any]]] = []
        for line_number, values in enumerate(rows, start=2):
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue  # blank lines between entries are common in hand-kept ledgers
            if len(result) >= max_rows:
                raise SpreadsheetError(_("数据行太多：一次最多导入 %(max)d 行，请分批导入", max=max_rows))
            record = {}
            for header, position in positions.items():
                value = values[position] if position < len(values) else None
                if isinstance(value, str):
                    value = value.strip() or None
                record[header] = value
            result.append((line_number, record))
        return result
    finally:
        wb.close()


# --- internals -------------------------------------------------------------------------------------------


def _check_headers(found: list[str], expected: list[str]) -> None:
    if found == expected:
        return
    missing = [h for h in expected if h not in found]
    unexpected = [h for h in found if h and h not in expected]
    duplicated = sorted({h for h in found if h and found.count(h) > 1})
    if not missing and not unexpected and not duplicated:
        return  # same columns in another order: harmless, values are looked up by header
    def names(headers: Sequence[str]) -> str:
        return _("、").join(_("「%(name)s」", name=h) for h in headers)

    parts = []
    if missing:
        parts.append(_("缺少列：%(names)s", names=names(missing)))
    if unexpected:
        parts.append(_("多出列：%(names)s", names=names(unexpected)))
    if duplicated:
        parts.append(_("重复列：%(names)s", names=names(duplicated)))
    detail = _("表头与模板不符：%(problems)s。应为：%(expected)s", problems=_("；").join(parts),
               expected=_("、").join(expected))
    message = _("表头与模板不符（第 1 行）：%(problems)s。应为：%(expected)s", problems=_("；").join(parts),
                expected=_("、").join(expected))
    raise HeaderMismatch(message, missing, unexpected, duplicated, detail)


def _clean_header(value: Any) -> str:
    return "" if value is None else str(value).replace("\u3000", " ").strip()


def _sheet_title(title: str) -> str:
    cleaned = _SHEET_TITLE_FORBIDDEN.sub("_", title or "").strip("'")[:31]
    return cleaned or "Sheet1"


def _default_width(header: str) -> float:
    # CJK characters are about twice as wide as Latin ones in Excel's width unit.
    units = sum(2 if ord(ch) > 0x2E80 else 1 for ch in str(header))
    return max(10.0, min(60.0, units + 4.0))


def _string_cell(ws: Any, text: str) -> WriteOnlyCell:
    text = _ILLEGAL_XML_CHARS.sub("", text)[:MAX_CELL_CHARS]
    cell = WriteOnlyCell(ws, value=text)
    # openpyxl turns any str starting with "=" into a formula; forcing the string type keeps it literal text.
    cell.data_type = "s"
    return cell


def _xlsx_cell(ws: Any, value: Any, display_tz: ZoneInfo) -> Any:
    if value is None or isinstance(value, (bool, int, float, Decimal)):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            # Excel has no time zones: show the time people expect, in the display zone.
            value = value.astimezone(display_tz).replace(tzinfo=None)
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = DATETIME_FORMAT
        return cell
    if isinstance(value, date):
        cell = WriteOnlyCell(ws, value=value)
        cell.number_format = DATE_FORMAT
        return cell
    if isinstance(value, time):
        return value.strftime("%H:%M")
    text = _ILLEGAL_XML_CHARS.sub("", str(value))[:MAX_CELL_CHARS]
    if text.startswith("="):
        return _string_cell(ws, text)
    return text  # any other str is already a string cell; skipping the cell object keeps big exports fast


def _csv_value(value: Any, display_tz: ZoneInfo) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(display_tz)
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (bool, int, float, Decimal)):
        return value  # numbers stay numbers: a negative amount is not an injection
    # Same cleaning as xlsx so both exports of one ledger carry the same text.
    return safe_cell(_ILLEGAL_XML_CHARS.sub("", str(value)))
