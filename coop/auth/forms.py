"""Sign-in, profile and user-management forms."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, PasswordField, SelectField, SelectMultipleField, widgets
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from coop.auth.models import ROLE_LABELS, Role
from coop.forms import CleanStringField, Email


class LoginForm(FlaskForm):
    username = CleanStringField(_l("用户名"), validators=[DataRequired(_l("请输入用户名")), Length(max=64)],
                                render_kw={"autocomplete": "username", "autocapitalize": "none"})
    password = PasswordField(_l("密码"), validators=[DataRequired(_l("请输入密码")), Length(max=200)],
                             render_kw={"autocomplete": "current-password"})


class ChangePasswordForm(FlaskForm):
    old_password = PasswordField(_l("当前密码"), validators=[DataRequired(_l("请输入当前密码"))])
    new_password = PasswordField(_l("新密码"), validators=[DataRequired(_l("请输入新密码")), Length(min=8, max=200, message=_l("密码长度为 8–200 个字符"))])
    confirm = PasswordField(_l("再次输入新密码"), validators=[DataRequired(_l("请再次输入新密码"))])

    def validate_confirm(self, field):
        from wtforms.validators import ValidationError

        if field.data != self.new_password.data:
            raise ValidationError(_("两次输入的新密码不一致"))


class ProfileForm(FlaskForm):
    display_name = CleanStringField(_l("姓名"), validators=[DataRequired(_l("请填写姓名")), Length(max=60)])
    email = CleanStringField(_l("电子邮箱"), validators=[Optional(), Email(_l("邮箱格式不正确")), Length(max=120)])
    phone = CleanStringField(_l("电话"), validators=[Optional(), Length(max=40)])
    locale = SelectField(_l("界面语言"), choices=[("zh", "简体中文"), ("en", "English")])


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()

    def pre_validate(self, form):
        # WTForms' own message for this is English even in its Chinese catalogue.
        acceptable = {str(value) for value, *_rest in self.iter_choices()}
        if any(str(value) not in acceptable for value in self.data or ()):
            raise ValidationError(_("所选的%(label)s不在可选范围内。", label=self.label.text))


def role_choices():
    return [(r.value, _l(ROLE_LABELS[r])) for r in Role]


class UserForm(FlaskForm):
    username = CleanStringField(_l("用户名"), validators=[DataRequired(_l("请填写用户名")), Length(max=64)])
    display_name = CleanStringField(_l("姓名"), validators=[DataRequired(_l("请填写姓名")), Length(max=60)])
    title = CleanStringField(_l("职务"), validators=[Optional(), Length(max=60)])
    organization_id = SelectField(_l("所属组织"), coerce=str, validators=[Optional()])
    roles = MultiCheckboxField(_l("角色"), choices=role_choices())
    email = CleanStringField(_l("电子邮箱"), validators=[Optional(), Email(_l("邮箱格式不正确")), Length(max=120)])
    phone = CleanStringField(_l("电话"), validators=[Optional(), Length(max=40)])
    password = PasswordField(_l("初始密码"), validators=[Optional(), Length(max=200)])
    is_active = BooleanField(_l("账号启用"), default=True)


class ResetPasswordForm(FlaskForm):
    new_password = PasswordField(_l("新密码"), validators=[DataRequired(_l("请输入新密码")), Length(min=8, max=200, message=_l("密码长度为 8–200 个字符"))])
