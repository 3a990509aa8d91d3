"""Group-scale generated data for `flask seed-demo --scale large` (issue 10, performance at group scale).

What it builds, on top of the normal demo group when it is there (else under its own root):
300 organizations in a tree (companies → general branches → branches under the group committee, plus
outside partners in their own small trees), 1,500 users, 600 agreements over the last three years
(renewal chains, expired, terminated, active, a few renewals being drafted or signed), 60,000 activities
spread over the eight categories and the months of each agreement's term, with participants,
confirmations (mostly confirmed, some pending, some disputed), withdrawals, extra tags, attachment rows
and committee evaluations.

This is GENERATED DATA for measuring the platform, not a realistic history:

- rows are written with bulk INSERTs (`session.execute(insert(Model), [dicts])`), bypassing the
  operations: there is no audit trail for them and nothing is signed;
- agreements carry no signed text and no PDF (no AgreementVersion rows); their purpose says
  "生成数据" and template_code is "generated";
- attachments are metadata rows: their originals do not exist on disk (downloads 404); their thumbnails
  all point at a handful of small real images written under UPLOAD_DIR/generated/, so report PDFs
  embed photos as they would in production.

Everything is drawn from a fixed random seed, so two runs on empty databases give the same data. A
second run finds its first user (`g000_sj`) and does nothing. `seed_large(spec=LargeSpec.scaled(0.02))`
builds a tiny version with the same shape (the test uses it).
"""
from __future__ import annotations

import hashlib
import io
import random
import time as _time
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Callable, Iterable
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from agreements.models import Agreement, AgreementCommitment, AgreementLiaison, AgreementParty
from coop.activities.models import (
    Activity,
    ActivityAgreement,
    ActivityConfirmation,
    ActivityOrganization,
    ActivityTag,
    Attachment,
)
from coop.auth.models import User, UserRole
from coop.auth.passwords import hash_password
from coop.categories import CATEGORY_CODES
from coop.demo import DEMO_ORGS, DEMO_PASSWORD
from coop.extensions import db
from coop.formatting import local_today
from coop.orgs.models import Organization
from coop.review.models import ActivityEvaluation

SEED = 20261203
MARKER_USERNAME = "g000_sj"  # the first generated user: its presence means "already generated"
GENERATED_TEMPLATE = "generated"
GENERATED_NOTE = "（生成数据：供性能测试使用的批量数据，未经签署，无协议文本 PDF。）"
CHUNK = 5000


@dataclass(frozen=True)
class LargeSpec:
    """How much to generate. `LargeSpec()` is the issue's group scale; `scaled(f)` keeps the shape."""

    organizations: int = 300
    users_per_org: int = 5  # 1,500 users for 300 organizations
    agreements: int = 600
    activities: int = 60_000
    years: int = 3  # agreements start within this many years before today

    @classmethod
    def scaled(cls, factor: float) -> "LargeSpec":
        base = cls()
        return cls(
            organizations=max(12, round(base.organizations * factor)),
            users_per_org=base.users_per_org,
            agreements=max(6, round(base.agreements * factor)),
            activities=max(60, round(base.activities * factor)),
            years=base.years,
        )


@dataclass
class Result:
    """What seed_large made (all zero when it skipped)."""

    skipped: bool = False
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    root_id: int | None = None
    reviewer_username: str | None = None


# --- small helpers ------------------------------------------------------------------------------------------

CITIES = ["北京", "天津", "石家庄", "保定", "唐山", "太原", "呼和浩特", "包头", "鄂尔多斯", "济南", "青岛",
          "郑州", "西安", "兰州", "银川", "沈阳", "长春", "哈尔滨", "南京", "杭州", "合肥", "武汉", "长沙", "成都"]
COMPANY_KINDS = ["电力", "新能源", "物流", "煤业", "化工", "检修", "建设", "售电", "科技", "金融", "后勤", "培训"]
BRANCH_KINDS = ["机关", "运维", "调度", "营销", "安监", "财务", "物资", "信通", "变电", "输电", "配电", "客服",
                "项目", "质检", "后勤", "人资", "党建", "研发"]
PARTNER_KINDS = [
    ("government", "街道党工委", "社区党支部"),
    ("government", "区卫健委党委", "疾控中心党支部"),
    ("school", "大学党委", "学院党支部"),
    ("industry", "商业银行党委", "支行党支部"),
    ("industry", "通信公司党委", "营业部党支部"),
    ("government", "应急管理局党委", "执法大队党支部"),
]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华红建国志远海燕晓雪梅兰宇浩博文婷颖鑫斌鹏"

# (category, title, summary, outcome) — phrasing as liaisons write it.
TITLES = {
    "org": [("结对共建联席会议", "双方支部书记、委员参加，通报共建情况，商定下阶段活动安排。", "形成共建任务清单，明确责任人和完成时限。"),
            ("阵地互访交流", "互相参观党员活动室和党建阵地，交流基础工作做法。", "互学互鉴，完善支部工作台账。")],
    "brand": [("党建品牌经验交流会", "介绍党建品牌创建经验，共同研讨联合品牌方案。", "初步确定联合品牌名称和年度实施方案。"),
              ("联合品牌发布", "发布共建联合品牌标识和口号。", "品牌标识在双方阵地同步上墙。")],
    "event": [("联合主题党日", "双方党员重温入党誓词，开展主题交流。", "激发了党员干事创业热情。"),
              ("红色教育基地参观", "组织党员赴红色教育基地参观学习。", "党员撰写心得体会。")],
    "study": [("“书记送课上门”专题党课", "书记讲授专题党课，双方党员交流学习体会。", "约定每季度轮流送课。"),
              ("理论联学专题研讨", "围绕安全生产与服务群众开展专题研讨。", "梳理协同攻关课题。")],
    "talent": [("技能比武暨师带徒结对", "开展实操比武，现场签订师带徒协议。", "评出技术能手，结成师徒对子。"),
               ("联合技能培训", "开展安全技能培训和应急演练。", "参训人员全部通过考核。")],
    "service": [("“我为群众办实事”联合志愿服务", "联合开展安全用电宣传、义诊咨询。", "现场解决群众实际困难。"),
                ("走访慰问敬老院", "走访敬老院，检查用电设施，赠送慰问品。", "慰问老人，更换老化插座。")],
    "culture": [("共建文化长廊揭牌", "联合设计文化长廊，展示共建成果。", "文化长廊正式揭牌。"),
                ("联合拍摄共建微视频", "联合策划拍摄反映共建成果的微视频。", "微视频在双方公众号发布。")],
    "mass": [("青年联谊暨趣味运动会", "双方团员青年开展趣味比赛和联谊交流。", "成立联合青年突击队。"),
             ("女职工联谊活动", "双方女职工开展健康讲座和联谊。", "增进了解，建立长期联系。")],
}
DISPUTE_COMMENTS = ["我方实际参加人数与记录不符，请核实后修改。", "活动日期有误，请更正。", "我方未参加此次活动。"]
WITHDRAW_REASONS = ["与已登记的活动重复，撤回此条。", "活动因故取消。", "登记有误，撤回后重新登记。"]
EVAL_COMMENTS = {
    "excellent": "活动准备充分，参与度高，成效可量化。",
    "good": "组织规范，记录完整；建议增加群众参与的环节。",
    "fair": "活动记录较简略，请补充成效和参与人员情况。",
}
END_REASONS = ["一方机构调整，经双方协商终止协议。", "共建任务提前完成，双方同意终止。"]


def _local_dt(day: date, hour: int, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(hour, 0), zone).astimezone(timezone.utc)


def _person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice([1, 2])))


def _add_year(d: date) -> date:
    try:
        return d.replace(year=d.year + 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year + 1, day=28)


def _next_id(model) -> int:
    return (db.session.execute(sa.select(sa.func.max(model.id))).scalar() or 0) + 1


def _insert(model, rows: list[dict], echo: Callable[[str], None] | None = None, label: str = "") -> None:
    """Bulk INSERT in chunks (executemany under the hood; no ORM objects, no audit, no events)."""
    for start in range(0, len(rows), CHUNK):
        db.session.execute(sa.insert(model), rows[start:start + CHUNK])
        if echo and len(rows) > CHUNK * 2 and (start // CHUNK) % 4 == 3:
            echo(f"    {label} {min(start + CHUNK, len(rows))}/{len(rows)}")


def _fix_sequences(models: Iterable) -> None:
    """PostgreSQL: explicit ids do not advance the id sequences; move them past the generated rows."""
    if db.engine.dialect.name != "postgresql":
        return
    for model in models:
        table = model.__table__.name
        # Table names come from our own models, never from input.
        sql = f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), GREATEST((SELECT COALESCE(max(id), 0) FROM {table}), 1))"  # nosec B608
        db.session.execute(sa.text(sql))


def _write_demo_thumbnails(upload_dir: Path, count: int = 6) -> list[str]:
    """A few small real JPEGs under UPLOAD_DIR/generated/ that every generated image thumbnail points at."""
    from PIL import Image, ImageDraw

    out = []
    target = upload_dir / "generated"
    target.mkdir(parents=True, exist_ok=True)
    palette = [(190, 60, 50), (40, 110, 160), (60, 140, 90), (170, 120, 40), (110, 70, 150), (150, 150, 150)]
    for k in range(count):
        rel = f"generated/thumb_{k}.jpg"
        path = upload_dir / rel
        if not path.exists():
            im = Image.new("RGB", (320, 240), palette[k % len(palette)])
            draw = ImageDraw.Draw(im)
            draw.rectangle([40, 60, 280, 120], fill=(178, 34, 34))
            for x in range(50, 280, 40):
                draw.ellipse([x, 150, x + 20, 170], fill=(50, 50, 60))
                draw.rectangle([x - 3, 170, x + 23, 220], fill=(40, 40, 60))
            buf = io.BytesIO()
            im.save(buf, "JPEG", quality=80)
            path.write_bytes(buf.getvalue())
        out.append(rel)
    return out


# --- the generator ------------------------------------------------------------------------------------------


def seed_large(echo: Callable[[str], None] = print, *, spec: LargeSpec | None = None, today: date | None = None,
               seed: int = SEED, upload_dir: str | Path | None = None) -> Result:
    """Generate the group-scale data set (see the module docstring). Commits. Skips when already there."""
    spec = spec or LargeSpec()
    t0 = _time.perf_counter()
    if db.session.execute(sa.select(User.id).where(User.username == MARKER_USERNAME)).first() is not None:
        echo(f"规模数据：已存在（用户 {MARKER_USERNAME}），跳过。")
        return Result(skipped=True)
    rng = random.Random(seed)  # reproducible generated data, nothing secret  # nosec B311
    today = today or local_today()
    zone = ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Shanghai"))
    now = datetime.now(timezone.utc)
    result = Result()

    def step(text: str) -> None:
        echo(f"  [{_time.perf_counter() - t0:6.1f} s] {text}")

    echo(f"规模数据（生成数据）：{spec.organizations} 个组织，{spec.organizations * spec.users_per_org} 个用户，"
         f"{spec.agreements} 份协议，{spec.activities} 条活动 …")

    # --- organizations ------------------------------------------------------------------------------------
    group_name = DEMO_ORGS[0][1]
    root = db.session.execute(
        sa.select(Organization).where(Organization.name == group_name, Organization.parent_id.is_(None))
    ).scalar_one_or_none()
    org_id = _next_id(Organization)
    orgs: list[dict] = []
    created_root = root is None
    if root is None:
        root_id = org_id
        org_id += 1
        orgs.append(dict(id=root_id, name=group_name, short_name="集团党委", kind="committee", relation="group",
                         parent_id=None, path=f"/{root_id}/", region="北京市", brand_name="红色引擎",
                         brand_slogan="党建引领 能源报国", is_active=True, created_at=now, updated_at=now))
        root_path = f"/{root_id}/"
    else:
        root_id, root_path = root.id, root.path
    result.root_id = root_id

    n_external = max(2, spec.organizations // 5)
    n_internal = spec.organizations - n_external
    n_companies = max(1, n_internal // 20)
    # Internal tree: company committees, each with up to two general branches; branches round-robin.
    internal: list[dict] = []  # generated internal orgs (not the root)
    companies, branches, externals, ext_branches = [], [], [], []
    company_of: dict[int, int] = {}  # org id -> its company id (internal orgs)

    def add_org(name, kind, relation, parent_id, path_prefix, region, **extra):
        nonlocal org_id
        oid = org_id
        org_id += 1
        row = dict(id=oid, name=name[:120], short_name=extra.pop("short_name", None), kind=kind, relation=relation,
                   parent_id=parent_id, path=f"{path_prefix}{oid}/", region=region,
                   brand_name=extra.pop("brand_name", None), brand_slogan=extra.pop("brand_slogan", None),
                   contact_name=extra.pop("contact_name", None), is_active=True, created_at=now, updated_at=now)
        orgs.append(row)
        return row

    per_company = (n_internal - n_companies) // n_companies
    for c in range(n_companies):
        city = CITIES[c % len(CITIES)]
        kind = COMPANY_KINDS[c % len(COMPANY_KINDS)]
        comp = add_org(f"华夏{city}{kind}公司党委", "committee", "group", root_id, root_path, f"{city}市",
                       short_name=f"{city}{kind}公司党委")
        companies.append(comp)
        company_of[comp["id"]] = comp["id"]
        internal.append(comp)
        budget = per_company + (1 if c < (n_internal - n_companies) % n_companies else 0)
        parents = [comp]
        if budget >= 8:
            for g in range(2):
                gb = add_org(f"{city}{kind}公司第{g + 1}党总支", "general_branch", "company", comp["id"], comp["path"],
                             f"{city}市", short_name=f"{city}{kind}第{g + 1}党总支")
                parents.append(gb)
                company_of[gb["id"]] = comp["id"]
                internal.append(gb)
                budget -= 1
        for b in range(budget):
            parent = parents[b % len(parents)]
            bk = BRANCH_KINDS[b % len(BRANCH_KINDS)]
            suffix = "" if b < len(BRANCH_KINDS) else f"{b // len(BRANCH_KINDS) + 1}"
            kind_b = "league_branch" if b % 9 == 8 else "branch"
            label = "团支部" if kind_b == "league_branch" else "党支部"
            br = add_org(f"{city}{kind}公司{bk}{suffix}{label}", kind_b, "company", parent["id"], parent["path"],
                         f"{city}市", short_name=f"{city}{kind}{bk}{suffix}{label}",
                         brand_name=f"{bk}先锋" if b % 4 == 0 else None)
            branches.append(br)
            company_of[br["id"]] = comp["id"]
            internal.append(br)
    # Outside partners: small trees of their own (a committee and its branches), roots outside the group.
    n_ext_roots = max(1, n_external // 10)
    ext_budget = n_external - n_ext_roots
    for r in range(n_ext_roots):
        relation, top, leaf = PARTNER_KINDS[r % len(PARTNER_KINDS)]
        city = CITIES[(r * 5 + 3) % len(CITIES)]
        er = add_org(f"{city}市{top}", "committee", relation, None, "/", f"{city}市", short_name=f"{city}{top}")
        externals.append(er)
        share = ext_budget // n_ext_roots + (1 if r < ext_budget % n_ext_roots else 0)
        for b in range(share):
            eb = add_org(f"{city}市第{b + 1}{leaf}", "branch", relation, er["id"], er["path"], f"{city}市",
                         short_name=f"{city}第{b + 1}{leaf}")
            externals.append(eb)
            ext_branches.append(eb)
    _insert(Organization, orgs)
    step(f"组织 {len(orgs)} 个（集团内 {len(internal)}，外部 {len(externals)}）")

    # --- users --------------------------------------------------------------------------------------------
    pw_hash = hash_password(DEMO_PASSWORD)  # once: Argon2 on 1,500 users would take minutes
    user_id = _next_id(User)
    users, roles = [], []
    secretary_of, liaison_of, reviewer_of = {}, {}, {}
    generated_orgs = [o for o in orgs if o["id"] != root_id or created_root]
    for index, org in enumerate(generated_orgs):
        is_committee = org["kind"] == "committee"
        plan = ["sj", "lly", "dw" if is_committee else "lly2"] + [f"m{k}" for k in range(1, spec.users_per_org - 2)]
        for suffix in plan[:spec.users_per_org]:
            uid = user_id
            user_id += 1
            name = _person(rng)
            title = {"sj": "书记", "lly": "组织委员", "lly2": "宣传委员", "dw": "党建工作部部长"}.get(suffix, "党员")
            users.append(dict(id=uid, username=f"g{index:03d}_{suffix}", display_name=name,
                              email=f"g{index:03d}_{suffix}@demo.invalid", title=title, password_hash=pw_hash,
                              password_changed_at=now, organization_id=org["id"], is_active_account=True,
                              created_at=now, updated_at=now))
            role = {"sj": "secretary", "lly": "liaison", "lly2": "liaison", "dw": "committee"}.get(suffix)
            if role:
                roles.append(dict(user_id=uid, role=role))
            if suffix == "sj":
                secretary_of[org["id"]] = uid
            elif suffix == "lly":
                liaison_of[org["id"]] = uid
            elif suffix == "dw":
                reviewer_of[org["id"]] = uid
    _insert(User, users)
    _insert(UserRole, roles)
    root_reviewer = db.session.execute(
        sa.select(User.id, User.username).join(UserRole, UserRole.user_id == User.id)
        .where(User.organization_id == root_id, UserRole.role == "committee").order_by(User.id).limit(1)
    ).first()
    result.reviewer_username = root_reviewer.username if root_reviewer else None
    step(f"用户 {len(users)} 个（密码均为 {DEMO_PASSWORD}，只哈希一次）")

    # --- agreements: renewal chains over the last `years` years ------------------------------------------
    ag_id = _next_id(Agreement)
    agreements, parties, commitments, liaisons = [], [], [], []
    horizon = today - timedelta(days=365 * spec.years)
    terms: dict[int, dict] = {}  # agreement id -> {"row", "orgs", "commit"}
    chain_no = 0
    number_in_year: dict[int, int] = {}
    inner = branches or internal
    outer = ext_branches or externals

    def short(org):
        return org["short_name"] or org["name"]

    while len(agreements) < spec.agreements:
        kind = rng.random()
        a = inner[rng.randrange(len(inner))]
        if kind < 0.6:
            members = [a, outer[rng.randrange(len(outer))]]
        elif kind < 0.85:
            b = inner[rng.randrange(len(inner))]
            if company_of[b["id"]] == company_of[a["id"]] and len(companies) > 1:
                continue
            members = [a, b]
        else:
            members = [a, outer[rng.randrange(len(outer))], inner[rng.randrange(len(inner))]]
        if len({m["id"] for m in members}) != len(members):
            continue
        chain_no += 1
        start = horizon + timedelta(days=rng.randrange(0, 365 * spec.years - 20))
        length = rng.choice([1, 1, 2, 2, 3, 3, 4])
        previous = None
        for link in range(length):
            if len(agreements) >= spec.agreements or start > today + timedelta(days=40):
                break
            ends = _add_year(start) - timedelta(days=1)
            year = start.year
            number_in_year[year] = number_in_year.get(year, 0) + 1
            status, ended_at, end_reason, ended_by, activated = "active", None, None, None, _local_dt(start, 9, zone)
            terminated_on = None
            if start > today:
                status, activated = rng.choice(["draft", "signing"]), None
            elif ends < today:
                status, ended_at = "expired", _local_dt(ends + timedelta(days=1), 2, zone)
            if status in ("active", "expired") and rng.random() < 0.06:
                span = (min(ends, today) - start).days
                if span > 60:
                    terminated_on = start + timedelta(days=rng.randrange(30, span))
                    status, ended_at = "terminated", _local_dt(terminated_on, 16, zone)
                    end_reason, ended_by = rng.choice(END_REASONS), secretary_of[members[0]["id"]]
            title = "与".join(short(m) for m in members[:-1]) + f"与{short(members[-1])}党建结对共建协议（{year}年度）"
            row = dict(id=ag_id, title=title[:200], number=f"共建〔{year}〕{number_in_year[year]}号",
                       purpose="围绕八联开展结对共建，以党建共建促进业务融合、服务群众。\n" + GENERATED_NOTE,
                       status=status, starts_on=start, ends_on=ends, created_by_id=secretary_of[members[0]["id"]],
                       renewed_from_id=previous, activated_at=activated, ended_at=ended_at, end_reason=end_reason,
                       ended_by_id=ended_by, clauses=[], signing_order_fixed=False, template_code=GENERATED_TEMPLATE,
                       created_at=_local_dt(start - timedelta(days=20), 10, zone), updated_at=now)
            agreements.append(row)
            for pos, m in enumerate(members):
                parties.append(dict(agreement_id=ag_id, organization_id=m["id"], position=pos))
                liaisons.append(dict(agreement_id=ag_id, organization_id=m["id"], user_id=liaison_of[m["id"]]))
            committed = rng.sample(CATEGORY_CODES, rng.choice([3, 4, 5]))
            for code in committed:
                commitments.append(dict(agreement_id=ag_id, category=code, count_per_year=rng.choice([2, 3, 4, 6]),
                                        text=None))
            terms[ag_id] = {"row": row, "orgs": [m["id"] for m in members], "commit": committed,
                            "until": terminated_on or ends}
            previous = ag_id
            ag_id += 1
            if status == "terminated":
                break
            start = ends + timedelta(days=1)
    _insert(Agreement, agreements)
    _insert(AgreementParty, parties)
    _insert(AgreementCommitment, commitments)
    _insert(AgreementLiaison, liaisons)
    by_status: dict[str, int] = {}
    for row in agreements:
        by_status[row["status"]] = by_status.get(row["status"], 0) + 1
    step(f"协议 {len(agreements)} 份（{chain_no} 组续签链；" + "，".join(f"{k} {v}" for k, v in sorted(by_status.items())) + "）")

    # --- activities ---------------------------------------------------------------------------------------
    thumbs = _write_demo_thumbnails(Path(upload_dir or current_app.config["UPLOAD_DIR"]))
    yesterday = today - timedelta(days=1)
    held_span = {}
    for aid, t in terms.items():
        row = t["row"]
        if row["status"] in ("active", "expired", "terminated"):
            last = min(t["until"], yesterday)
            if last >= row["starts_on"]:
                held_span[aid] = (row["starts_on"], last)
    planned_for = [aid for aid, t in terms.items()
                   if t["row"]["status"] == "active" and t["row"]["ends_on"] > today + timedelta(days=5)]
    n_planned = min(len(planned_for) * 2, spec.activities // 50)
    n_held = spec.activities - n_planned
    weights = {aid: (last - first).days + 1 for aid, (first, last) in held_span.items()}
    total_w = sum(weights.values()) or 1
    # Largest-remainder split of n_held over agreements by elapsed days, so the total is exact.
    quotas = {aid: n_held * w / total_w for aid, w in weights.items()}
    alloc = {aid: int(q) for aid, q in quotas.items()}
    for aid in sorted(quotas, key=lambda k: quotas[k] - alloc[k], reverse=True)[: n_held - sum(alloc.values())]:
        alloc[aid] += 1
    plan: list[tuple[int, date, str]] = []  # (agreement id, held_on, status)
    for aid, n in alloc.items():
        first, last = held_span[aid]
        span = (last - first).days
        for _ in range(n):
            plan.append((aid, first + timedelta(days=rng.randint(0, span)), "held"))
    for k in range(n_planned):
        aid = planned_for[k % len(planned_for)]
        ends = terms[aid]["row"]["ends_on"]
        plan.append((aid, min(ends, today + timedelta(days=rng.randint(3, 40))), "planned"))
    plan.sort(key=lambda p: (p[1], p[0]))  # ids grow with dates, as in real life

    act_id = _next_id(Activity)
    acts, links, participants, confirmations, tags, attachments, evaluations = [], [], [], [], [], [], []
    reviewer_ids = [root_reviewer.id] if root_reviewer else []
    att_id = _next_id(Attachment)
    for aid, held_on, status in plan:
        t = terms[aid]
        members = t["orgs"]
        organizer = members[rng.randrange(len(members))]
        if len(members) > 2 and rng.random() < 0.3:
            others = [m for m in members if m != organizer]
            joined = [organizer, others[rng.randrange(len(others))]]
        else:
            joined = [organizer] + [m for m in members if m != organizer]
        category = rng.choice(t["commit"]) if rng.random() < 0.75 else rng.choice(CATEGORY_CODES)
        title, summary, outcome = rng.choice(TITLES[category])
        author = liaison_of[organizer]
        created = _local_dt(min(held_on + timedelta(days=rng.randint(0, 3)), today) if status == "held"
                            else today - timedelta(days=rng.randint(0, 10)), 20, zone)
        created = min(created, now)
        withdrawn = status == "held" and rng.random() < 0.02
        recent = (today - held_on).days < 10
        states = []
        decided = []
        for org in joined[1:]:
            if status != "held":
                state = "pending"
            elif recent:
                state = "confirmed" if rng.random() < 0.3 else "pending"
            else:
                r = rng.random()
                state = "confirmed" if r < 0.9 else ("disputed" if r < 0.93 else "pending")
            at = created + timedelta(days=rng.randint(1, 6), hours=rng.randint(0, 8)) if state != "pending" else None
            if at is not None and at > now:
                at = now
            states.append(state)
            decided.append(at)
            confirmations.append(dict(
                activity_id=act_id, organization_id=org, state=state, requested_at=created,
                decided_by_id=liaison_of[org] if state != "pending" else None, decided_at=at,
                comment=rng.choice(DISPUTE_COMMENTS) if state == "disputed" else None))
        if "disputed" in states:
            overall = "disputed"
        elif states and all(s == "confirmed" for s in states):
            overall = "confirmed"
        else:
            overall = "pending"
        acts.append(dict(
            id=act_id, category=category, title=title, held_on=held_on,
            start_time=time(rng.choice([9, 9, 10, 14, 15]), rng.choice([0, 30])), end_time=None,
            place=f"{rng.choice(CITIES)}市{rng.choice(['党员活动室', '会议室', '社区服务中心', '实训基地', '红色教育基地'])}",
            party_member_count=rng.randint(6, 40), other_count=rng.choice([0, 0, rng.randint(1, 60)]),
            summary=summary, outcome=outcome if status == "held" else "",
            status="withdrawn" if withdrawn else status, confirmation=overall,
            organizer_org_id=organizer, created_by_id=author,
            withdrawn_at=min(created + timedelta(days=2), now) if withdrawn else None,
            withdrawn_reason=rng.choice(WITHDRAW_REASONS) if withdrawn else None,
            withdrawn_by_id=author if withdrawn else None,
            held_confirmed_at=max(decided) if overall == "confirmed" and decided else None,
            created_at=created, updated_at=created))
        links.append(dict(activity_id=act_id, agreement_id=aid))
        for org in joined:
            participants.append(dict(activity_id=act_id, organization_id=org))
        if rng.random() < 0.15:
            extra = rng.choice([c for c in CATEGORY_CODES if c != category])
            tags.append(dict(activity_id=act_id, category=extra))
        if status == "held" and rng.random() < 0.25:
            for k in range(rng.choice([1, 1, 2, 3])):
                is_pdf = k == 2
                digest = hashlib.sha256(f"{act_id}/{k}".encode()).hexdigest()
                attachments.append(dict(
                    id=att_id, activity_id=act_id, kind="pdf" if is_pdf else "image",
                    mime="application/pdf" if is_pdf else "image/jpeg",
                    original_name=f"{title}{'签到表.pdf' if is_pdf else f'现场{k + 1}.jpg'}"[:200],
                    stored_path=f"generated/missing/{digest[:2]}/{digest}.{'pdf' if is_pdf else 'jpg'}",
                    thumb_path=None if is_pdf else thumbs[att_id % len(thumbs)],
                    size=rng.randint(80_000, 2_500_000), sha256=digest,
                    width=None if is_pdf else 1600, height=None if is_pdf else 1200,
                    uploaded_by_id=author, created_at=created))
                att_id += 1
        if status == "held" and not withdrawn and overall == "confirmed" and rng.random() < 0.06:
            company = company_of.get(organizer)
            candidates = list(reviewer_ids)
            if company is not None and company in reviewer_of:
                candidates.append(reviewer_of[company])
            for reviewer in sorted(set(rng.sample(candidates, k=min(len(candidates), rng.choice([1, 1, 2]))))):
                rating = rng.choices(["excellent", "good", "fair"], weights=[2, 5, 2])[0]
                at = created + timedelta(days=rng.randint(7, 30))
                evaluations.append(dict(activity_id=act_id, reviewer_id=reviewer, rating=rating,
                                        comment=EVAL_COMMENTS[rating],
                                        typical_case=rating == "excellent" and rng.random() < 0.3,
                                        created_at=min(at, now), updated_at=min(at, now)))
        act_id += 1
    step(f"活动已生成（内存中）：{len(acts)} 条，写入数据库 …")
    _insert(Activity, acts, echo, "活动")
    _insert(ActivityAgreement, links, echo, "协议关联")
    _insert(ActivityOrganization, participants, echo, "参与组织")
    _insert(ActivityConfirmation, confirmations, echo, "确认")
    _insert(ActivityTag, tags)
    _insert(Attachment, attachments)
    _insert(ActivityEvaluation, evaluations)
    _fix_sequences([Organization, User, UserRole, Agreement, AgreementParty, AgreementCommitment, AgreementLiaison,
                    Activity, ActivityAgreement, ActivityOrganization, ActivityConfirmation, ActivityTag, Attachment,
                    ActivityEvaluation])
    db.session.commit()
    step(f"活动 {len(acts)} 条，确认 {len(confirmations)} 条（有异议 "
         f"{sum(1 for c in confirmations if c['state'] == 'disputed')}），附件记录 {len(attachments)} 条，"
         f"党委评价 {len(evaluations)} 条")
    # Fresh statistics, so both databases plan queries as they would on a production-sized table.
    if db.engine.dialect.name == "postgresql":
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("ANALYZE"))
    else:
        db.session.execute(sa.text("ANALYZE"))
        db.session.commit()
    result.counts = {
        "organizations": len(orgs), "users": len(users), "agreements": len(agreements),
        "activities": len(acts), "confirmations": len(confirmations), "attachments": len(attachments),
        "evaluations": len(evaluations), "tags": len(tags), "participants": len(participants),
    }
    result.seconds = _time.perf_counter() - t0
    step(f"完成。集团党委审阅人：{result.reviewer_username or '（无）'}；生成的账号形如 g000_sj（书记）、"
         f"g000_lly（联络员）、g000_dw（公司党委审阅人），密码 {DEMO_PASSWORD}")
    return result
