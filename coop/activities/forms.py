"""Forms of the activity ledger: log, edit, mark held, confirm, withdraw, attach, import, filter.

Choices that depend on the user (agreements, participating organizations) are set by the view.
Business rules (who may log, agreement term, category requirements) live in operations; these forms
only check shapes, so that a refused form keeps everything the person typed.
"""
from __future__ import annotations

from datetime import date, datetime, time

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField
from wtforms import DateField, IntegerField, RadioField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from coop.activities.models import ActivityStatus, ConfirmationState
from coop.activities.operations import MAX_OTHERS, MAX_PARTY_MEMBERS
from coop.categories import CATEGORIES
from coop.forms import CleanStringField, CleanTextAreaField, NumberRange, clean_text, parse_id

# Labels are lazy: shown in the interface language of the request that renders the form.
CATEGORY_CHOICES = [(c.code, _l(c.name)) for c in CATEGORIES]
STATUS_CHOICES = [(ActivityStatus.held.value, _l("已开展")), (ActivityStatus.planned.value, _l("计划中"))]


class ChineseDateField(DateField):
    """A native <input type=date> whose parse error is in the interface language."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = datetime.strptime(valuelist[0].strip(), "%Y-%m-%d").date()
        except ValueError:
            self.data = None
            raise ValueError(_("日期格式应为 2026-11-22。")) from None


class ChineseTimeField(StringField):
    """A native <input type=time> (HH:MM, seconds tolerated), optional, with a parse error in the interface language."""

    def __init__(self, label=None, validators=None, **kw):
        kw.setdefault("render_kw", {}).setdefault("type", "time")
        super().__init__(label, validators, **kw)

    def _value(self):
        if self.raw_data:
            return self.raw_data[0]
        return self.data.strftime("%H:%M") if isinstance(self.data, time) else ""

    def process_formdata(self, valuelist):
        raw = valuelist[0].strip() if valuelist else ""
        if not raw:
            self.data = None
            return
        for fmt in ("%H:%M", "%H:%M:%S"):
            try:
                self.data = datetime.strptime(raw, fmt).time()
                return
            except ValueError:
                continue
        self.data = None
        raise ValueError(_("时间格式应为 14:30。"))


class CountField(IntegerField):
    """A head count: empty means 0; a numeric keypad on phones."""

    def __init__(self, label=None, maximum=MAX_PARTY_MEMBERS, **kw):
        kw.setdefault("render_kw", {}).update({"inputmode": "numeric", "min": "0", "max": str(maximum), "step": "1"})
        super().__init__(label, [Optional(), NumberRange(0, maximum, _l("应在 0 到 %(max)s 之间", max=maximum))], **kw)

    def process_formdata(self, valuelist):
        raw = valuelist[0].strip() if valuelist else ""
        if not raw:
            self.data = None
            return
        try:
            self.data = int(raw)
        except ValueError:
            self.data = None
            raise ValueError(_("请填写整数。")) from None


class IntListField(SelectMultipleField):
    """A set of ids posted as repeated checkboxes; rendered by hand in the template."""

    def __init__(self, label=None, **kw):
        super().__init__(label, coerce=int, validate_choice=False, **kw)

    def process_formdata(self, valuelist):
        ids = []
        for raw in valuelist:
            try:
                ids.append(int(raw))
            except (TypeError, ValueError):
                raise ValueError(_("选项无效。")) from None
        self.data = list(dict.fromkeys(ids))


class _ActivityFields(FlaskForm):
    category = RadioField(_l("活动类别"), choices=CATEGORY_CHOICES, validators=[InputRequired(_l("请选择活动类别"))])
    tags = SelectMultipleField(_l("同时涉及的类别"), choices=CATEGORY_CHOICES, validators=[Optional()])
    title = CleanStringField(_l("活动名称"), validators=[DataRequired(_l("请填写活动名称")),
                                                     Length(max=200, message=_l("不能超过 200 个字"))],
                             render_kw={"autocomplete": "off", "maxlength": "200"})
    held_on = ChineseDateField(_l("日期"), validators=[InputRequired(_l("请填写活动日期"))], render_kw={"type": "date"})
    start_time = ChineseTimeField(_l("开始时间"), validators=[Optional()])
    end_time = ChineseTimeField(_l("结束时间"), validators=[Optional()])
    place = CleanStringField(_l("地点"), validators=[Optional(), Length(max=200, message=_l("不能超过 200 个字"))],
                             render_kw={"maxlength": "200"})
    organization_ids = IntListField(_l("参与组织"))
    party_member_count = CountField(_l("党员人数"), maximum=MAX_PARTY_MEMBERS)
    other_count = CountField(_l("其他人数"), maximum=MAX_OTHERS)
    summary = CleanTextAreaField(_l("活动内容"), validators=[Optional(), Length(max=5000, message=_l("不能超过 5000 个字"))],
                                 render_kw={"rows": "4", "placeholder": _l("做了什么：议程、形式、主讲人……")})
    outcome = CleanTextAreaField(_l("活动成效"), validators=[Optional(), Length(max=5000, message=_l("不能超过 5000 个字"))],
                                 render_kw={"rows": "3", "placeholder": _l("取得了什么：达成的共识、解决的问题、后续安排……")})

    def validate_organization_ids(self, field):
        if not field.data:
            raise ValidationError(_("请勾选参加活动的组织。"))

    def validate_end_time(self, field):
        if field.data and self.start_time.data and field.data < self.start_time.data:
            raise ValidationError(_("结束时间不能早于开始时间。"))


class LogActivityForm(_ActivityFields):
    """记录活动: a new planned or held activity, with optional photos."""

    agreement_ids = IntListField(_l("所属协议"))
    status = RadioField(_l("状态"), choices=STATUS_CHOICES, default=ActivityStatus.held.value,
                        validators=[InputRequired(_l("请选择活动状态"))])
    photos = MultipleFileField(_l("照片"))
    sheets = MultipleFileField(_l("签到表等文件"))

    def validate_agreement_ids(self, field):
        if not field.data:
            raise ValidationError(_("请选择活动所属的共建协议。"))


class EditActivityForm(_ActivityFields):
    """Edit an activity's content (the agreements and the status are changed by other actions)."""

    note = CleanStringField(_l("修改说明（可选）"), validators=[Optional(), Length(max=200, message=_l("不能超过 200 个字"))])


class MarkHeldForm(FlaskForm):
    """A planned activity took place: date, who came, what was done and achieved, photos."""

    held_on = ChineseDateField(_l("实际日期"), validators=[InputRequired(_l("请填写活动日期"))], render_kw={"type": "date"})
    start_time = ChineseTimeField(_l("开始时间"), validators=[Optional()])
    end_time = ChineseTimeField(_l("结束时间"), validators=[Optional()])
    place = CleanStringField(_l("地点"), validators=[Optional(), Length(max=200, message=_l("不能超过 200 个字"))])
    organization_ids = IntListField(_l("参与组织"))
    party_member_count = CountField(_l("党员人数"), maximum=MAX_PARTY_MEMBERS)
    other_count = CountField(_l("其他人数"), maximum=MAX_OTHERS)
    summary = CleanTextAreaField(_l("活动内容"), validators=[Optional(), Length(max=5000, message=_l("不能超过 5000 个字"))],
                                 render_kw={"rows": "4"})
    outcome = CleanTextAreaField(_l("活动成效"), validators=[Optional(), Length(max=5000, message=_l("不能超过 5000 个字"))],
                                 render_kw={"rows": "3"})
    photos = MultipleFileField(_l("照片"))
    sheets = MultipleFileField(_l("签到表等文件"))

    def validate_organization_ids(self, field):
        if not field.data:
            raise ValidationError(_("请勾选参加活动的组织。"))


class ConfirmForm(FlaskForm):
    """A partner's answer: confirm, or dispute with a comment."""

    decision = SelectField("", choices=[("confirm", _l("确认")), ("dispute", _l("有异议"))], validators=[DataRequired()])
    comment = CleanTextAreaField(_l("说明"), validators=[Optional(), Length(max=1000, message=_l("不能超过 1000 个字"))],
                                 render_kw={"rows": "2", "placeholder": _l("有异议时请写明哪里不符")})
    organization_id = IntegerField(validators=[Optional()])

    def validate_comment(self, field):
        if self.decision.data == "dispute" and not field.data:
            raise ValidationError(_("提出异议时请写明原因。"))


class WithdrawForm(FlaskForm):
    """Withdraw with a reason everyone will see."""

    reason = CleanTextAreaField(_l("撤回原因"), validators=[DataRequired(_l("请写明撤回原因")),
                                                        Length(max=1000, message=_l("不能超过 1000 个字"))],
                                render_kw={"rows": "2"})


class AttachmentForm(FlaskForm):
    """More photos or a sign-in sheet for an existing activity."""

    files = MultipleFileField(_l("选择文件"))


class ImportForm(FlaskForm):
    """A 工作台账 .xlsx file in the export layout."""

    file = FileField("台账文件（.xlsx）")


class LedgerFilterForm(FlaskForm):
    """The ledger's filters, read from the query string (no CSRF: GET only, changes nothing)."""

    class Meta:
        csrf = False

    q = StringField(_l("搜索"), validators=[Optional(), Length(max=100)],
                    render_kw={"placeholder": _l("搜索名称、内容、地点"), "type": "search"})
    category = SelectField(_l("类别"), choices=[("", _l("全部类别"))] + CATEGORY_CHOICES, validators=[Optional()])
    date_from = ChineseDateField(_l("起始日期"), validators=[Optional()], render_kw={"type": "date"})
    date_to = ChineseDateField(_l("截止日期"), validators=[Optional()], render_kw={"type": "date"})
    status = SelectField(_l("状态"), choices=[("", _l("全部状态"))] + [(s.value, _l(s.label)) for s in ActivityStatus],
                         validators=[Optional()])
    confirmation = SelectField(_l("确认情况"),
                               choices=[("", _l("全部确认情况"))] + [(s.value, _l(s.label)) for s in ConfirmationState],
                               validators=[Optional()])
    partner = SelectField(_l("伙伴"), choices=[("", _l("全部伙伴"))], validators=[Optional()])
    agreement = SelectField(_l("协议"), choices=[("", _l("全部协议"))], validators=[Optional()])


def filter_values(form: LedgerFilterForm) -> dict:
    """The valid filters as ledger_query keyword arguments (invalid ones are ignored, never 500)."""
    valid = {}
    for name in ("category", "status", "confirmation"):
        value = getattr(form, name).data
        if value and value in {v for v, _ in getattr(form, name).choices}:
            valid[name] = value
    for name in ("date_from", "date_to"):
        if isinstance(getattr(form, name).data, date) and not getattr(form, name).errors:
            valid[name] = getattr(form, name).data
    q = clean_text(form.q.data or "")[:100]  # no NUL: PostgreSQL refuses it in a parameter
    if q:
        valid["q"] = q
    for name, key in (("partner", "partner_org_id"), ("agreement", "agreement_id")):
        value = getattr(form, name).data
        if parse_id(value) is not None and value in {v for v, _ in getattr(form, name).choices}:
            valid[key] = int(value)
    return valid
