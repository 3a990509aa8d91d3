"""The 工作台账 export (.xlsx, .csv) and import: Chinese layout, round trip, bad rows, formula injection."""
from __future__ import annotations

import csv
import io
import re
from datetime import date

import pytest
import sqlalchemy as sa
from openpyxl import load_workbook

from coop.activities import operations as ops
from coop.activities.ledger_io import LEDGER_HEADERS, LedgerImportRejected, import_ledger
from coop.activities.models import Activity, ActivityStatus, CategorySetting, ConfirmationState
from coop.audit.models import AuditEntry
from coop.audit.operations import record, verify_chain
from coop.extensions import db
from tests.fixtures.activities import upload_ledger, xlsx_of


def sheet(content: bytes) -> list[list]:
    wb = load_workbook(io.BytesIO(content))
    return [[c.value for c in row] for row in wb.worksheets[0].iter_rows()]


@pytest.fixture
def ledger(pairing, make_activity):
    first = make_activity(pairing.la, pairing.agreement, title="=1+2", held_on=date(2026, 3, 12),
                          summary="+SUM(A1:A9)", place="@运维中心")
    ops.confirm_activity(pairing.lb, first, "confirm")
    make_activity(pairing.lb, pairing.agreement, title="健康讲座进企业", category="service",
                  held_on=date(2026, 4, 8), party_member_count=6, other_count=40, summary="讲解职业病防治",
                  outcome="发放手册 200 册")
    gone = make_activity(pairing.la, pairing.agreement, title="重复的记录", held_on=date(2026, 5, 1))
    ops.withdraw_activity(pairing.la, gone, "与 4 月 8 日重复")
    make_activity(pairing.la, pairing.agreement, title="技能比武", category="talent", held_on=date(2026, 12, 5),
                  status="planned", summary="三个比武项目")
    db.session.commit()
    return pairing


def test_xlsx_has_the_committee_layout(client, login, ledger):
    login(client, ledger.la)
    resp = client.get(f"/activities/export.xlsx?agreement_id={ledger.agreement.id}")
    assert resp.status_code == 200
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert "filename*=UTF-8''" in resp.headers["Content-Disposition"] and ".xlsx" in resp.headers["Content-Disposition"]
    # The plain name, for clients that ignore filename*, still says something (not "-2026.xlsx").
    plain = re.search(r'filename="?([^";]+)', resp.headers["Content-Disposition"])[1]
    assert re.match(r"download\b.*\.xlsx$", plain), plain
    rows = sheet(resp.data)
    assert rows[0] == list(LEDGER_HEADERS)
    assert [r[0] for r in rows[1:]] == [1, 2, 3, 4]  # one row per activity, oldest first
    first = dict(zip(LEDGER_HEADERS, rows[1]))
    assert first["日期"] == "2026年3月12日"
    assert first["类别"] == "党员联学"
    assert first["参与组织"] == "运维检修党支部、疾控中心第一党支部"
    assert first["党员人数"] == 18 and first["其他人数"] == 4
    assert first["状态"] == "已开展"
    assert first["确认情况"].startswith("已确认")
    assert first["记录人"] == "张伟（运维检修党支部）"
    assert first["所属协议"] == "运维—疾控结对共建协议"
    withdrawn = dict(zip(LEDGER_HEADERS, rows[3]))
    assert withdrawn["状态"] == "已撤回（与 4 月 8 日重复）"


def test_formula_injection_stays_literal_text_in_xlsx(client, login, ledger):
    login(client, ledger.la)
    content = client.get(f"/activities/export.xlsx?agreement_id={ledger.agreement.id}").data
    ws = load_workbook(io.BytesIO(content)).worksheets[0]
    title_col = LEDGER_HEADERS.index("活动名称") + 1
    cell = ws.cell(row=2, column=title_col)
    assert cell.value == "=1+2" and cell.data_type == "s"  # a string cell: Excel shows it, never computes it
    for row in ws.iter_rows(min_row=2):
        for c in row:
            assert c.data_type != "f"
    # Nothing in the sheet XML is a formula element.
    import zipfile

    xml = zipfile.ZipFile(io.BytesIO(content)).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in xml and b"<f " not in xml


def test_csv_is_excel_friendly_and_formula_safe(client, login, ledger):
    login(client, ledger.la)
    resp = client.get(f"/activities/export.csv?agreement_id={ledger.agreement.id}")
    assert resp.data.startswith("\ufeff".encode("utf-8"))  # BOM: Excel reads the Chinese correctly
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    assert rows[0] == list(LEDGER_HEADERS)
    first = dict(zip(LEDGER_HEADERS, rows[1]))
    assert first["活动名称"] == "'=1+2"
    assert first["活动内容"] == "'+SUM(A1:A9)"
    assert first["地点"] == "'@运维中心"
    assert first["日期"] == "2026年3月12日"


def test_export_follows_the_ledger_filters(client, login, ledger):
    login(client, ledger.la)
    rows = sheet(client.get(f"/activities/export.xlsx?agreement_id={ledger.agreement.id}&category=service").data)
    assert [r[3] for r in rows[1:]] == ["健康讲座进企业"]
    mine = sheet(client.get("/activities/export.xlsx?scope=mine&q=技能").data)
    assert [r[3] for r in mine[1:]] == ["技能比武"]


def _comparable(rows):
    """What must survive a round trip: everything except numbering, confirmation, recorder and agreement."""
    keep = [LEDGER_HEADERS.index(h) for h in ("日期", "类别", "活动名称", "地点", "参与组织", "党员人数", "其他人数",
                                              "活动内容", "活动成效", "状态")]
    return [[row[i] for i in keep] for row in rows]


def test_round_trip_export_then_import_into_another_agreement(client, login, ledger, make_agreement):
    renewed = make_agreement(parties=[ledger.a, ledger.b], title="续签协议")
    login(client, ledger.la)
    exported = client.get(f"/activities/export.xlsx?agreement_id={ledger.agreement.id}").data
    _run_id, state, html = upload_ledger(client, renewed.id, exported)
    assert state["status"] == "done"
    assert "已导入 3 条活动" in html and "跳过 1 条已撤回" in html
    again = sheet(client.get(f"/activities/export.xlsx?agreement_id={renewed.id}").data)
    original = [r for r in sheet(exported)[1:] if not str(r[10]).startswith("已撤回")]
    assert _comparable(again[1:]) == _comparable(original)
    # Imported activities are the importer's entries and wait for the partner as usual.
    imported = db.session.scalars(
        sa.select(Activity).join(Activity.agreement_links).where(sa.text(f"agreement_id = {renewed.id}"))
    ).all()
    assert {a.created_by_id for a in imported} == {ledger.la.id}
    assert {a.organizer_org_id for a in imported} == {ledger.a.id}
    held = [a for a in imported if a.status is ActivityStatus.held]
    assert held and all(a.confirmation is ConfirmationState.pending for a in held)
    assert all([c.organization_id for c in a.confirmations] == [ledger.b.id] for a in imported)


def test_bad_rows_are_reported_by_line_and_nothing_is_imported(pairing):
    before = db.session.scalar(sa.select(sa.func.count(Activity.id)))
    good = [None, "2026年3月1日", "党员联学", "联学一", "会议室", "运维检修党支部、疾控中心第一党支部", 10, 2, "学习",
            "收获", "已开展", None, None, None]
    rows = [
        good,
        [None, "2026年13月1日", "党员联学", "坏日期", None, None, 1, 1, None, None, "已开展", None, None, None],
        [None, "2026-04-01", "吃饭联谊", "坏类别", None, None, "十", 1, None, None, "已开展", None, None, None],
        good,
        [None, "2026-04-02", "党员联学", "陌生组织", None, "某某公司党委", 1, 1, None, None, "已开展", None, None, None],
        [None, "2025-12-31", "党员联学", "协议之前", None, None, 1, 1, None, None, "已开展", None, None, None],
        [None, "2026-04-03", "党员联学", "", None, None, 1, 1, None, None, "进行中", None, None, None],
    ]
    with pytest.raises(LedgerImportRejected) as exc:
        import_ledger(pairing.la, pairing.agreement, xlsx_of(rows))
    errors = dict(exc.value.errors)
    assert sorted(errors) == [3, 4, 6, 7, 8]  # Excel line numbers: header is line 1, so rows start at 2
    assert "日期" in errors[3]
    assert "吃饭联谊" in errors[4] and "党员人数" in errors[4]
    assert "某某公司党委" in errors[6]
    assert "期限" in errors[7]
    assert "活动名称" in errors[8] and "进行中" in errors[8]
    assert exc.value.messages[0].startswith("第 3 行：")
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(Activity.id))) == before


def test_import_audits_every_activity_in_order_and_the_chain_holds(pairing):
    """An import writes all its rows in one flush: each activity still gets its own "activity.logged" entry,
    in the file's order, then one "activity.imported" entry, and the hash chain verifies."""
    record("test.before", "导入之前的记录")
    db.session.commit()
    titles = [f"联学{i}" for i in range(25)]
    rows = [[None, "2026-03-01", "党员联学", t, None, None, 1, 0, None, None, "已开展", None, None, None] for t in titles]
    result = import_ledger(pairing.la, pairing.agreement, xlsx_of(rows))
    db.session.commit()
    assert [a.title for a in result.created] == titles
    entries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.kind.in_(["activity.logged",
                                                                                  "activity.imported"]))
                                 .order_by(AuditEntry.id)).all()
    assert [e.kind for e in entries] == ["activity.logged"] * 25 + ["activity.imported"]
    assert [e.target_id for e in entries[:-1]] == [a.id for a in result.created]
    assert all(f"“{t}”" in e.summary for e, t in zip(entries, titles))
    assert entries[-1].detail["activity_ids"] == [a.id for a in result.created]
    check = verify_chain()
    assert check.ok and check.checked == 27


def test_import_applies_the_stored_category_requirements(pairing):
    db.session.add(CategorySetting(category="service", requires_place=True))
    db.session.commit()
    rows = [[None, "2026-03-01", "党员联学", "没有地点也行", None, None, 1, 0, None, None, "已开展", None, None, None],
            [None, "2026-03-02", "服务联动", "服务须有地点", None, None, 1, 0, None, None, "已开展", None, None, None],
            [None, "2026-03-03", "服务联动", "有地点", "社区", None, 1, 0, None, None, "已开展", None, None, None]]
    with pytest.raises(LedgerImportRejected) as exc:
        import_ledger(pairing.la, pairing.agreement, xlsx_of(rows))
    assert [line for line, _ in exc.value.errors] == [3]
    assert "地点" in exc.value.errors[0][1]


def test_bad_file_through_the_page_lists_lines(client, login, pairing):
    login(client, pairing.la)
    rows = [[None, "2026-03-01", "党员联学", "好", None, None, 1, 1, None, None, None, None, None, None],
            [None, "不是日期", "党员联学", "坏", None, None, 1, 1, None, None, None, None, None, None]]
    _run_id, state, html = upload_ledger(client, pairing.agreement.id, xlsx_of(rows), "a.xlsx")
    assert state["status"] == "rejected"
    assert "未导入任何活动" in html and "第 3 行" in html and "不是日期" in html
    assert db.session.scalar(sa.select(sa.func.count(Activity.id))) == 0


def test_wrong_headers_and_not_a_workbook(client, login, pairing):
    login(client, pairing.la)
    _run_id, _state, html = upload_ledger(client, pairing.agreement.id, xlsx_of([], headers=["日期", "标题"]), "a.xlsx")
    assert "第 1 行" in html and "缺少列" in html
    _run_id, _state, html = upload_ledger(client, pairing.agreement.id, b"not a zip", "a.xlsx")
    assert "无法读取文件" in html


def test_only_liaisons_of_an_active_agreement_import(client, login, pairing, make_agreement):
    login(client, pairing.sa)  # the secretary sees the ledger but is not a liaison
    assert client.get(f"/activities/agreement/{pairing.agreement.id}/import").status_code == 403
    login(client, pairing.outsider)
    assert client.get(f"/activities/agreement/{pairing.agreement.id}/import").status_code == 404
    signing = make_agreement(parties=[pairing.a, pairing.b], status="signing")
    with pytest.raises(LedgerImportRejected, match="生效中"):
        import_ledger(pairing.la, signing, xlsx_of([]))


def test_dates_are_read_in_every_usual_form(pairing):
    from coop.activities.ledger_io import parse_ledger_date

    assert parse_ledger_date("2026年11月22日") == date(2026, 11, 22)
    assert parse_ledger_date("2026-11-22") == date(2026, 11, 22)
    assert parse_ledger_date("2026/1/2") == date(2026, 1, 2)
    from datetime import datetime

    assert parse_ledger_date(datetime(2026, 11, 22, 0, 0)) == date(2026, 11, 22)
    with pytest.raises(ValueError):
        parse_ledger_date("11月22日")


# --- duplicates: an agreement's own ledger imported back into it adds nothing ----------------------------------------


def _activity_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(Activity.id)))


def _with_rows(content: bytes, rows: list[list]) -> bytes:
    """An exported workbook with `rows` appended (as someone adds new lines to the downloaded template)."""
    out, wb = io.BytesIO(), load_workbook(io.BytesIO(content))
    for values in rows:
        wb.worksheets[0].append(values)
    wb.save(out)
    return out.getvalue()


def test_reimporting_the_exported_ledger_into_the_same_agreement_imports_nothing_and_says_why(client, login, ledger):
    login(client, ledger.la)
    before = _activity_count()
    exported = client.get(f"/activities/export.xlsx?agreement_id={ledger.agreement.id}").data
    _run_id, state, html = upload_ledger(client, ledger.agreement.id, exported)
    assert state["status"] == "rejected" and state["written"] == 0
    assert "文件中没有可导入的活动：每一行都已跳过" in html
    assert "与本协议已登记的活动重复（日期、类别、活动名称相同）3 行：第 2、3、5 行" in html
    assert "已撤回的活动 1 行：第 4 行" in html
    assert _activity_count() == before


def test_the_template_with_new_lines_imports_only_the_new_ones_and_lists_the_rest(client, login, ledger):
    login(client, ledger.la)
    before = _activity_count()
    exported = client.get(f"/activities/export.xlsx?agreement_id={ledger.agreement.id}").data
    new = [None, "2026-06-01", "党员联学", "新增的联学", None, None, 3, 0, None, None, "已开展", None, None, None]
    _run_id, state, html = upload_ledger(client, ledger.agreement.id, _with_rows(exported, [new]))
    assert (state["status"], state["written"], state["skipped"]) == ("done", 1, 4)
    assert "已导入 1 条活动" in state["message"] and "跳过 1 条已撤回的活动（第 4 行）" in state["message"]
    assert "跳过 3 条重复的活动（第 2、3、5 行）" in state["message"]
    assert "跳过的行" in html and "第 2 行：与已登记的活动重复（2026年3月12日 党员联学 “=1+2”）" in html
    assert "第 3 行：与已登记的活动重复（2026年4月8日 服务联动 “健康讲座进企业”）" in html
    assert "第 4 行：已撤回的活动不导入" in html
    assert _activity_count() == before + 1


def test_a_repeated_row_is_imported_once_and_its_line_is_listed(client, login, pairing):
    row = [None, "2026-03-01", "党员联学", "联学一", None, None, 1, 0, None, None, "已开展", None, None, None]
    other = [None, "2026-03-01", "人才联育", "联学一", None, None, 1, 0, None, None, "已开展", None, None, None]
    repeated = [None, "2026年3月1日", "党员联学", "  联学一 ", None, None, 9, 9, "写法不同", None, None, None, None, None]
    result = import_ledger(pairing.la, pairing.agreement, xlsx_of([row, other, repeated]))
    db.session.commit()
    assert [(a.category, a.title) for a in result.created] == [("study", "联学一"), ("talent", "联学一")]
    assert [(s.line, s.reason) for s in result.skipped] == [(4, "与第 2 行重复")]

    login(client, pairing.la)
    again = [None, "2026-03-02", "党员联学", "联学二", None, None, 1, 0, None, None, "已开展", None, None, None]
    _run_id, state, html = upload_ledger(client, pairing.agreement.id, xlsx_of([again, again, again]).getvalue())
    assert (state["status"], state["written"], state["skipped"]) == ("done", 1, 2)
    assert "跳过 2 条重复的活动（第 3、4 行）" in state["message"]
    assert "第 3 行：与第 2 行重复" in html and "第 4 行：与第 2 行重复" in html
    assert _activity_count() == 3


def test_a_withdrawn_activity_does_not_block_its_row(pairing, make_activity):
    gone = make_activity(pairing.la, pairing.agreement, title="书记送课", held_on=date(2026, 3, 12))
    ops.withdraw_activity(pairing.la, gone, "日期记错")
    db.session.commit()
    rows = [[None, "2026年3月12日", "党员联学", "书记送课", None, None, 1, 0, None, None, "已开展", None, None, None]]
    result = import_ledger(pairing.la, pairing.agreement, xlsx_of(rows))
    db.session.commit()
    assert [a.title for a in result.created] == ["书记送课"] and result.skipped == []
    # …while the activity just imported does block the same row next time.
    with pytest.raises(LedgerImportRejected, match="与本协议已登记的活动重复"):
        import_ledger(pairing.la, pairing.agreement, xlsx_of(rows))


def test_a_row_matches_its_activity_whatever_the_unicode_form_of_the_title(pairing, make_activity):
    """Stored titles are NFC (clean_text); a hand-made file may hold the decomposed form of the same letters."""
    make_activity(pairing.la, pairing.agreement, title="Café联学", held_on=date(2026, 3, 12))
    rows = [[None, "2026-03-12", "党员联学", "Cafe\u0301联学", None, None, 1, 0, None, None, "已开展", None, None, None]]
    with pytest.raises(LedgerImportRejected, match="与本协议已登记的活动重复"):
        import_ledger(pairing.la, pairing.agreement, xlsx_of(rows))


def test_only_the_target_agreements_activities_count_as_duplicates(pairing, make_activity, make_agreement):
    make_activity(pairing.la, pairing.agreement, title="书记送课", held_on=date(2026, 3, 12))
    renewed = make_agreement(parties=[pairing.a, pairing.b], title="续签协议")
    rows = [[None, "2026-03-12", "党员联学", "书记送课", None, None, 1, 0, None, None, "已开展", None, None, None]]
    assert len(import_ledger(pairing.la, renewed, xlsx_of(rows)).created) == 1


# --- the importer's language ----------------------------------------------------------------------------------------


def test_an_english_speaking_importer_reads_the_problems_in_english(client, login, pairing):
    pairing.la.locale = "en"
    db.session.commit()
    login(client, pairing.la)
    rows = [[None, "2026-02-30", "党员联学", "坏日期", None, None, 1, 1, None, None, None, None, None, None],
            [None, "2026-03-01", "吃饭联谊", "坏类别", None, None, "十", 1, None, None, None, None, None, None]]
    _run_id, state, html = upload_ledger(client, pairing.agreement.id, xlsx_of(rows).getvalue(), "a.xlsx")
    assert state["status"] == "rejected" and "Nothing was imported" in state["message"]
    assert "Row 2: 日期 “2026-02-30” is not a date: write it as 2026-11-22 or 2026年11月22日" in html
    assert "Row 3: 类别 “吃饭联谊” is not one of the eight categories" in html
    assert "党员人数 must be a whole number, not “十”" in html
    assert "无法识别" not in html and "不是八联之一" not in html and "应为整数" not in html

    _run_id, state, html = upload_ledger(client, pairing.agreement.id, b"not a zip", "a.xls")
    assert "The file cannot be read: upload an Excel workbook (.xlsx)" in html and "无法读取文件" not in html
    _run_id, state, html = upload_ledger(client, pairing.agreement.id,
                                         xlsx_of([], headers=["日期", "标题"]).getvalue(), "a.xlsx")
    assert "Row 1: The column headings do not match the template: missing columns: “序号”" in html
    assert "表头与模板不符" not in html


def test_skipped_rows_are_worded_in_the_readers_language(client, login, pairing):
    """The importer speaks Chinese; a partner reading the run in English sees why rows were skipped in English."""
    row = [None, "2026-03-02", "党员联学", "联学二", None, None, 1, 0, None, None, "已开展", None, None, None]
    login(client, pairing.la)
    run_id, state, _html = upload_ledger(client, pairing.agreement.id, xlsx_of([row, row]).getvalue())
    assert state["status"] == "done"
    pairing.lb.locale = "en"
    db.session.commit()
    login(client, pairing.lb)
    html = client.get(f"/activities/imports/{run_id}").get_data(as_text=True)
    assert "Rows skipped" in html and "Row 3: the same as row 2" in html
    assert "Duplicates skipped: 1 (rows 3)" in html
    state = client.get(f"/activities/imports/{run_id}/progress").json
    assert "Duplicates skipped: 1" in state["message"]
