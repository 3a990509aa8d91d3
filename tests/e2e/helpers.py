"""Helpers for the browser tests: sign in, check the layout fits a phone, take screenshots."""
from __future__ import annotations

from pathlib import Path

from coop.demo import DEMO_PASSWORD as PASSWORD  # every demo user's password

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
AXE_JS = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"  # installed by scripts/setup


def login(page, username: str, password: str = PASSWORD) -> None:
    """Sign in through the real form and land on the home page."""
    page.goto("/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码", exact=True).fill(password)
    page.get_by_role("button", name="登录").click()
    page.wait_for_load_state()
    assert "/login" not in page.url, f"sign-in as {username} failed: {page.url}"


def assert_fits(page, what: str = "") -> None:
    """No horizontal overflow: document.documentElement.scrollWidth <= the viewport's width.

    With mobile emulation (is_mobile) Chromium widens the layout viewport to fit wide content, and
    window.innerWidth grows with it (a 700px element makes it 712), so the width is also taken from
    the emulated screen (page.viewport_size) and documentElement.clientWidth, which do not.
    """
    scroll, inner, client = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth, document.documentElement.clientWidth]")
    width = min(inner, client, page.viewport_size["width"])
    if scroll > width:
        culprits = page.evaluate(
            """w => {
                const name = el => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
                  (typeof el.className === 'string' && el.className.trim() ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
                  ' right=' + Math.round(el.getBoundingClientRect().right);
                const wide = [...document.querySelectorAll('body *')].filter(el => {
                  const r = el.getBoundingClientRect(); return r.width > 0 && r.right > w + 1; });
                // Prefer elements that are not inside a sideways-scrolling wrapper which itself fits.
                const free = wide.filter(el => {
                  for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
                    if (getComputedStyle(p).overflowX !== 'visible' && p.getBoundingClientRect().right <= w + 1) return false;
                  }
                  return true; });
                return (free.length ? free : wide).slice(0, 8).map(name); }""", width)
        raise AssertionError(f"{what or page.url}: page is {scroll}px wide in a {width}px viewport; "
                             f"overflowing: {culprits}")


def screenshot(page, artifacts_dir: Path, name: str) -> Path:
    """Save the viewport (not the whole page, to keep the files small) as <name>.png."""
    path = artifacts_dir / f"{name}.png"
    page.screenshot(path=str(path), full_page=False, animations="disabled", caret="hide")
    return path
