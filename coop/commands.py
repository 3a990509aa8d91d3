"""Platform-wide CLI commands: create-user, seed-demo, doctor, audit-verify."""
from __future__ import annotations

import click
from flask.cli import with_appcontext

from coop.extensions import db


def register(app) -> None:
    """Attach the commands to `app.cli`."""
    app.cli.add_command(create_user_command)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(doctor_command)
    app.cli.add_command(audit_verify_command)


@click.command("create-user")
@click.argument("username")
@click.option("--role", "roles", multiple=True, required=True,
              type=click.Choice(["admin", "committee", "secretary", "liaison"]), help="可重复，例如 --role secretary --role liaison")
@click.option("--organization", "organization_id", type=int, help="组织 ID（书记、联络员、党委审阅人必填）")
@click.option("--name", "display_name", help="姓名（默认同用户名）")
@click.option("--email")
@click.password_option("--password", prompt="密码", confirmation_prompt=True)
@with_appcontext
def create_user_command(username, roles, organization_id, display_name, email, password):
    """Create a user (for scripts and first set-up)."""
    from coop.auth.models import Role
    from coop.auth.operations import AuthError, create_user
    from coop.orgs.models import Organization

    org = None
    if organization_id is not None:
        org = db.session.get(Organization, organization_id)
        if org is None:
            raise click.ClickException(f"组织 {organization_id} 不存在。")
    try:
        user = create_user(actor=None, username=username, password=password, display_name=display_name or username,
                           roles=[Role(r) for r in roles], organization=org, email=email)
    except AuthError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    click.echo(f"已创建用户 {user.username}（id {user.id}，角色：{', '.join(roles)}）")


@click.command("seed-demo")
@with_appcontext
def seed_demo_command():
    """Load a realistic demo group (idempotent) and print the demo sign-ins."""
    from coop import demo

    demo.seed_demo(echo=click.echo)


@click.command("doctor")
@with_appcontext
def doctor_command():
    """Report, in plain words, what this machine lacks to run the platform."""
    from coop.doctor import run_checks

    failed = 0
    for check in run_checks():
        mark = "✔" if check.ok else "✘"
        click.echo(f"{mark} {check.name}：{check.message}")
        if not check.ok:
            failed += 1
            if check.fix:
                click.echo(f"    解决办法：{check.fix}")
    if failed:
        raise click.ClickException(f"{failed} 项检查未通过。")
    click.echo("一切就绪。")


@click.command("audit-verify")
@with_appcontext
def audit_verify_command():
    """Verify the audit log's hash chain and report the first broken link."""
    from coop.audit.operations import verify_chain

    result = verify_chain()
    if result.ok:
        click.echo(f"审计日志完整：已校验 {result.checked} 条记录。")
    else:
        raise click.ClickException(
            f"审计日志在第 {result.first_broken_id} 号记录处断裂：{result.reason}（此前 {result.checked} 条完好）"
        )
