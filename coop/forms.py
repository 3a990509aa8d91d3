"""Form pieces shared by every domain: trimmed strings, messages in the interface language, choices from enums."""
from __future__ import annotations

import enum
import re
import unicodedata

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from wtforms import SelectField, StringField, TextAreaField
from wtforms import validators as _validators
from wtforms.validators import StopValidation, ValidationError

# Characters that never belong in names or titles: C0/C1 controls and bidi overrides, which can make
# text display differently from what was stored (e.g. U+202E turning "gnp.exe" around).
_BIDI_CONTROLS = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f",
                  "\u061c"}  # U+061C ARABIC LETTER MARK: the third implicit mark, beside LRM and RLM


def clean_text(value: str | None, *, multiline: bool = False) -> str | None:
    """Strip edges, normalise to NFC, drop control and bidi-override characters (keep newlines if multiline)."""
    if value is None:
        return None
    value = unicodedata.normalize("NFC", value)
    kept = []
    for ch in value:
        if ch in _BIDI_CONTROLS:
            continue
        if multiline and ch in "\n\t":
            kept.append(ch)
            continue
        if unicodedata.category(ch) in ("Cc", "Cs"):
            continue
        kept.append(ch)
    text = "".join(kept).replace("\r", "")
    return text.strip()


# The address syntax browsers accept in <input type=email> (WHATWG HTML). wtforms' own Email() needs the
# email_validator package, which the platform does not install: without it every address was a 500.
_EMAIL_RE = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


class Email:
    """Validator: an e-mail address of the shape browsers accept (no extra package needed)."""

    def __init__(self, message=_l("邮箱格式不正确")):
        self.message = message

    def __call__(self, form, field):
        if field.data and not _EMAIL_RE.fullmatch(field.data):
            raise ValidationError(self.message)


def parse_id(text) -> int | None:
    """A row id posted as text: ASCII digits that fit a 64-bit integer, else None (never raises).

    ``str.isdigit()`` is not enough: it accepts "²" (int() then raises) and 30-digit numbers (the database
    driver then raises), both a 500 when they come from a form or a query string.
    """
    if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


class NumberRange(_validators.NumberRange):
    """wtforms' NumberRange, except that an integer too big for a float is out of range instead of an
    OverflowError (a 500) from its ``math.isnan`` check: "9" * 400 typed into a count field."""

    def __call__(self, form, field):
        data = field.data
        if data is None and field.process_errors:
            # What was typed is not a number ("abc", "1.5"): its parse error says so; "must be between" would
            # only add a second message about a value that does not exist.
            raise StopValidation()
        if isinstance(data, int) and not isinstance(data, bool) and (
            (self.min is not None and data < self.min) or (self.max is not None and data > self.max)
        ):
            raise ValidationError(self.message or _("数值超出允许的范围。"))
        super().__call__(form, field)


class CleanStringField(StringField):
    """A single-line text field that stores cleaned text."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        self.data = clean_text(self.data) if self.data is not None else None


class CleanTextAreaField(TextAreaField):
    """A multi-line text field that stores cleaned text."""

    def process_formdata(self, valuelist):
        super().process_formdata(valuelist)
        self.data = clean_text(self.data, multiline=True) if self.data is not None else None


def enum_choices(enum_cls: type[enum.Enum], labels: dict) -> list[tuple[str, str]]:
    """(value, label) pairs for a select box; labels are shown in the interface language, so a plain
    Chinese label must be marked where it is written (N_ or _l) to have its English translation."""
    return [(m.value, _l(labels[m]) if isinstance(labels[m], str) else labels[m]) for m in enum_cls]


class EnumSelectField(SelectField):
    """A select whose data is the Enum member."""

    def __init__(self, label=None, validators=None, *, enum_cls, labels, **kw):
        super().__init__(label, validators, choices=enum_choices(enum_cls, labels), **kw)
        self.enum_cls = enum_cls

    def process_data(self, value):
        self.data = value.value if isinstance(value, enum.Enum) else value

    @property
    def enum_value(self):
        try:
            return self.enum_cls(self.data)
        except ValueError:
            return None

    def pre_validate(self, form):
        if self.data not in {v for v, _label in self.choices}:
            raise ValidationError(_("请选择一个有效的选项。"))
