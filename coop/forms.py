"""Form pieces shared by every domain: trimmed strings, Chinese messages, choices from enums."""
from __future__ import annotations

import enum
import unicodedata

from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import ValidationError

# Characters that never belong in names or titles: C0/C1 controls and bidi overrides, which can make
# text display differently from what was stored (e.g. U+202E turning "gnp.exe" around).
_BIDI_CONTROLS = {"\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f"}


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
    """(value, Chinese label) pairs for a select box."""
    return [(m.value, labels[m]) for m in enum_cls]


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
        if self.data not in {v for v, _ in self.choices}:
            raise ValidationError("请选择一个有效的选项。")
