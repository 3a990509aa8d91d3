"""Organizations and users through the API: the screens' permissions, field-by-field validation, no 500s."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from coop.audit.models import AuditEntry
from coop.auth.models import User
from coop.extensions import db
from coop.orgs.models import Organization


def test_any_signed_in_user_lists_and_reads_organizations(api_as, api_world):
    api = api_as(api_world.lc)
    page = api.get("/organizations")
    assert page.status_code == 200
    names = [o["name"] for o in page.json["items"]]
    assert names[:3] == ["华夏电力公司党委", "运维检修党支部", "营销服务党支部"]  # tree order
    assert page.json["total"] == 4 and page.json["page"] == 1 and page.json["per_page"] == 20
    one = api.get(f"/organizations/{api_world.a.id}").json
    assert one["kind"] == "branch" and one["kind_label"] == "党支部" and one["parent_id"] == api_world.committee.id
    assert one["ancestor_ids"] == [api_world.committee.id] and one["relation"] == "company"


def test_organization_filters_and_pagination(api_as, api_world):
    api = api_as(api_world.la)
    below = api.get(f"/organizations?parent_id={api_world.committee.id}").json
    assert {o["name"] for o in below["items"]} == {"运维检修党支部", "营销服务党支部"}
    assert api.get("/organizations?kind=committee").json["total"] == 1
    assert api.get("/organizations?relation=industry").json["items"][0]["name"] == "无关单位党支部"
    assert api.get("/organizations?q=营销").json["total"] == 1
    second = api.get("/organizations?per_page=3&page=2").json
    assert second["page"] == 2 and len(second["items"]) == 1 and second["total"] == 4
    assert api.get("/organizations?page=99").json["items"] == []
    bad = api.get("/organizations?per_page=101&kind=party&active=maybe")
    assert bad.status_code == 422 and set(bad.json["fields"]) == {"per_page", "kind", "active"}


def test_admin_creates_a_root_and_reviewer_creates_inside_scope_only(api_as, api_world):
    admin = api_as(api_world.admin)
    resp = admin.post("/organizations", json={"name": "某市委组织部党支部", "kind": "branch", "relation": "government",
                                              "parent_id": None, "contact_phone": "0311-1234567"})
    assert resp.status_code == 201, resp.json
    org = db.session.get(Organization, resp.json["id"])
    assert org.parent_id is None and org.path == f"/{org.id}/" and org.contact_phone == "0311-1234567"
    assert resp.headers["Location"].endswith(f"/api/v1/organizations/{org.id}")
    assert db.session.execute(sa.select(AuditEntry).where(AuditEntry.kind == "org.create")).scalar_one()

    reviewer = api_as(api_world.reviewer)
    inside = reviewer.post("/organizations", json={"name": "新建党支部", "kind": "branch", "relation": "company",
                                                   "parent_id": api_world.committee.id})
    assert inside.status_code == 201 and inside.json["ancestor_ids"] == [api_world.committee.id]
    outside = reviewer.post("/organizations", json={"name": "越权党支部", "kind": "branch", "relation": "company",
                                                    "parent_id": api_world.c.id})
    assert outside.status_code == 403 and outside.json["code"] == "forbidden"
    root = reviewer.post("/organizations", json={"name": "越权党委", "kind": "committee", "relation": "group"})
    assert root.status_code == 403


def test_liaisons_and_secretaries_cannot_create_or_edit(api_as, api_world):
    for user in (api_world.la, api_world.sa):
        api = api_as(user)
        assert api.post("/organizations", json={"name": "x", "kind": "branch", "relation": "other",
                                                "parent_id": api_world.a.id}).status_code == 403
        assert api.patch(f"/organizations/{api_world.a.id}", json={"name": "改名"}).status_code == 403
    db.session.refresh(api_world.a)
    assert api_world.a.name == "运维检修党支部"


def test_create_organization_names_each_bad_field(api_as, api_world):
    api = api_as(api_world.admin)
    resp = api.post("/organizations", json={"name": "   ", "kind": "party", "relation": 3, "parent_id": "1",
                                            "colour": "red", "contact_email": "x" * 121})
    assert resp.status_code == 422 and resp.json["code"] == "invalid"
    assert set(resp.json["fields"]) == {"name", "kind", "relation", "parent_id", "colour", "contact_email"}
    assert resp.json["fields"]["colour"] == "未知字段。"
    assert resp.json["message"] and resp.json["message_en"]
    missing = api.post("/organizations", json={})
    assert missing.status_code == 422 and set(missing.json["fields"]) == {"name", "kind", "relation"}
    ghost_parent = api.post("/organizations", json={"name": "x", "kind": "branch", "relation": "other",
                                                    "parent_id": 999999})
    assert ghost_parent.status_code == 422 and "parent_id" in ghost_parent.json["fields"]
    duplicate = api.post("/organizations", json={"name": "运维检修党支部", "kind": "branch", "relation": "company",
                                                  "parent_id": api_world.committee.id})
    assert duplicate.status_code == 422 and "已有名为" in duplicate.json["message"]


def test_patch_edits_moves_and_deactivates(api_as, api_world, make_org):
    api = api_as(api_world.reviewer)
    unit = make_org("新党支部", parent=api_world.a)
    resp = api.patch(f"/organizations/{unit.id}", json={"name": "更名党支部", "brand_name": "红色引擎"})
    assert resp.status_code == 200 and resp.json["name"] == "更名党支部" and resp.json["brand_name"] == "红色引擎"
    moved = api.patch(f"/organizations/{unit.id}", json={"parent_id": api_world.b.id})
    assert moved.status_code == 200 and moved.json["ancestor_ids"] == [api_world.committee.id, api_world.b.id]
    loop = api.patch(f"/organizations/{api_world.a.id}", json={"parent_id": api_world.a.id})
    assert loop.status_code == 422 and "parent_id" in loop.json["fields"]
    to_root = api.patch(f"/organizations/{unit.id}", json={"parent_id": None})
    assert to_root.status_code == 403  # only admins make roots
    out_of_scope = api.patch(f"/organizations/{unit.id}", json={"parent_id": api_world.c.id})
    assert out_of_scope.status_code == 403
    busy = api.patch(f"/organizations/{api_world.b.id}", json={"is_active": False})
    assert busy.status_code == 422 and "is_active" in busy.json["fields"]  # it has a live child
    off = api.patch(f"/organizations/{unit.id}", json={"is_active": False})
    assert off.status_code == 200 and off.json["is_active"] is False
    assert api.get("/organizations?active=false").json["items"][0]["id"] == unit.id


def test_unknown_and_out_of_range_ids_are_404(api_as, api_world):
    api = api_as(api_world.admin)
    for path in ("/organizations/999999", "/organizations/99999999999999999999", "/organizations/0",
                 "/organizations/abc"):
        resp = api.get(path)
        assert resp.status_code == 404 and resp.json["code"] == "not_found", path
    assert api.patch("/organizations/99999999999999999999", json={"name": "x"}).status_code == 404


def test_method_not_allowed_is_json(api_as, api_world):
    resp = api_as(api_world.admin).delete(f"/organizations/{api_world.a.id}")
    assert resp.status_code == 405 and resp.json["code"] == "method_not_allowed"


# --- users --------------------------------------------------------------------------------------------


def test_only_admins_manage_users(api_as, api_world):
    for user in (api_world.reviewer, api_world.sa, api_world.la):
        api = api_as(user)
        assert api.get("/users").status_code == 403
        assert api.post("/users", json={"username": "x1", "password": "Passw0rd!", "display_name": "某",
                                        "roles": []}).status_code == 403


def test_admin_lists_and_creates_users(api_as, api_world):
    api = api_as(api_world.admin)
    listing = api.get(f"/users?organization_id={api_world.a.id}").json
    assert {u["display_name"] for u in listing["items"]} == {"李红梅", "张伟"}
    assert all("password" not in k for u in listing["items"] for k in u)
    assert api.get("/users?role=committee").json["items"][0]["display_name"] == "王立新"
    resp = api.post("/users", json={"username": "sunli", "password": "Passw0rd!9", "display_name": "孙丽",
                                    "organization_id": api_world.b.id, "roles": ["liaison"],
                                    "phone": "13800000000"})
    assert resp.status_code == 201, resp.json
    assert resp.json["roles"] == ["liaison"] and resp.json["organization_id"] == api_world.b.id
    user = db.session.execute(sa.select(User).where(User.username == "sunli")).scalar_one()
    assert user.password_hash != "Passw0rd!9" and user.phone == "13800000000"
    # The new user can get a token with that password.
    token = api_as().post("/tokens", json={"username": "sunli", "password": "Passw0rd!9"})
    assert token.status_code == 201


@pytest.mark.parametrize("payload, field", [
    ({"username": "weak", "password": "short", "display_name": "弱", "roles": []}, "password"),
    ({"username": "r", "password": "Passw0rd!9", "display_name": "某", "roles": ["king"]}, "roles"),
    ({"username": "o", "password": "Passw0rd!9", "display_name": "某", "roles": [], "organization_id": 999999},
     "organization_id"),
    ({"username": "d", "password": "Passw0rd!9", "display_name": "某", "roles": ["liaison", "liaison"]}, "roles"),
    ({"password": "Passw0rd!9", "display_name": "某", "roles": []}, "username"),
])
def test_create_user_names_the_bad_field(api_as, api_world, payload, field):
    resp = api_as(api_world.admin).post("/users", json=payload)
    assert resp.status_code == 422 and field in resp.json["fields"], resp.json


def test_create_user_domain_refusals_are_422(api_as, api_world):
    api = api_as(api_world.admin)
    taken = api.post("/users", json={"username": api_world.la.username, "password": "Passw0rd!9",
                                     "display_name": "重名", "roles": []})
    assert taken.status_code == 422 and "已被使用" in taken.json["message"]
    orgless = api.post("/users", json={"username": "nolink", "password": "Passw0rd!9", "display_name": "无组织",
                                       "roles": ["secretary"]})
    assert orgless.status_code == 422 and "必须属于一个组织" in orgless.json["message"]


def test_user_list_filters_are_checked(api_as, api_world):
    resp = api_as(api_world.admin).get("/users?role=king&active=perhaps&organisation_id=3")
    assert resp.status_code == 422 and set(resp.json["fields"]) == {"role", "active", "organisation_id"}
    assert resp.json["fields"]["organisation_id"] == "未知参数。"
