"""Backup and restore: one archive brings back every record and file, and refuses damage."""
import tarfile

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from app import create_app
from coop.audit.operations import record
from coop.auth.models import User
from coop.backup import BackupError, create_backup, restore_backup
from coop.extensions import db
from coop.orgs.models import Organization
from tests.conftest import throwaway_database
from agreements.models import Agreement
from agreements.signatures import archive_path, platform_pki
from agreements.signing import verify_pdf
from coop.activities.models import Activity
from coop.audit.models import AuditEntry
from coop.audit.operations import verify_chain
from coop.cache import DataGeneration


@pytest.fixture(scope="module")
def module_database_url(tmp_path_factory):
    with throwaway_database(tmp_path_factory.mktemp("backup-src")) as url:
        yield url


@pytest.fixture(scope="module")
def source(tmp_path_factory, module_database_url):
    """A migrated instance with the full demo — signed agreement PDFs, photos, reports keys — as a site has."""
    from tests.fixtures.agreements import use_fast_keys

    mp = pytest.MonkeyPatch()
    use_fast_keys(mp)
    base = tmp_path_factory.mktemp("backup")
    inst = base / "source"
    app = create_app({"DATABASE_URL": module_database_url, "SECRET_KEY": "s"}, instance_path=str(inst))
    try:
        with app.app_context():
            upgrade()
            from coop.demo import seed_demo

            seed_demo(echo=lambda *_: None)
            record("test.event", "备份前的记录")
            db.session.commit()
            files = {p.relative_to(inst).as_posix(): p.read_bytes()
                     for sub in ("uploads", "archive") for p in (inst / sub).rglob("*") if p.is_file()}
            assert any(name.startswith("uploads/") for name in files), "the demo has photos"
            assert any(name.endswith(".pdf") for name in files), "the demo has signed PDFs"
            archive = create_backup(base / "b.tar.gz", echo=lambda *_: None)
            counts = {model.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
                      for model in (User, Organization, Agreement, Activity, AuditEntry)}
            counts["generation"] = tuple(db.session.execute(sa.select(DataGeneration.epoch, DataGeneration.n)).one())
            db.session.remove()
            db.engine.dispose()
    finally:
        mp.undo()
    return archive, counts, files


@pytest.fixture
def target_url(empty_database_url):
    """A second empty database of the same kind, for the restore."""
    return empty_database_url


def test_restore_into_an_empty_instance_brings_everything_back(source, tmp_path, target_url):
    archive, counts, files = source
    inst = tmp_path / "target"
    app = create_app({"DATABASE_URL": target_url, "SECRET_KEY": "s", "WTF_CSRF_ENABLED": False}, instance_path=str(inst))
    with app.app_context():
        report = restore_backup(archive, echo=lambda *_: None)
        assert "审计日志" in report
        for model in (User, Organization, Agreement, Activity, AuditEntry):
            assert db.session.scalar(sa.select(sa.func.count()).select_from(model)) == counts[model.__tablename__]
        for name, data in files.items():
            assert (inst / name).read_bytes() == data, name
        # Every signed agreement verifies against the restored platform root, and the audit chain holds.
        signed = [a for a in db.session.scalars(sa.select(Agreement)) if a.current_version and a.current_version.pdf_path]
        assert signed
        for agreement in signed:
            result = verify_pdf(archive_path(agreement.current_version.pdf_path).read_bytes(), pki=platform_pki())
            assert result.is_fully_valid, agreement.title
        assert verify_chain().ok
        # Memoised figures computed by any process before the restore can never match the restored data.
        epoch, n = db.session.execute(sa.select(DataGeneration.epoch, DataGeneration.n)).one()
        assert epoch != counts["generation"][0] and n == counts["generation"][1] + 1
        # The restored instance works: a demo user can sign in.
        client = app.test_client()
        assert client.post("/login", data={"username": "ops_sj", "password": "Demo2026!"}).status_code == 302
        # Restoring again over data needs --force.
        with pytest.raises(BackupError, match="已有数据"):
            restore_backup(archive, echo=lambda *_: None)
        db.session.remove()
        db.engine.dispose()


def test_a_damaged_archive_is_refused(source, tmp_path, target_url):
    archive, _counts, files = source
    photo = next(name for name in files if name.startswith("uploads/"))
    broken = tmp_path / "broken.tar.gz"
    with tarfile.open(archive) as src, tarfile.open(broken, "w:gz") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if m.name.endswith(photo):
                data = b"tampered"
                m.size = len(data)
            import io

            dst.addfile(m, io.BytesIO(data) if data is not None else None)
    app = create_app({"DATABASE_URL": target_url, "SECRET_KEY": "s", "WTF_CSRF_ENABLED": False}, instance_path=str(tmp_path / "t2"))
    with app.app_context():
        with pytest.raises(BackupError, match="校验失败"):
            restore_backup(broken, echo=lambda *_: None)
        db.engine.dispose()


def test_backup_command_writes_an_archive(app, tmp_path):
    out = tmp_path / "cli.tar.gz"
    result = app.test_cli_runner().invoke(args=["backup", "--out", str(out)])
    assert result.exit_code == 0, result.output
    with tarfile.open(out) as tar:
        assert "manifest.json" in tar.getnames()


@pytest.mark.parametrize("python_filter", [True, False], ids=["tarfile-data-filter", "checked-by-hand"])
def test_an_archive_reaching_outside_its_folder_is_refused(app, tmp_path, monkeypatch, python_filter):
    """A crafted archive ("../" or an absolute name, a link) is refused before anything is written, with
    tarfile's own "data" filter and with the hand-made checks used on Pythons older than 3.11.4."""
    import io

    from coop import backup

    if not python_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    for name, kind in (("../escaped.txt", tarfile.REGTYPE), ("/tmp/absolute.txt", tarfile.REGTYPE),
                       ("link", tarfile.SYMTYPE)):
        archive = tmp_path / f"bad-{kind!r}-{len(name)}.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            member = tarfile.TarInfo(name)
            member.type = kind
            if kind == tarfile.SYMTYPE:
                member.linkname = "/etc/passwd"
                tar.addfile(member)
            else:
                member.size = 3
                tar.addfile(member, io.BytesIO(b"bad"))
        dest = tmp_path / "dest"
        dest.mkdir(exist_ok=True)
        with tarfile.open(archive, "r:gz") as tar, pytest.raises(tarfile.TarError):
            backup._extract_safely(tar, dest)
        assert not (tmp_path / "escaped.txt").exists()
        assert list(dest.iterdir()) == [] or python_filter  # the hand-made check writes nothing at all


def test_a_manifest_naming_paths_outside_the_folders_is_refused(tmp_path):
    """The manifest is inside the archive, so its paths are untrusted too: a file listed as
    files/uploads/../../x would be copied out of the uploads folder; the database member could name any file."""
    from coop.backup import _file_copies, _inside

    roots = {"uploads": tmp_path / "inst" / "uploads", "archive": tmp_path / "inst" / "archive",
             "pki": tmp_path / "inst" / "pki", "secret_key": tmp_path / "inst" / "secret_key"}
    extracted = tmp_path / "x"
    (extracted / "files" / "uploads" / "a").mkdir(parents=True)
    ok = _file_copies({"files": {"files/uploads/a/p.jpg": "h", "files/secret_key": "h"}}, extracted, roots)
    assert ok["files/uploads/a/p.jpg"][1] == roots["uploads"] / "a" / "p.jpg"
    assert ok["files/secret_key"][1] == roots["secret_key"]
    for bad in ("files/uploads/../../x/app.py", "files/uploads/a/../../../evil", "/etc/passwd", "files/../app.py",
                "files/secret_key/extra", "files/uploads", "files/other/x", "manifest.json", "files/uploads//x"):
        with pytest.raises(BackupError):
            _file_copies({"files": {bad: "h"}}, extracted, roots)
    for bad in ("/etc/passwd", "../db.sqlite3", "a/../../b", ""):
        with pytest.raises(BackupError):
            _inside(extracted, bad)


def test_restore_refuses_a_crafted_manifest_before_writing_anything(app, tmp_path):
    import io
    import json

    from coop.backup import FORMAT

    import hashlib

    payload = b"print('owned')"
    manifest = {"format": FORMAT, "dialect": db.engine.dialect.name,
                "database": {"member": "db.bin", "sha256": hashlib.sha256(b"x").hexdigest()},
                "files": {"files/uploads/../../escaped.py": hashlib.sha256(payload).hexdigest()}, "tables": {}}
    archive = tmp_path / "crafted.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in (("manifest.json", json.dumps(manifest).encode()), ("db.bin", b"x"),
                           ("escaped.py", payload)):
            member = tarfile.TarInfo(name)
            member.size = len(data)
            tar.addfile(member, io.BytesIO(data))
    with pytest.raises(BackupError, match="不安全"):
        restore_backup(archive, force=True, echo=lambda *_: None)
    from pathlib import Path

    assert not (Path(app.config["UPLOAD_DIR"]) / ".." / ".." / "escaped.py").resolve().exists()
