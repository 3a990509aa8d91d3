"""Ledger exports: formula injection is neutralised, big exports stream, imports check their headers."""
from __future__ import annotations

import csv
import io
import time
import tracemalloc
import zipfile
from datetime import date, datetime, timedelta, timezone

import pytest
from openpyxl import Workbook, load_workbook

from coop.spreadsheets import (
    HeaderMismatch,
    SpreadsheetError,
    read_xlsx_rows,
    safe_cell,
    write_csv,
    write_xlsx,
)

HOSTILE_TITLES = [
    '=HYPERLINK("http://x")',
    "+1+1",
    "@SUM(A1)",
    "-2+3",
    "=cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
    "  =1+1",
    "\u3000=1+1",
]
HEADERS = ["活动名称", "活动日期", "党员人数", "记录时间"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+86 138", "'+86 138"),
        ("-", "'-"),
        ("@user", "'@user"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("  =1+1", "'  =1+1"),
        ("主题党日", "主题党日"),
        ("a=b", "a=b"),
        ("", ""),
        (-5, -5),
        (3.5, 3.5),
        (None, None),
    ],
)
def test_safe_cell_prefixes_only_text_that_a_spreadsheet_would_evaluate(value, expected):
    assert safe_cell(value) == expected


def test_hostile_titles_stay_literal_text_in_xlsx():
    stream = io.BytesIO()
    rows = [[title, date(2026, 11, 22), 12, None] for title in HOSTILE_TITLES]
    assert write_xlsx(stream, "工作台账", HEADERS, rows) == len(HOSTILE_TITLES)

    stream.seek(0)
    ws = load_workbook(stream).active
    cells = [ws.cell(row=i, column=1) for i in range(2, len(HOSTILE_TITLES) + 2)]
    assert [c.value for c in cells] == HOSTILE_TITLES
    assert {c.data_type for c in cells} == {"s"}
    # And at the XML level: no formula element anywhere in the sheet.
    with zipfile.ZipFile(stream) as archive:
        sheet_xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet_xml and "<f " not in sheet_xml
    assert 'HYPERLINK("http://x")' in sheet_xml.replace("&quot;", '"')


def test_hostile_titles_get_an_apostrophe_in_csv_and_numbers_do_not():
    stream = io.BytesIO()
    write_csv(stream, HEADERS, [[title, date(2026, 11, 22), -3, None] for title in HOSTILE_TITLES])
    raw = stream.getvalue()
    assert raw.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read Chinese CSV as UTF-8"

    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert rows[0] == HEADERS
    assert [r[0] for r in rows[1:]] == ["'" + t for t in HOSTILE_TITLES]
    assert {r[1] for r in rows[1:]} == {"2026-11-22"}
    assert {r[2] for r in rows[1:]} == {"-3"}


def test_csv_into_a_text_stream_and_binary_stream_stays_open():
    text = io.StringIO()
    write_csv(text, ["名称"], [["主题党日"]])
    assert text.getvalue() == "\ufeff名称\r\n主题党日\r\n"

    binary = io.BytesIO()
    write_csv(binary, ["名称"], [["主题党日"]])
    assert not binary.closed
    binary.write(b"more")  # still usable by the caller


def test_xlsx_layout_dates_and_time_zones():
    stream = io.BytesIO()
    recorded = datetime(2026, 11, 22, 1, 30, tzinfo=timezone.utc)  # 09:30 in Shanghai
    write_xlsx(
        stream,
        "台账: 2026/11 [全部]",
        HEADERS,
        [["主题党日\x01活动", date(2026, 11, 22), 15, recorded]],
        column_widths=[40, None, 12],
    )
    stream.seek(0)
    ws = load_workbook(stream).active
    assert ws.title == "台账_ 2026_11 _全部_"  # characters Excel forbids in sheet names are replaced
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:D2"
    assert all(cell.font.b for cell in ws[1])
    assert ws.column_dimensions["A"].width == 40
    assert ws.column_dimensions["B"].width >= 10  # default from the header text
    assert ws["A2"].value == "主题党日活动"  # control character pasted from Word removed, not a crash
    assert ws["B2"].value == datetime(2026, 11, 22) and ws["B2"].number_format == "yyyy-mm-dd"
    assert ws["C2"].value == 15 and ws["C2"].data_type == "n"
    assert ws["D2"].value == datetime(2026, 11, 22, 9, 30)
    assert ws["D2"].number_format == "yyyy-mm-dd hh:mm"


def _ledger_rows(count: int):
    start = date(2026, 1, 1)
    for i in range(count):
        yield [
            f"第{i}次 党员联学：书记送课上门（{'=' if i % 7 == 0 else ''}专题{i % 13}）",
            start + timedelta(days=i % 365),
            i % 50,
            datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=i),
        ]


def _export_traced(path, count: int) -> tuple[float, int]:
    """Export `count` rows under tracemalloc; returns (seconds, peak bytes). Tracing makes it ~4× slower."""
    tracemalloc.start()
    try:
        began = time.perf_counter()
        assert write_xlsx(path, "工作台账", HEADERS, _ledger_rows(count)) == count
        elapsed = time.perf_counter() - began
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return elapsed, peak


def test_sixty_thousand_row_export_completes_and_reads_back(tmp_path):
    path = tmp_path / "ledger.xlsx"
    began = time.perf_counter()
    assert write_xlsx(path, "工作台账", HEADERS, _ledger_rows(60_000)) == 60_000
    elapsed = time.perf_counter() - began
    print(f"\nxlsx export: 60,000 rows in {elapsed:.2f}s, file {path.stat().st_size / 1e6:.1f} MB")

    rows = read_xlsx_rows(path, HEADERS, max_rows=60_000)
    assert len(rows) == 60_000
    assert rows[0][0] == 2 and rows[-1][0] == 60_001
    assert rows[7][1]["活动名称"].startswith("第7次") and "（=专题7）" in rows[7][1]["活动名称"]
    assert rows[-1][1]["活动日期"] == datetime(2026, 1, 1) + timedelta(days=59_999 % 365)


def test_export_memory_does_not_grow_with_the_number_of_rows(tmp_path):
    small_time, small_peak = _export_traced(tmp_path / "small.xlsx", 1_000)
    large_time, large_peak = _export_traced(tmp_path / "large.xlsx", 10_000)
    print(
        f"\nxlsx export under tracemalloc: 1,000 rows {small_time:.2f}s peak {small_peak / 1e6:.2f} MB; "
        f"10,000 rows {large_time:.2f}s peak {large_peak / 1e6:.2f} MB"
    )
    # Streaming: ten times the rows must not mean anything like ten times the memory.
    assert large_peak < small_peak * 2


@pytest.mark.slow
def test_sixty_thousand_row_export_peak_memory(tmp_path):
    elapsed, peak = _export_traced(tmp_path / "ledger.xlsx", 60_000)
    print(f"\nxlsx export under tracemalloc: 60,000 rows {elapsed:.2f}s, peak {peak / 1e6:.2f} MB")
    assert peak < 20e6


def _workbook(rows) -> io.BytesIO:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    stream = io.BytesIO()
    wb.save(stream)
    stream.seek(0)
    return stream


def test_import_reads_rows_with_their_excel_line_numbers():
    stream = _workbook(
        [
            [" 活动名称 ", "活动日期", "党员人数", "记录时间"],
            ["主题党日", date(2026, 11, 22), 12, None],
            [None, None, None, None],  # blank line: skipped, line numbers keep counting
            ["  书记送课  ", "2026-11-23", None],  # short row: missing cells are None
        ]
    )
    rows = read_xlsx_rows(stream, HEADERS)
    assert [line for line, _ in rows] == [2, 4]
    assert rows[0][1]["活动名称"] == "主题党日" and rows[0][1]["党员人数"] == 12
    assert rows[1][1] == {"活动名称": "书记送课", "活动日期": "2026-11-23", "党员人数": None, "记录时间": None}


def test_import_accepts_the_same_columns_in_another_order():
    stream = _workbook([["党员人数", "活动名称", "记录时间", "活动日期"], [3, "联学", None, None]])
    assert read_xlsx_rows(stream, HEADERS) == [
        (2, {"活动名称": "联学", "活动日期": None, "党员人数": 3, "记录时间": None})
    ]


def test_import_refuses_a_sheet_whose_headers_do_not_match():
    stream = _workbook([["活动名称", "日期", "党员人数", "记录时间", "备注"], ["联学", None, 3, None, None]])
    with pytest.raises(HeaderMismatch) as caught:
        read_xlsx_rows(stream, HEADERS)
    assert caught.value.missing == ["活动日期"]
    assert caught.value.unexpected == ["日期", "备注"]
    assert "缺少列：「活动日期」" in str(caught.value) and "多出列：「日期」、「备注」" in str(caught.value)


def test_import_refuses_duplicated_headers_empty_sheets_and_non_xlsx():
    with pytest.raises(HeaderMismatch, match="重复列"):
        read_xlsx_rows(_workbook([HEADERS + ["活动名称"]]), HEADERS)
    with pytest.raises(SpreadsheetError, match="工作表是空的"):
        read_xlsx_rows(_workbook([]), HEADERS)
    with pytest.raises(SpreadsheetError, match="xlsx"):
        read_xlsx_rows(io.BytesIO("活动名称,活动日期\n".encode()), HEADERS)


def test_import_refuses_too_many_rows():
    stream = _workbook([HEADERS] + [["联学", None, 1, None]] * 6)
    with pytest.raises(SpreadsheetError, match="最多导入 5 行"):
        read_xlsx_rows(stream, HEADERS, max_rows=5)


def test_import_problems_are_worded_in_the_interface_language(app):
    from coop.i18n import ui_force_locale

    stream = _workbook([["活动名称", "日期", "党员人数", "记录时间"], ["联学", None, 3, None]])
    with pytest.raises(HeaderMismatch) as caught:
        read_xlsx_rows(stream, HEADERS)
    assert str(caught.value).startswith("表头与模板不符（第 1 行）：缺少列：「活动日期」；多出列：「日期」。")
    assert caught.value.detail.startswith("表头与模板不符：缺少列：「活动日期」")  # for a caller listing lines itself
    with app.test_request_context("/"), ui_force_locale("en"):
        with pytest.raises(HeaderMismatch) as caught:
            read_xlsx_rows(_workbook([["活动名称", "日期", "党员人数", "记录时间"]]), HEADERS)
        assert str(caught.value) == ("The column headings (row 1) do not match the template: missing columns: “活动日期”; "
                                     "unexpected columns: “日期”. They must be: 活动名称, 活动日期, 党员人数, 记录时间")
        with pytest.raises(SpreadsheetError, match="^The sheet is empty"):
            read_xlsx_rows(_workbook([]), HEADERS)
        with pytest.raises(SpreadsheetError, match=r"^The file cannot be read: upload an Excel workbook \(\.xlsx\)"):
            read_xlsx_rows(io.BytesIO(b"not a zip"), HEADERS)
        with pytest.raises(SpreadsheetError, match="^Too many rows: at most 1 rows"):
            read_xlsx_rows(_workbook([HEADERS] + [["联学", None, 1, None]] * 2), HEADERS, max_rows=1)
