"""Attachment checking and storage: activity photos and sign-in sheet PDFs.

Only JPEG, PNG, WebP and PDF are accepted, and the type is decided by the CONTENT (magic bytes and a real
parse), never by the file name or the browser's MIME type. Images are decoded and re-encoded, so nothing
that was appended to them or hidden in their metadata (EXIF/GPS/XMP/comments/ICC) survives. PDFs cannot be
cleaned that way, so they are refused when they carry anything active (JavaScript, launch actions,
embedded files, rich media, XFA) or look like a polyglot.

Storage pattern for callers (an operation that attaches files to a row)::

    checked = inspect_upload(data, filename, max_bytes=config["UPLOAD_MAX_FILE_BYTES"])  # may raise UploadRejected
    stored = store_upload(upload_root, checked)          # 1. files first, under server-chosen names
    with discard_on_error(upload_root, stored):          # 2. if anything below raises, the files go away
        add_attachment(activity, stored, checked)        #    the operation adds the row and flushes
        db.session.commit()                              #    the view commits inside the block

So a failed transaction never leaves orphan files, and a row never points to a file that was not written.
Deleting an attachment is the mirror image: commit the row deletion first, then `delete_stored` the files.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import threading
import tempfile
import unicodedata
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from flask_babel import gettext as _
from PIL import Image, ImageCms, ImageFile, ImageOps, UnidentifiedImageError

from coop.formatting import ui_is_english

# Explicit pixel ceiling: 40 megapixels is far above any phone camera's output (≈12–50 MP photos are
# downscaled anyway) but stops a small file from asking for gigabytes of RAM when decoded.
MAX_IMAGE_PIXELS = 40_000_000
# Longest side kept for stored images; bigger photos are downscaled before re-encoding.
MAX_IMAGE_SIDE = 4096
THUMBNAIL_SIDE = 320
THUMBNAIL_MIME = "image/jpeg"
THUMBNAIL_EXTENSION = "jpg"
JPEG_QUALITY = 88
WEBP_QUALITY = 85
THUMBNAIL_QUALITY = 80


class UploadRejected(Exception):
    """An upload that must not be stored; `message` is shown to the user as is (written in the interface
    language of the request, Chinese outside one), `reason` is a stable code."""

    def __init__(self, message: str, reason: str = "rejected"):
        super().__init__(message)
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class CheckedUpload:
    """An upload that passed inspection: `data` is what gets stored (re-encoded for images)."""

    kind: str  # "image" | "pdf"
    mime: str
    extension: str  # without the dot: "jpg", "png", "webp", "pdf"
    data: bytes
    thumbnail: bytes | None  # JPEG, longest side THUMBNAIL_SIDE; None for PDFs
    width: int | None  # pixels for images, None for PDFs
    height: int | None
    size: int
    sha256: str
    display_name: str  # the user's file name, cleaned and given the real extension — for display only
    pages: int | None = None  # page count for PDFs


@dataclass(frozen=True)
class StoredFile:
    """Where `store_upload` put the files, relative to the upload root, with forward slashes."""

    relative_path: str
    thumb_relative_path: str | None


# --- content sniffing ----------------------------------------------------------------------------------

_IMAGE_FORMATS = {
    # sniffed kind -> (Pillow format name, MIME, extension)
    "jpeg": ("JPEG", "image/jpeg", "jpg"),
    "png": ("PNG", "image/png", "png"),
    "webp": ("WEBP", "image/webp", "webp"),
}

# Signatures of things that must never be accepted, whatever they are called; they only choose the message.
_EXECUTABLE_SIGNATURES = (
    b"MZ",  # Windows PE / DOS
    b"\x7fELF",
    b"\xfe\xed\xfa\xce", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xcf\xfa\xed\xfe",  # Mach-O
    b"\xca\xfe\xba\xbe",  # Mach-O universal / Java class
    b"#!",  # shell, Python, Perl … scripts
    b"\x00asm",  # WebAssembly
    b"dex\n",  # Android
)
_ARCHIVE_SIGNATURES = (
    b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08",  # ZIP, and so docx/xlsx/pptx/jar/apk
    b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",  # OLE: doc/xls/msi
    b"Rar!\x1a\x07", b"7z\xbc\xaf\x27\x1c", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00",
)
_MARKUP_PREFIXES = (b"<", b"<?xml", b"<!doctype", b"<html", b"<svg", b"<script")
_SCRIPT_PREFIXES = (b"@echo", b"<?php", b"powershell", b"#!/", b"%!ps", b"{\\rtf")
_OTHER_IMAGE_SIGNATURES = (b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"\x00\x00\x01\x00")


def _sniff(data: bytes) -> str:
    """Name the real type of `data` from its first bytes; anything but jpeg/png/webp/pdf is refused later."""
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if b"%PDF-" in data[:1024]:
        # Lenient readers accept junk before the header; that is exactly how PDF polyglots are built.
        return "pdf_with_prefix"
    if data.startswith(_EXECUTABLE_SIGNATURES):
        return "executable"
    if data.startswith(_ARCHIVE_SIGNATURES):
        return "archive"
    # Text formats may start with a BOM or whitespace before the tell-tale token.
    head = data[:512].lstrip(b"\xef\xbb\xbf\xff\xfe\x00 \t\r\n").lower()
    if head.startswith(_SCRIPT_PREFIXES):
        return "executable"
    if head.startswith(_MARKUP_PREFIXES):
        return "markup"
    if data.startswith(_OTHER_IMAGE_SIGNATURES) or data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "other_image"
    return "unknown"


def _reject_for_kind(kind: str) -> UploadRejected:
    if kind == "executable":
        return UploadRejected(_("文件内容是可执行程序或脚本，不能上传。只接受 JPEG、PNG、WebP 图片和 PDF 文件"), "executable")
    if kind == "archive":
        return UploadRejected(_("文件内容是压缩包或 Office 文档，不能上传。只接受 JPEG、PNG、WebP 图片和 PDF 文件"), "archive")
    if kind == "markup":
        return UploadRejected(_("文件内容是网页、SVG 或 XML，不能上传。只接受 JPEG、PNG、WebP 图片和 PDF 文件"), "markup")
    if kind == "other_image":
        return UploadRejected(_("暂不支持这种图片格式（如 GIF、BMP、TIFF、HEIC），请转换为 JPEG 或 PNG 后上传"), "type")
    if kind == "pdf_with_prefix":
        return UploadRejected(_("PDF 文件头之前有多余的数据，文件可能被篡改，不能上传"), "pdf_polyglot")
    return UploadRejected(_("文件类型不支持：只接受 JPEG、PNG、WebP 图片和 PDF 文件"), "type")


# --- public entry points ---------------------------------------------------------------------------------


def inspect_upload(data: bytes, filename: str, *, max_bytes: int, size: int | None = None) -> CheckedUpload:
    """Check an uploaded file by its content and return the cleaned version, or raise UploadRejected.

    Callers may read only `max_bytes + 1` bytes of a big file (enough to refuse it); `size` is then the file's
    real size, for the message. Without it, a `data` of exactly `max_bytes + 1` bytes is taken as cut short
    and the message names the limit only, never the number of bytes read.
    """
    if not data:
        raise UploadRejected(_("文件是空的，请重新选择文件"), "empty")
    if len(data) > max_bytes:
        real = size if size is not None and size >= len(data) else (None if len(data) == max_bytes + 1 else len(data))
        if real is None:
            raise UploadRejected(_("文件太大：单个文件不能超过 %(max)s", max=_human_size(max_bytes)), "too_large")
        raise UploadRejected(
            _("文件太大：%(size)s，单个文件不能超过 %(max)s", size=_human_size(real), max=_human_size(max_bytes)),
            "too_large",
        )
    kind = _sniff(data)
    if kind in _IMAGE_FORMATS:
        return _inspect_image(data, filename, kind)
    if kind == "pdf":
        return _inspect_pdf(data, filename)
    raise _reject_for_kind(kind)


def store_upload(root: Path, checked: CheckedUpload) -> StoredFile:
    """Write a checked upload (and its thumbnail) under `root` with random server-chosen names."""
    name = uuid.uuid4().hex
    directory = PurePosixPath(name[:2], name[2:4])
    relative = str(directory / f"{name}.{checked.extension}")
    thumb_relative = str(directory / f"{name}.thumb.{THUMBNAIL_EXTENSION}") if checked.thumbnail else None
    _write_atomically(resolve_stored(root, relative), checked.data)
    if thumb_relative is not None:
        try:
            _write_atomically(resolve_stored(root, thumb_relative), checked.thumbnail)
        except BaseException:
            delete_stored(root, relative)
            raise
    return StoredFile(relative, thumb_relative)


def store_file(root: Path, data: bytes, extension: str) -> str:
    """Write bytes that their reader checks itself (a ledger .xlsx to import) under `root`, with a random
    server-chosen name like store_upload's; returns the path relative to `root`."""
    name = uuid.uuid4().hex
    relative = str(PurePosixPath(name[:2], name[2:4], f"{name}.{extension}"))
    _write_atomically(resolve_stored(root, relative), data)
    return relative


def delete_stored(root: Path, *relative_paths: str | None) -> None:
    """Remove stored files (missing ones and None are ignored): the rollback of `store_upload`."""
    for relative in relative_paths:
        if relative:
            resolve_stored(root, relative).unlink(missing_ok=True)


@contextmanager
def discard_on_error(root: Path, stored: StoredFile) -> Iterator[StoredFile]:
    """Delete the stored files if the block raises, so a failed transaction leaves no orphan files."""
    try:
        yield stored
    except BaseException:
        delete_stored(root, stored.relative_path, stored.thumb_relative_path)
        raise


def resolve_stored(root: Path, relative_path: str) -> Path:
    """Turn a stored relative path into an absolute path, refusing anything that would leave `root`."""
    if not relative_path or "\x00" in relative_path or "\\" in relative_path:
        raise ValueError(f"不安全的存储路径：{relative_path!r}")
    pure = PurePosixPath(relative_path)
    if pure.is_absolute() or any(part in ("..", "") for part in pure.parts):
        raise ValueError(f"不安全的存储路径：{relative_path!r}")
    base = Path(root).resolve()
    # resolve() also follows symlinks, so a link planted inside root cannot point outside it either.
    target = (base / pure).resolve()
    if target == base or not target.is_relative_to(base):
        raise ValueError(f"不安全的存储路径：{relative_path!r}")
    return target


# --- images ------------------------------------------------------------------------------------------------


_strict_lock = threading.Lock()


@contextmanager
def _strict_decoding():
    """Make Pillow refuse truncated images while we check an upload.

    WeasyPrint sets PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True for the whole process when it is imported
    (it prefers half a picture in a PDF to none), which would let a half-uploaded photo pass as "fine".
    The flag is process-wide, so it is switched off only for the duration of a check, under a lock; a PDF
    rendered meanwhile in another thread only ever embeds images this module already re-encoded.
    """
    with _strict_lock:
        saved = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = saved


def _inspect_image(data: bytes, filename: str, kind: str) -> CheckedUpload:
    pillow_format, mime, extension = _IMAGE_FORMATS[kind]
    corrupt = UploadRejected(_("图片文件已损坏或不完整，无法读取，请重新导出后上传"), "corrupt")
    # Decide the bomb question ourselves instead of depending on the process's warning filters: Pillow's own
    # check warns (or, under -W error, raises) for large images, and must end up as one clean rejection.
    # catch_warnings swaps process-wide state; the app runs in worker processes, so that is acceptable.
    with _strict_decoding(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=[pillow_format]) as probe:
                # verify() checks structure (PNG chunk CRCs …) without decoding pixels.
                _check_pixels(probe.size)
                probe.verify()
            with Image.open(io.BytesIO(data), formats=[pillow_format]) as im:
                _check_pixels(im.size)
                if pillow_format == "JPEG":
                    # Let libjpeg decode at a reduced scale when the photo is far bigger than we keep.
                    im.draft(None, (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))
                im.load()
                cleaned = _clean_image(im, pillow_format)
        except UploadRejected:
            raise
        except (Image.DecompressionBombWarning, Image.DecompressionBombError):
            raise UploadRejected(_too_many_pixels_message(None), "too_many_pixels") from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error):
            # Everything Pillow raises for truncated or malformed data; MemoryError is deliberately not here.
            raise corrupt from None
    out = io.BytesIO()
    if pillow_format == "JPEG":
        cleaned.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True)
    elif pillow_format == "PNG":
        cleaned.save(out, "PNG", optimize=True)
    else:
        cleaned.save(out, "WEBP", quality=WEBP_QUALITY, method=4)
    clean_bytes = out.getvalue()
    return CheckedUpload(
        kind="image",
        mime=mime,
        extension=extension,
        data=clean_bytes,
        thumbnail=_thumbnail(cleaned),
        width=cleaned.width,
        height=cleaned.height,
        size=len(clean_bytes),
        sha256=hashlib.sha256(clean_bytes).hexdigest(),
        display_name=_display_name(filename, extension),
    )


def _check_pixels(size: tuple[int, int]) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise UploadRejected(_("图片文件已损坏或不完整，无法读取，请重新导出后上传"), "corrupt")
    if width * height > MAX_IMAGE_PIXELS:
        raise UploadRejected(_too_many_pixels_message((width, height)), "too_many_pixels")


def _too_many_pixels_message(size: tuple[int, int] | None) -> str:
    # Chinese counts in 万 (ten thousand) pixels, English in megapixels: one number cannot serve both.
    limit = (f"at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels" if ui_is_english()
             else f"最多 {MAX_IMAGE_PIXELS // 10_000} 万像素")
    if size:
        return _("图片尺寸过大（%(width)s×%(height)s 像素），%(limit)s，请缩小后上传", width=size[0], height=size[1], limit=limit)
    return _("图片尺寸过大，%(limit)s，请缩小后上传", limit=limit)


def _clean_image(im: Image.Image, pillow_format: str) -> Image.Image:
    """Return a metadata-free copy: upright, in sRGB, in a mode the output format can hold, size-limited."""
    icc = im.info.get("icc_profile")
    try:
        upright = ImageOps.exif_transpose(im)
    except Exception:  # noqa: BLE001 — a photo with broken EXIF is still a photo; keep it as stored.
        upright = im.copy()
    if upright.mode.startswith("I"):
        # 16-bit greyscale (scans, medical-style exports): scale to 8 bits instead of letting convert() clip.
        upright = upright.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    has_alpha = upright.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        upright.mode == "P" and "transparency" in upright.info
    )
    if pillow_format == "JPEG":
        target_mode = "L" if upright.mode in ("L", "1") else "RGB"
    elif pillow_format == "PNG":
        if upright.mode in ("1", "L", "LA", "RGB", "RGBA") or (upright.mode == "P" and not has_alpha and not icc):
            target_mode = upright.mode
        else:
            target_mode = "RGBA" if has_alpha else "RGB"
    else:
        target_mode = "RGBA" if has_alpha else "RGB"
    if icc and upright.mode == "P":
        upright = upright.convert(target_mode)
    if icc and upright.mode in ("RGB", "RGBA", "L", "CMYK"):
        upright = _to_srgb(upright, icc)
    if upright.mode != target_mode:
        upright = upright.convert(target_mode)
    if max(upright.size) > MAX_IMAGE_SIDE:
        if upright.mode in ("P", "1"):
            upright = upright.convert("RGBA" if has_alpha else "RGB")
        upright.thumbnail((MAX_IMAGE_SIDE, MAX_IMAGE_SIDE), Image.Resampling.LANCZOS)
    if upright is im:
        upright = im.copy()
    # Everything Pillow would carry into the new file lives in .info (exif, xmp, icc_profile, comment, dpi,
    # PNG text chunks); the palette and pixels are all we keep.
    upright.info = {}
    return upright


def _to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    """Convert pixels from the embedded colour profile to sRGB, so the profile can be dropped."""
    if im.mode == "L":
        return im  # a grey profile cannot be mapped onto sRGB by littleCMS, and grey needs no conversion
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(
            im, source, ImageCms.createProfile("sRGB"), outputMode="RGBA" if im.mode == "RGBA" else "RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError):
        return im  # an unreadable profile: keep the pixels as they are, which is how most viewers show them


def _thumbnail(im: Image.Image) -> bytes:
    thumb = im.copy()
    if thumb.mode in ("RGBA", "LA", "PA") or (thumb.mode == "P" and "transparency" in thumb.info):
        rgba = thumb.convert("RGBA")
        # Flatten transparency onto white: JPEG has no alpha and white matches the page background.
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        thumb = flat
    elif thumb.mode != "RGB":
        thumb = thumb.convert("RGB")
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE), Image.Resampling.LANCZOS)
    thumb.info = {}
    out = io.BytesIO()
    thumb.save(out, "JPEG", quality=THUMBNAIL_QUALITY, optimize=True)
    return out.getvalue()


# --- PDFs ----------------------------------------------------------------------------------------------------

# PDF names that make a document do something instead of just showing pages. Compared after decoding the
# #xx escapes of the name syntax, since "/J#61vaScript" is "/JavaScript" to every reader.
_ACTIVE_PDF_NAMES = frozenset(
    {
        "JavaScript", "JS", "Launch", "EmbeddedFile", "EmbeddedFiles", "EF", "FileAttachment",
        "RichMedia", "XFA", "GoToE",
    }
)
_NAME_TOKEN = re.compile(rb"/([^\x00\t\n\x0c\r ()<>\[\]{}/%]+)")
_STREAM_BODY = re.compile(rb"stream\r?\n.*?endstream", re.DOTALL)
# Specific enough (version-needed byte, zero disk numbers) that compressed data practically never matches.
_ZIP_MARKERS = re.compile(
    rb"PK\x03\x04[\x0a\x14\x2d\x2e\x33\x3f]\x00"  # local file header
    rb"|PK\x01\x02..[\x0a\x14\x2d\x2e\x33\x3f]\x00"  # central directory entry
    rb"|PK\x05\x06\x00\x00\x00\x00",  # end of central directory
    re.DOTALL,
)
# Long enough that random compressed bytes practically never match (a bare "<svg" would, in big files).
_MARKUP_MARKERS = re.compile(rb"<script|<html|<!doctype\s+html|<iframe|javascript:", re.IGNORECASE)


def _inspect_pdf(data: bytes, filename: str) -> CheckedUpload:
    _check_pdf_bytes(data)
    pages = _check_pdf_structure(data)
    return CheckedUpload(
        kind="pdf",
        mime="application/pdf",
        extension="pdf",
        data=data,
        thumbnail=None,
        width=None,
        height=None,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        display_name=_display_name(filename, "pdf"),
        pages=pages,
    )


def _pdf_active(what: str) -> UploadRejected:
    return UploadRejected(_("PDF 文件包含%(what)s，出于安全原因不能上传；请打印后重新扫描，或另存为普通 PDF 再上传", what=what),
                          "pdf_active")


def _check_pdf_bytes(data: bytes) -> None:
    """Byte-level checks that catch polyglots and active content even where the parser would not look."""
    if not re.match(rb"%PDF-[12]\.\d", data):
        raise UploadRejected(_("PDF 文件头无效，文件已损坏或不是 PDF"), "pdf_broken")
    eof = data.rfind(b"%%EOF")
    if eof < 0:
        raise UploadRejected(_("PDF 文件不完整（缺少结尾），请重新导出后上传"), "pdf_broken")
    if data[eof + 5 :].strip(b"\x00\t\n\x0c\r "):
        raise UploadRejected(_("PDF 文件结尾之后附加了其他数据，文件可能被篡改，不能上传"), "pdf_polyglot")
    if _ZIP_MARKERS.search(data):
        raise UploadRejected(_("PDF 文件中夹带了压缩包数据，不能上传"), "pdf_polyglot")
    if _MARKUP_MARKERS.search(data):
        raise UploadRejected(_("PDF 文件中夹带了网页或脚本代码，不能上传"), "pdf_polyglot")
    # Names are only looked for outside stream bodies: compressed bytes would give false alarms, and the
    # structural walk below sees inside object streams anyway.
    outside_streams = _STREAM_BODY.sub(b" ", data)
    for match in _NAME_TOKEN.finditer(outside_streams):
        if _decode_pdf_name(match.group(1)) in _ACTIVE_PDF_NAMES:
            raise _pdf_active(_describe_active_name(_decode_pdf_name(match.group(1))))


def _decode_pdf_name(raw: bytes) -> str:
    decoded = re.sub(rb"#([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)
    return decoded.decode("latin-1")


def _describe_active_name(name: str) -> str:
    if name in ("JavaScript", "JS"):
        return _("脚本（JavaScript）")
    if name == "Launch":
        return _("启动外部程序的动作")
    if name in ("EmbeddedFile", "EmbeddedFiles", "EF", "FileAttachment", "GoToE"):
        return _("嵌入的附件文件")
    if name == "RichMedia":
        return _("多媒体内容")
    return _("交互表单（XFA）")


def _check_pdf_structure(data: bytes) -> int:
    """Open the PDF with pyHanko, walk every object of every revision, return the page count."""
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.crypt.api import AuthStatus
    from pyhanko.pdf_utils.reader import PdfFileReader

    broken = UploadRejected(_("PDF 文件已损坏，无法打开，请重新导出后上传"), "pdf_broken")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if reader.encrypted:
            # Owner-password-only files (print restrictions from scanners) open with an empty password.
            if reader.decrypt(b"").status == AuthStatus.FAILED:
                raise UploadRejected(_("PDF 文件设置了打开密码，请去除密码后再上传"), "pdf_encrypted")
        pages = int(reader.root["/Pages"]["/Count"])
        if pages < 1:
            raise broken
        refs = set()
        for revision in range(reader.xrefs.total_revisions):
            refs |= reader.xrefs.explicit_refs_in_revision(revision)
        pending: list = [reader.trailer_view]
        for ref in refs:
            pending.append(ref.get_object())
        while pending:
            obj = pending.pop()
            if isinstance(obj, generic.IndirectObject):
                continue  # every indirect object is in `refs` and gets its own turn
            if isinstance(obj, generic.NameObject):
                if obj[1:] in _ACTIVE_PDF_NAMES:
                    raise _pdf_active(_describe_active_name(obj[1:]))
            elif isinstance(obj, (generic.TextStringObject, generic.ByteStringObject)):
                text = obj if isinstance(obj, str) else bytes(obj).decode("latin-1")
                if text.strip().lower().startswith("javascript:"):
                    raise _pdf_active(_describe_active_name("JavaScript"))
            elif isinstance(obj, dict):
                # dict.items() on pyHanko's DictionaryObject yields raw values: references stay unresolved.
                for key, value in obj.items():
                    pending.append(key)
                    pending.append(value)
            elif isinstance(obj, list):
                pending.extend(obj)
    except UploadRejected:
        raise
    except Exception:  # noqa: BLE001 — any parser failure on untrusted input means "cannot open".
        raise broken from None
    return pages


# --- small helpers -------------------------------------------------------------------------------------------


def _display_name(filename: str, extension: str) -> str:
    """The user's file name reduced to something safe to show and to offer as a download name."""
    base = re.split(r"[\\/]", filename or "")[-1]
    base = "".join(ch for ch in unicodedata.normalize("NFC", base) if unicodedata.category(ch)[0] != "C")
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = stem.strip(" .")[:80] or "附件"
    return f"{stem}.{extension}"


def _human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return _("%(n)s 字节", n=size)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same directory, fsync, then rename over the final name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o640)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
