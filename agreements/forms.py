"""Forms of the agreement screens: the draft/amendment editor, signing, declining, terminating, verifying."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, DateField, FieldList, IntegerField, PasswordField, SelectField, SelectMultipleField
from wtforms.validators import DataRequired, Length, Optional, StopValidation, ValidationError

from agreements.content import MAX_COUNT_PER_YEAR, AgreementContent
from coop.categories import CATEGORIES
from coop.forms import CleanStringField, CleanTextAreaField, NumberRange, parse_id

FORM_PARTY_SLOTS = 6  # party pickers shown; empty ones are ignored


class DateRequired:
    """Like DataRequired, but a date that was typed and cannot be read (2026-02-30) is called invalid, not missing."""

    field_flags = {"required": True}

    def __init__(self, missing):
        self.missing = missing

    def __call__(self, form, field):
        if field.data is None:
            typed = any((value or "").strip() for value in (field.raw_data or ()))
            field.errors[:] = []
            raise StopValidation(_("“%(value)s”不是有效的日期，请按 2026-11-22 的格式填写。",
                                   value=" ".join(field.raw_data)[:40]) if typed else self.missing)


class AgreementForm(FlaskForm):
    """Title, parties, term, purpose, 八联 commitments, liaisons, free clauses, signing order."""

    title = CleanStringField(_l("协议名称"), [DataRequired(_l("请填写协议名称。")), Length(max=200)])
    number = CleanStringField(_l("协议编号（文号，可选）"), [Optional(), Length(max=60)])
    parties = FieldList(SelectField(_l("共建方"), choices=[], validate_choice=False), min_entries=FORM_PARTY_SLOTS,
                        max_entries=FORM_PARTY_SLOTS)
    starts_on = DateField(_l("开始日期"), [DateRequired(_l("请填写开始日期。"))])
    ends_on = DateField(_l("结束日期"), [DateRequired(_l("请填写结束日期。"))])
    purpose = CleanTextAreaField(_l("共建目标"), [Optional(), Length(max=4000)], render_kw={"rows": 4})
    clauses = CleanTextAreaField(_l("其他条款（每行一条，自动编号）"), [Optional(), Length(max=8000)],
                                 render_kw={"rows": 8})
    signing_order_fixed = BooleanField(_l("按甲方、乙方……的顺序依次签署（不勾选则各方可按任意顺序签署）"))
    liaisons = SelectMultipleField(_l("联络员"), choices=[], validate_choice=False)

    def validate_ends_on(self, field):
        if self.starts_on.data and field.data and field.data < self.starts_on.data:
            raise ValidationError(_("结束日期不能早于开始日期。"))

    def validate_parties(self, field):
        chosen = [e.data for e in field.entries if e.data]
        allowed = {value for value, _label in (field.entries[0].choices if field.entries else [])}
        if any(v not in allowed for v in chosen):
            raise ValidationError(_("请选择有效的组织。"))
        if len(set(chosen)) != len(chosen):
            raise ValidationError(_("同一个组织不能重复选择。"))
        if len(chosen) < 2:
            raise ValidationError(_("请至少选择两个共建方。"))

    def set_party_choices(self, choices: list[tuple[str, str]]) -> None:
        """Give every party picker the same list of organizations (plus an empty option)."""
        for entry in self.parties.entries:
            entry.choices = [("", _("（不选）"))] + choices

    def fill(self, content: AgreementContent) -> None:
        """Pre-fill from content (GET)."""
        self.title.data, self.number.data = content.title, content.number
        self.starts_on.data, self.ends_on.data = content.starts_on, content.ends_on
        self.purpose.data = content.purpose
        self.clauses.data = "\n".join(content.clauses)
        self.signing_order_fixed.data = content.signing_order_fixed
        if self.parties is not None:
            for entry, org_id in zip(self.parties.entries, content.party_ids + [None] * FORM_PARTY_SLOTS):
                entry.data = str(org_id) if org_id else ""
        for c in CATEGORIES:
            count, text = content.commitments.get(c.code, (None, ""))
            getattr(self, f"count_{c.code}").data = count or None
            getattr(self, f"text_{c.code}").data = text
        self.liaisons.data = [f"{org}:{uid}" for org, uids in content.liaisons.items() for uid in uids]

    def chosen_party_ids(self) -> list[int]:
        """The organizations picked, in picker order (blank pickers skipped)."""
        return [int(e.data) for e in self.parties.entries if e.data and e.data.isdigit()]

    def to_content(self, *, party_ids: list[int] | None = None, shown_liaison_orgs: set[int] = frozenset()) -> AgreementContent:
        """The content typed in the form.

        Liaisons are kept for parties whose liaison list was on the page (even if none was ticked);
        a party newly added in this submission gets its organization's liaisons by default.
        """
        party_ids = party_ids if party_ids is not None else self.chosen_party_ids()
        commitments = {}
        for c in CATEGORIES:
            count = getattr(self, f"count_{c.code}").data or 0
            text = (getattr(self, f"text_{c.code}").data or "").strip()
            if count or text:
                commitments[c.code] = (count, text)
        liaisons: dict[int, list[int]] = {org: [] for org in party_ids if org in shown_liaison_orgs}
        for value in self.liaisons.data or []:
            org, _sep, uid = (parse_id(v) for v in value.partition(":"))
            if org is not None and uid is not None and org in liaisons:
                liaisons[org].append(uid)
        clauses = [line.strip() for line in (self.clauses.data or "").split("\n") if line.strip()]
        return AgreementContent(
            title=self.title.data or "", number=self.number.data or None, starts_on=self.starts_on.data,
            ends_on=self.ends_on.data, party_ids=party_ids, purpose=self.purpose.data or "",
            commitments=commitments, liaisons=liaisons, clauses=clauses,
            signing_order_fixed=bool(self.signing_order_fixed.data),
        )


for _c in CATEGORIES:
    # The category's name in the label is translated when the label is shown (category.label).
    setattr(AgreementForm, f"count_{_c.code}", IntegerField(
        _l("%(category)s 次/年", category=_l(_c.name)),
        [Optional(), NumberRange(0, MAX_COUNT_PER_YEAR, _l("次数应在 0 到 %(max)s 之间。", max=MAX_COUNT_PER_YEAR))]))
    setattr(AgreementForm, f"text_{_c.code}", CleanStringField(_l("%(category)s 内容", category=_l(_c.name)),
                                                               [Optional(), Length(max=500)]))


class AmendmentForm(AgreementForm):
    """The same editor for an amendment: parties are fixed (a new party means a new agreement)."""

    parties = None
    note = CleanTextAreaField(_l("修订说明（修订了什么、为什么）"), [Optional(), Length(max=1000)])


class SignForm(FlaskForm):
    """Re-enter the password to sign."""

    password = PasswordField(_l("您的登录密码"), [DataRequired(_l("请输入密码以确认签署。"))],
                             render_kw={"autocomplete": "current-password"})
    confirm = BooleanField(_l("我已阅读协议全文，同意代表本组织签署"), [DataRequired(_l("请勾选确认。"))])


class ReasonForm(FlaskForm):
    """A required reason (decline, terminate)."""

    reason = CleanTextAreaField(_l("理由"), [DataRequired(_l("请填写理由。")), Length(max=500)])


class NoteForm(FlaskForm):
    """An optional note (start an amendment, recall, withdraw)."""

    note = CleanTextAreaField(_l("说明（可选）"), [Optional(), Length(max=1000)])


class VerifyForm(FlaskForm):
    """Upload a PDF to check it."""

    file = FileField(_l("协议 PDF 文件"))


class AgreementFilterForm(FlaskForm):
    """List filters (GET, no CSRF)."""

    class Meta:
        csrf = False

    status = SelectField(_l("状态"), choices=[], validate_choice=False)
    party = SelectField(_l("共建方"), choices=[], validate_choice=False)
    expiring = BooleanField(_l("30 天内到期"))
