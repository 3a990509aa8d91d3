"""The demo group behind `flask seed-demo`: a realistic, idempotent data set for trying every role."""
from __future__ import annotations

from typing import Callable

import sqlalchemy as sa

from coop.auth.models import Role, User
from coop.auth.operations import create_user
from coop.extensions import db
from coop.orgs.models import Organization, OrgKind, OrgRelation
from coop.orgs.operations import create_organization

DEMO_PASSWORD = "Demo2026!"  # the documented password of the demo accounts  # nosec B105

# (key, name, kind, relation, parent key, region, brand name, brand slogan)
DEMO_ORGS = [
    ("group", "华夏能源集团党委", OrgKind.committee, OrgRelation.group, None, "北京市", "红色引擎", "党建引领 能源报国"),
    ("power", "华夏电力公司党委", OrgKind.committee, OrgRelation.group, "group", "河北省石家庄市", "光明先锋", "点亮万家灯火"),
    ("newenergy", "华夏新能源公司党委", OrgKind.committee, OrgRelation.group, "group", "内蒙古自治区呼和浩特市", "绿色先锋", "风光无限 党旗飘扬"),
    ("logistics", "华夏物流公司党委", OrgKind.committee, OrgRelation.group, "group", "天津市", "红色动脉", "物畅其流 党员先行"),
    ("power_office", "电力公司机关党支部", OrgKind.branch, OrgRelation.company, "power", "河北省石家庄市", None, None),
    ("power_ops", "运维检修党支部", OrgKind.branch, OrgRelation.company, "power", "河北省石家庄市", "检修尖兵", "守护电网安全"),
    ("power_sales", "营销服务党支部", OrgKind.branch, OrgRelation.company, "power", "河北省保定市", "用心服务", "电暖民心"),
    ("ne_general", "新能源公司生产党总支", OrgKind.general_branch, OrgRelation.company, "newenergy", "内蒙古自治区包头市", None, None),
    ("ne_wind", "风电运维党支部", OrgKind.branch, OrgRelation.company, "ne_general", "内蒙古自治区包头市", "追风者", "迎风而上"),
    ("ne_solar", "光伏项目党支部", OrgKind.branch, OrgRelation.company, "ne_general", "内蒙古自治区鄂尔多斯市", None, None),
    ("ne_rd", "技术研发党支部", OrgKind.branch, OrgRelation.company, "newenergy", "内蒙古自治区呼和浩特市", "创新工坊", "科技强企"),
    ("log_storage", "仓储中心党支部", OrgKind.branch, OrgRelation.company, "logistics", "天津市", None, None),
    ("log_fleet", "运输车队党支部", OrgKind.branch, OrgRelation.company, "logistics", "天津市", "红色车轮", "安全每一公里"),
    ("log_youth", "物流公司团支部", OrgKind.league_branch, OrgRelation.company, "logistics", "天津市", None, None),
    # External partners: their own roots, outside the group's tree.
    ("cdc", "石家庄市疾病预防控制中心第一党支部", OrgKind.branch, OrgRelation.government, None, "河北省石家庄市", "健康卫士", None),
    ("community", "石家庄市长安区建北街道党工委", OrgKind.committee, OrgRelation.government, None, "河北省石家庄市", None, None),
    ("school", "华北能源大学电力学院团支部", OrgKind.league_branch, OrgRelation.school, None, "河北省保定市", None, None),
    ("bank", "城市商业银行天津分行营业部党支部", OrgKind.branch, OrgRelation.industry, None, "天津市", None, None),
]

# (username, display name, title, org key, roles)
DEMO_USERS = [
    ("admin", "平台管理员", "系统管理员", None, [Role.admin]),
    ("dangwei", "周建国", "集团党建工作部部长", "group", [Role.committee]),
    ("power_dw", "王立新", "电力公司党委副书记", "power", [Role.committee]),
    ("ops_sj", "李红梅", "运维检修党支部书记", "power_ops", [Role.secretary]),
    ("ops_lly", "张伟", "运维检修党支部组织委员", "power_ops", [Role.liaison]),
    ("sales_sj", "赵敏", "营销服务党支部书记", "power_sales", [Role.secretary]),
    ("sales_lly", "孙浩", "营销服务党支部宣传委员", "power_sales", [Role.liaison]),
    ("wind_sj", "刘强", "风电运维党支部书记", "ne_wind", [Role.secretary, Role.liaison]),
    ("rd_lly", "陈静", "技术研发党支部组织委员", "ne_rd", [Role.liaison]),
    ("fleet_sj", "杨帆", "运输车队党支部书记", "log_fleet", [Role.secretary]),
    ("fleet_lly", "黄磊", "运输车队党支部组织委员", "log_fleet", [Role.liaison]),
    ("cdc_sj", "吴晓燕", "疾控中心第一党支部书记", "cdc", [Role.secretary]),
    ("cdc_lly", "郑凯", "疾控中心第一党支部联络员", "cdc", [Role.liaison]),
    ("school_sj", "何雨桐", "电力学院团支部书记", "school", [Role.secretary, Role.liaison]),
    ("bank_sj", "马骏", "营业部党支部书记", "bank", [Role.secretary]),
    ("bank_lly", "林小雨", "营业部党支部联络员", "bank", [Role.liaison]),
    ("community_sj", "高志远", "建北街道党工委书记", "community", [Role.secretary, Role.liaison]),
]


def _demo_steps() -> list[Callable]:
    """Each domain's step(orgs: dict[key, Organization], users: dict[username, User], echo), in the
    order the data depends on; every step is idempotent."""
    from agreements.demo import seed_demo_step as agreements_step
    from coop.activities.demo import seed_demo_step as activities_step
    from coop.reminders.demo import seed_demo_step as reminders_step
    from coop.review.demo import seed_demo_step as review_step

    return [agreements_step, activities_step, review_step, reminders_step]


def _org_by_name(name: str, parent: Organization | None) -> Organization | None:
    return db.session.execute(
        sa.select(Organization).where(
            Organization.name == name,
            Organization.parent_id.is_(None) if parent is None else Organization.parent_id == parent.id,
        )
    ).scalar_one_or_none()


def seed_demo(echo: Callable[[str], None] = print, *, domains: bool = True) -> None:
    """Create the demo group, its partners and a user for every role, then (unless domains=False)
    agreements, activities, evaluations and reminders; safe to run again."""
    orgs: dict[str, Organization] = {}
    for key, name, kind, relation, parent_key, region, brand, slogan in DEMO_ORGS:
        parent = orgs.get(parent_key) if parent_key else None
        org = _org_by_name(name, parent)
        if org is None:
            org = create_organization(
                actor=None, parent=parent, name=name, kind=kind, relation=relation, region=region,
                brand_name=brand, brand_slogan=slogan,
                contact_name=None, contact_phone=None, contact_email=None,
            )
        orgs[key] = org
    users: dict[str, User] = {}
    for username, display, title, org_key, roles in DEMO_USERS:
        user = db.session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()
        if user is None:
            user = create_user(
                actor=None, username=username, password=DEMO_PASSWORD, display_name=display,
                roles=roles, organization=orgs.get(org_key) if org_key else None, title=title,
                email=f"{username}@demo.invalid",
            )
        users[username] = user
    db.session.commit()
    for step in _demo_steps() if domains else []:
        step(orgs, users, echo)
        db.session.commit()

    echo("演示数据已就绪。所有演示账号的密码均为：" + DEMO_PASSWORD)
    echo(f"{'用户名':<14}{'姓名':<8}角色 / 组织")
    for username, display, _title, org_key, roles in DEMO_USERS:
        org_name = orgs[org_key].name if org_key else "—"
        echo(f"{username:<16}{display:<6}{'、'.join(r.label for r in roles)} / {org_name}")
