"""At a desk: the committee drills down from the cockpit and rates an activity; a monthly report is
generated and downloaded; the public verification page rejects a tampered agreement PDF."""
from __future__ import annotations

import re

import pytest

from agreements.demo import TITLE_ACTIVE
from tests.e2e.helpers import assert_fits, login, screenshot

pytestmark = pytest.mark.browser


def test_reviewer_drills_down_from_cockpit_and_rates_activity(open_context, artifacts_dir):
    page = open_context("desktop").new_page()
    login(page, "dangwei")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="党委驾驶舱").click()
    page.wait_for_url(re.compile(r"/review/"))
    assert page.get_by_role("heading", level=1).inner_text() == "党委驾驶舱"
    assert page.locator("table.matrix tbody tr").count() >= 1
    # The whole year at a glance (the default is this month, which has little in it early on).
    page.locator(".period-nav .seg").get_by_role("link", name="年", exact=True).click()
    page.wait_for_url(re.compile(r"period="))
    assert page.locator(".period-nav .seg a[aria-current]").inner_text() == "年"
    behind = page.locator("table.matrix td.st-behind a, table.matrix td.st-none a")
    assert behind.count() >= 1, "the demo should have a pairing that is behind in some category"
    screenshot(page, artifacts_dir, "cockpit")

    # Drill down: the first behind (amber ▲) or not-started (red ×) cell that has activities to look at.
    cells = [(a.get_attribute("href"), a.inner_text()) for a in behind.all()]
    opened = None
    for href, label in cells:
        page.locator(f'table.matrix a[href="{href}"]').click()
        page.wait_for_url(re.compile(r"/review/cell\?"))
        status = page.locator(".cell-status").inner_text()
        assert any(word in status for word in ("进度滞后", "尚未开展")), (label, status)
        # Held activities only (planned ones are not rated): the period's table rows marked 已开展,
        # else the year-to-date list (confirmed, hence held), folded in a <details>.
        held_rows = page.locator("main table tbody tr", has=page.locator(".tag", has_text="已开展"))
        links = held_rows.locator("a[href*='/activities/']")
        if not links.count():
            links = page.locator("main details a[href*='/activities/']")
            if links.count():
                page.locator("main details summary").first.click()
        if links.count():
            opened = links.first.inner_text()
            links.first.click()
            break
        page.go_back()
    assert opened, f"no behind cell with an activity to open: {cells}"
    page.wait_for_url(re.compile(r"/activities/\d+$"))
    assert page.get_by_role("heading", level=1).inner_text() == opened

    # Rate it: 良好, with a comment.
    evals = page.locator("#evaluations")
    evals.get_by_role("link", name=re.compile("评价此活动|修改我的评价")).click()
    page.wait_for_url(re.compile(r"/review/activities/\d+/evaluate$"))
    page.get_by_label("良好").check()
    comment = "联学形式扎实，建议下次邀请更多一线党员参加。"
    page.get_by_label("评语", exact=True).fill(comment)
    page.get_by_role("button", name="保存评价").click()
    page.wait_for_url(re.compile(r"/activities/\d+$"))
    assert "评价已保存" in page.locator(".flashes").inner_text()
    mine = page.locator("#evaluations li.eval-item", has_text="周建国")
    assert mine.locator(".tag", has_text="良好").count() == 1
    assert comment in mine.inner_text()
    page.locator("#evaluations").scroll_into_view_if_needed()
    screenshot(page, artifacts_dir, "activity-rated")


def test_monthly_report_is_generated_and_downloaded_as_pdf(open_context, artifacts_dir):
    page = open_context("desktop").new_page()
    login(page, "ops_lly")
    page.get_by_role("navigation", name="主导航").get_by_role("link", name="月度报告").click()
    page.wait_for_url(re.compile(r"/reports/"))
    month = page.locator("#quick-month").input_value()  # the last completed month
    page.get_by_role("link", name=TITLE_ACTIVE).click()
    page.wait_for_url(re.compile(rf"/reports/agreements/\d+/{month}$"))
    assert page.get_by_role("heading", level=1).inner_text() == TITLE_ACTIVE
    assert page.locator(".figures .figure").count() == 5
    assert page.locator(".chart-wrap svg").count() == 1

    page.get_by_role("button", name=re.compile(r"立即生成 PDF|重新生成")).click()
    page.wait_for_load_state()
    assert re.search(r"已生成第 \d+ 版", page.locator(".flashes").inner_text())
    link = page.locator("ul.versions a", has_text=re.compile(r"第 \d+ 版 PDF")).first
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename.endswith(".pdf")
    data = download.path().read_bytes()
    assert data.startswith(b"%PDF"), data[:20]
    assert len(data) > 10_000

    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, artifacts_dir, "report-page")

    # The archive lists it, and the phone layout of the report page holds.
    phone = open_context("phone").new_page()
    login(phone, "ops_lly")
    phone.goto(page.url)
    assert_fits(phone, "agreement report page")
    screenshot(phone, artifacts_dir, "phone-report-page")
    phone.goto("/reports/")
    assert phone.locator("table a", has_text="下载 PDF").count() >= 1
    assert_fits(phone, "reports archive")


def test_verify_page_rejects_tampered_pdf(open_context, artifacts_dir):
    # A party downloads the signed agreement...
    ctx = open_context("phone")
    page = ctx.new_page()
    login(page, "ops_lly")
    page.goto("/agreements/")
    page.get_by_role("link", name=TITLE_ACTIVE).first.click()
    page.wait_for_url(re.compile(r"/agreements/\d+$"))
    href = page.get_by_role("link", name="下载 PDF").get_attribute("href")
    resp = page.request.get(href)
    assert resp.ok and resp.headers["content-type"].startswith("application/pdf")
    original = resp.body()
    assert original.startswith(b"%PDF")

    # ... anyone (signed out) can check it on the public page: the file as signed is valid ...
    public = open_context("phone").new_page()
    public.goto("/verify")
    assert_fits(public, "verify page")
    public.locator("#file").set_input_files({"name": "协议.pdf", "mimeType": "application/pdf", "buffer": original})
    public.get_by_role("button", name="验证", exact=True).click()
    public.wait_for_load_state()
    verdict = public.locator(".agr-verdict")
    assert "✔ 有效" in verdict.inner_text(), verdict.inner_text()

    # ... and the same file with a few bytes flipped in the middle is not (the page answers 422,
    # which Chromium logs as a failed load of the document).
    open_context.allow(r"Failed to load resource: .*status of 422 .*@ http://[^/]+/verify$")
    tampered = bytearray(original)
    middle = len(tampered) // 2
    for i in range(middle, middle + 8):
        tampered[i] ^= 0xFF
    public.goto("/verify")
    public.locator("#file").set_input_files({"name": "协议-改.pdf", "mimeType": "application/pdf", "buffer": bytes(tampered)})
    public.get_by_role("button", name="验证", exact=True).click()
    public.wait_for_load_state()
    verdict = public.locator(".agr-verdict")
    text = verdict.inner_text()
    assert "agr-verdict-bad" in verdict.get_attribute("class")
    assert "不是本平台签发的有效协议" in text, text
    assert "✔ 有效" not in text
    assert_fits(public, "verify result (tampered)")
    screenshot(public, artifacts_dir, "phone-verify-tampered")


def test_english_cockpit_fits_a_desk_screen(open_context, artifacts_dir):
    """English category names are long: at 1280 px the matrix and the totals must still show every column."""
    page = open_context("desktop").new_page()
    login(page, "power_dw")
    page.get_by_role("button", name="English").click()
    page.wait_for_load_state()
    page.goto("/review/?period=" + str(__import__("datetime").date.today().year))
    assert page.get_by_role("heading", level=1).inner_text() == "Committee cockpit"
    wraps = page.locator(".table-wrap")
    assert wraps.count() >= 2
    for i in range(wraps.count()):
        scroll, client = wraps.nth(i).evaluate("w => [w.scrollWidth, w.clientWidth]")
        assert scroll <= client + 1, (wraps.nth(i).get_attribute("aria-label"), scroll, client)
    screenshot(page, artifacts_dir, "cockpit-en")
