"""The eight 八联 categories: stable codes, Chinese names, colours and icons used on every screen and PDF."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Category:
    code: str
    name: str  # what people see
    short: str  # one character for tight cells (matrix, chart legends)
    colour: str  # same colour in screens, PDFs and charts; readable when printed in grey
    icon: str  # name of the SVG symbol in static/img/categories.svg
    examples: str


CATEGORIES: tuple[Category, ...] = (
    Category("org", "组织联合", "组", "#c0392b", "flag", "联席会议、规范基础工作、阵地互访、换届指导"),
    Category("brand", "品牌联建", "品", "#ba4a00", "star", "品牌经验分享、品牌设计、品牌联合发布"),
    Category("event", "活动联办", "活", "#b7950b", "calendar", "主题党日、红色教育、示范岗、先锋队、志愿服务"),
    Category("study", "党员联学", "学", "#1e8449", "book", "书记送课上门、观摩学习、理论联学"),
    Category("talent", "人才联育", "才", "#117a65", "seedling", "技能培训、师带徒、技能竞赛、大师工作室"),
    Category("service", "服务联动", "服", "#2471a3", "hands", "走访敬老院福利院、我为群众办实事"),
    Category("culture", "文化联创", "文", "#6c3483", "palette", "歌曲、微电影、文化长廊、联合宣传"),
    Category("mass", "群团联手", "群", "#a93226", "people", "工会共青团联动、体育比赛、女工活动、青年联谊"),
)

CATEGORY_BY_CODE: dict[str, Category] = {c.code: c for c in CATEGORIES}
CATEGORY_CODES: tuple[str, ...] = tuple(c.code for c in CATEGORIES)


def category_name(code: str) -> str:
    """The Chinese name of a category code, or the code itself when unknown."""
    cat = CATEGORY_BY_CODE.get(code)
    return cat.name if cat else code
