"""The one way a PDF is made: WeasyPrint with CJK system fonts and a fetcher that reads only static/.

Every PDF of the platform (agreements, completion certificates, monthly reports) goes through
:func:`render_pdf` or :func:`render_pdf_layout`, so the rules live in one place:

* Fonts come from fontconfig (Debian package ``fonts-noto-cjk``: "Noto Serif CJK SC" is the Song
  face, "Noto Sans CJK SC" the Hei face). WeasyPrint embeds only the glyphs a document uses
  (``full_fonts=False``) and drops hinting instructions (``hinting=False``), which keeps an
  agreement at tens of kilobytes instead of the 20 MB a full CJK face would weigh.
* Resources are read only from the app's ``static/`` folder or from ``data:`` URIs. Nothing is ever
  fetched from the network, and no text typed by a user can make the renderer open a local file.
"""
from __future__ import annotations

import logging
import mimetypes
import re
import subprocess
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

#: ``<repo>/static`` and ``<repo>/templates`` — found from this file so rendering works without a
#: Flask app context (scheduler jobs, CLI, tests).
DEFAULT_STATIC_FOLDER = Path(__file__).resolve().parent.parent / "static"
DEFAULT_TEMPLATE_FOLDER = Path(__file__).resolve().parent.parent / "templates"

SONG_FAMILY = "Noto Serif CJK SC"
HEI_FAMILY = "Noto Sans CJK SC"

#: CSS pixels (1/96 in) to PDF points (1/72 in) at WeasyPrint's default zoom of 1.
PX_TO_PT = 0.75

logger = logging.getLogger(__name__)

_SCHEME_RE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_PDFFONTS_ROW = re.compile(
    r"^(?P<name>\S+)\s+(?P<type>\S.*?)\s+(?P<encoding>\S+)\s+(?P<emb>yes|no)\s+(?P<sub>yes|no)"
    r"\s+(?P<uni>yes|no)\s+\d+\s+\d+\s*$"
)


class PdfRenderError(RuntimeError):
    """Making a PDF failed; the message is fit to show to a user."""

    def __init__(self, message: str = "PDF 文件生成失败，请稍后重试或联系管理员。") -> None:
        super().__init__(message)


class ResourceRefused(ValueError):
    """The fetcher refused a URL (network, file outside static/, unknown scheme)."""


def _url_fetcher_class():
    # Imported lazily: WeasyPrint pulls in Pango/HarfBuzz through cffi, which costs ~0.3 s at
    # import time and is not needed by code that only asks about glyphs or fonts.
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnlyURLFetcher(URLFetcher):
        """A WeasyPrint fetcher serving only files under one folder and ``data:`` URIs."""

        def __init__(self, static_folder: Path) -> None:
            super().__init__(allowed_protocols={"file", "data"}, allow_redirects=False)
            self.static_folder = Path(static_folder).resolve()
            self.refused: list[str] = []

        def fetch(self, url, headers=None):
            """Return the resource, or raise ResourceRefused (WeasyPrint then skips it)."""
            match = _SCHEME_RE.match(url)
            scheme = match[1].lower() if match else ""
            if scheme == "data":
                # urllib's DataHandler decodes base64 and percent-encoded payloads.
                return super().fetch(url, headers)
            if scheme == "file":
                path = self._static_path(url)
                if path is not None:
                    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
                    return URLFetcherResponse(
                        path.as_uri(), path.read_bytes(), {"Content-Type": content_type}
                    )
            self.refused.append(url)
            logger.info("PDF renderer refused resource %r", url[:200])
            raise ResourceRefused(f"不允许读取该资源：{url[:200]}")

        def _static_path(self, url: str) -> Path | None:
            parts = urlsplit(url)
            if parts.netloc not in ("", "localhost"):
                return None
            # resolve() follows symlinks and collapses "..", so neither can lead out of static/.
            path = Path(url2pathname(unquote(parts.path))).resolve()
            if not path.is_relative_to(self.static_folder) or not path.is_file():
                return None
            return path

    return StaticOnlyURLFetcher


def static_url_fetcher(static_folder: Path | str | None = None):
    """A WeasyPrint URL fetcher that serves only ``static_folder`` (default ``<repo>/static``) and data: URIs."""
    return _url_fetcher_class()(Path(static_folder or DEFAULT_STATIC_FOLDER))


@dataclass(frozen=True)
class PdfBox:
    """Where an element marked ``data-pdf-box="name"`` landed: page index and box in PDF points.

    ``box`` is ``(x1, y1, x2, y2)`` with the origin at the bottom-left of the page, the
    convention of PDF annotations and of pyHanko's ``SigFieldSpec.box``.
    """

    page: int
    box: tuple[float, float, float, float]

    @property
    def width(self) -> float:
        """Width in points."""
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        """Height in points."""
        return self.box[3] - self.box[1]


@dataclass(frozen=True)
class RenderedPdf:
    """A PDF and the positions of its marked boxes."""

    pdf: bytes
    boxes: dict[str, PdfBox]
    page_count: int


_PDF_OPTIONS = {
    # Subset fonts and strip hinting: CJK faces are huge, a document uses a few hundred glyphs.
    "full_fonts": False,
    "hinting": False,
    "pdf_version": "1.7",
}


def _render_document(html: str, base_url: str | None, static_folder: Path | str | None):
    from weasyprint import HTML

    static = Path(static_folder or DEFAULT_STATIC_FOLDER).resolve()
    fetcher = static_url_fetcher(static)
    # Relative URLs in templates ("css/pdf.css") resolve inside static/ unless told otherwise.
    base = base_url if base_url is not None else static.as_uri() + "/"
    try:
        return HTML(string=html, base_url=base, url_fetcher=fetcher).render(**_PDF_OPTIONS)
    except Exception as exc:  # WeasyPrint raises many kinds; the caller needs one.
        logger.exception("WeasyPrint layout failed")
        raise PdfRenderError() from exc


def _write(document) -> bytes:
    try:
        return document.write_pdf(**_PDF_OPTIONS)
    except Exception as exc:
        logger.exception("WeasyPrint PDF output failed")
        raise PdfRenderError() from exc


def render_pdf(
    html: str, *, base_url: str | None = None, static_folder: Path | str | None = None
) -> bytes:
    """Render an HTML string to PDF bytes (A4 and fonts come from the document's CSS)."""
    return _write(_render_document(html, base_url, static_folder))


def render_pdf_layout(
    html: str, *, base_url: str | None = None, static_folder: Path | str | None = None
) -> RenderedPdf:
    """Render HTML to PDF and report where each ``data-pdf-box`` element was placed."""
    document = _render_document(html, base_url, static_folder)
    boxes: dict[str, PdfBox] = {}
    for index, page in enumerate(document.pages):
        page_height = page.height
        # WeasyPrint has no public API for element geometry; the page's box tree is the one
        # source of truth (pinned weasyprint==70.0, guarded by tests/test_pdf_render.py).
        for box in page._page_box.descendants():
            element = getattr(box, "element", None)
            if element is None or not hasattr(box, "border_box_x"):
                continue
            name = element.get("data-pdf-box")
            # An element yields several boxes (block, line boxes…); the first one is its
            # border box, and a box split over two pages keeps its first page.
            if not name or name in boxes:
                continue
            x, y = box.border_box_x(), box.border_box_y()
            w, h = box.border_width(), box.border_height()
            boxes[name] = PdfBox(
                page=index,
                box=(
                    round(x * PX_TO_PT, 2),
                    round((page_height - y - h) * PX_TO_PT, 2),
                    round((x + w) * PX_TO_PT, 2),
                    round((page_height - y) * PX_TO_PT, 2),
                ),
            )
    return RenderedPdf(pdf=_write(document), boxes=boxes, page_count=len(document.pages))


# --- templates and QR codes --------------------------------------------------------------------


@lru_cache(maxsize=4)
def pdf_jinja_env(template_folder: str | None = None):
    """A standalone Jinja2 environment for templates/pdf/ (autoescape on, undefined names fail)."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    from coop.formatting import cn_date, cn_datetime, cn_numeral

    env = Environment(
        loader=FileSystemLoader(template_folder or str(DEFAULT_TEMPLATE_FOLDER)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        # A typo in a PDF template must fail loudly, not print an empty string into a contract.
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(cn_date=cn_date, cn_datetime=cn_datetime, cn_numeral=cn_numeral, qr=qr_data_uri)
    return env


def qr_data_uri(text: str, *, error: str = "m") -> str:
    """A QR code for ``text`` as an SVG ``data:`` URI (fits an ``<img src>`` in a PDF template)."""
    import segno

    return segno.make(text, error=error, micro=False).svg_data_uri(border=0, dark="#000")


# --- fonts ------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def font_file(family: str) -> tuple[Path, int]:
    """The font file and face index fontconfig uses for ``family`` (raises PdfRenderError if absent)."""
    try:
        out = subprocess.run(  # fontconfig lookup of our own family names, no shell  # nosec B603 B607
            ["fc-match", "--format=%{file}\n%{index}\n%{family}", family],
            capture_output=True, text=True, check=True, timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise PdfRenderError("无法查询系统字体（fontconfig 不可用）。") from exc
    path, index, families = (out.split("\n") + ["", "", ""])[:3]
    # fc-match always answers with *something*; a substitute face would draw boxes.
    if family.lower() not in [f.strip().lower() for f in families.split(",")]:
        raise PdfRenderError(f"缺少字体“{family}”，请安装 fonts-noto-cjk。")
    return Path(path), _face_index(Path(path), family, int(index or 0))


def _face_index(path: Path, family: str, hint: int) -> int:
    """In a TrueType collection, pick the face whose name table says ``family``."""
    if path.suffix.lower() not in (".ttc", ".otc"):
        return 0
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(path), lazy=True)
    try:
        for number, face in enumerate(collection.fonts):
            names = {face["name"].getDebugName(i) for i in (1, 16)}
            if family in names:
                return number
    finally:
        collection.close()
    return hint


@lru_cache(maxsize=8)
def _codepoints(family: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    path, index = font_file(family)
    font = TTFont(str(path), fontNumber=index, lazy=True)
    try:
        return frozenset(font.getBestCmap() or {})
    finally:
        font.close()


def missing_glyphs(text: str, family: str = SONG_FAMILY) -> set[str]:
    """Characters of ``text`` the font ``family`` cannot draw (whitespace and controls ignored)."""
    covered = _codepoints(family)
    return {
        ch
        for ch in set(text)
        if not ch.isspace()
        and unicodedata.category(ch)[0] != "C"
        and ord(ch) not in covered
    }


def embedded_fonts(pdf_bytes: bytes) -> list[dict]:
    """The fonts of a PDF as ``pdffonts`` lists them: name, type, embedded, subset."""
    try:
        out = subprocess.run(  # fixed poppler tool, no shell  # nosec B603 B607
            ["pdffonts", "-"], input=pdf_bytes, capture_output=True, check=True, timeout=60
        ).stdout.decode("utf-8", "replace")
    except (OSError, subprocess.SubprocessError) as exc:
        raise PdfRenderError("无法读取 PDF 字体信息（pdffonts 不可用或文件损坏）。") from exc
    fonts = []
    for line in out.splitlines():
        # Long names overflow their column, so read from both ends: the name is one token,
        # the type may contain spaces, then encoding, emb, sub, uni, object number, generation.
        match = _PDFFONTS_ROW.match(line)
        if match:
            fonts.append({
                "name": match["name"],
                "type": match["type"],
                "encoding": match["encoding"],
                "embedded": match["emb"] == "yes",
                "subset": match["sub"] == "yes",
            })
    return fonts
