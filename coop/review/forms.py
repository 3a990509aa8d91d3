"""Committee review forms: activity evaluation, partner rating, point rules, adjustments, settings."""
from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, IntegerField, RadioField
from wtforms.validators import InputRequired, Length, Optional, StopValidation

from coop.forms import CleanTextAreaField, NumberRange
from coop.review.models import RATING_LABELS, Rating
from coop.review.scoring import RULES

RATING_CHOICES = [(r.value, _l(RATING_LABELS[r])) for r in Rating]
STAR_CHOICES = [(str(n), "★" * n + "☆" * (5 - n)) for n in range(5, 0, -1)]


class _OneParseError:
    """A field whose input could not be read shows that one message, not also its range or required check
    (they would only restate it: "请填写整数。；应在 -100 到 100 之间")."""

    def pre_validate(self, form):
        if self.process_errors:
            raise StopValidation()
        super().pre_validate(form)


class WholeNumberField(_OneParseError, IntegerField):
    """An integer input with a numeric keypad on phones and a parse error in the interface language."""

    def __init__(self, label=None, validators=None, **kw):
        kw.setdefault("render_kw", {}).update({"inputmode": "numeric", "step": "1"})
        super().__init__(label, validators, **kw)

    def process_formdata(self, valuelist):
        raw = valuelist[0].strip() if valuelist else ""
        if not raw:
            self.data = None
            return
        try:
            self.data = int(raw.replace("＋", "+").replace("－", "-"))
        except ValueError:
            self.data = None
            raise ValueError(_("请填写整数。")) from None


class LocalDateField(_OneParseError, DateField):
    """A native <input type=date> whose parse error is in the interface language."""

    def __init__(self, label=None, validators=None, **kw):
        kw.setdefault("render_kw", {}).update({"type": "date"})
        super().__init__(label, validators, **kw)

    def process_formdata(self, valuelist):
        raw = valuelist[0].strip() if valuelist else ""
        if not raw:
            self.data = None
            return
        try:
            self.data = datetime.strptime(raw, "%Y-%m-%d").date()
        except ValueError:
            self.data = None
            raise ValueError(_("日期格式应为 2026-11-22。")) from None


class EvaluationForm(FlaskForm):
    rating = RadioField(_l("评价等级"), choices=RATING_CHOICES, validators=[InputRequired(_l("请选择评价等级"))])
    comment = CleanTextAreaField(_l("评语"), validators=[Optional(), Length(max=2000, message=_l("评语不能超过 2000 字"))])
    typical_case = BooleanField(_l("标记为典型案例（用于宣传推广，需在评语中写明推荐理由）"))


class PartnerEvaluationForm(FlaskForm):
    score = RadioField(_l("对合作方共建贡献的评分"), choices=STAR_CHOICES, validators=[InputRequired(_l("请选择 1 到 5 星"))])
    comment = CleanTextAreaField(_l("说明（可选）"), validators=[Optional(), Length(max=2000, message=_l("说明不能超过 2000 字"))])


class AdjustmentForm(FlaskForm):
    points = WholeNumberField(_l("调整分值（加分填正数，扣分填负数）"), validators=[
        InputRequired(_l("请填写调整分值")), NumberRange(-100, 100, _l("应在 -100 到 100 之间"))])
    reason = CleanTextAreaField(_l("调整理由"), validators=[InputRequired(_l("请填写调整理由")), Length(max=2000)])
    applies_on = LocalDateField(_l("计入日期（决定计入哪个季度和年度）"), validators=[InputRequired(_l("请填写计入日期"))])


class SettingsForm(FlaskForm):
    ranking_published = BooleanField(_l("向本范围内的组织公布季度积分排名（晾晒比）"))
    stalled_days = WholeNumberField(_l("多少天没有已开展的活动算作“停滞”"), validators=[
        InputRequired(_l("请填写天数")), NumberRange(7, 365, _l("应在 7 到 365 天之间"))])


def rule_form_class():
    """A form with a points field and an on/off box per rule code (fields points_<code>, active_<code>)."""

    class RuleForm(FlaskForm):
        pass

    for rule in RULES:
        setattr(RuleForm, f"points_{rule.code}", WholeNumberField(_l(rule.label), validators=[
            InputRequired(_l("请填写分值")), NumberRange(-100, 100, _l("应在 -100 到 100 之间"))]))
        setattr(RuleForm, f"active_{rule.code}", BooleanField(_l("启用")))
    return RuleForm
