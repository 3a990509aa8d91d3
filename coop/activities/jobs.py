"""工作台账 imports in the background, with progress that a page or the CLI can follow, and come back to.

`start_import_run` (an operation: the caller commits) stores the uploaded file under UPLOAD_DIR/imports and
records a queued ImportRun. `execute_import_run` carries it out — in a thread of the web process
(`launch_import_run`, like a month's reports) or in the foreground (`flask activities import`):

1. Checking (coop.activities.ledger_io.check_ledger) only reads, inside a read-only transaction; the
   counters are saved in short transactions of their own, so SQLite's write lock is held for an instant
   at a time and the page's progress JSON moves.
2. Writing logs every activity *and* marks the run done in one transaction. A run that is not `done`
   therefore wrote nothing: all or nothing survives a crash, and a bad row found late rolls back everything.

The run is carried out in the language of the person who started it (the page's language at upload, else
their language preference): the problems a rejected run lists are stored as text in that language. Skipped
rows are stored as reasons (coop.activities.ledger_io.SkippedRow) and worded in the reader's language.

A thread dies with its process (a restart, a deploy), leaving its run `queued` or `running`. Such a run's
counters stop moving: after STALE_AFTER it is shown as failed ("已中断"), recorded so when the next import
into the agreement starts, and its late commit (if the process was only slow) is refused.
"""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path

import sqlalchemy as sa
from flask import current_app, has_request_context
from flask_babel import get_locale
from flask_babel import gettext as _

from agreements.models import Agreement
from coop.activities.ledger_io import (
    LedgerImportRejected,
    Progress,
    SkippedRow,
    check_ledger,
    line_list,
    line_message,
    write_ledger,
)
from coop.activities.models import ImportRun, ImportStatus
from coop.activities.operations import delete_unless_committed
from coop.activities.permissions import can_import_into
from coop.auth.models import User
from coop.db import now_utc, sqlite_read_only
from coop.extensions import db
from coop.i18n import ui_force_locale
from coop.jobs import start_in_thread
from coop.uploads import resolve_stored, store_file

log = logging.getLogger(__name__)

MAX_IMPORT_BYTES = 5 * 1024 * 1024
# Checking 2,000 rows takes about 0.2 s and writing them about 1.5 s (measured on the reference machine,
# SQLite); a run whose counters have not moved for this long has lost its process.
STALE_AFTER = timedelta(minutes=5)
SAVE_EVERY_SECONDS = 0.3  # while checking, counters are saved at most this often (and at the end)
INTERRUPTED = "interrupted"  # ImportRun.message of a run recorded as failed because its process died


class ImportRefused(Exception):
    """An import that cannot start; the message is for people. `live_run` is the import in the way, if any."""

    def __init__(self, message: str, live_run: ImportRun | None = None):
        super().__init__(message)
        self.live_run = live_run


def import_root() -> Path:
    """Where uploaded ledger files are kept (UPLOAD_DIR/imports, inside instance/ by default)."""
    return Path(current_app.config["UPLOAD_DIR"]) / "imports"


def is_stale(run: ImportRun, now: datetime | None = None) -> bool:
    """An unfinished run whose counters stopped moving (its process is gone)."""
    return not run.status.finished and (now or now_utc()) - run.updated_at > STALE_AFTER


def _interrupted(run: ImportRun) -> bool:
    """Stale now, or recorded as failed for being stale."""
    return is_stale(run) or (run.status is ImportStatus.failed and run.message == INTERRUPTED)


def start_import_run(actor: User, agreement: Agreement, data: bytes, file_name: str) -> ImportRun:
    """Keep the file and record a queued import (the caller commits, then launches or executes it).

    Refuses when the actor may not import into the agreement, and while another import into it is under way
    (a double click must not import a file twice); an import whose process is gone is marked failed instead.
    """
    if not can_import_into(actor, agreement):
        raise ImportRefused(_("只有生效中协议的联络员可以导入台账。"))
    if len(data) > MAX_IMPORT_BYTES:
        raise ImportRefused(_("文件太大，台账文件不能超过 %(mb)d MB。", mb=MAX_IMPORT_BYTES // (1024 * 1024)))
    # Two uploads at once must not both pass the check below: lock the agreement's row until this
    # transaction commits (PostgreSQL; SQLite's write transactions are serialised already by BEGIN IMMEDIATE).
    db.session.execute(sa.select(Agreement.id).where(Agreement.id == agreement.id).with_for_update())
    unfinished = db.session.execute(
        sa.select(ImportRun).where(ImportRun.agreement_id == agreement.id,
                                   ImportRun.status.in_([ImportStatus.queued, ImportStatus.running]))
    ).scalars().all()
    for run in unfinished:
        if not is_stale(run):
            raise ImportRefused(_("该协议已有一个导入正在进行，请等待其完成。"), live_run=run)
        run.status, run.finished_at, run.message = ImportStatus.failed, now_utc(), INTERRUPTED
        _discard_file(run.file_path)
    root = import_root()
    relative = store_file(root, data, "xlsx")
    delete_unless_committed(root, relative)
    run = ImportRun(agreement_id=agreement.id, created_by_id=actor.id, file_name=(file_name or "台账.xlsx")[:200],
                    file_path=relative, status=ImportStatus.queued)
    db.session.add(run)
    db.session.flush()
    return run


def _save(run_id: int, only_if: ImportStatus | None = None, **values) -> bool:
    """Update the run in a short write transaction on a connection of its own (the session may be
    reading meanwhile); `only_if` updates only a run in that status. True if the row was updated."""
    stmt = sa.update(ImportRun).where(ImportRun.id == run_id).values(updated_at=now_utc(), **values)
    if only_if is not None:
        stmt = stmt.where(ImportRun.status == only_if)
    with sqlite_read_only(False), db.engine.begin() as conn:
        return conn.execute(stmt).rowcount == 1


class _Counters:
    """The progress callback for checking: saves the counters for the page (at most every SAVE_EVERY_SECONDS,
    and at the start and end) and passes every step on to `also` (the CLI's progress bar). Writing saves
    none: it happens inside the one transaction, so nothing could be seen before it commits."""

    def __init__(self, run_id: int, also: Progress | None):
        self.run_id, self.also, self.saved_at = run_id, also, 0.0

    def __call__(self, stage: str, done: int, of: int) -> None:
        if self.also:
            self.also(stage, done, of)
        now = time.monotonic()
        if done in (0, of) or now - self.saved_at >= SAVE_EVERY_SECONDS:
            _save(self.run_id, total=of, checked=done)
            self.saved_at = now


def importer_locale(preference: str | None) -> str:
    """The language a run speaks when nobody said: the importer's preference (User.locale), else the platform's."""
    locales = current_app.config["LOCALES"]
    return preference if preference in locales else current_app.config["DEFAULT_LOCALE"]


def execute_import_run(run_id: int, *, progress: Progress | None = None, locale: str | None = None) -> None:
    """Carry out a committed, queued ImportRun; commits its own transactions and records the outcome on the run.

    Ends the session's transaction first (checking must begin a read-only one). Does nothing if the run is
    not queued (another executor took it). `progress` is called as in coop.activities.ledger_io (the CLI's bar).
    The problems found are worded in `locale`, by default the importer's language preference.
    """
    db.session.commit()
    if not _save(run_id, only_if=ImportStatus.queued, status=ImportStatus.running, started_at=now_utc()):
        return
    with sqlite_read_only(True):
        file_path, preference = db.session.execute(
            sa.select(ImportRun.file_path, User.locale).join(User, User.id == ImportRun.created_by_id)
            .where(ImportRun.id == run_id)
        ).one()
        db.session.rollback()
    try:
        with ui_force_locale(locale if locale in current_app.config["LOCALES"] else importer_locale(preference)):
            _execute(run_id, progress)
    finally:
        # Whatever the outcome, the activities or the listed problems are the record: the uploaded file is not
        # kept (it would pile up in the instance folder and in every backup).
        _discard_file(file_path)


def _discard_file(relative: str) -> None:
    try:
        resolve_stored(import_root(), relative).unlink(missing_ok=True)
    except (OSError, ValueError):
        log.warning("could not delete the import file %s", relative, exc_info=True)


def _execute(run_id: int, progress: Progress | None) -> None:
    try:
        with sqlite_read_only(True):
            try:
                run = db.session.get(ImportRun, run_id)
                with resolve_stored(import_root(), run.file_path).open("rb") as stream:
                    plan = check_ledger(run.created_by, run.agreement, stream, progress=_Counters(run_id, progress))
            finally:
                db.session.rollback()  # end the read transaction before writing (SQLite: no stale snapshot)
        run = db.session.get(ImportRun, run_id)
        result = write_ledger(run.created_by, run.agreement, plan, progress=progress,
                              detail={"import_run_id": run_id, "file_name": run.file_name})
        done = db.session.execute(
            sa.update(ImportRun).where(ImportRun.id == run_id, ImportRun.status == ImportStatus.running).values(
                status=ImportStatus.done, written=len(result.created), skipped=len(result.skipped),
                skipped_lines=[row.to_json() for row in result.skipped], finished_at=now_utc(), updated_at=now_utc(),
            )
        )
        if done.rowcount != 1:  # given up as stale meanwhile: the page said nothing was written, so nothing is
            db.session.rollback()
            return
        db.session.commit()
    except LedgerImportRejected as exc:
        db.session.rollback()
        _save(run_id, status=ImportStatus.rejected, finished_at=now_utc(),
              errors=[[line, message] for line, message in exc.errors])
    except Exception as exc:  # noqa: BLE001 — the page must learn that the import stopped
        log.exception("import run %s failed", run_id)
        db.session.rollback()
        _save(run_id, status=ImportStatus.failed, finished_at=now_utc(), message=f"{type(exc).__name__}: {exc}"[:300])


def launch_import_run(app, run_id: int, locale: str | None = None):
    """Start a committed ImportRun in a background thread of this process (the request returns at once).

    The thread has no request, so it would speak the platform's language: it is given the uploader's (`locale`,
    by default the language of the current request)."""
    if locale is None and has_request_context():
        current = get_locale()
        locale = str(current) if current is not None else None
    return start_in_thread(app, f"import-run-{run_id}", partial(execute_import_run, locale=locale), run_id)


def status_label(run: ImportRun) -> str:
    """A word for where the run stands (a stale run reads as interrupted)."""
    if _interrupted(run):
        return _("已中断")
    return {
        ImportStatus.queued: _("排队中"), ImportStatus.running: _("正在导入"), ImportStatus.done: _("已导入"),
        ImportStatus.rejected: _("未导入"), ImportStatus.failed: _("导入失败"),
    }[run.status]


def outcome_text(run: ImportRun) -> str:
    """One line saying where the run stands or how it ended, for the page, its JSON and the CLI."""
    if _interrupted(run):
        return _("导入已中断（处理进程已停止），未写入任何活动，请重新上传文件。")
    status = run.status
    if status is ImportStatus.queued:
        return _("等待开始")
    if status is ImportStatus.running:
        if not run.total:
            return _("正在读取文件…")
        if run.checked < run.total:
            return _("正在检查第 %(checked)d 行，共 %(total)d 行…", checked=run.checked, total=run.total)
        return _("检查通过，正在写入活动（一次写入：全部成功，或一条也不写）…")
    if status is ImportStatus.done:
        text = _("已导入 %(count)d 条活动，已请伙伴确认。", count=run.written)
        skipped = skipped_rows(run)
        withdrawn = [row.line for row in skipped if not row.is_duplicate]
        duplicates = [row.line for row in skipped if row.is_duplicate]
        if withdrawn:
            text += _("跳过 %(count)d 条已撤回的活动（第 %(lines)s 行）。", count=len(withdrawn),
                      lines=line_list(withdrawn))
        if duplicates:
            text += _("跳过 %(count)d 条重复的活动（第 %(lines)s 行），它们与本协议已登记的活动或文件中前面的行相同。",
                      count=len(duplicates), lines=line_list(duplicates))
        return text
    if status is ImportStatus.rejected:
        return _("未导入任何活动：发现 %(count)d 处问题，请修改后重新上传。", count=len(run.errors))
    return _("导入失败，未写入任何活动：%(reason)s", reason=run.message)


def skipped_rows(run: ImportRun) -> list[SkippedRow]:
    """The rows a finished run skipped, and why."""
    return [SkippedRow.from_json(value) for value in run.skipped_lines or []]


def error_lines(run: ImportRun) -> list[str]:
    """The lines listed under a run's outcome, one each: a rejected run's problems ("第 3 行：…"; a problem
    with the whole file has no line), or the rows a done run skipped and why ("第 4 行：与第 2 行重复")."""
    if run.status is ImportStatus.done:
        return [line_message(row.line, row.reason) for row in skipped_rows(run)]
    return [line_message(line, message) for line, message in run.errors]
