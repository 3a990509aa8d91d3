"""Activity attachments: real malformed and disguised files, size limits, nothing half-saved, no GPS kept."""
from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from coop.activities import operations as ops
from coop.activities.models import ActivityRevision, Attachment
from coop.extensions import db
from coop.uploads import inspect_upload
from tests.fixtures.activities import gps_exif, image_bytes, minimal_pdf


@pytest.fixture
def app_config(app_config):
    # Small limits so the per-file and per-activity rules are reachable with tiny real images.
    return {**app_config, "UPLOAD_MAX_FILE_BYTES": 200_000, "UPLOAD_MAX_ACTIVITY_BYTES": 400_000}


def stored_files(app) -> list[Path]:
    root = Path(app.config["UPLOAD_DIR"])
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def post_files(client, activity, *files):
    return client.post(
        f"/activities/{activity.id}/attachments",
        data={"files": [(io.BytesIO(data), name) for data, name in files]},
        content_type="multipart/form-data",
        follow_redirects=True,
    )


def pe_header_as_jpg() -> bytes:
    # A DOS/PE stub: "MZ", padding, e_lfanew at 0x3C pointing to "PE\0\0".
    data = bytearray(b"MZ" + b"\x90" * 0x3A + struct.pack("<I", 0x40) + b"PE\x00\x00" + b"\x4c\x01" + b"\x00" * 200)
    return bytes(data)


def truncated_jpeg() -> bytes:
    full = image_bytes("JPEG", size=(300, 200))
    return full[: len(full) // 2]


def html_as_png() -> bytes:
    return b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"


def jpeg_zip_polyglot() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("payload.html", "<script>alert(1)</script>")
    return image_bytes("JPEG") + buf.getvalue()


@pytest.mark.parametrize("maker, name, words", [
    (pe_header_as_jpg, "合影.jpg", "可执行"),
    (truncated_jpeg, "现场.jpg", "损坏"),
    (html_as_png, "签到.png", "网页"),
    (lambda: b"", "空.jpg", "空"),
    (lambda: b"GIF89a" + b"\x00" * 64, "动图.gif", "格式"),
])
def test_disguised_and_broken_files_are_refused_and_nothing_is_kept(client, login, pairing, make_activity, app,
                                                                    maker, name, words):
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.la)
    html = post_files(client, activity, (image_bytes("PNG"), "好照片.png"), (maker(), name)).get_data(as_text=True)
    assert name in html and words in html  # the message names the file and the problem
    db.session.expire_all()
    # The good file of the same request was not stored either: nothing is half-saved.
    assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 0
    assert stored_files(app) == []
    assert not db.session.scalars(sa.select(ActivityRevision)).all()


def test_jpeg_zip_polyglot_is_stored_without_the_zip(client, login, pairing, make_activity, app):
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.la)
    post_files(client, activity, (jpeg_zip_polyglot(), "polyglot.jpg"))
    att = db.session.scalars(sa.select(Attachment)).one()
    stored = (Path(app.config["UPLOAD_DIR"]) / att.stored_path).read_bytes()
    assert stored.startswith(b"\xff\xd8\xff") and b"PK\x03\x04" not in stored and b"payload.html" not in stored
    assert not zipfile.is_zipfile(io.BytesIO(stored))


def test_gps_location_is_removed_from_stored_photos(client, login, pairing, make_activity, app):
    from PIL import Image

    png = image_bytes("PNG", size=(80, 60), exif=gps_exif())
    assert Image.open(io.BytesIO(png)).getexif().get_ifd(0x8825)  # the upload really carries GPS
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.la)
    post_files(client, activity, (png, "带位置.png"))
    att = db.session.scalars(sa.select(Attachment)).one()
    root = Path(app.config["UPLOAD_DIR"])
    for rel in (att.stored_path, att.thumb_path):
        data = (root / rel).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            assert not im.getexif(), rel
            assert "exif" not in im.info
        assert b"Exif" not in data and b"PhoneMaker" not in data
    assert att.kind == "image" and att.mime == "image/png" and (att.width, att.height) == (80, 60)
    assert att.original_name == "带位置.png"


def test_pdf_sign_in_sheet_is_accepted(client, login, pairing, make_activity, app):
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.la)
    post_files(client, activity, (minimal_pdf(), "签到表.pdf"))
    att = db.session.scalars(sa.select(Attachment)).one()
    assert att.kind == "pdf" and att.thumb_path is None and att.stored_path.endswith(".pdf")


def random_png(side: int) -> bytes:
    """A PNG that does not compress: about side*side*3 bytes."""
    from PIL import Image

    return image_bytes_from(Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)))


def image_bytes_from(im) -> bytes:
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def test_per_file_limit(client, login, pairing, make_activity, app):
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.la)
    html = post_files(client, activity, (random_png(300), "大图.png")).get_data(as_text=True)  # ~270 KB > 200 KB
    assert "太大" in html
    assert stored_files(app) == []


def test_per_activity_limit(client, login, pairing, make_activity, app):
    activity = make_activity(pairing.la, pairing.agreement)
    login(client, pairing.la)
    for i in range(2):
        post_files(client, activity, (random_png(230), f"{i}.png"))  # ~160 KB each
    assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 2
    before = stored_files(app)
    html = post_files(client, activity, (random_png(230), "third.png")).get_data(as_text=True)
    assert "合计" in html
    assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 2
    assert stored_files(app) == before


def test_files_are_removed_when_the_transaction_rolls_back(app, pairing, make_activity):
    activity = make_activity(pairing.la, pairing.agreement)
    photo = inspect_upload(image_bytes("JPEG"), "a.jpg", max_bytes=10 ** 6)
    ops.add_attachments(pairing.la, activity, [photo])
    assert len(stored_files(app)) == 2  # photo and thumbnail written first
    db.session.rollback()
    assert stored_files(app) == []
    # And kept when the transaction commits.
    activity = db.session.get(type(activity), activity.id)
    ops.add_attachments(pairing.la, activity, [photo])
    db.session.commit()
    assert len(stored_files(app)) == 2


def test_log_activity_failure_after_storing_leaves_no_files(app, pairing, monkeypatch):
    photo = inspect_upload(image_bytes("JPEG"), "a.jpg", max_bytes=10 ** 6)

    def broken_audit(*args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(ops, "record_many", broken_audit)
    with pytest.raises(RuntimeError):
        ops.log_activity(pairing.la, agreements=[pairing.agreement], category="study", title="联学",
                         held_on=__import__("datetime").date(2026, 4, 1), organization_ids=[pairing.b.id],
                         attachments=[photo])
    db.session.rollback()
    assert stored_files(app) == []


def test_removing_an_attachment_deletes_files_only_after_commit(client, login, pairing, make_activity, app):
    photo = inspect_upload(image_bytes("JPEG"), "a.jpg", max_bytes=10 ** 6)
    activity = make_activity(pairing.la, pairing.agreement, attachments=[photo])
    att = activity.attachments[0]
    ops.remove_attachment(pairing.la, att)
    db.session.rollback()
    assert len(stored_files(app)) == 2  # the removal did not happen, so the files stay
    login(client, pairing.la)
    att_id = db.session.scalars(sa.select(Attachment.id)).one()
    client.post(f"/activities/attachments/{att_id}/delete")
    assert stored_files(app) == []
    assert db.session.scalar(sa.select(sa.func.count(Attachment.id))) == 0
    db.session.expire_all()
    assert db.session.scalars(sa.select(ActivityRevision)).all()[-1].note == "删除附件"


def test_category_requiring_photos_keeps_the_last_one(pairing, app):
    from datetime import date

    from coop.activities.models import CategorySetting

    db.session.add(CategorySetting(category="service", requires_photo=True))
    db.session.commit()
    photo = inspect_upload(image_bytes("JPEG"), "a.jpg", max_bytes=10 ** 6)
    activity = ops.log_activity(pairing.la, agreements=[pairing.agreement], category="service", title="走访",
                                held_on=date(2026, 4, 1), organization_ids=[pairing.b.id], attachments=[photo])
    db.session.commit()
    with pytest.raises(ops.ActivityRefused, match="至少一张照片"):
        ops.remove_attachment(pairing.la, activity.attachments[0])
