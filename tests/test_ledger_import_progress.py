"""工作台账 imports in the background (issue 11): progress on the page and in the CLI, left and come back to."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from coop.activities import jobs
from coop.activities.models import Activity, ImportRun, ImportStatus
from coop.audit.models import AuditEntry
from coop.db import now_utc
from coop.extensions import db
from tests.fixtures.activities import upload_ledger, wait_for_import, xlsx_of

PARTIES = "运维检修党支部、疾控中心第一党支部"


def workbook(rows: list[list]) -> bytes:
    return xlsx_of(rows).getvalue()


def row(date_text: str, title: str, status: str = "已开展", category: str = "党员联学") -> list:
    return [None, date_text, category, title, "会议室", PARTIES, 5, 1, "学习", "收获", status, None, None, None]


GOOD = workbook([row("2026-03-01", "联学一"), row("2026-03-02", "联学二"), row("2026-03-03", "重复", "已撤回（重复）"),
                 row("2026-03-04", "联学三")])
BAD = workbook([row("2026-03-01", "好的一行"), row("不是日期", "坏日期"), row("2026-03-05", "坏类别", category="吃饭联谊")])


def activity_count() -> int:
    return db.session.scalar(sa.select(sa.func.count(Activity.id)))


def test_upload_runs_in_background_and_imports_exactly_once(client, login, pairing):
    login(client, pairing.la)
    resp = client.post(f"/activities/agreement/{pairing.agreement.id}/import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(GOOD), "三月台账.xlsx")})
    assert resp.status_code == 302
    run_id = int(resp.headers["Location"].rsplit("/", 1)[1])
    assert resp.headers["Location"].endswith(f"/activities/imports/{run_id}")
    page = client.get(f"/activities/imports/{run_id}").get_data(as_text=True)
    assert "三月台账.xlsx" in page and "js/app.js" in page
    if 'data-run-progress="' in page:  # still going when the page was drawn: it polls, and reloads at the end
        assert f'data-run-progress="/activities/imports/{run_id}/progress"' in page and "data-run-reload" in page

    state = wait_for_import(client, run_id)
    assert (state["status"], state["total"], state["checked"], state["written"], state["skipped"]) == ("done", 4, 4, 3, 1)
    assert state["percent"] == 100 and state["finished"] and state["errors"] == 0
    assert "已导入 3 条活动" in state["message"] and "跳过 1 条已撤回的活动（第 4 行）" in state["message"]
    assert state["ledger_url"] == f"/activities/agreement/{pairing.agreement.id}"

    # Coming back later: the outcome, a link to the ledger, and no more polling.
    page = client.get(f"/activities/imports/{run_id}").get_data(as_text=True)
    assert "已导入 3 条活动" in page and "查看协议台账" in page and f'href="{state["ledger_url"]}"' in page
    assert "data-run-progress" not in page
    # Polling a finished run again changes nothing: the activities were written once.
    assert client.get(f"/activities/imports/{run_id}/progress").json == state
    jobs.execute_import_run(run_id)  # a second executor finds the run taken
    assert activity_count() == 3
    titles = set(db.session.scalars(sa.select(Activity.title)))
    assert titles == {"联学一", "联学二", "联学三"}

    run = db.session.get(ImportRun, run_id)
    assert run.created_by_id == pairing.la.id and run.agreement_id == pairing.agreement.id
    assert run.file_name == "三月台账.xlsx" and run.file_path.endswith(".xlsx") and "三月" not in run.file_path
    assert not jobs.import_root().joinpath(run.file_path).exists()  # the file is not kept once imported
    assert run.started_at and run.finished_at and run.created_at.tzinfo is not None
    audit = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.kind == "activity.imported")).one()
    assert audit.detail["import_run_id"] == run_id and len(audit.detail["activity_ids"]) == 3

    # The import page lists it among the recent imports.
    html = client.get(f"/activities/agreement/{pairing.agreement.id}/import").get_data(as_text=True)
    assert "最近的导入" in html and f"/activities/imports/{run_id}" in html and "已导入" in html


def test_rejected_file_lists_the_rows_and_writes_nothing(client, login, pairing):
    login(client, pairing.la)
    run_id, state, page = upload_ledger(client, pairing.agreement.id, BAD)
    assert (state["status"], state["total"], state["checked"], state["written"], state["errors"]) == ("rejected", 3, 3, 0, 2)
    assert state["finished"] and "未导入任何活动" in state["message"]
    assert "第 3 行" in page and "不是日期" in page and "第 4 行" in page and "吃饭联谊" in page
    assert "查看协议台账" not in page and "重新上传" in page
    assert activity_count() == 0
    run = db.session.get(ImportRun, run_id)
    assert run.status is ImportStatus.rejected and [e[0] for e in run.errors] == [3, 4]
    assert not jobs.import_root().joinpath(run.file_path).exists()  # nor a rejected one


def test_a_row_refused_while_writing_rolls_back_every_row(app, pairing, monkeypatch):
    """The agreement may change between checking and writing: a refusal then undoes the rows already logged."""
    from coop.activities import ledger_io
    from coop.activities.operations import ActivityRefused

    real = ledger_io.new_activity
    calls = []

    def log_then_refuse(actor, **values):
        calls.append(values["title"])
        if len(calls) == 3:
            raise ActivityRefused("协议已终止")
        return real(actor, **values)

    monkeypatch.setattr(ledger_io, "new_activity", log_then_refuse)
    run = jobs.start_import_run(pairing.la, pairing.agreement, GOOD, "a.xlsx")
    db.session.commit()
    jobs.execute_import_run(run.id)
    db.session.refresh(run)
    assert run.status is ImportStatus.rejected and run.errors == [[5, "协议已终止"]]
    assert len(calls) == 3 and activity_count() == 0


@pytest.mark.parametrize("who, status", [("la", 200), ("lb", 200), ("sa", 200), ("outsider", 404)])
def test_only_the_importer_and_ledger_readers_see_a_run(client, login, pairing, who, status):
    run = jobs.start_import_run(pairing.la, pairing.agreement, BAD, "a.xlsx")
    db.session.commit()
    jobs.execute_import_run(run.id)
    login(client, getattr(pairing, who))
    assert client.get(f"/activities/imports/{run.id}").status_code == status
    assert client.get(f"/activities/imports/{run.id}/progress").status_code == status
    assert client.get(f"/activities/imports/{run.id + 1}").status_code == 404


def test_anonymous_is_sent_to_sign_in(client, pairing):
    run = jobs.start_import_run(pairing.la, pairing.agreement, BAD, "a.xlsx")
    db.session.commit()
    for url in (f"/activities/imports/{run.id}", f"/activities/imports/{run.id}/progress"):
        resp = client.get(url)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def _set(run_id: int, **values) -> None:
    db.session.execute(sa.update(ImportRun).where(ImportRun.id == run_id).values(**values))
    db.session.commit()


def test_progress_while_checking_and_writing(client, login, pairing):
    run = jobs.start_import_run(pairing.la, pairing.agreement, GOOD, "a.xlsx")
    db.session.commit()
    login(client, pairing.la)
    url = f"/activities/imports/{run.id}/progress"
    state = client.get(url).json
    assert (state["status"], state["percent"], state["finished"], state["message"]) == ("queued", 0, False, "等待开始")
    _set(run.id, status=ImportStatus.running, total=200, checked=50)
    state = client.get(url).json
    assert state["percent"] == 25 and "第 50 行，共 200 行" in state["message"]
    # Writing is one transaction: no count to show, so the bar is busy without a figure.
    _set(run.id, checked=200)
    state = client.get(url).json
    assert state["percent"] is None and not state["finished"] and "正在写入" in state["message"]
    page = client.get(f"/activities/imports/{run.id}").get_data(as_text=True)
    assert re.search(r'<progress max="100" data-field="percent"', page) and "data-run-reload" in page


def test_a_run_whose_process_died_is_reported_failed_and_does_not_block(client, login, pairing):
    login(client, pairing.la)
    run = jobs.start_import_run(pairing.la, pairing.agreement, GOOD, "a.xlsx")
    db.session.commit()
    # While it is alive, a second upload (a double click) is refused and pointed to the live one.
    html = client.post(f"/activities/agreement/{pairing.agreement.id}/import", content_type="multipart/form-data",
                       data={"file": (io.BytesIO(GOOD), "a.xlsx")}).get_data(as_text=True)
    assert "正在进行" in html and f"/activities/imports/{run.id}" in html
    # Its process dies mid-check: the counters stop moving.
    _set(run.id, status=ImportStatus.running, total=4, checked=2, updated_at=now_utc() - jobs.STALE_AFTER - timedelta(minutes=1))
    state = client.get(f"/activities/imports/{run.id}/progress").json
    assert (state["status"], state["status_label"], state["finished"], state["percent"]) == ("failed", "已中断", True, 100)
    assert "已中断" in state["message"] and "未写入任何活动" in state["message"]
    page = client.get(f"/activities/imports/{run.id}").get_data(as_text=True)
    assert "已中断" in page and "data-run-progress" not in page
    # The next upload goes ahead and records the dead run as failed.
    new_id, state, _page = upload_ledger(client, pairing.agreement.id, GOOD)
    assert new_id != run.id and state["status"] == "done"
    db.session.refresh(run)
    assert run.status is ImportStatus.failed and run.message == jobs.INTERRUPTED and run.finished_at is not None
    assert jobs.status_label(run) == "已中断" and "未写入任何活动" in jobs.outcome_text(run)
    # Were the dead run's process only slow, its late write would be refused: nothing twice.
    jobs.execute_import_run(run.id)
    assert activity_count() == 3


def test_cli_imports_with_progress(app, pairing, tmp_path, monkeypatch):
    monkeypatch.setattr("click._termui_impl.isatty", lambda _stream: True)  # draw the bar as on a terminal
    path = tmp_path / "台账.xlsx"
    path.write_bytes(GOOD)
    result = app.test_cli_runner().invoke(args=["activities", "import", "--agreement", str(pairing.agreement.id),
                                                "--user", pairing.la.username, str(path)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "检查行" in out and "4/4" in out and "写入活动" in out and "3/3" in out
    assert "检查行：4 / 4" in out and "写入活动：3 / 3" in out
    assert "已导入 3 条活动" in out and "跳过 1 条已撤回的活动" in out
    assert activity_count() == 3
    run = db.session.scalars(sa.select(ImportRun)).one()
    assert run.status is ImportStatus.done and run.created_by_id == pairing.la.id


def test_cli_exits_non_zero_on_a_bad_file_and_on_refusals(app, pairing, tmp_path):
    runner = app.test_cli_runner()
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(BAD)
    args = ["activities", "import", "--agreement", str(pairing.agreement.id)]
    result = runner.invoke(args=[*args, "--user", pairing.la.username, str(bad)])
    assert result.exit_code == 1
    assert "检查行：3 / 3" in result.output
    assert "第 3 行" in result.stderr and "吃饭联谊" in result.stderr and "未导入任何活动" in result.stderr
    assert activity_count() == 0
    assert db.session.scalars(sa.select(ImportRun.status)).one() is ImportStatus.rejected
    # Someone who may not import into the agreement, and names that do not exist.
    assert runner.invoke(args=[*args, "--user", pairing.sa.username, str(bad)]).exit_code == 1
    assert runner.invoke(args=[*args, "--user", "nobody", str(bad)]).exit_code == 1
    result = runner.invoke(args=["activities", "import", "--agreement", "999999", "--user", pairing.la.username, str(bad)])
    assert result.exit_code == 1 and "不存在" in result.output


def test_cli_summary_counts_the_duplicates_and_a_second_import_of_the_file_is_refused(app, pairing, tmp_path):
    path = tmp_path / "台账.xlsx"
    path.write_bytes(workbook([row("2026-03-01", "联学一"), row("2026-03-02", "联学二"), row("2026-03-01", " 联学一"),
                               row("2026-03-03", "重复", "已撤回（重复）")]))
    args = ["activities", "import", "--agreement", str(pairing.agreement.id), "--user", pairing.la.username, str(path)]
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 0, result.output
    assert "已导入 2 条活动" in result.output and "跳过 1 条已撤回的活动（第 5 行）" in result.output
    assert "跳过 1 条重复的活动（第 4 行）" in result.output
    run = db.session.scalars(sa.select(ImportRun)).one()
    assert (run.written, run.skipped) == (2, 2)
    assert jobs.error_lines(run) == ["第 4 行：与第 2 行重复", "第 5 行：已撤回的活动不导入"]
    audit = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.kind == "activity.imported")).one()
    assert audit.detail["skipped_lines"] == [4, 5] and audit.detail["duplicate_lines"] == [4]

    # The same file again: every row is already there, nothing is written, and the CLI says why.
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 1
    assert "文件中没有可导入的活动：每一行都已跳过" in result.stderr
    assert "与本协议已登记的活动重复（日期、类别、活动名称相同）3 行：第 2、3、4 行" in result.stderr
    assert activity_count() == 2


def test_a_run_without_a_request_speaks_the_importers_language(app, pairing):
    """The CLI (or any executor without a request) words the problems in the importer's preference."""
    pairing.la.locale = "en"
    db.session.commit()
    run = jobs.start_import_run(pairing.la, pairing.agreement, BAD, "a.xlsx")
    db.session.commit()
    jobs.execute_import_run(run.id)
    db.session.refresh(run)
    assert run.status is ImportStatus.rejected
    assert dict((line, message) for line, message in run.errors)[3].startswith("日期 “不是日期” is not a date")


def test_runs_recorded_before_duplicates_were_skipped_still_read(app, pairing):
    run = jobs.start_import_run(pairing.la, pairing.agreement, GOOD, "a.xlsx")
    db.session.commit()
    _set(run.id, status=ImportStatus.done, total=4, checked=4, written=3, skipped=1, skipped_lines=[4])
    db.session.refresh(run)
    assert "跳过 1 条已撤回的活动（第 4 行）" in jobs.outcome_text(run)
    assert jobs.error_lines(run) == ["第 4 行：已撤回的活动不导入"]
