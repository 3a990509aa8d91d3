"""On a phone: a liaison logs a held activity with a photo and the partner confirms it; a secretary signs."""
from __future__ import annotations

import re

import pytest

from agreements.demo import TITLE_ACTIVE, TITLE_SIGNING
from tests.e2e.helpers import PASSWORD, assert_fits, login, screenshot

pytestmark = pytest.mark.browser


def _photo(path):
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (640, 480), (200, 40, 40))
    draw = ImageDraw.Draw(img)
    draw.rectangle((40, 300, 600, 440), fill=(250, 220, 120))
    draw.ellipse((260, 80, 380, 200), fill=(255, 230, 0))
    img.save(path, "JPEG", quality=80)
    return path


def test_liaison_logs_activity_with_photo_and_partner_confirms(open_context, artifacts_dir, tmp_path):
    photo = _photo(tmp_path / "现场照片.jpg")
    title = "“书记送课上门”专题党课（端到端测试）"

    # --- ops_lly logs the activity from the venue, on a phone --------------------------------------
    page = open_context("phone").new_page()
    login(page, "ops_lly")
    assert_fits(page, "home (liaison)")
    page.goto("/activities/new")
    assert_fits(page, "记录活动 form")
    # The liaison may log under several agreements: choose the one in force with the CDC.
    choices = page.locator("[data-agreement-choice]")
    if choices.count() > 1:
        for i in range(choices.count()):
            choices.nth(i).set_checked(False)
        page.locator("label.agreement-option", has_text=TITLE_ACTIVE).locator("input").check()
    else:
        assert TITLE_ACTIVE in page.locator(".agreement-fixed").inner_text()
    page.get_by_label("已开展").check()
    page.locator("label.cat-option", has_text="党员联学").click()
    assert page.locator("input[name=category][value=study]").is_checked()
    page.get_by_label("活动名称").fill(title)
    page.get_by_label("地点").fill("市疾控中心三楼会议室")
    page.get_by_label("党员人数").fill("18")
    page.get_by_label("其他人数").fill("6")
    page.get_by_label("活动内容").fill("运维检修党支部书记到市疾控中心第一党支部讲授专题党课，双方党员交流学习体会。")
    page.get_by_label("活动成效").fill("形成联学计划一份，约定下季度回访。")
    page.locator("input[type=file][name=photos][multiple]").set_input_files(str(photo))
    page.locator("[data-upload-preview] img").first.wait_for()  # activities.js previews the chosen photo
    assert_fits(page, "记录活动 form, filled in")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, artifacts_dir, "phone-log-activity")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/activities/\d+$"))
    activity_url = page.url
    assert "活动已记录" in page.locator(".flashes").inner_text()
    assert page.get_by_role("heading", level=1).inner_text() == title
    assert page.locator("#attachments img").count() == 1
    page.locator("#attachments img").first.evaluate("img => img.decode()")  # the thumbnail really loads
    assert page.locator(".act-head").get_by_text("待确认").count() == 1
    assert_fits(page, "activity page (organizer)")
    screenshot(page, artifacts_dir, "phone-activity-logged")

    # --- cdc_lly finds it in their ledger and confirms it -----------------------------------------------
    partner = open_context("phone").new_page()
    login(partner, "cdc_lly")
    partner.goto("/activities/pending")
    assert_fits(partner, "待确认")
    partner.get_by_role("link", name=title).click()
    partner.wait_for_url(activity_url)
    confirm_box = partner.locator("#confirm")
    assert "请确认这条活动" in confirm_box.inner_text()
    assert_fits(partner, "activity page (partner, to confirm)")
    confirm_box.get_by_label("说明").fill("属实，我方党员 9 人参加。")
    confirm_box.get_by_role("button", name="确认属实").click()
    partner.wait_for_load_state()
    assert "已确认" in partner.locator(".flashes").inner_text()
    assert partner.locator(".act-head .tag", has_text="已确认").count() == 1
    assert "已确认" in partner.locator("#confirmations").inner_text()
    screenshot(partner, artifacts_dir, "phone-activity-confirmed")

    # ... and it is in the partner's own ledger, confirmed: one entry, two ledgers.
    partner.goto("/activities/")
    item = partner.locator("li.act-item", has_text=title)
    assert item.locator(".tag", has_text="已确认").count() == 1
    assert_fits(partner, "ledger (partner)")

    # The organizer sees the final state too.
    page.reload()
    assert page.locator(".act-head .tag", has_text="已确认").count() == 1


def test_secretary_signs_agreement_on_phone(open_context, artifacts_dir):
    page = open_context("phone").new_page()
    login(page, "cdc_sj")
    page.goto("/agreements/")
    assert_fits(page, "协议 list")
    page.get_by_role("link", name=TITLE_SIGNING).first.click()
    page.wait_for_url(re.compile(r"/agreements/\d+$"))
    assert page.locator("h1 .tag", has_text="签署中").count() == 1 or "签署中" in page.locator("h1").inner_text()
    assert_fits(page, "agreement being signed")
    page.locator(".page-head").get_by_role("link", name="签署", exact=True).click()
    page.wait_for_url(re.compile(r"/agreements/\d+/sign$"))
    assert_fits(page, "sign page")
    page.get_by_label("您的登录密码").fill(PASSWORD)
    page.get_by_label("我已阅读协议全文，同意代表本组织签署").check()
    screenshot(page, artifacts_dir, "phone-sign")
    page.get_by_role("button", name="签署", exact=True).click()
    page.wait_for_url(re.compile(r"/agreements/\d+$"), timeout=30_000)
    assert "协议正式生效" in page.locator(".flashes").inner_text()
    assert "生效中" in page.locator("h1").inner_text()
    assert_fits(page, "agreement now active")
    screenshot(page, artifacts_dir, "phone-signed")
