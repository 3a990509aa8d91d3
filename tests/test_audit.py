"""The audit log: written by operations, chained by hash, readable by admins and committees in scope."""
import sqlalchemy as sa

from coop.audit.models import AuditEntry
from coop.audit.operations import record, verify_chain
from coop.extensions import db


def test_operations_write_who_what_when(client, make_user, login, make_org):
    admin = make_user("admin", display_name="管理员甲")
    login(client, admin)
    client.post("/orgs/new", data={"name": "审计支部", "kind": "branch", "relation": "company", "parent_id": ""})
    entry = db.session.execute(sa.select(AuditEntry).where(AuditEntry.kind == "org.create")).scalar_one()
    assert entry.actor_id == admin.id and entry.actor_name == "管理员甲"
    assert "审计支部" in entry.summary
    assert entry.detail["name"] == "审计支部"
    assert entry.created_at.tzinfo is not None


def test_chain_verifies_and_detects_tampering(app):
    for i in range(5):
        record("test.event", f"事件{i}", detail={"i": i})
    db.session.commit()
    assert verify_chain().ok and verify_chain().checked == 5

    third = db.session.execute(sa.select(AuditEntry).order_by(AuditEntry.id).offset(2).limit(1)).scalar_one()
    db.session.execute(sa.update(AuditEntry).where(AuditEntry.id == third.id).values(summary="篡改"))
    db.session.commit()
    result = verify_chain()
    assert not result.ok and result.first_broken_id == third.id and result.checked == 2


def test_chain_detects_a_deleted_entry(app):
    for i in range(4):
        record("test.event", f"事件{i}")
    db.session.commit()
    ids = db.session.execute(sa.select(AuditEntry.id).order_by(AuditEntry.id)).scalars().all()
    db.session.execute(sa.delete(AuditEntry).where(AuditEntry.id == ids[1]))
    db.session.commit()
    result = verify_chain()
    assert result.first_broken_id == ids[2]


def test_committee_reads_only_its_subtree(client, make_user, login, make_org):
    group = make_org("集团", kind="committee", relation="group")
    mine = make_org("本公司", kind="committee", relation="group", parent=group)
    inside = make_org("本公司支部", parent=mine)
    outside = make_org("外公司支部", parent=group)
    record("org.update", "内部事件", organization_id=inside.id)
    record("org.update", "外部事件", organization_id=outside.id)
    db.session.commit()
    login(client, make_user("committee", org=mine))
    page = client.get("/audit/").get_data(as_text=True)
    assert "内部事件" in page and "外部事件" not in page


def test_liaison_cannot_read_the_audit_log(client, make_user, login, make_org):
    login(client, make_user("liaison", org=make_org()))
    assert client.get("/audit/").status_code == 403


def test_audit_verify_command(app):
    record("test.event", "命令校验")
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["audit-verify"])
    assert result.exit_code == 0 and "已校验 1 条" in result.output
