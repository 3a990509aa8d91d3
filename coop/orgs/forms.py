"""Organization forms."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SelectField
from wtforms.validators import DataRequired, Length, Optional

from coop.forms import CleanStringField, Email, EnumSelectField
from coop.orgs.models import ORG_KIND_LABELS, ORG_RELATION_LABELS, OrgKind, OrgRelation


class OrganizationForm(FlaskForm):
    name = CleanStringField(_l("组织名称"), validators=[DataRequired(_l("请填写组织名称")), Length(max=120)])
    short_name = CleanStringField(_l("简称"), validators=[Optional(), Length(max=40)])
    kind = EnumSelectField(_l("组织类型"), enum_cls=OrgKind, labels=ORG_KIND_LABELS)
    relation = EnumSelectField(_l("与集团的关系"), enum_cls=OrgRelation, labels=ORG_RELATION_LABELS)
    parent_id = SelectField(_l("上级组织"), coerce=str, validators=[Optional()])
    region = CleanStringField(_l("所在地区"), validators=[Optional(), Length(max=80)])
    contact_name = CleanStringField(_l("联系人"), validators=[Optional(), Length(max=40)])
    contact_phone = CleanStringField(_l("联系电话"), validators=[Optional(), Length(max=40)])
    contact_email = CleanStringField(_l("联系邮箱"), validators=[Optional(), Email(_l("邮箱格式不正确")), Length(max=120)])
    brand_name = CleanStringField(_l("党建品牌名称"), validators=[Optional(), Length(max=60)])
    brand_slogan = CleanStringField(_l("品牌口号"), validators=[Optional(), Length(max=200)])


class LogoForm(FlaskForm):
    logo = FileField(_l("品牌标识图片（JPEG/PNG/WebP）"))
