"""Turning stored values into what readers expect: local time, 2026年11月22日, labels.

The plain functions (cn_date, cn_datetime, month_label, cn_numeral) always write Chinese: PDFs, spreadsheets,
stored notices and audit summaries use them. Screens and e-mails use the ui_* functions (and the template
filters of the same names as the plain functions, see coop.web), which write Chinese in the Chinese interface
and ISO-like dates in English (2026-11-22, 2026-11-22 14:05, November 2026, Q4 2026)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from zoneinfo import ZoneInfo

from flask import current_app, has_app_context

DEFAULT_TZ = "Asia/Shanghai"


def local_tz() -> ZoneInfo:
    """The display time zone (Asia/Shanghai unless configured otherwise)."""
    name = current_app.config.get("TIMEZONE", DEFAULT_TZ) if has_app_context() else DEFAULT_TZ
    return ZoneInfo(name)


def to_local(dt: datetime | None) -> datetime | None:
    """An aware UTC datetime converted to the display time zone."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(local_tz())


def local_today() -> date:
    """Today's date in the display time zone."""
    return datetime.now(local_tz()).date()


def cn_date(value: date | datetime | None) -> str:
    """2026年11月22日 (datetimes are first converted to local time)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_local(value).date()
    return f"{value.year}年{value.month}月{value.day}日"


def cn_datetime(value: datetime | None) -> str:
    """2026年11月22日 14:05 in local time."""
    if value is None:
        return ""
    local = to_local(value)
    return f"{cn_date(local.date())} {local:%H:%M}"


def iso_date(value: date | datetime | None) -> str:
    """2026-11-22 (local date for datetimes)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_local(value).date()
    return value.isoformat()


def local_datetime(value: datetime | None) -> str:
    """2026-11-22 14:05 in local time."""
    if value is None:
        return ""
    return f"{to_local(value):%Y-%m-%d %H:%M}"


_CN_DIGITS = "〇一二三四五六七八九"


def cn_numeral(n: int) -> str:
    """Chinese clause numbering: 1 → 一, 12 → 十二, 21 → 二十一 (up to 99)."""
    if n < 10:
        return _CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    return (("" if tens == 1 else _CN_DIGITS[tens]) + "十" + (_CN_DIGITS[ones] if ones else "")) if n < 100 else str(n)


def month_label(year: int, month: int) -> str:
    """2026年11月."""
    return f"{year}年{month}月"


# --- in the interface language (screens, e-mails, flash messages) -------------------------------------

_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
              "November", "December")


def ui_is_english() -> bool:
    """True when the current interface language is English (never outside an app context)."""
    from flask_babel import get_locale

    locale = get_locale()
    return locale is not None and locale.language == "en"


def ui_date(value: date | datetime | str | None) -> str:
    """A date for screens: 2026年11月22日 in Chinese, 2026-11-22 in English. Also takes the ISO text that stored
    JSON documents hold (an agreement version's content)."""
    if isinstance(value, str):
        value = date.fromisoformat(value)
    return iso_date(value) if ui_is_english() else cn_date(value)


def ui_datetime(value: datetime | None) -> str:
    """A moment for screens (local time): 2026年11月22日 14:05 in Chinese, 2026-11-22 14:05 in English."""
    return local_datetime(value) if ui_is_english() else cn_datetime(value)


def ui_month(year: int, month: int) -> str:
    """A month for screens: 2026年11月 in Chinese, November 2026 in English."""
    return f"{_EN_MONTHS[month - 1]} {year}" if ui_is_english() else month_label(year, month)


def ui_quarter(year: int, quarter: int) -> str:
    """A quarter for screens: 2026年第四季度 in Chinese, Q4 2026 in English."""
    return f"Q{quarter} {year}" if ui_is_english() else f"{year}年第{cn_numeral(quarter)}季度"


def ui_numeral(n: int) -> str:
    """Clause/quarter numbering for screens: 四 in Chinese, 4 in English."""
    return str(n) if ui_is_english() else cn_numeral(n)


def ui_year(year: int) -> str:
    """A year for screens: 2026年 in Chinese, 2026 in English."""
    return str(year) if ui_is_english() else f"{year}年"


def ui_indent(depth: int) -> str:
    """Indentation of a tree level in a select box: ideographic spaces in Chinese, no-break spaces in English."""
    return ("\u00a0\u00a0" if ui_is_english() else "\u3000") * depth
