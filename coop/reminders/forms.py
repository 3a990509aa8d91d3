"""The notification-settings form on the profile page."""
from __future__ import annotations

from datetime import time

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import RadioField, StringField
from wtforms.validators import ValidationError

from coop.auth.forms import MultiCheckboxField
from coop.reminders.models import EMAIL_MODE_LABELS, KIND_LABELS, MANDATORY_KINDS, EmailMode, ReminderKind


def _parse_time(text: str | None) -> time | None:
    text = (text or "").strip().replace("：", ":")
    if not text:
        return None
    try:
        hour, minute = text.split(":", 1)
        return time(int(hour), int(minute))
    except (ValueError, OverflowError):  # OverflowError: "99999999999999999999:00"
        raise ValidationError(_("请按 22:00 这样的格式填写时间。")) from None


class ClockField(StringField):
    """A HH:MM wall-clock time (a plain text box with a time keyboard on phones); data is a time or None."""

    def process_formdata(self, valuelist):
        self.raw = valuelist[0] if valuelist else ""
        self.data = None

    def _value(self):
        if isinstance(self.data, time):
            return f"{self.data:%H:%M}"
        return getattr(self, "raw", "") or ""

    def pre_validate(self, form):
        if hasattr(self, "raw"):
            self.data = _parse_time(self.raw)

    def __call__(self, **kwargs):
        kwargs.setdefault("type", "time")
        return super().__call__(**kwargs)


class KindsField(MultiCheckboxField):
    """Checkboxes of reminder kinds, refusing unknown (or mandatory) kinds."""

    def pre_validate(self, form):
        allowed = {value for value, _label in self.choices}
        if any(value not in allowed for value in self.data or ()):
            raise ValidationError(_("包含无效或不可关闭的提醒类型。"))


class PreferencesForm(FlaskForm):
    """E-mail mode, quiet hours and the optional kinds wanted by e-mail."""

    email_mode = RadioField(
        _l("邮件提醒方式"),
        choices=[(m.value, _l(EMAIL_MODE_LABELS[m])) for m in EmailMode],
        default=EmailMode.daily.value,
    )
    quiet_start = ClockField(_l("免打扰开始"))
    quiet_end = ClockField(_l("免打扰结束"))
    email_kinds = KindsField(
        _l("通过邮件接收以下提醒"),
        choices=[(k.value, _l(KIND_LABELS[k])) for k in ReminderKind if k not in MANDATORY_KINDS],
    )

    def validate_quiet_end(self, field):
        if (self.quiet_start.data is None) != (field.data is None):
            raise ValidationError(_("请同时填写开始和结束时间，或都留空。"))
        if field.data is not None and field.data == self.quiet_start.data:
            raise ValidationError(_("开始和结束时间不能相同。"))
