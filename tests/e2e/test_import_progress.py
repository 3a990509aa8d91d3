"""A liaison uploads a 工作台账 file: the run page follows the background import (app.js polls its progress
JSON and reloads at the end) and lists the bad rows; nothing is written."""
from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
from openpyxl import Workbook

from agreements.demo import TITLE_ACTIVE
from coop.activities.ledger_io import LEDGER_HEADERS
from coop.formatting import local_today
from tests.e2e.helpers import login

pytestmark = pytest.mark.browser


def _ledger_with_one_bad_row(good_rows: int) -> bytes:
    """Enough good rows that checking takes a moment (the page polls meanwhile), then one bad date."""
    wb = Workbook()
    ws = wb.active
    ws.append(list(LEDGER_HEADERS))
    held_on = (local_today() - timedelta(days=30)).isoformat()  # inside the demo agreement's term
    for i in range(good_rows):
        ws.append([None, held_on, "党员联学", f"联学{i}", None, None, 1, 0, None, None, "已开展", None, None, None])
    ws.append([None, "不是日期", "党员联学", "坏的一行", None, None, 1, 0, None, None, "已开展", None, None, None])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_import_page_follows_the_run_and_lists_bad_rows(open_context):
    page = open_context("desktop").new_page()
    login(page, "ops_lly")
    page.goto("/agreements/")
    page.get_by_role("link", name=TITLE_ACTIVE).first.click()
    page.wait_for_url(re.compile(r"/agreements/\d+$"))
    agreement_id = int(page.url.rsplit("/", 1)[1])
    page.goto(f"/activities/agreement/{agreement_id}/import")
    good_rows = 1500
    page.locator("input[type=file]").set_input_files(files=[{
        "name": "台账.xlsx", "buffer": _ledger_with_one_bad_row(good_rows),
        "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    page.get_by_role("button", name="检查并导入").click()
    page.wait_for_url(re.compile(r"/activities/imports/\d+$"))
    # Whether drawn while running (then polled and reloaded) or already finished, the page ends the same.
    page.get_by_text("未导入任何活动").first.wait_for(timeout=60_000)
    assert page.locator("[data-run-progress]").count() == 0
    errors = page.locator("ul.import-errors li")
    assert errors.count() == 1 and f"第 {good_rows + 2} 行" in errors.first.inner_text()
    assert page.locator('[data-field="checked"]').inner_text() == str(good_rows + 1)
    # Left and come back to: the import page lists it.
    page.get_by_role("link", name="重新上传").click()
    assert page.get_by_role("heading", name="最近的导入").is_visible()
    assert page.locator("a[href*='/activities/imports/']", has_text="台账.xlsx").count() >= 1
