"""`flask reminders sweep [--now 2026-10-01T09:00]`: run one sweep by hand and print what it delivered."""
from __future__ import annotations

from datetime import datetime, timezone

import click
from flask.cli import AppGroup

from coop.reminders.rules import local_zone

reminders_cli = AppGroup("reminders", help="提醒：手动执行一次提醒扫描等。")


def parse_now(text: str | None) -> datetime | None:
    """--now as an aware datetime: ISO 8601; without an offset it is local time (TIMEZONE)."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise click.BadParameter("请使用 ISO 格式，例如 2026-10-01T09:00 或 2026-10-01T09:00+08:00") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=local_zone())
    return value.astimezone(timezone.utc)


@reminders_cli.command("sweep")
@click.option("--now", "now_text", metavar="时间", help="按此时刻计算（默认当前时间），如 2026-10-01T09:00（本地时间）")
def sweep_command(now_text):
    """Run one reminder sweep and print each delivery (time, channel, recipient, kind, subject)."""
    from coop.reminders.sweep import run_sweep

    result = run_sweep(parse_now(now_text))
    for line in result.lines():
        click.echo(line)
    for name, reason in result.skipped_rules.items():
        click.echo(f"（规则 {name} 未执行：{reason}）", err=True)
    click.echo(f"共 {result}。")


def register(app) -> None:
    """Attach the `reminders` command group to the app."""
    app.cli.add_command(reminders_cli)
