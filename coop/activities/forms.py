"""Forms of the activity ledger: log, edit, mark held, confirm, withdraw, attach, import, filter.

Choices that depend on the user (agreements, participating organizations) are set by the view.
Business rules (who may log, agreement term, category requirements) live in operations; these forms
only check shapes, so that a refused form keeps everything the person typed.
"""
from __future__ import annotations

from datetime import date, datetime, time

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, MultipleFileField
from wtforms import DateField, IntegerField, RadioField, SelectField, SelectMultipleField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from coop.activities.models import ActivityStatus, ConfirmationState
from coop.activities.operations import MAX_OTHERS, MAX_PARTY_MEMBERS
from coop.categories import CATEGORIES
from coop.forms import CleanStringField, CleanTextAreaField, NumberRange, clean_text, parse_id

CATEGORY_CHOICES = [(c.code, c.name) for c in CATEGORIES]
STATUS_CHOICES = [(ActivityStatus.held.value, "已开展"), (ActivityStatus.planned.value, "计划中")]


class ChineseDateField(DateField):
    """A native <input type=date> whose parse error is in Chinese."""

    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = datetime.strptime(valuelist[0].strip(), "%Y-%m-%d").date()
        except ValueError:
            self.data = None
            raise ValueError("日期格式应为 2026-11-22。") from None


class ChineseTimeField(StringField):
    """A native <input type=time> (HH:MM, seconds tolerated), optional, with a Chinese parse error."""

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
        raise ValueError("时间格式应为 14:30。")


class CountField(IntegerField):
    """A head count: empty means 0; a numeric keypad on phones."""

    def __init__(self, label=None, maximum=MAX_PARTY_MEMBERS, **kw):
        kw.setdefault("render_kw", {}).update({"inputmode": "numeric", "min": "0", "max": str(maximum), "step": "1"})
        super().__init__(label, [Optional(), NumberRange(0, maximum, f"应在 0 到 {maximum} 之间")], **kw)

    def process_formdata(self, valuelist):
        raw = valuelist[0].strip() if valuelist else ""
        if not raw:
            self.data = None
            return
        try:
            self.data = int(raw)
        except ValueError:
            self.data = None
            raise ValueError("请填写整数。") from None


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
                raise ValueError("选项无效。") from None
        self.data = list(dict.fromkeys(ids))


class _ActivityFields(FlaskForm):
    category = RadioField("活动类别", choices=CATEGORY_CHOICES, validators=[InputRequired("请选择活动类别")])
    tags = SelectMultipleField("同时涉及的类别", choices=CATEGORY_CHOICES, validators=[Optional()])
    title = CleanStringField("活动名称", validators=[DataRequired("请填写活动名称"), Length(max=200, message="不能超过 200 个字")],
                             render_kw={"autocomplete": "off", "maxlength": "200"})
    held_on = ChineseDateField("日期", validators=[InputRequired("请填写活动日期")], render_kw={"type": "date"})
    start_time = ChineseTimeField("开始时间", validators=[Optional()])
    end_time = ChineseTimeField("结束时间", validators=[Optional()])
    place = CleanStringField("地点", validators=[Optional(), Length(max=200, message="不能超过 200 个字")],
                             render_kw={"maxlength": "200"})
    organization_ids = IntListField("参与组织")
    party_member_count = CountField("党员人数", maximum=MAX_PARTY_MEMBERS)
    other_count = CountField("其他人数", maximum=MAX_OTHERS)
    summary = CleanTextAreaField("活动内容", validators=[Optional(), Length(max=5000, message="不能超过 5000 个字")],
                                 render_kw={"rows": "4", "placeholder": "做了什么：议程、形式、主讲人……"})
    outcome = CleanTextAreaField("活动成效", validators=[Optional(), Length(max=5000, message="不能超过 5000 个字")],
                                 render_kw={"rows": "3", "placeholder": "取得了什么：达成的共识、解决的问题、后续安排……"})

    def validate_organization_ids(self, field):
        if not field.data:
            raise ValidationError("请勾选参加活动的组织。")

    def validate_end_time(self, field):
        if field.data and self.start_time.data and field.data < self.start_time.data:
            raise ValidationError("结束时间不能早于开始时间。")


class LogActivityForm(_ActivityFields):
    """记录活动: a new planned or held activity, with optional photos."""

    agreement_ids = IntListField("所属协议")
    status = RadioField("状态", choices=STATUS_CHOICES, default=ActivityStatus.held.value,
                        validators=[InputRequired("请选择活动状态")])
    photos = MultipleFileField("照片")
    sheets = MultipleFileField("签到表等文件")

    def validate_agreement_ids(self, field):
        if not field.data:
            raise ValidationError("请选择活动所属的共建协议。")


class EditActivityForm(_ActivityFields):
    """Edit an activity's content (the agreements and the status are changed by other actions)."""

    note = CleanStringField("修改说明（可选）", validators=[Optional(), Length(max=200, message="不能超过 200 个字")])


class MarkHeldForm(FlaskForm):
    """A planned activity took place: date, who came, what was done and achieved, photos."""

    held_on = ChineseDateField("实际日期", validators=[InputRequired("请填写活动日期")], render_kw={"type": "date"})
    start_time = ChineseTimeField("开始时间", validators=[Optional()])
    end_time = ChineseTimeField("结束时间", validators=[Optional()])
    place = CleanStringField("地点", validators=[Optional(), Length(max=200, message="不能超过 200 个字")])
    organization_ids = IntListField("参与组织")
    party_member_count = CountField("党员人数", maximum=MAX_PARTY_MEMBERS)
    other_count = CountField("其他人数", maximum=MAX_OTHERS)
    summary = CleanTextAreaField("活动内容", validators=[Optional(), Length(max=5000, message="不能超过 5000 个字")],
                                 render_kw={"rows": "4"})
    outcome = CleanTextAreaField("活动成效", validators=[Optional(), Length(max=5000, message="不能超过 5000 个字")],
                                 render_kw={"rows": "3"})
    photos = MultipleFileField("照片")
    sheets = MultipleFileField("签到表等文件")

    def validate_organization_ids(self, field):
        if not field.data:
            raise ValidationError("请勾选参加活动的组织。")


class ConfirmForm(FlaskForm):
    """A partner's answer: confirm, or dispute with a comment."""

    decision = SelectField("", choices=[("confirm", "确认"), ("dispute", "有异议")], validators=[DataRequired()])
    comment = CleanTextAreaField("说明", validators=[Optional(), Length(max=1000, message="不能超过 1000 个字")],
                                 render_kw={"rows": "2", "placeholder": "有异议时请写明哪里不符"})
    organization_id = IntegerField(validators=[Optional()])

    def validate_comment(self, field):
        if self.decision.data == "dispute" and not field.data:
            raise ValidationError("提出异议时请写明原因。")


class WithdrawForm(FlaskForm):
    """Withdraw with a reason everyone will see."""

    reason = CleanTextAreaField("撤回原因", validators=[DataRequired("请写明撤回原因"), Length(max=1000, message="不能超过 1000 个字")],
                                render_kw={"rows": "2"})


class AttachmentForm(FlaskForm):
    """More photos or a sign-in sheet for an existing activity."""

    files = MultipleFileField("选择文件")


class ImportForm(FlaskForm):
    """A 工作台账 .xlsx file in the export layout."""

    file = FileField("台账文件（.xlsx）")


class LedgerFilterForm(FlaskForm):
    """The ledger's filters, read from the query string (no CSRF: GET only, changes nothing)."""

    class Meta:
        csrf = False

    q = StringField("搜索", validators=[Optional(), Length(max=100)], render_kw={"placeholder": "搜索名称、内容、地点", "type": "search"})
    category = SelectField("类别", choices=[("", "全部类别")] + CATEGORY_CHOICES, validators=[Optional()])
    date_from = ChineseDateField("起始日期", validators=[Optional()], render_kw={"type": "date"})
    date_to = ChineseDateField("截止日期", validators=[Optional()], render_kw={"type": "date"})
    status = SelectField("状态", choices=[("", "全部状态")] + [(s.value, s.label) for s in ActivityStatus], validators=[Optional()])
    confirmation = SelectField("确认情况", choices=[("", "全部确认情况")] + [(s.value, s.label) for s in ConfirmationState],
                               validators=[Optional()])
    partner = SelectField("伙伴", choices=[("", "全部伙伴")], validators=[Optional()])
    agreement = SelectField("协议", choices=[("", "全部协议")], validators=[Optional()])


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
