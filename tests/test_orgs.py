"""The organization tree: create, edit, move, deactivate — and who may do it."""
import pytest
import sqlalchemy as sa

from coop.audit.models import AuditEntry
from coop.extensions import db
from coop.orgs.models import Organization, OrgKind
from coop.orgs.operations import OrgInvalid, move_organization


def form(**overrides):
    data = {"name": "新支部", "kind": "branch", "relation": "company", "parent_id": ""}
    data.update(overrides)
    return data


@pytest.fixture
def tree(make_org):
    group = make_org("集团党委", kind="committee", relation="group")
    company = make_org("公司党委", kind="committee", relation="group", parent=group)
    branch = make_org("一支部", parent=company)
    other_company = make_org("另一公司党委", kind="committee", relation="group", parent=group)
    other_branch = make_org("二支部", parent=other_company)
    return dict(group=group, company=company, branch=branch, other_company=other_company, other_branch=other_branch)


def test_admin_creates_an_organization_under_a_parent(client, make_user, login, tree):
    login(client, make_user("admin"))
    resp = client.post("/orgs/new", data=form(name="三支部", parent_id=str(tree["company"].id), region="天津市",
                                              brand_name="红色先锋", brand_slogan="党建引领"))
    assert resp.status_code == 302
    org = db.session.execute(sa.select(Organization).where(Organization.name == "三支部")).scalar_one()
    assert org.parent_id == tree["company"].id
    assert org.path == f"{tree['company'].path}{org.id}/"
    assert org.kind is OrgKind.branch and org.brand_name == "红色先锋"
    page = client.get(f"/orgs/{org.id}").get_data(as_text=True)
    assert "三支部" in page and "红色先锋" in page and "公司党委" in page


def test_the_breadcrumb_names_every_level_above(client, make_user, login, tree):
    login(client, make_user("admin"))
    page = client.get(f"/orgs/{tree['branch'].id}").get_data(as_text=True)
    crumbs = page[page.index('class="crumbs"'):]
    crumbs = crumbs[:crumbs.index("</p>")]
    assert crumbs.index("集团党委") < crumbs.index("公司党委")
    assert f'href="/orgs/{tree["group"].id}"' in crumbs and f'href="/orgs/{tree["company"].id}"' in crumbs
    assert "› ›" not in crumbs and "一支部" not in crumbs


def test_invalid_kind_is_refused_with_a_message(client, make_user, login):
    login(client, make_user("admin"))
    resp = client.post("/orgs/new", data=form(kind="bogus"))
    assert resp.status_code == 200
    assert "请选择一个有效的选项" in resp.get_data(as_text=True)
    assert db.session.execute(sa.select(Organization)).first() is None


def test_duplicate_sibling_name_is_refused(client, make_user, login, tree):
    login(client, make_user("admin"))
    resp = client.post("/orgs/new", data=form(name="一支部", parent_id=str(tree["company"].id)))
    assert "已有名为“一支部”的组织" in resp.get_data(as_text=True)


def test_moving_an_organization_moves_its_subtree(app, tree, make_org):
    leaf = make_org("小组", parent=tree["branch"])
    move_organization(tree["branch"], tree["other_company"], actor=None)
    db.session.commit()
    db.session.refresh(leaf)
    branch = db.session.get(Organization, tree["branch"].id)
    assert branch.parent_id == tree["other_company"].id
    assert branch.path == f"{tree['other_company'].path}{branch.id}/"
    assert leaf.path == f"{branch.path}{leaf.id}/"
    assert leaf.is_within(tree["other_company"]) and not leaf.is_within(tree["company"])


def test_cannot_move_an_organization_below_itself(app, tree):
    with pytest.raises(OrgInvalid):
        move_organization(tree["company"], tree["branch"], actor=None)


def test_move_through_the_edit_screen(client, make_user, login, tree):
    login(client, make_user("admin"))
    b = tree["branch"]
    resp = client.post(f"/orgs/{b.id}/edit", data=form(name=b.name, parent_id=str(tree["other_company"].id)))
    assert resp.status_code == 302
    assert db.session.get(Organization, b.id).parent_id == tree["other_company"].id
    kinds = db.session.execute(sa.select(AuditEntry.kind).where(AuditEntry.target_id == b.id)).scalars().all()
    assert "org.move" in kinds


def test_deactivate_keeps_the_row_and_refuses_with_live_children(client, make_user, login, tree):
    login(client, make_user("admin"))
    resp = client.post(f"/orgs/{tree['company'].id}/active", data={"active": "0"}, follow_redirects=True)
    assert "请先停用或移走它的下级组织" in resp.get_data(as_text=True)
    assert db.session.get(Organization, tree["company"].id).is_active
    client.post(f"/orgs/{tree['branch'].id}/active", data={"active": "0"})
    assert db.session.get(Organization, tree["branch"].id).is_active is False
    # Still there, just hidden from the default list.
    assert "一支部" not in client.get("/orgs/").get_data(as_text=True)
    assert "一支部" in client.get("/orgs/?inactive=1").get_data(as_text=True)


def test_there_is_no_delete_route(app):
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/orgs"):
            assert "DELETE" not in rule.methods


def test_committee_manages_only_its_subtree(client, make_user, login, tree):
    reviewer = make_user("committee", org=tree["company"])
    login(client, reviewer)
    assert client.get(f"/orgs/{tree['branch'].id}/edit").status_code == 200
    assert client.get(f"/orgs/{tree['other_branch'].id}/edit").status_code == 403
    # Not even its own organization (that belongs to the level above).
    assert client.get(f"/orgs/{tree['company'].id}/edit").status_code == 403
    resp = client.post("/orgs/new", data=form(name="越权支部", parent_id=str(tree["other_company"].id)))
    assert resp.status_code == 200
    assert db.session.execute(sa.select(Organization).where(Organization.name == "越权支部")).first() is None
    resp = client.post("/orgs/new", data=form(name="新建支部", parent_id=str(tree["company"].id)))
    assert resp.status_code == 302


@pytest.mark.parametrize("role", ["liaison", "secretary"])
def test_liaison_or_secretary_cannot_edit_any_organization(client, make_user, login, tree, role):
    user = make_user(role, org=tree["branch"])
    login(client, user)
    for org in (tree["branch"], tree["other_branch"]):
        assert client.get(f"/orgs/{org.id}/edit").status_code == 403
        assert client.post(f"/orgs/{org.id}/edit", data=form(name="改名")).status_code == 403
        assert client.post(f"/orgs/{org.id}/active", data={"active": "0"}).status_code == 403
    assert client.get("/orgs/new").status_code == 403
    assert db.session.get(Organization, tree["other_branch"].id).name == "二支部"


def test_anonymous_is_sent_to_login(client, tree):
    resp = client.get(f"/orgs/{tree['branch'].id}")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_unknown_organization_is_404(client, make_user, login):
    login(client, make_user("admin"))
    assert client.get("/orgs/999999").status_code == 404


def test_deactivating_a_party_to_live_agreements_warns_first(client, make_user, login, tree, make_agreement):
    make_agreement(parties=[tree["branch"], tree["other_branch"]], status="active")
    make_agreement(parties=[tree["branch"], tree["other_branch"]], status="expired")
    login(client, make_user("admin"))
    page = client.get(f"/orgs/{tree['branch'].id}").get_data(as_text=True)
    assert "该组织是 1 份签署中或生效中协议的一方" in page
    quiet = client.get(f"/orgs/{tree['company'].id}").get_data(as_text=True)
    assert "签署中或生效中协议" not in quiet and "停用后该组织不能再签订新协议" in quiet
