"""Backup and restore: one archive with the database, uploads, archived PDFs, keys and the secret key.

The database is copied with SQLite's online backup API (consistent while the app runs) or `pg_dump`
(custom format, its own snapshot). Every file's SHA-256 and every table's row count go into
manifest.json, and restore checks them, then verifies the audit chain.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from flask import current_app

from coop import cache
from coop.extensions import db
from coop.scheduling import libpq_url

FORMAT = 1


class BackupError(Exception):
    """A backup or restore refusal, with a message for the operator (Chinese)."""


def default_backup_name() -> Path:
    """instance/backups/coop-backup-YYYYmmdd-HHMMSS.tar.gz"""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path(current_app.instance_path) / "backups" / f"coop-backup-{stamp}.tar.gz"


def _file_roots() -> dict[str, Path]:
    cfg = current_app.config
    inst = Path(current_app.instance_path)
    return {
        "uploads": Path(cfg["UPLOAD_DIR"]),
        "archive": Path(cfg["ARCHIVE_DIR"]),
        "pki": Path(cfg["PKI_DIR"]),
        "secret_key": inst / "secret_key",
    }


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _table_counts(conn) -> dict[str, int]:
    names = [t.name for t in db.metadata.sorted_tables]
    existing = set(sa.inspect(conn).get_table_names())
    # table names come from our own metadata and are checked against the inspector's list
    return {n: conn.execute(sa.text(f'SELECT COUNT(*) FROM "{n}"')).scalar_one() for n in names if n in existing}  # nosec B608


def _alembic_revision(conn) -> str | None:
    if "alembic_version" not in sa.inspect(conn).get_table_names():
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def _sqlite_path() -> Path:
    return Path(db.engine.url.database)


def create_backup(out_path: Path, echo: Callable[[str], None] = print) -> Path:
    """Write the archive to `out_path` (atomically) and return its path."""
    dialect = db.engine.dialect.name
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    db.session.rollback()  # never hold a write lock while copying
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if dialect == "sqlite":
            db_file = tmp / "coop.sqlite3"
            src = sqlite3.connect(str(_sqlite_path()))
            dst = sqlite3.connect(str(db_file))
            with dst:
                src.backup(dst)
            src.close()
            dst.close()
            engine = sa.create_engine(f"sqlite:///{db_file}")
            with engine.connect() as conn:
                counts, revision = _table_counts(conn), _alembic_revision(conn)
            engine.dispose()
            db_member = "db/coop.sqlite3"
        elif dialect == "postgresql":
            db_file = tmp / "coop.pgdump"
            url = libpq_url(db.engine.url.render_as_string(hide_password=False))
            with db.engine.connect() as conn:
                counts, revision = _table_counts(conn), _alembic_revision(conn)
            proc = subprocess.run(  # fixed argument list, no shell; pg_dump from PATH  # nosec B603 B607
                ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={db_file}", url],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                raise BackupError(f"pg_dump 失败：{proc.stderr.strip()[:500]}")
            db_member = "db/coop.pgdump"
        else:
            raise BackupError(f"不支持的数据库：{dialect}")
        echo(f"数据库已导出（{dialect}，{sum(counts.values())} 行）")

        files: dict[str, str] = {}
        members: list[tuple[Path, str]] = [(db_file, db_member)]
        for name, root in _file_roots().items():
            if root.is_file():
                members.append((root, f"files/{name}"))
                files[f"files/{name}"] = _sha256(root)
            elif root.is_dir():
                for p in sorted(root.rglob("*")):
                    if p.is_file():
                        arc = f"files/{name}/{p.relative_to(root).as_posix()}"
                        members.append((p, arc))
                        files[arc] = _sha256(p)
        echo(f"文件 {len(files)} 个（上传附件、归档报告、密钥）")
        manifest = {
            "format": FORMAT,
            "created_at": datetime.now(timezone.utc).isoformat(),
            "dialect": dialect,
            "alembic_revision": revision,
            "tables": counts,
            "database": {"member": db_member, "sha256": _sha256(db_file)},
            "files": files,
        }
        partial = out_path.with_name(out_path.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            data = json.dumps(manifest, ensure_ascii=False, indent=2).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size, info.mtime = len(data), int(datetime.now().timestamp())
            tar.addfile(info, io.BytesIO(data))
            for path, arc in members:
                tar.add(path, arcname=arc, recursive=False)
        os.replace(partial, out_path)
    os.chmod(out_path, 0o600)  # it holds keys
    return out_path


def _database_has_data() -> bool:
    with db.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        for table in ("users", "organizations"):
            if table in names and conn.execute(sa.text(f'SELECT 1 FROM "{table}" LIMIT 1')).first():  # fixed names  # nosec B608
                return True
    return False


def _extract_safely(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract refusing absolute paths, "..", links and device files: tarfile's "data" filter where this Python
    has it (3.11.4+, and the distributions' security updates), else the same checks by hand (Debian 12's 3.11.2)."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
        return
    root = dest.resolve()
    members = tar.getmembers()
    for member in members:
        target = (root / member.name).resolve()
        if (member.name.startswith(("/", "\\")) or not (member.isfile() or member.isdir())
                or not target.is_relative_to(root)):
            raise tarfile.TarError(f"不安全的成员：{member.name[:200]}")
    uid, gid = os.getuid(), os.getgid()
    for member in members:  # as the "data" filter does: no set-id bits, no foreign owners
        member.mode = 0o755 if member.isdir() else 0o644
        member.uid, member.gid, member.uname, member.gname = uid, gid, "", ""
    tar.extractall(dest, members=members)  # nosec B202 — every member checked above


def _inside(base: Path, relative: str) -> Path:
    """base/relative, refusing names that lead out of base (absolute, "..", links): the manifest is part of the
    archive, so its paths are as untrusted as the archive's members."""
    parts = str(relative).split("/")
    if not relative or relative.startswith(("/", "\\")) or any(p in ("", ".", "..") for p in parts):
        raise BackupError(f"备份清单中的路径不安全：{str(relative)[:200]}")
    path = base.joinpath(*parts)
    if not path.resolve().is_relative_to(base.resolve()):
        raise BackupError(f"备份清单中的路径不安全：{str(relative)[:200]}")
    return path


def _file_copies(manifest: dict, tmp: Path, roots: dict[str, Path]) -> dict[str, tuple[Path, Path]]:
    """{archive name: (extracted file, where it goes)} for the manifest's files, each checked to stay inside the
    extracted archive and inside its own folder (uploads, archive, pki) or to be the secret key itself."""
    copies = {}
    for arc in manifest["files"]:
        source = _inside(tmp, arc)
        parts = arc.split("/")
        name, rest = (parts[1], parts[2:]) if len(parts) >= 2 and parts[0] == "files" else ("", [])
        if name not in roots or (name == "secret_key") != (not rest):
            raise BackupError(f"备份清单中的路径不安全：{arc[:200]}")
        dest = roots[name] if not rest else _inside(roots[name], "/".join(rest))
        copies[arc] = (source, dest)
    return copies


def restore_backup(archive: Path, *, force: bool = False, echo: Callable[[str], None] = print) -> str:
    """Restore `archive` into this instance's database and folders; verify counts, hashes and the audit chain."""
    from coop.audit.operations import verify_chain

    dialect = db.engine.dialect.name
    db.session.rollback()
    db.session.remove()
    if _database_has_data() and not force:
        raise BackupError("目标数据库已有数据；确需覆盖请加 --force。")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        try:
            with tarfile.open(archive, "r:gz") as tar:
                _extract_safely(tar, tmp)
        except (tarfile.TarError, OSError) as exc:
            raise BackupError(f"备份文件无法读取：{exc}") from None
        try:
            manifest = json.loads((tmp / "manifest.json").read_text())
        except (OSError, ValueError):
            raise BackupError("备份文件缺少 manifest.json，不是本平台的备份。") from None
        if manifest.get("format") != FORMAT:
            raise BackupError("备份格式版本不受支持。")
        if manifest["dialect"] != dialect:
            raise BackupError(f"备份来自 {manifest['dialect']}，当前数据库是 {dialect}；请用同类数据库恢复。")
        db_file = _inside(tmp, manifest["database"]["member"])
        copies = _file_copies(manifest, tmp, _file_roots())  # every path checked before anything is written
        if _sha256(db_file) != manifest["database"]["sha256"]:
            raise BackupError("数据库文件校验失败（SHA-256 不符），备份已损坏。")
        for arc, digest in manifest["files"].items():
            if _sha256(copies[arc][0]) != digest:
                raise BackupError(f"文件 {arc} 校验失败（SHA-256 不符），备份已损坏。")

        db.engine.dispose()
        if dialect == "sqlite":
            target = _sqlite_path()
            for suffix in ("-wal", "-shm"):
                Path(str(target) + suffix).unlink(missing_ok=True)
            shutil.copyfile(db_file, target)
        else:
            url = libpq_url(db.engine.url.render_as_string(hide_password=False))
            proc = subprocess.run(  # fixed argument list, no shell; pg_restore from PATH  # nosec B603 B607
                ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
                 f"--dbname={url}", str(db_file)],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                raise BackupError(f"pg_restore 失败：{proc.stderr.strip()[:500]}")
        with db.engine.begin() as conn:  # memoised figures of other processes predate the restored data
            cache.new_epoch(conn)
        echo("数据库已恢复")

        for source, dest in copies.values():
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, dest)
        echo(f"文件已恢复：{len(manifest['files'])} 个")

    with db.engine.connect() as conn:
        counts = _table_counts(conn)
    wrong = {t: (n, counts.get(t)) for t, n in manifest["tables"].items() if counts.get(t) != n}
    if wrong:
        raise BackupError(f"恢复后的行数与备份不符：{wrong}")
    chain = verify_chain()
    db.session.rollback()
    if not chain.ok:
        raise BackupError(f"恢复后审计日志链校验失败（第 {chain.first_broken_id} 条）。")
    return f"{sum(counts.values())} 行、{len(manifest['files'])} 个文件，审计日志 {chain.checked} 条完好"
