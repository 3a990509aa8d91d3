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
    app.cli.add_command(scheduler_command)
    app.cli.add_command(serve_command)
    app.cli.add_command(backup_command)
    app.cli.add_command(restore_command)


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
@click.option("--scale", type=click.Choice(["small", "large"]), default="small", show_default=True,
              help="large: also generate group-scale data (300 organizations, 1,500 users, 600 agreements, "
                   "60,000 activities) for performance work; bulk-inserted, unsigned, marked as generated data")
@with_appcontext
def seed_demo_command(scale):
    """Load a realistic demo group (idempotent) and print the demo sign-ins."""
    from coop import demo

    demo.seed_demo(echo=click.echo)
    if scale == "large":
        from coop import demo_large

        demo_large.seed_large(echo=click.echo)


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


@click.command("scheduler")
@with_appcontext
def scheduler_command():
    """Run the periodic jobs (reminders, monthly reports, expiry) in this process, exactly once per site."""
    import logging

    from flask import current_app

    from coop.jobs import lock_path, platform_jobs
    from coop.scheduling import run_scheduler_forever

    app = current_app._get_current_object()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_scheduler_forever(
        platform_jobs(app),
        database_url=app.config["SQLALCHEMY_DATABASE_URI"],
        lock_path=lock_path(app),
        timezone=app.config["TIMEZONE"],
        log=logging.getLogger("coop.scheduler"),
    )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@with_appcontext
def serve_command(host, port):
    """Single-process server with the scheduler in a background thread (the zero-set-up default)."""
    import logging

    from flask import current_app

    from coop.jobs import lock_path, platform_jobs
    from coop.scheduling import acquire_scheduler_lock, build_scheduler

    app = current_app._get_current_object()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    lock = acquire_scheduler_lock(app.config["SQLALCHEMY_DATABASE_URI"], lock_path(app))
    scheduler = None
    if lock is None:
        click.echo("另一个调度进程正在运行：本进程只提供网页服务。")
    else:
        scheduler = build_scheduler(platform_jobs(app), timezone=app.config["TIMEZONE"], blocking=False)
        scheduler.start()
        click.echo("调度任务已在本进程中启动（提醒、月度报告、协议到期）。")
    try:
        app.run(host=host, port=port, threaded=True, use_reloader=False, debug=False)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)
            lock.release()


@click.command("backup")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), help="archive path (.tar.gz)")
@with_appcontext
def backup_command(out_path):
    """Write one archive with the database, uploads, archived PDFs and keys."""
    from pathlib import Path

    from coop.backup import BackupError, create_backup, default_backup_name

    try:
        path = create_backup(Path(out_path) if out_path else default_backup_name(), echo=click.echo)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"备份完成：{path}")


@click.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--force", is_flag=True, help="overwrite a database that already has data")
@with_appcontext
def restore_command(archive, force):
    """Bring back a backup archive into this instance (empty database unless --force)."""
    from pathlib import Path

    from coop.backup import BackupError, restore_backup

    try:
        report = restore_backup(Path(archive), force=force, echo=click.echo)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"恢复完成：{report}")
