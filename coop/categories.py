"""The eight 八联 categories: stable codes, Chinese names, colours and icons used on every screen and PDF."""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext

from coop.i18n import N_


@dataclass(frozen=True)
class Category:
    code: str
    name: str  # the Chinese name: PDFs, spreadsheets, the API and stored text use it as it is
    short: str  # one character for tight cells (matrix, chart legends)
    colour: str  # same colour in screens, PDFs and charts; readable when printed in grey
    icon: str  # name of the SVG symbol in static/img/categories.svg
    examples: str

    # Screens show these: the same texts in the interface language (Chinese outside a request).
    @property
    def label(self) -> str:
        return gettext(self.name)

    @property
    def short_label(self) -> str:
        return gettext(self.short)

    @property
    def examples_label(self) -> str:
        return gettext(self.examples)


CATEGORIES: tuple[Category, ...] = (
    Category("org", N_("组织联合"), N_("组"), "#c0392b", "flag",
        N_("联席会议、规范基础工作、阵地互访、换届指导")),
    Category("brand", N_("品牌联建"), N_("品"), "#ba4a00", "star",
        N_("品牌经验分享、品牌设计、品牌联合发布")),
    Category("event", N_("活动联办"), N_("活"), "#b7950b", "calendar",
        N_("主题党日、红色教育、示范岗、先锋队、志愿服务")),
    Category("study", N_("党员联学"), N_("学"), "#1e8449", "book",
        N_("书记送课上门、观摩学习、理论联学")),
    Category("talent", N_("人才联育"), N_("才"), "#117a65", "seedling",
        N_("技能培训、师带徒、技能竞赛、大师工作室")),
    Category("service", N_("服务联动"), N_("服"), "#2471a3", "hands",
        N_("走访敬老院福利院、我为群众办实事")),
    Category("culture", N_("文化联创"), N_("文"), "#6c3483", "palette",
        N_("歌曲、微电影、文化长廊、联合宣传")),
    Category("mass", N_("群团联手"), N_("群"), "#a93226", "people",
        N_("工会共青团联动、体育比赛、女工活动、青年联谊")),
)

CATEGORY_BY_CODE: dict[str, Category] = {c.code: c for c in CATEGORIES}
CATEGORY_CODES: tuple[str, ...] = tuple(c.code for c in CATEGORIES)


def category_name(code: str) -> str:
    """The Chinese name of a category code, or the code itself when unknown."""
    cat = CATEGORY_BY_CODE.get(code)
    return cat.name if cat else code


def category_label(code: str) -> str:
    """The name of a category code in the interface language (screens), or the code itself when unknown."""
    cat = CATEGORY_BY_CODE.get(code)
    return cat.label if cat else code
