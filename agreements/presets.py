"""Built-in agreement templates (协议模板): sensible Chinese defaults a drafter starts from and edits.

A template only pre-fills the draft form; nothing refers back to it except Agreement.template_code.
The texts it pre-fills (title, purpose, commitments, clauses) are the content of a Chinese document and
stay Chinese whatever the interface language; only a template's name and description are interface.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from flask_babel import gettext

from agreements.content import AgreementContent
from coop.formatting import local_today
from coop.i18n import N_

COMMON_CLAUSES = [
    "各方建立联席会议制度，每半年至少召开一次联席会议，总结共建成效，研究部署下一阶段共建工作。",
    "各方各明确一名以上联络员，负责日常沟通协调。每次共建活动结束后，由一方联络员在党建共建平台登记，其他各方联络员确认，不重复报送。",
    "共建活动坚持务实节俭，所需经费由各方按照各自财务管理规定协商承担，严格遵守中央八项规定及其实施细则精神。",
    "本协议未尽事宜由各方协商解决。经协商一致可对本协议进行修订，修订文本经各方书记签署后生效；任何一方提前终止本协议，应书面说明理由。",
    "本协议经各方书记在党建共建平台以电子签名方式签署后生效。电子签名使用平台为签署人签发的数字证书，"
    "可证明签署后的文本未被改动、签名来自签署人的平台账号；签署后的电子文本由平台存档备查。",
]


@dataclass(frozen=True)
class AgreementTemplate:
    """A starting point for a draft: title, purpose, commitments and clauses."""

    code: str
    name: str
    description: str
    title: str
    purpose: str
    commitments: dict[str, tuple[int, str]]
    clauses: list[str] = field(default_factory=lambda: list(COMMON_CLAUSES))

    @property
    def ui_name(self) -> str:
        """The template's name in the interface language (screens)."""
        return gettext(self.name)

    @property
    def ui_description(self) -> str:
        """The template's description in the interface language (screens)."""
        return gettext(self.description)

    def content(self, *, party_ids: list[int], starts_on: date | None = None) -> AgreementContent:
        """A draft content from this template, for a one-year term starting on `starts_on`."""
        starts_on = starts_on or local_today()
        return AgreementContent(
            title=self.title,
            starts_on=starts_on,
            ends_on=one_year_from(starts_on),
            party_ids=list(party_ids),
            purpose=self.purpose,
            commitments=dict(self.commitments),
            clauses=list(self.clauses),
        )


def one_year_from(start: date) -> date:
    """The last day of a one-year term beginning on `start` (2026-01-01 → 2026-12-31)."""
    try:
        return start.replace(year=start.year + 1) - timedelta(days=1)
    except ValueError:  # 29 February
        return start.replace(year=start.year + 1, day=28)


TEMPLATES: tuple[AgreementTemplate, ...] = (
    AgreementTemplate(
        code="branch_pairing",
        name=N_("党支部结对共建"),
        description=N_("企业内外党支部之间的结对共建，以党员联学、活动联办为主。"),
        title="党支部结对共建协议",
        purpose=(
            "坚持以习近平新时代中国特色社会主义思想为指导，以提升党支部组织力为重点，"
            "通过结对共建实现组织共建、资源共享、优势互补、共同提高。\n"
            "把党建共建与业务发展深度融合，推动党建工作与中心工作同频共振，打造可复制、可推广的共建品牌。"
        ),
        commitments={
            "org": (2, "召开联席会议，互访党建阵地，交流“三会一课”等基础工作经验"),
            "study": (4, "书记送课上门 2 次，联合开展理论学习 2 次"),
            "event": (2, "联合开展主题党日、红色教育等活动"),
            "talent": (1, "开展业务技能交流或联合培训"),
            "service": (2, "联合开展志愿服务、“我为群众办实事”实践活动"),
            "mass": (1, "工会、共青团联合开展文体活动"),
        },
    ),
    AgreementTemplate(
        code="enterprise_locality",
        name=N_("企地党建联建"),
        description=N_("企业党组织与街道、社区、政府部门党组织联建，以服务联动为主。"),
        title="企地党建联建协议",
        purpose=(
            "发挥企业党组织专业优势和地方党组织贴近群众的优势，以党建联建促进企地融合发展。\n"
            "围绕群众急难愁盼问题，共同开展便民服务和安全宣传，把党建优势转化为服务群众的实际成效。"
        ),
        commitments={
            "org": (1, "召开联建工作联席会议，通报共建情况"),
            "study": (2, "联合开展专题学习研讨"),
            "event": (2, "联合开展主题党日、党员志愿服务"),
            "service": (4, "走访慰问困难群众、敬老院，开展便民服务和安全用电（用能）宣传"),
            "culture": (1, "联合开展文化宣传活动"),
        },
    ),
    AgreementTemplate(
        code="school_youth",
        name=N_("校企团建共建"),
        description=N_("企业党团组织与高校学院团支部共建，以人才联育、群团联手为主。"),
        title="校企团建共建协议",
        purpose=(
            "以立德树人、青年成长为目标，搭建校企协同育人平台，引导青年学生坚定理想信念、厚植家国情怀。\n"
            "发挥企业实践资源和高校人才优势，共同培养担当民族复兴大任的时代新人。"
        ),
        commitments={
            "study": (2, "企业党员为学生讲授思政课或行业发展专题课"),
            "talent": (4, "组织实习实训、职业规划讲座和技能竞赛"),
            "event": (1, "联合开展红色教育实践活动"),
            "mass": (2, "开展青年联谊、体育比赛等团建活动"),
            "culture": (1, "联合创作校园与企业文化宣传作品"),
        },
    ),
)

TEMPLATE_BY_CODE: dict[str, AgreementTemplate] = {t.code: t for t in TEMPLATES}
DEFAULT_TEMPLATE = TEMPLATES[0].code
