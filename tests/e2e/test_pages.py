"""Every main page on a phone: no sideways scrolling, no console errors or CSP violations, and no
serious or critical accessibility problems found by axe-core (run in the same browser)."""
from __future__ import annotations

import json
import re

import pytest

from agreements.demo import TITLE_ACTIVE
from tests.e2e.helpers import AXE_JS, assert_fits, login

pytestmark = pytest.mark.browser

# axe-core is served to the page from the local copy scripts/setup installs (never from a CDN), under a
# same-origin URL, so it loads under the app's own strict Content-Security-Policy like any app script.
AXE_URL = "/__e2e__/axe.min.js"
AXE_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}}
BLOCKING = ("serious", "critical")


def _serve_axe(context) -> None:
    context.route(f"**{AXE_URL}", lambda route: route.fulfill(
        path=str(AXE_JS), content_type="application/javascript; charset=utf-8"))


def _axe(page) -> list[dict]:
    """Serious and critical violations on the current page, as short dicts."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(url=AXE_URL)
    result = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    return [
        {"page": page.url, "rule": v["id"], "impact": v["impact"], "help": v["help"],
         "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"] if v["impact"] in BLOCKING
    ]


def _check(page, name: str, found: list) -> None:
    page.wait_for_load_state()
    assert_fits(page, name)
    found.extend({"name": name, **v} for v in _axe(page))


@pytest.fixture
def axe_context(open_context):
    if not AXE_JS.is_file():
        pytest.skip(f"axe-core not installed at {AXE_JS} (run scripts/setup, which needs npm)")

    def make(kind="phone"):
        ctx = open_context(kind)
        _serve_axe(ctx)
        return ctx

    return make


def _report(found: list) -> str:
    return "axe found serious/critical problems:\n" + "\n".join(json.dumps(v, ensure_ascii=False) for v in found)


def test_public_pages(axe_context):
    page = axe_context().new_page()
    found: list = []
    page.goto("/login")
    _check(page, "login", found)
    page.goto("/verify")
    _check(page, "verify", found)
    assert found == [], _report(found)


def test_liaison_pages(axe_context):
    page = axe_context().new_page()
    login(page, "ops_lly")
    found: list = []
    _check(page, "home (liaison)", found)
    page.goto("/activities/")
    _check(page, "activities list", found)
    page.goto("/activities/new")
    # A chosen category tile turns the category's colour with white text: choose the lightest (品牌联建).
    page.locator("label.cat-option", has_text="品牌联建").click()
    _check(page, "new activity form", found)
    page.goto("/agreements/")
    _check(page, "agreements list", found)
    page.get_by_role("link", name=TITLE_ACTIVE).first.click()
    page.wait_for_url(re.compile(r"/agreements/\d+$"))
    _check(page, "agreement detail", found)
    page.goto("/activities/")
    page.locator("a.act-title").first.click()
    page.wait_for_url(re.compile(r"/activities/\d+$"))
    _check(page, "activity detail", found)
    page.goto("/notifications")
    _check(page, "notifications", found)
    page.goto("/reports/")
    _check(page, "reports", found)
    page.get_by_role("link", name=TITLE_ACTIVE).first.click()
    page.wait_for_url(re.compile(r"/reports/agreements/"))
    _check(page, "agreement report page", found)
    assert found == [], _report(found)


def test_reviewer_pages(axe_context):
    page = axe_context().new_page()
    login(page, "dangwei")
    found: list = []
    _check(page, "home (reviewer)", found)
    page.goto("/review/")
    _check(page, "cockpit", found)
    page.locator("table.matrix td.c a").first.click()
    page.wait_for_url(re.compile(r"/review/cell\?"))
    _check(page, "cockpit cell", found)
    page.goto("/notifications")
    _check(page, "notifications (reviewer)", found)
    page.goto("/reports/")
    _check(page, "reports (reviewer)", found)
    page.locator("ul.plain a[href*='/reports/committee/']").first.click()
    page.wait_for_url(re.compile(r"/reports/committee/"))
    _check(page, "committee report page", found)

    # The cockpit is mostly used at a desk, where the matrix shows more (year-to-date figures per cell).
    desk = axe_context("desktop").new_page()
    login(desk, "dangwei")
    desk.goto("/review/")
    desk.locator(".period-nav .seg").get_by_role("link", name="年", exact=True).click()
    desk.wait_for_url(re.compile(r"period="))
    _check(desk, "cockpit (desktop, year)", found)
    assert found == [], _report(found)
