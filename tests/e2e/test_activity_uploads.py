"""On a phone: photos straight from the camera do not lose the 记录活动 form.

A request over the server's MAX_CONTENT_LENGTH is refused before any form code runs, so everything typed
would be lost; static/js/activities.js scales big photos down in the browser and checks the per-file and
total limits before anything is sent.
"""
from __future__ import annotations

import os
import re

import pytest

from agreements.demo import TITLE_ACTIVE
from tests.e2e.helpers import assert_fits, login, screenshot

pytestmark = pytest.mark.browser


def _camera_photo(path, size=(4000, 3000), quality=85):
    """A 12 MP JPEG of noise: ~9 MB, like a phone camera's (noise, so it stays big after scaling down)."""
    from PIL import Image

    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(path, "JPEG", quality=quality)
    return path


def _fake_pdf(path, mb: float):
    path.write_bytes(b"%PDF-1.4\n" + b"0" * int(mb * 1024 * 1024))
    return path


def _open_form(page):
    login(page, "ops_lly")
    page.goto("/activities/new")
    choices = page.locator("[data-agreement-choice]")
    if choices.count() > 1:
        for i in range(choices.count()):
            choices.nth(i).set_checked(False)
        page.locator("label.agreement-option", has_text=TITLE_ACTIVE).first.locator("input").check()
    page.get_by_label("已开展").check()
    page.locator("label.cat-option", has_text="党员联学").click()
    page.get_by_label("活动名称").fill("照片很多的联学活动（端到端测试）")
    page.get_by_label("活动内容").fill("我在现场打了很多字，不想丢。")


def _posts(page) -> list[str]:
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    return sent


def test_files_over_the_limits_are_refused_before_sending_and_nothing_typed_is_lost(open_context, artifacts_dir,
                                                                                    tmp_path):
    page = open_context("phone").new_page()
    _open_form(page)
    form_url = page.url
    sent = _posts(page)
    error = page.locator("#photos [data-upload-error]")
    assert error.is_hidden()
    assert "合计不超过 30 MB" in page.locator("#photos .hint").inner_text()

    # One file over 10 MB: named, with its real size, as soon as it is chosen.
    page.locator("input[type=file][name=sheets]").set_input_files(str(_fake_pdf(tmp_path / "签到表.pdf", 11)))
    error.wait_for(state="visible")
    assert "“签到表.pdf”" in error.inner_text() and "11.0 MB" in error.inner_text() and "10.0 MB" in error.inner_text()
    page.get_by_role("button", name="保存").click()
    page.wait_for_timeout(300)
    assert page.url == form_url and sent == []
    assert page.get_by_label("活动名称").input_value() == "照片很多的联学活动（端到端测试）"
    assert page.get_by_role("button", name="保存").is_enabled()  # nothing was sent: the button stays usable

    # Four files of 9 MB (they cannot be scaled down): the total is refused, before sending.
    files = [str(_fake_pdf(tmp_path / f"扫描{i}.pdf", 9)) for i in range(4)]
    page.locator("input[type=file][name=sheets]").set_input_files(files)
    page.wait_for_function("() => /30 MB/.test(document.querySelector('#photos [data-upload-error]').textContent)")
    assert "36.0 MB" in error.inner_text()
    assert_fits(page, "记录活动 form with a size error")
    error.scroll_into_view_if_needed()
    screenshot(page, artifacts_dir, "phone-log-activity-too-large")
    page.get_by_role("button", name="保存").click()
    page.wait_for_timeout(300)
    assert page.url == form_url and sent == []
    assert page.get_by_label("活动内容").input_value() == "我在现场打了很多字，不想丢。"

    # Fewer files: the message goes away.
    page.locator("input[type=file][name=sheets]").set_input_files([])
    error.wait_for(state="hidden")


def test_four_camera_photos_are_scaled_down_and_saved(open_context, tmp_path):
    photos = [str(_camera_photo(tmp_path / f"IMG_000{i}.jpg")) for i in range(4)]
    total = sum(os.path.getsize(p) for p in photos)
    assert total > 32 * 1024 * 1024  # more than the server would read in one request

    page = open_context("phone").new_page()
    _open_form(page)
    page.locator("input[type=file][name=photos][multiple]").set_input_files(photos)
    page.wait_for_function("() => !document.querySelector('[data-activity-form]').hasAttribute('data-processing')",
                           timeout=30_000)
    sizes = page.evaluate("""() => Array.from(document.querySelector('input[name=photos][multiple]').files)
                               .map(f => [f.name, f.type, f.size])""")
    assert len(sizes) == 4 and all(t == "image/jpeg" for _n, t, _s in sizes)
    assert sum(s for _n, _t, s in sizes) < total / 1.5
    assert page.locator("#photos [data-upload-error]").is_hidden()
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/activities/\d+$"), timeout=60_000)
    assert "活动已记录" in page.locator(".flashes").inner_text()
    assert page.locator("#attachments img").count() == 4
    page.locator("#attachments img").first.evaluate("img => img.decode()")
    # The stored photo has the scaled-down size (the server would keep up to 4096 px).
    href = page.locator("#attachments a").first.get_attribute("href")
    dims = page.evaluate("""async href => { const r = await fetch(href); const b = await createImageBitmap(await r.blob());
                              return [b.width, b.height]; }""", href)
    assert max(dims) == 2560


def test_tapping_save_while_photos_are_scaled_down_sends_them_once_ready(open_context, tmp_path):
    photos = [str(_camera_photo(tmp_path / f"DSC_{i}.jpg")) for i in range(2)]
    page = open_context("phone").new_page()
    _open_form(page)
    page.locator("input[type=file][name=photos][multiple]").set_input_files(photos)
    page.get_by_role("button", name="保存").click()  # at once, while the photos are still being scaled down
    page.wait_for_url(re.compile(r"/activities/\d+$"), timeout=60_000)
    assert page.locator("#attachments img").count() == 2


def test_a_browser_that_cannot_rebuild_the_file_list_still_saves(open_context, tmp_path):
    """Older in-app browsers have DataTransfer but cannot construct one: the photo goes as taken, the form saves."""
    photo = str(_camera_photo(tmp_path / "IMG_old.jpg", size=(3000, 2000)))
    page = open_context("phone").new_page()
    page.add_init_script("window.DataTransfer = function () { throw new TypeError('Illegal constructor'); };")
    _open_form(page)
    page.locator("input[type=file][name=photos][multiple]").set_input_files([photo])
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r"/activities/\d+$"), timeout=60_000)
    assert page.locator("#attachments img").count() == 1
