"""`flask agreements …`: expire agreements whose term has ended, set up the platform CA."""
from __future__ import annotations

from datetime import date

import click
from flask.cli import AppGroup

from coop.extensions import db

agreements_cli = AppGroup("agreements", help="共建协议：到期处理、平台证书。")


@agreements_cli.command("expire")
@click.option("--today", "today", default=None, help="以此日期（YYYY-MM-DD，北京时间）为今天，默认今天")
def expire_command(today: str | None):
    """Mark active agreements whose term has ended as expired (the daily job does the same)."""
    from agreements.operations import expire_due_agreements

    try:
        day = date.fromisoformat(today) if today else None
    except ValueError:
        raise click.BadParameter("日期格式应为 YYYY-MM-DD", param_hint="--today") from None
    expired = expire_due_agreements(day)
    db.session.commit()
    for agreement in expired:
        click.echo(f"已到期：{agreement.id} {agreement.title}（{agreement.ends_on.isoformat()}）")
    click.echo(f"共 {len(expired)} 份协议到期。")


@agreements_cli.command("pki-init")
def pki_init_command():
    """Create the platform root certificate and seal in PKI_DIR if missing, and print the fingerprint."""
    from agreements.signatures import platform_pki

    pki = platform_pki()
    click.echo(f"平台证书目录：{pki.folder}")
    click.echo(f"根证书 SHA-256 指纹：{pki.root_fingerprint}")


def register(app) -> None:
    """Attach `flask agreements …` to the app."""
    app.cli.add_command(agreements_cli)
