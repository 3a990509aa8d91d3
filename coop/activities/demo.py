"""Demo activities: about thirty joint activities of 2026 across the demo agreements, with photos,
confirmations, one dispute and one withdrawal — logged through the real operations.

The agreements come from agreements/demo.py; this step finds them by their demo party organizations
and does nothing when there are none yet. An agreement that already has activities is left alone, so
running the demo again changes nothing.
"""
from __future__ import annotations

import io
import math
import random
from datetime import date, time, timedelta
from typing import Callable

import sqlalchemy as sa

from agreements.models import Agreement, AgreementParty, AgreementStatus
from coop.activities import operations as ops
from coop.activities.models import ActivityAgreement, ActivityStatus
from coop.activities.permissions import liaison_org_ids
from coop.auth.models import User
from coop.categories import CATEGORY_BY_CODE
from coop.extensions import db
from coop.formatting import local_today
from coop.orgs.models import Organization
from coop.uploads import inspect_upload

TARGET_TOTAL = 30

# (category, title, place, summary, outcome, party members, others). {host} is the organizer, {guest} a partner.
CATALOGUE = [
    ("org", "结对共建联席会议", "{host}党员活动室",
     "双方支部书记、委员参加，通报上阶段共建情况，商定本季度联学、联办活动安排。",
     "形成共建任务清单 6 项，明确责任人和完成时限。", (8, 14), (0, 2)),
    ("study", "“书记送课上门”专题党课", "{guest}会议室",
     "{host}书记围绕学习贯彻党的二十届四中全会精神讲授专题党课，双方党员交流学习体会。",
     "双方党员撰写心得体会 20 余篇，约定每季度轮流送课。", (18, 32), (0, 5)),
    ("event", "“追寻红色足迹”联合主题党日", "西柏坡纪念馆",
     "双方党员重温入党誓词，参观革命旧址，开展“我为党旗添光彩”主题交流。",
     "激发了党员干事创业热情，两个支部互赠学习资料。", (25, 40), (2, 8)),
    ("service", "“我为群众办实事”联合志愿服务", "{guest}所在社区",
     "联合开展安全用电宣传、义诊咨询和老旧线路排查，为居民解决实际困难。",
     "排查隐患 17 处，现场解决 12 处，其余已列入整改清单。", (12, 20), (15, 60)),
    ("talent", "技能比武暨师带徒结对", "{host}实训基地",
     "围绕岗位技能开展实操比武，现场签订师带徒协议。",
     "评出技术能手 3 名，结成师徒对子 6 对。", (10, 18), (8, 20)),
    ("culture", "共建文化长廊揭牌", "{host}办公楼一层",
     "双方联合设计“红色印记”文化长廊，展示共建成果和先进典型。",
     "文化长廊正式揭牌，制作宣传展板 12 块。", (10, 16), (5, 15)),
    ("mass", "青年联谊暨趣味运动会", "{host}职工活动中心",
     "双方团员青年开展拔河、接力等趣味比赛和联谊交流。",
     "增进青年了解，成立联合青年突击队。", (6, 10), (25, 50)),
    ("brand", "党建品牌经验交流会", "{host}党建阵地",
     "{host}介绍党建品牌创建经验，双方共同研讨品牌名称、口号和实施方案。",
     "初步确定联合品牌名称和年度实施方案。", (8, 12), (0, 3)),
    ("study", "理论联学：专题研讨", "线上会议",
     "双方党员围绕安全生产与服务群众开展专题研讨，交流学习成果。",
     "梳理出协同攻关课题 2 项。", (15, 25), (0, 2)),
    ("service", "“银龄关爱”走访慰问敬老院", "长安区第二敬老院",
     "双方党员走访敬老院，为老人检查用电设施，赠送慰问品。",
     "慰问老人 46 位，更换老化插座 30 余个。", (10, 16), (4, 10)),
    ("event", "党员示范岗联合创建", "{guest}服务大厅",
     "双方共同设立党员示范岗，明确服务承诺并挂牌。",
     "挂牌党员示范岗 2 个，群众满意度明显提升。", (8, 12), (0, 4)),
    ("culture", "联合拍摄共建微视频", "{host}生产现场",
     "双方联合策划拍摄反映共建成果的微视频，在两家单位公众号发布。",
     "微视频播放量超过 1.2 万次。", (6, 10), (3, 8)),
]

PLANNED = [
    ("study", "年度共建工作总结交流会", "{host}会议室", "总结全年共建工作，谋划明年重点任务。"),
    ("event", "“学党章 守初心”联合主题党日", "{guest}党员活动室", "集中学习党章，开展知识竞答。"),
    ("talent", "冬季安全技能联合培训", "{host}实训基地", "开展冬季安全生产技能培训和应急演练。"),
]

DISPUTE_COMMENT = "我方实际参加党员 9 人，不是记录中的人数，请核实后修改。"
WITHDRAW_REASON = "与同日已登记的联学活动重复，撤回此条。"


def _demo_photo(caption: str, colour: tuple[int, int, int]) -> bytes:
    """A plain JPEG standing in for an event photo (a coloured scene with a caption when fonts exist)."""
    from PIL import Image, ImageDraw, ImageFont

    im = Image.new("RGB", (800, 600), colour)
    draw = ImageDraw.Draw(im)
    for i in range(0, 600, 6):  # a soft vertical gradient, like a banner in a hall
        shade = tuple(max(0, c - i // 12) for c in colour)
        draw.line([(0, i), (800, i)], fill=shade, width=6)
    draw.rectangle([120, 140, 680, 300], fill=(178, 34, 34))
    try:
        font = ImageFont.truetype("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 44)
        draw.text((400, 220), caption[:12], fill=(255, 215, 0), font=font, anchor="mm")
    except OSError:
        pass
    for x in range(160, 680, 70):  # a row of people in the foreground
        draw.ellipse([x, 380, x + 40, 420], fill=(60, 60, 70))
        draw.rectangle([x - 5, 420, x + 45, 520], fill=(40, 40, 60))
    out = io.BytesIO()
    im.save(out, "JPEG", quality=85)
    return out.getvalue()


def _liaison_for(agreement: Agreement, org_id: int, users: list[User]) -> User | None:
    for user in users:
        if user.is_active and org_id in liaison_org_ids(user, agreement):
            return user
    return None


def _demo_agreements(orgs: dict[str, Organization]) -> list[Agreement]:
    org_ids = [o.id for o in orgs.values()]
    return list(db.session.scalars(
        sa.select(Agreement)
        .where(
            Agreement.status == AgreementStatus.active,
            Agreement.id.in_(sa.select(AgreementParty.agreement_id).where(AgreementParty.organization_id.in_(org_ids))),
        )
        .order_by(Agreement.id)
    ))


def _spread(start: date, end: date, n: int, rng: random.Random) -> list[date]:
    if n <= 0 or end < start:
        return []
    span = (end - start).days
    days = sorted({start + timedelta(days=int(span * (i + 0.5) / n) + rng.randint(-3, 3)) for i in range(n)})
    return [min(max(d, start), end) for d in days]


def seed_demo_step(orgs: dict[str, Organization], users: dict[str, User], echo: Callable[[str], None]) -> None:
    """Log ~30 realistic activities across the demo agreements (idempotent; skips when none exist)."""
    agreements = _demo_agreements(orgs)
    if not agreements:
        echo("活动台账：尚无演示协议，跳过演示活动。")
        return
    people = list(users.values())
    today = local_today()
    per_agreement = max(3, min(12, math.ceil(TARGET_TOTAL / len(agreements))))
    created = disputes = withdrawals = 0
    for index, agreement in enumerate(agreements):
        already = db.session.scalar(
            sa.select(sa.func.count(ActivityAgreement.id)).where(ActivityAgreement.agreement_id == agreement.id)
        )
        if already:
            continue
        liaisons = {p.organization_id: _liaison_for(agreement, p.organization_id, people) for p in agreement.parties}
        hosts = [org_id for org_id, user in liaisons.items() if user is not None]
        if not hosts or len(agreement.parties) < 2:
            continue
        rng = random.Random(agreement.id * 7919)  # demo data, reproducible on purpose  # nosec B311
        names = {p.organization_id: (p.organization.short_name or p.organization.name) for p in agreement.parties}
        held_until = min(today - timedelta(days=1), agreement.ends_on)
        n_planned = 1 if agreement.status is AgreementStatus.active and agreement.ends_on > today + timedelta(days=5) else 0
        held_dates = _spread(max(agreement.starts_on, date(2026, 1, 5)), held_until, per_agreement - n_planned, rng)
        entries = rng.sample(CATALOGUE, k=min(len(held_dates), len(CATALOGUE)))
        logged = []
        for number, (held_on, entry) in enumerate(zip(held_dates, entries)):
            category, title, place, summary, outcome, members, others = entry
            host = hosts[number % len(hosts)]
            guest = next(o for o in agreement.party_org_ids if o != host)
            fill = {"host": names[host], "guest": names[guest]}
            photos = []
            if number % 3 == 0:
                photo = _demo_photo(CATEGORY_BY_CODE[category].name, (rng.randint(150, 220), rng.randint(120, 180), rng.randint(90, 150)))
                photos.append(inspect_upload(photo, f"{title}现场.jpg", max_bytes=10 * 1024 * 1024))
            activity = ops.log_activity(
                liaisons[host], agreements=[agreement], category=category, title=title, held_on=held_on,
                start_time=time(rng.choice([9, 9, 14, 15]), rng.choice([0, 30])), end_time=None,
                place=place.format(**fill), organization_ids=agreement.party_org_ids,
                party_member_count=rng.randint(*members), other_count=rng.randint(*others),
                summary=summary.format(**fill), outcome=outcome.format(**fill), attachments=photos,
            )
            logged.append(activity)
            created += 1
        # Partners answer: most confirm; the most recent stay pending (as in real life).
        for number, activity in enumerate(logged):
            if number >= len(logged) - 2:
                continue
            for conf in activity.confirmations:
                partner = liaisons.get(conf.organization_id)
                if partner is None:
                    continue
                if index == 0 and number == 1 and not disputes:
                    ops.confirm_activity(partner, activity, "dispute", DISPUTE_COMMENT)
                    disputes += 1
                else:
                    ops.confirm_activity(partner, activity, "confirm")
        if index == 0 and len(logged) >= 4 and not withdrawals:
            victim = logged[2]
            ops.withdraw_activity(liaisons[victim.organizer_org_id], victim, WITHDRAW_REASON)
            withdrawals += 1
        for planned_on in _spread(today + timedelta(days=5), min(agreement.ends_on, today + timedelta(days=40)),
                                  n_planned, rng):
            category, title, place, summary = PLANNED[index % len(PLANNED)]
            host = hosts[0]
            guest = next(o for o in agreement.party_org_ids if o != host)
            fill = {"host": names[host], "guest": names[guest]}
            ops.log_activity(
                liaisons[host], agreements=[agreement], category=category, title=title, held_on=planned_on,
                start_time=time(14, 30), place=place.format(**fill), organization_ids=agreement.party_org_ids,
                summary=summary, status=ActivityStatus.planned,
            )
            created += 1
    echo(f"活动台账：新增 {created} 条演示活动（含 {disputes} 条有异议、{withdrawals} 条已撤回）。")
