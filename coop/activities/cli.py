"""`flask activities import --agreement ID --user USERNAME FILE`: a 工作台账 import from the command line.

The same run as the screen's (recorded, so it is listed under 最近的导入), carried out in the foreground
with a progress bar; exits non-zero when nothing was imported.
"""
from __future__ import annotations

from pathlib import Path

import click
import sqlalchemy as sa
from flask.cli import AppGroup
from flask_babel import gettext as _

from coop.extensions import db

activities_cli = AppGroup("activities", help="活动台账：导入工作台账。")


def register(app) -> None:
    """Attach `flask activities …` to the app."""
    app.cli.add_command(activities_cli)


class _ProgressBars:
    """One click progress bar per stage of the import (checking the rows, then writing them)."""

    def __init__(self):
        self.stage, self.bar, self.shown = None, None, 0

    def __call__(self, stage: str, done: int, of: int) -> None:
        if stage != self.stage:
            self.close()
            label = _("检查行") if stage == "checking" else _("写入活动")
            self.stage, self.shown = stage, 0
            self.bar = click.progressbar(length=of, label=label, show_pos=True, show_eta=False)
            self.bar.__enter__()
        self.bar.update(done - self.shown)
        self.shown = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            click.echo(_("%(stage)s：%(done)d / %(of)d", stage=self.bar.label, done=self.shown, of=self.bar.length))
            self.bar = None


@activities_cli.command("import")
@click.option("--agreement", "agreement_id", type=int, required=True, help="协议 ID")
@click.option("--user", "username", required=True, help="以哪位联络员的名义导入（用户名）；活动记在其名下")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(agreement_id, username, file):
    """Import a 工作台账 .xlsx into an agreement — every row or none — showing progress."""
    from agreements.models import Agreement
    from coop.activities import jobs
    from coop.activities.models import ImportRun, ImportStatus
    from coop.auth.models import User

    agreement = db.session.get(Agreement, agreement_id) if -(2**63) <= agreement_id < 2**63 else None
    if agreement is None:
        raise click.ClickException(_("协议 %(id)d 不存在。", id=agreement_id))
    user = db.session.execute(sa.select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise click.ClickException(_("用户 %(name)s 不存在。", name=username))
    with file.open("rb") as fh:
        data = fh.read(jobs.MAX_IMPORT_BYTES + 1)
    try:
        run = jobs.start_import_run(user, agreement, data, file.name)
        db.session.commit()
    except jobs.ImportRefused as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    run_id = run.id
    click.echo(_("导入 #%(id)d：%(file)s → %(agreement)s", id=run_id, file=file.name, agreement=agreement.title))
    bars = _ProgressBars()
    try:
        jobs.execute_import_run(run_id, progress=bars)
    finally:
        bars.close()
    run = db.session.get(ImportRun, run_id)
    db.session.refresh(run)
    if run.status is ImportStatus.done:
        click.echo(jobs.outcome_text(run))
        return
    for line in jobs.error_lines(run):
        click.echo(line, err=True)
    raise click.ClickException(jobs.outcome_text(run))
