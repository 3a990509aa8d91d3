"""Organization forms."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import SelectField
from wtforms.validators import DataRequired, Length, Optional

from coop.forms import CleanStringField, Email, EnumSelectField
from coop.orgs.models import ORG_KIND_LABELS, ORG_RELATION_LABELS, OrgKind, OrgRelation


class OrganizationForm(FlaskForm):
    name = CleanStringField("组织名称", validators=[DataRequired("请填写组织名称"), Length(max=120)])
    short_name = CleanStringField("简称", validators=[Optional(), Length(max=40)])
    kind = EnumSelectField("组织类型", enum_cls=OrgKind, labels=ORG_KIND_LABELS)
    relation = EnumSelectField("与集团的关系", enum_cls=OrgRelation, labels=ORG_RELATION_LABELS)
    parent_id = SelectField("上级组织", coerce=str, validators=[Optional()])
    region = CleanStringField("所在地区", validators=[Optional(), Length(max=80)])
    contact_name = CleanStringField("联系人", validators=[Optional(), Length(max=40)])
    contact_phone = CleanStringField("联系电话", validators=[Optional(), Length(max=40)])
    contact_email = CleanStringField("联系邮箱", validators=[Optional(), Email("邮箱格式不正确"), Length(max=120)])
    brand_name = CleanStringField("党建品牌名称", validators=[Optional(), Length(max=60)])
    brand_slogan = CleanStringField("品牌口号", validators=[Optional(), Length(max=200)])


class LogoForm(FlaskForm):
    logo = FileField("品牌标识图片（JPEG/PNG/WebP）")
