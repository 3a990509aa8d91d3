"""Turning stored values into what Chinese readers expect: local time, 2026年11月22日, labels."""
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
