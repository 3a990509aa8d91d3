"""Demo agreements for `flask seed-demo`: one in force, one waiting for a signature, one draft and a
three-party agreement — signed for real with the demo password, so the PDFs verify."""
from __future__ import annotations

from datetime import timedelta
from typing import Callable

import sqlalchemy as sa

from agreements import operations as ops
from agreements.content import AgreementContent
from agreements.models import Agreement
from agreements.presets import COMMON_CLAUSES, TEMPLATE_BY_CODE
from coop.demo import DEMO_PASSWORD
from coop.extensions import db
from coop.formatting import local_today

TITLE_ACTIVE = "运维检修党支部与市疾控中心第一党支部党建结对共建协议"
TITLE_SIGNING = "营销服务党支部与市疾控中心第一党支部“健康进网点”共建协议"
TITLE_DRAFT = "运输车队党支部与商业银行营业部党支部结对共建协议"
TITLE_THREE = "营销服务党支部、电力学院团支部、建北街道党工委三方共建协议"


def _exists(title: str) -> bool:
    return db.session.execute(sa.select(Agreement.id).where(Agreement.title == title)).first() is not None


def _content(template: str, title: str, party_ids: list[int], start, **changes) -> AgreementContent:
    content = TEMPLATE_BY_CODE[template].content(party_ids=party_ids, starts_on=start)
    content.title = title
    for key, value in changes.items():
        setattr(content, key, value)
    return content


def _sign_all(agreement: Agreement, signers, echo) -> None:
    for user in signers:
        ops.sign_agreement(agreement, actor=user, password=DEMO_PASSWORD, ip="127.0.0.1")
        db.session.commit()
        echo(f"  {user.display_name} 已签署《{agreement.title}》")


def seed_demo_step(orgs: dict, users: dict, echo: Callable[[str], None] = print) -> None:
    """Create the demo agreements (idempotent: an agreement whose title exists is left alone)."""
    today = local_today()

    if not _exists(TITLE_ACTIVE):
        # Started about eleven months ago, so it shows up as "expiring soon" and can be renewed.
        start = today - timedelta(days=340)
        content = _content("branch_pairing", TITLE_ACTIVE, [orgs["power_ops"].id, orgs["cdc"].id], start,
                           number=f"共建〔{start.year}〕1号")
        content.commitments["service"] = (3, "联合开展电力安全与健康知识进社区、走访慰问独居老人")
        agreement = ops.create_draft(content, actor=users["ops_sj"], template_code="branch_pairing")
        ops.submit_for_signing(agreement, actor=users["ops_sj"])
        db.session.commit()
        _sign_all(agreement, [users["ops_sj"], users["cdc_sj"]], echo)

    if not _exists(TITLE_SIGNING):
        start = today.replace(day=1)
        content = _content("enterprise_locality", TITLE_SIGNING, [orgs["power_sales"].id, orgs["cdc"].id], start,
                           purpose="依托营业厅网点开展健康知识宣传和应急救护培训，服务办电群众和一线员工。\n"
                                   "以党建共建推动优质服务与公共卫生服务双提升。")
        content.commitments = {
            "service": (4, "营业厅“健康角”义诊 2 次，应急救护培训 2 次"),
            "study": (2, "联合学习公共卫生与安全生产相关政策"),
            "event": (1, "联合开展“我为群众办实事”主题党日"),
        }
        agreement = ops.create_draft(content, actor=users["sales_sj"], template_code="enterprise_locality")
        ops.submit_for_signing(agreement, actor=users["sales_sj"])
        db.session.commit()
        _sign_all(agreement, [users["sales_sj"]], echo)
        echo(f"  《{TITLE_SIGNING}》等待 {users['cdc_sj'].display_name} 签署")

    if not _exists(TITLE_DRAFT):
        start = today.replace(day=1) + timedelta(days=32)
        content = _content("branch_pairing", TITLE_DRAFT, [orgs["log_fleet"].id, orgs["bank"].id],
                           start.replace(day=1))
        content.commitments["culture"] = (1, "联合拍摄“安全每一公里”微视频")
        ops.create_draft(content, actor=users["fleet_sj"], template_code="branch_pairing")
        db.session.commit()
        echo(f"  草稿《{TITLE_DRAFT}》")

    if not _exists(TITLE_THREE):
        start = today - timedelta(days=60)
        content = _content(
            "school_youth", TITLE_THREE,
            [orgs["power_sales"].id, orgs["school"].id, orgs["community"].id], start,
            purpose="发挥供电企业、高校和街道社区各自优势，以“青春光明行”为载体，"
                    "组织青年党员和学生志愿者走进社区开展用电安全宣传和便民服务。\n"
                    "在共建中锤炼青年、服务群众、共促发展。",
            clauses=list(COMMON_CLAUSES),
        )
        content.commitments = {
            "service": (6, "“青春光明行”社区用电安全宣传、老旧小区用电隐患排查"),
            "talent": (3, "电力学院学生到营销服务一线见习，企业专家进课堂"),
            "mass": (2, "三方青年联谊、趣味运动会"),
            "study": (2, "联合开展青年理论学习小组活动"),
            "org": (1, "召开三方共建联席会议"),
        }
        agreement = ops.create_draft(content, actor=users["power_dw"], template_code="school_youth")
        ops.submit_for_signing(agreement, actor=users["power_dw"])
        db.session.commit()
        _sign_all(agreement, [users["school_sj"], users["sales_sj"], users["community_sj"]], echo)
