"""Texts computed once and shown both in Chinese documents and on screens.

Report and cockpit data (coop.reports.queries, coop.review.queries) build sentences such as
"近180天5条记录中4条由一支部录入" once; PDFs, spreadsheets, stored text and the JSON API must get them in
Chinese, screens in the interface language. A :class:`UiText` is that Chinese string (a real ``str``:
PDF templates, ``json``, openpyxl and equality tests see plain Chinese), remembering how it was made — a
message id and its values, or a separator and its parts — so a screen can say it again with
``{{ value|ui_text }}`` (or :func:`ui_text` in Python) in the reader's language.

Message ids are marked with ``N_`` where they are written, and translated in i18n/en/reports_review.po.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Callable, Iterable


class UiText(str):
    """A Chinese text that can be re-rendered in the interface language (see the module docstring)."""

    # str subclasses cannot have __slots__: these live in the instance dict.
    _msgid: str | None
    _params: dict
    _sep: str | None
    _parts: tuple
    _render: tuple | None  # (function, args)
    _translate: bool

    def __new__(cls, msgid: str, **params) -> "UiText":
        """msgid % params (no formatting without params, as gettext does); msgid is translated on screens."""
        obj = str.__new__(cls, msgid % params if params else msgid)
        obj._msgid, obj._params, obj._sep, obj._parts, obj._render, obj._translate = msgid, params, None, (), None, True
        return obj

    @classmethod
    def plain(cls, pattern: str, **params) -> "UiText":
        """Like UiText(pattern, ...) but the pattern itself is not translated (no words in it, e.g. "%(a)s %(b)s/%(c)s");
        only the values are re-rendered."""
        obj = cls(pattern, **params)
        obj._translate = False
        return obj

    @classmethod
    def join(cls, sep: str, parts: Iterable[str]) -> "UiText":
        """sep.join(parts); on screens the separator is translated ("、" → ", ") and each part re-rendered."""
        parts = tuple(parts)
        obj = str.__new__(cls, sep.join(parts))
        obj._msgid, obj._params, obj._sep, obj._parts, obj._render, obj._translate = None, {}, sep, parts, None, True
        return obj

    @classmethod
    def custom(cls, chinese: str, render: Callable[..., str], *args) -> "UiText":
        """A Chinese value whose screen form is `render(*args)` (a module-level function, so it pickles)."""
        obj = str.__new__(cls, chinese)
        obj._msgid, obj._params, obj._sep, obj._parts, obj._translate = None, {}, None, (), True
        obj._render = (render, args)
        return obj

    @classmethod
    def date(cls, value: date | datetime | None) -> "UiText":
        """A date: 2026年11月22日 in documents, the interface's date format on screens."""
        from coop.formatting import cn_date, ui_date

        return cls.custom(cn_date(value), ui_date, value)

    def ui(self) -> str:
        """This text in the interface language (Chinese outside a request)."""
        from flask_babel import gettext

        if self._render is not None:
            render, args = self._render
            return render(*args)
        if self._sep is not None:
            return gettext(self._sep).join(ui_text(p) for p in self._parts)
        params = {k: ui_text(v) for k, v in self._params.items()}
        if not self._translate:
            return self._msgid % params if params else self._msgid
        return gettext(self._msgid, **params) if params else gettext(self._msgid)

    # Immutable: copies (dataclasses.asdict deep-copies field values) may share it.
    def __copy__(self) -> "UiText":
        return self

    def __deepcopy__(self, memo) -> "UiText":
        return self

    def __reduce__(self):
        return _rebuild, (str(self), dict(self.__dict__))


def _rebuild(value: str, state: dict) -> UiText:
    obj = str.__new__(UiText, value)
    obj.__dict__.update(state)
    return obj


def ui_text(value):
    """`value` in the interface language when it is a UiText; anything else unchanged (a template filter)."""
    return value.ui() if isinstance(value, UiText) else value
