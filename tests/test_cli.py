"""CLI commands for set-up and operations: create-user, seed-demo, doctor."""
import sqlalchemy as sa

from coop.auth.models import Role, User
from coop.demo import DEMO_ORGS, DEMO_USERS
from coop.extensions import db
from coop.orgs.models import Organization


def test_create_user_with_roles_and_organization(app, make_org):
    org = make_org()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "cli_sj", "--role", "secretary", "--role", "liaison",
                                 "--organization", str(org.id), "--password", "Cli-pass-1"])
    assert result.exit_code == 0, result.output
    user = db.session.execute(sa.select(User).where(User.username == "cli_sj")).scalar_one()
    assert user.roles == {Role.secretary, Role.liaison} and user.organization_id == org.id


def test_create_user_prompts_for_the_password(app):
    result = app.test_cli_runner().invoke(args=["create-user", "boss", "--role", "admin"],
                                          input="Adm1n-pass\nAdm1n-pass\n")
    assert result.exit_code == 0, result.output
    assert db.session.execute(sa.select(User).where(User.username == "boss")).scalar_one().is_admin


def test_create_user_refuses_bad_input_clearly(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "weak", "--role", "admin", "--password", "short"])
    assert result.exit_code != 0 and "至少需要 8 个字符" in result.output
    result = runner.invoke(args=["create-user", "lost", "--role", "liaison", "--password", "Good-pass-1"])
    assert result.exit_code != 0 and "必须属于一个组织" in result.output
    result = runner.invoke(args=["create-user", "ghost", "--role", "liaison", "--organization", "4242",
                                 "--password", "Good-pass-1"])
    assert result.exit_code != 0 and "组织 4242 不存在" in result.output


def test_seed_demo_is_idempotent_and_prints_credentials(app):
    runner = app.test_cli_runner()
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    assert "Demo2026!" in first.output and "dangwei" in first.output
    counts = (db.session.scalar(sa.select(sa.func.count(Organization.id))),
              db.session.scalar(sa.select(sa.func.count(User.id))))
    assert counts == (len(DEMO_ORGS), len(DEMO_USERS))
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0, second.output
    assert (db.session.scalar(sa.select(sa.func.count(Organization.id))),
            db.session.scalar(sa.select(sa.func.count(User.id)))) == counts


def test_every_demo_role_can_sign_in_and_see_its_screens(app):
    app.test_cli_runner().invoke(args=["seed-demo"])
    expectations = {"admin": ["/admin/users", "/audit/", "/orgs/"], "dangwei": ["/audit/", "/orgs/"],
                    "ops_sj": ["/orgs/", "/profile"], "ops_lly": ["/profile"]}
    for username, paths in expectations.items():
        client = app.test_client()
        resp = client.post("/login", data={"username": username, "password": "Demo2026!"})
        assert resp.status_code == 302, username
        for path in paths:
            assert client.get(path).status_code == 200, (username, path)
    liaison = app.test_client()
    liaison.post("/login", data={"username": "ops_lly", "password": "Demo2026!"})
    assert liaison.get("/admin/users").status_code == 403


def test_doctor_reports_in_plain_words(app):
    from flask_migrate import stamp

    stamp()  # the test schema is made by create_all; pretend it is migrated
    result = app.test_cli_runner().invoke(args=["doctor"])
    assert "中文字体" in result.output and "数据库" in result.output
