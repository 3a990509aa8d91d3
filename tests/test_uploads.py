"""Attachments: only real JPEG/PNG/WebP/PDF get in, images come out clean, files land under random names."""
from __future__ import annotations

import io
import os
import re
import struct
import zipfile
import zlib

import pytest
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo

from coop import uploads
from coop.uploads import (
    CheckedUpload,
    StoredFile,
    UploadRejected,
    delete_stored,
    discard_on_error,
    inspect_upload,
    resolve_stored,
    store_upload,
)

MB = 1024 * 1024
RED, BLUE = (220, 20, 20), (20, 20, 220)


def inspect(data: bytes, filename: str = "upload.bin", max_bytes: int = 10 * MB) -> CheckedUpload:
    return inspect_upload(data, filename, max_bytes=max_bytes)


def rejected(data: bytes, filename: str = "upload.bin", max_bytes: int = 10 * MB) -> UploadRejected:
    with pytest.raises(UploadRejected) as caught:
        inspect_upload(data, filename, max_bytes=max_bytes)
    assert caught.value.message and re.search(r"[\u4e00-\u9fff]", caught.value.message), "message is Chinese"
    return caught.value


# --- image fixtures, built at test time --------------------------------------------------------------------


def two_colour_image(size=(200, 100), mode="RGB") -> Image.Image:
    """Left half red, right half blue: lets a test see which way the picture was turned."""
    im = Image.new("RGB", size, BLUE)
    im.paste(RED, (0, 0, size[0] // 2, size[1]))
    return im.convert(mode)


def encode(im: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def exif_with_gps_and_orientation(orientation: int = 6) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "SecretPhoneMaker"  # Make
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (39.0, 54.0, 27.0)  # 天安门 latitude
    gps[3] = "E"
    gps[4] = (116.0, 23.0, 27.0)
    return exif


SRGB_ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description GPSLatitude="39,54.45N"/></x:xmpmeta>'


def jpeg_with_everything() -> bytes:
    return encode(
        two_colour_image(),
        "JPEG",
        exif=exif_with_gps_and_orientation(6),
        icc_profile=SRGB_ICC,
        comment=b"<script>alert('comment')</script>",
        xmp=XMP,
    )


def png_raw(width: int, height: int, *, bit_depth=8, colour_type=0, idat=b"") -> bytes:
    """A PNG whose header claims any size: the shape of a decompression bomb, a few bytes on disk."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat or zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def assert_no_metadata(data: bytes, fmt: str) -> None:
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == fmt
        for key in ("exif", "icc_profile", "xmp", "XML:com.adobe.xmp", "comment", "dpi"):
            assert key not in im.info, f"{key} survived"
        assert not im.getexif()
        if fmt == "PNG":
            assert not getattr(im, "text", {})
    for marker in (b"Exif\x00\x00", b"SecretPhoneMaker", b"xmpmeta", b"<script", b"acsp", b"iCCP", b"tEXt", b"zTXt", b"iTXt"):
        assert marker not in data, f"{marker!r} survived"


# --- images --------------------------------------------------------------------------------------------------


def test_jpeg_is_turned_upright_and_stripped_of_exif_gps_xmp_icc_and_comments():
    original = jpeg_with_everything()
    assert b"SecretPhoneMaker" in original and b"xmpmeta" in original and b"<script" in original  # fixture check

    checked = inspect(original, "现场照片.JPG")

    assert (checked.kind, checked.mime, checked.extension) == ("image", "image/jpeg", "jpg")
    assert_no_metadata(checked.data, "JPEG")
    # Orientation 6 means "rotate 90° clockwise to display": the stored left (red) half becomes the top.
    assert (checked.width, checked.height) == (100, 200)
    with Image.open(io.BytesIO(checked.data)) as im:
        top, bottom = im.convert("RGB").getpixel((50, 30)), im.convert("RGB").getpixel((50, 170))
    assert top[0] > 150 and top[2] < 100, top
    assert bottom[2] > 150 and bottom[0] < 100, bottom
    assert checked.size == len(checked.data)
    assert checked.sha256 == __import__("hashlib").sha256(checked.data).hexdigest()
    assert checked.display_name == "现场照片.jpg"
    assert checked.pages is None


def test_png_keeps_transparency_and_loses_text_chunks_and_profile():
    im = two_colour_image(mode="RGBA")
    im.putpixel((0, 0), (0, 0, 0, 0))
    info = PngInfo()
    info.add_text("Comment", "GPS 39.9N 116.4E")
    data = encode(im, "PNG", pnginfo=info, icc_profile=SRGB_ICC, dpi=(300, 300))
    assert b"tEXt" in data and b"iCCP" in data

    checked = inspect(data, "logo.png")

    assert (checked.mime, checked.extension, checked.width, checked.height) == ("image/png", "png", 200, 100)
    assert_no_metadata(checked.data, "PNG")
    with Image.open(io.BytesIO(checked.data)) as out:
        assert out.mode == "RGBA" and out.getpixel((0, 0))[3] == 0


def test_webp_is_reencoded_as_webp_without_exif():
    data = encode(two_colour_image(), "WEBP", exif=exif_with_gps_and_orientation(1), quality=90)
    assert b"SecretPhoneMaker" in data
    checked = inspect(data, "活动.webp")
    assert (checked.mime, checked.extension) == ("image/webp", "webp")
    assert_no_metadata(checked.data, "WEBP")


def swapped_primaries_profile() -> bytes:
    """An RGB profile whose red and blue primaries are swapped: "red" pixels in it are really blue."""
    icc = bytearray(SRGB_ICC)
    (count,) = struct.unpack(">I", icc[128:132])
    entries = {bytes(icc[132 + 12 * i : 136 + 12 * i]): 132 + 12 * i for i in range(count)}
    red, blue = entries[b"rXYZ"], entries[b"bXYZ"]
    icc[red + 4 : red + 12], icc[blue + 4 : blue + 12] = icc[blue + 4 : blue + 12], icc[red + 4 : red + 12]
    icc[84:100] = bytes(16)  # profile ID no longer matches; zero means "not computed"
    return bytes(icc)


def test_a_profile_other_than_srgb_is_applied_then_dropped():
    data = encode(Image.new("RGB", (64, 64), RED), "JPEG", icc_profile=swapped_primaries_profile(), quality=95)
    checked = inspect(data, "wide-gamut.jpg")
    assert_no_metadata(checked.data, "JPEG")
    with Image.open(io.BytesIO(checked.data)) as im:
        r, g, b = im.getpixel((32, 32))
    assert b > 150 and r < 80, "pixels were converted to sRGB before the profile was dropped"


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (50, 40), colour) for colour in (RED, BLUE)]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:])


@pytest.mark.parametrize(
    ("data", "mode", "pixel"),
    [
        (encode(Image.new("I;16", (50, 40), 40000), "PNG"), "L", 156),  # 16-bit grey scaled, not clipped to white
        (encode(Image.new("CMYK", (50, 40), (0, 255, 255, 0)), "JPEG"), "RGB", None),
        (encode(Image.new("L", (50, 40), 128), "JPEG"), "L", 128),
        (encode(Image.new("RGB", (50, 40), RED).convert("P"), "PNG", transparency=0), "RGBA", None),
        (animated("WEBP"), "RGB", None),
        (animated("PNG"), "RGB", None),
    ],
    ids=["png-16bit-grey", "jpeg-cmyk", "jpeg-grey", "png-palette-transparency", "webp-animated", "apng"],
)
def test_unusual_modes_come_out_in_a_mode_browsers_show(data, mode, pixel):
    checked = inspect(data, "x")
    with Image.open(io.BytesIO(checked.data)) as im:
        assert im.mode == mode
        assert getattr(im, "n_frames", 1) == 1  # animations keep their first frame only
        if pixel is not None:
            assert abs(im.getpixel((0, 0)) - pixel) <= 2
        if mode == "RGB":
            r, g, b = im.getpixel((0, 0))
            assert r > 200 and b < 60, "red stays red (CMYK and first frame)"


def test_big_photos_are_downscaled_and_thumbnailed():
    checked = inspect(encode(two_colour_image((6000, 1500)), "JPEG"), "wide.jpg")
    assert (checked.width, checked.height) == (4096, 1024)
    with Image.open(io.BytesIO(checked.thumbnail)) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (320, 80)
        assert not thumb.info.get("exif")


def test_thumbnail_of_a_transparent_png_is_a_jpeg_on_white():
    im = Image.new("RGBA", (640, 640), (0, 0, 0, 0))
    checked = inspect(encode(im, "PNG"), "transparent.png")
    with Image.open(io.BytesIO(checked.thumbnail)) as thumb:
        assert thumb.format == "JPEG" and thumb.size == (320, 320)
        assert thumb.convert("RGB").getpixel((160, 160)) == (255, 255, 255)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_appended_zip_or_html_payload_does_not_survive(fmt):
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as archive:
        archive.writestr("evil.html", "<html><script>alert(1)</script></html>")
    polyglot = encode(two_colour_image(), fmt) + payload.getvalue() + b"<script>alert(2)</script>"
    assert zipfile.is_zipfile(io.BytesIO(polyglot))  # the fixture really is a polyglot

    checked = inspect(polyglot, "photo.jpg")

    assert not zipfile.is_zipfile(io.BytesIO(checked.data))
    assert b"PK\x03\x04" not in checked.data and b"<script" not in checked.data
    assert checked.extension == {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}[fmt]


def test_type_comes_from_content_not_from_the_name():
    checked = inspect(encode(two_colour_image(), "PNG"), "签到表.pdf")
    assert (checked.kind, checked.mime, checked.display_name) == ("image", "image/png", "签到表.png")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../etc/passwd.jpg", "passwd.jpg"),
        ("C:\\Users\\张三\\照片.exe", "照片.jpg"),
        ("\x00\x1b[31m活动\u202e.jpg", "[31m活动.jpg"),
        ("\x07.jpg", "附件.jpg"),
        ("", "附件.jpg"),
    ],
)
def test_display_name_is_cleaned(name, expected):
    assert inspect(encode(two_colour_image(), "JPEG"), name).display_name == expected


def test_decompression_bomb_beyond_pillow_limit_is_a_clean_rejection_even_with_warnings_as_errors():
    # 30000×30000 = 900 MP: past Pillow's own error threshold. 12000×9000 = 108 MP: past its warning
    # threshold, which this test run turns into an exception (pytest -W error).
    for width, height in [(30000, 30000), (12000, 9000)]:
        data = png_raw(width, height)
        assert len(data) < 200
        error = rejected(data, "bomb.png")
        assert error.reason == "too_many_pixels"
    assert Image.MAX_IMAGE_PIXELS != uploads.MAX_IMAGE_PIXELS, "the global Pillow setting is left alone"


def test_image_over_our_own_pixel_limit_is_rejected_before_decoding():
    error = rejected(png_raw(8000, 6000), "big.png")  # 48 MP: under Pillow's threshold, over ours
    assert error.reason == "too_many_pixels"
    assert "8000×6000" in error.message


@pytest.mark.parametrize("lenient_pillow", [False, True], ids=["pillow-default", "after-weasyprint-import"])
@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_images_are_rejected(fmt, lenient_pillow, monkeypatch):
    from PIL import ImageFile

    # Importing WeasyPrint switches Pillow to "load truncated images" for the whole process.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", lenient_pillow)
    data = encode(two_colour_image((400, 300)).effect_spread(5), fmt)
    error = rejected(data[: len(data) // 2], "cut.jpg")
    assert error.reason == "corrupt"


def test_png_with_a_broken_checksum_is_rejected():
    data = bytearray(encode(two_colour_image(), "PNG"))
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF
    assert rejected(bytes(data), "x.png").reason == "corrupt"


def test_image_header_with_garbage_after_it_is_rejected():
    assert rejected(b"\xff\xd8\xff\xe0" + os.urandom(2000), "x.jpg").reason == "corrupt"
    assert rejected(b"RIFF\x00\x00\x00\x00WEBPVP8 " + os.urandom(200), "x.webp").reason == "corrupt"


# --- refused types -----------------------------------------------------------------------------------------

_zip = io.BytesIO()
with zipfile.ZipFile(_zip, "w") as _archive:
    _archive.writestr("[Content_Types].xml", "<Types/>")
    _archive.writestr("word/document.xml", "<w:document/>")


@pytest.mark.parametrize(
    ("data", "filename", "reason"),
    [
        (b"MZ\x90\x00\x03" + b"\x00" * 200 + b"This program cannot be run in DOS mode", "photo.jpg", "executable"),
        (b"\x7fELF\x02\x01\x01" + b"\x00" * 100, "scan.pdf", "executable"),
        (b"\xcf\xfa\xed\xfe\x07\x00\x00\x01" + b"\x00" * 100, "photo.png", "executable"),
        (b"#!/bin/sh\nrm -rf /\n", "photo.jpg", "executable"),
        (b"\xef\xbb\xbf@echo off\r\ndel /q *\r\n", "sheet.pdf", "executable"),
        (b"<?php system($_GET['c']); ?>", "photo.png", "executable"),
        (_zip.getvalue(), "签到表.pdf", "archive"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "sheet.jpg", "archive"),
        (b"<!DOCTYPE html><html><script>alert(1)</script></html>", "photo.jpg", "markup"),
        (b'  <svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "logo.png", "markup"),
        (b'<?xml version="1.0"?><svg/>', "logo.webp", "markup"),
        (encode(two_colour_image(), "GIF"), "animation.jpg", "type"),
        (encode(two_colour_image(), "BMP"), "photo.jpg", "type"),
        (encode(two_colour_image(), "TIFF"), "scan.pdf", "type"),
        ("活动总结：很好".encode(), "notes.pdf", "type"),
    ],
)
def test_disguised_and_unsupported_files_are_refused(data, filename, reason):
    error = rejected(data, filename)
    assert error.reason == reason
    if reason == "type":
        assert "JPEG" in error.message or "文件类型不支持" in error.message


def test_unsupported_image_formats_get_a_helpful_message():
    assert "转换为 JPEG" in rejected(encode(two_colour_image(), "GIF"), "x.gif").message


def test_empty_and_oversize_files_are_refused():
    assert rejected(b"", "empty.jpg").reason == "empty"
    error = rejected(encode(two_colour_image(), "PNG"), "x.png", max_bytes=100)
    assert error.reason == "too_large" and "不能超过 100 字节" in error.message
    error = rejected(b"\x00" * (3 * MB), "x.png", max_bytes=2 * MB)
    assert "3.0 MB" in error.message and "2.0 MB" in error.message


# --- PDFs ----------------------------------------------------------------------------------------------------


def build_pdf(catalog_extra: bytes = b"", extra_objects: tuple[bytes, ...] = (), header: bytes = b"%PDF-1.7") -> bytes:
    """A small hand-written PDF with a correct xref table, so only the tested feature is unusual."""
    content = b"BT /F1 12 Tf 72 720 Td (Sign-in sheet) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R"
        b" /Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        *extra_objects,
    ]
    out = bytearray(header + b"\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def pyhanko_pdf(*, hidden_javascript: bool = False, user_password: str | None = None) -> bytes:
    """A PDF written by pyHanko with object streams (compressed objects, xref stream)."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PdfFileWriter

    writer = PdfFileWriter(stream_xrefs=True)
    page = generic.DictionaryObject(
        {
            generic.NameObject("/Type"): generic.NameObject("/Page"),
            generic.NameObject("/MediaBox"): generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, 595, 842)]),
            generic.NameObject("/Resources"): generic.DictionaryObject(),
        }
    )
    writer.insert_page(page)
    if hidden_javascript:
        object_stream = writer.prepare_object_stream()
        action = generic.DictionaryObject(
            {
                generic.NameObject("/S"): generic.NameObject("/JavaScript"),
                generic.NameObject("/JS"): generic.TextStringObject("app.alert('hi')"),
            }
        )
        writer.root[generic.NameObject("/OpenAction")] = writer.add_object(action, obj_stream=object_stream)
        writer.update_root()
    if user_password is not None:
        writer.encrypt("owner-secret", user_password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def pillow_pdf(pages: int = 1) -> bytes:
    """What a phone scanner app produces: JPEG pages in a PDF."""
    images = [two_colour_image((595, 842)) for _ in range(pages)]
    return encode(images[0], "PDF", save_all=True, append_images=images[1:], resolution=72)


def test_plain_pdfs_are_accepted_as_they_are():
    for data, pages in [(build_pdf(), 1), (pillow_pdf(3), 3), (pyhanko_pdf(), 1)]:
        checked = inspect(data, "签到表.PDF")
        assert (checked.kind, checked.mime, checked.extension) == ("pdf", "application/pdf", "pdf")
        assert checked.data == data and checked.thumbnail is None
        assert checked.pages == pages and checked.width is None
        assert checked.display_name == "签到表.pdf"


def test_harmless_open_action_is_accepted():
    assert inspect(build_pdf(b"/OpenAction [3 0 R /Fit]")).pages == 1


@pytest.mark.parametrize(
    "catalog_extra, extra_objects",
    [
        (b"/OpenAction 5 0 R", (b"<< /S /JavaScript /JS (app.alert(1)) >>",)),
        (b"/OpenAction << /S /Launch /F (cmd.exe) >>", ()),
        (b"/Names << /EmbeddedFiles 5 0 R >>", (b"<< /Names [(a.exe) << /Type /Filespec /EF << /F 6 0 R >> >>] >>", b"<< /Type /EmbeddedFile /Length 2 >>\nstream\nMZ\nendstream")),
        (b"/AA << /WC << /S /JavaScript /JS 5 0 R >> >>", (b"<< /Length 5 >>\nstream\nalert\nendstream",)),
        (b"/OpenAction << /S /J#61vaScript /J#53 (app.alert(1)) >>", ()),  # name escapes fool naive scanners
        (b"/OpenAction << /S /URI /URI (javascript:alert(1)) >>", ()),
        (b"/AcroForm << /XFA 5 0 R /Fields [] >>", (b"<< /Length 7 >>\nstream\n<xdp/>\nendstream",)),
        (b"/Extensions << /Media 5 0 R >>", (b"<< /Type /Annot /Subtype /RichMedia >>",)),
    ],
    ids=["javascript", "launch", "embedded-files", "additional-actions-js", "escaped-name", "javascript-uri", "xfa", "rich-media"],
)
def test_active_pdfs_are_refused(catalog_extra, extra_objects):
    error = rejected(build_pdf(catalog_extra, extra_objects), "sheet.pdf")
    assert error.reason in {"pdf_active", "pdf_polyglot"}


def test_javascript_hidden_in_a_compressed_object_stream_is_found_by_the_structural_walk():
    data = pyhanko_pdf(hidden_javascript=True)
    assert b"/JavaScript" not in data  # invisible to a byte scan
    assert rejected(data, "sheet.pdf").reason == "pdf_active"


def test_pdf_polyglots_are_refused():
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as archive:
        archive.writestr("x.js", "WScript.Shell")
    clean = build_pdf()
    cases = {
        "prefix": b"GIF89a junk\n" + clean,
        "zip-appended": clean + payload.getvalue(),
        "html-appended": clean + b"<html><script>alert(1)</script></html>",
        "zip-inside": build_pdf(extra_objects=(b"<< /Length %d >>\nstream\n" % len(payload.getvalue()) + payload.getvalue() + b"\nendstream",)),
        "html-inside": build_pdf(extra_objects=(b"<< /Length 30 >>\nstream\n<html><script>x</script></html>\nendstream",)),
    }
    for name, data in cases.items():
        assert rejected(data, "sheet.pdf").reason == "pdf_polyglot", name


def test_broken_pdfs_are_refused():
    clean = build_pdf()
    no_xref = re.sub(rb"startxref\n\d+", b"startxref\n999999", clean)
    cases = {
        "truncated": clean[: len(clean) // 2],
        "bad-xref": no_xref,
        "bad-header": b"%PDF-x.y\n" + clean[9:],
        "no-pages": build_pdf().replace(b"/Count 1", b"/Count 0"),
        "garbage": b"%PDF-1.7\n" + os.urandom(3000) + b"\n%%EOF\n",
    }
    for name, data in cases.items():
        assert rejected(data, "sheet.pdf").reason == "pdf_broken", name


def test_encrypted_pdfs_need_no_password_to_pass():
    assert inspect(pyhanko_pdf(user_password="")).pages == 1  # owner password only: opens for everyone
    assert rejected(pyhanko_pdf(user_password="user-secret"), "x.pdf").reason == "pdf_encrypted"


# --- storage -------------------------------------------------------------------------------------------------


@pytest.fixture
def checked_photo() -> CheckedUpload:
    return inspect(jpeg_with_everything(), "../../现场照片.jpg")


def test_store_writes_under_random_server_chosen_names(tmp_path, checked_photo):
    first = store_upload(tmp_path, checked_photo)
    second = store_upload(tmp_path, checked_photo)

    assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}\.jpg", first.relative_path)
    assert re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}\.thumb\.jpg", first.thumb_relative_path)
    assert first.relative_path != second.relative_path
    assert resolve_stored(tmp_path, first.relative_path).read_bytes() == checked_photo.data
    assert resolve_stored(tmp_path, first.thumb_relative_path).read_bytes() == checked_photo.thumbnail
    all_files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(all_files) == 4, "no temporary files left behind"
    assert not any("现场照片" in str(p) for p in all_files)


def test_pdf_is_stored_without_thumbnail(tmp_path):
    stored = store_upload(tmp_path, inspect(build_pdf(), "sheet.pdf"))
    assert stored.relative_path.endswith(".pdf") and stored.thumb_relative_path is None


def test_failed_write_leaves_nothing_behind(tmp_path, checked_photo, monkeypatch):
    real_replace = os.replace
    calls = []

    def replace_failing_on_second(src, dst):
        calls.append(dst)
        if len(calls) == 2:  # the thumbnail
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(uploads.os, "replace", replace_failing_on_second)
    with pytest.raises(OSError, match="disk full"):
        store_upload(tmp_path, checked_photo)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_discard_on_error_removes_files_when_the_transaction_fails(tmp_path, checked_photo):
    stored = store_upload(tmp_path, checked_photo)
    with pytest.raises(RuntimeError):
        with discard_on_error(tmp_path, stored):
            raise RuntimeError("database said no")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []

    kept = store_upload(tmp_path, checked_photo)
    with discard_on_error(tmp_path, kept) as inside:
        assert inside is kept
    assert resolve_stored(tmp_path, kept.relative_path).exists()


def test_delete_stored_removes_files_and_ignores_missing_ones(tmp_path, checked_photo):
    stored = store_upload(tmp_path, checked_photo)
    delete_stored(tmp_path, stored.relative_path, stored.thumb_relative_path, None)
    delete_stored(tmp_path, stored.relative_path)  # second time: nothing to do, no error
    assert not resolve_stored(tmp_path, stored.relative_path).exists()


@pytest.mark.parametrize(
    "path", ["../outside.jpg", "ab/../../outside.jpg", "/etc/passwd", "ab\\..\\x", "", ".", "ab/./../..", "a\x00b"]
)
def test_resolve_stored_refuses_paths_that_leave_the_root(tmp_path, path):
    with pytest.raises(ValueError):
        resolve_stored(tmp_path / "uploads", path)


def test_resolve_stored_refuses_symlinks_pointing_out(tmp_path):
    root = tmp_path / "uploads"
    root.mkdir()
    (tmp_path / "secret").mkdir()
    (root / "ab").symlink_to(tmp_path / "secret")
    with pytest.raises(ValueError):
        resolve_stored(root, "ab/key.pem")
    assert resolve_stored(root, "cd/ef/x.jpg") == (root / "cd/ef/x.jpg").resolve()
    with pytest.raises(ValueError):
        delete_stored(root, "../secret/key.pem")


def test_stored_file_is_a_plain_value():
    assert StoredFile("ab/cd/x.jpg", None) == StoredFile("ab/cd/x.jpg", None)


def test_oversize_message_tells_the_real_size_or_only_the_limit(app):
    from coop.uploads import UploadRejected, inspect_upload

    head = b"\xff\xd8\xff" + b"\0" * 2000
    # A caller that read only max_bytes + 1 bytes and knows the real size: the real size.
    with pytest.raises(UploadRejected) as info:
        inspect_upload(head[:1001], "a.jpg", max_bytes=1000, size=11 * 1024 * 1024)
    assert "11.0 MB" in info.value.message and info.value.reason == "too_large"
    # Cut short and the size unknown: the limit only, no made-up figure.
    with pytest.raises(UploadRejected) as info:
        inspect_upload(head[:1001], "a.jpg", max_bytes=1000)
    assert "1001" not in info.value.message and "1000" in info.value.message
    # The whole file given: its size.
    with pytest.raises(UploadRejected) as info:
        inspect_upload(head, "a.jpg", max_bytes=1000)
    assert "2 KB" in info.value.message
