"""Monthly reports as PDF: report data (coop.reports.queries) → templates/pdf/report_*.html → coop.pdf.

Rendering reads no database: everything comes from the data object, plus photo thumbnails read from
UPLOAD_DIR and embedded as data: URIs (the PDF fetcher serves nothing but static/ and data:).
"""
from __future__ import annotations

import base64
import hashlib
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import current_app, has_app_context

from coop.categories import CATEGORIES
from coop.db import now_utc
from coop.formatting import cn_datetime
from coop.pdf import pdf_jinja_env, render_pdf
from coop.reports import progress as pg
from coop.reports.charts import GRID_FONT_PT, GRID_NAME_MM, fit_text, monthly_bars_svg, status_grid, text_width_em
from coop.reports.queries import STATUS_SYMBOLS

TEMPLATES = {
    "agreement": "pdf/report_agreement.html",
    "organization": "pdf/report_organization.html",
    "committee": "pdf/report_committee.html",
}

# A thumbnail bigger than this is not a thumbnail; leave it out rather than bloat every copy of the report.
MAX_THUMB_BYTES = 400 * 1024
_IMAGE_MAGIC = ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))


@dataclass(frozen=True)
class RenderedReport:
    """A rendered report: PDF bytes, the HTML it came from, SHA-256 and page count."""
    pdf: bytes
    html: str
    sha256: str
    page_count: int


def thumbnail_data_uri(upload_dir: str | Path, relative_path: str) -> str | None:
    """A stored thumbnail as a data: URI, or None when missing, outside UPLOAD_DIR, too big or not an image."""
    root = Path(upload_dir).resolve()
    try:
        path = (root / relative_path).resolve()
    except (OSError, ValueError):
        return None
    if not path.is_relative_to(root) or not path.is_file() or path.stat().st_size > MAX_THUMB_BYTES:
        return None
    data = path.read_bytes()
    mime = next((m for magic, m in _IMAGE_MAGIC if data.startswith(magic)), None)
    if mime is None:
        return None
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _photos(data, upload_dir: str | Path | None) -> list[tuple]:
    if upload_dir is None or data.kind != "agreement":
        return []
    photos = []
    for line in data.activities:
        for thumb in line.thumbnails:
            uri = thumbnail_data_uri(upload_dir, thumb.path)
            if uri:
                photos.append((line, uri))
    return photos


def pairing_grid(summaries) -> list:
    """The pairings × categories grid of a report, as chunks for templates/pdf/report_macros.html."""
    rows = []
    for s in summaries:
        # The flags are cut last: a long name gives way so that "停滞" / "单方" always show.
        flags = ("　停滞" if s.stalled else "") + ("　单方" if s.one_sided else "")
        name = fit_text(s.party_names, GRID_NAME_MM - 2 - text_width_em(flags) * GRID_FONT_PT * 25.4 / 72) + flags
        cells = [(r.status, r.cell_text) for r in s.categories]
        cells.append((s.overall_status, f"{s.overall_symbol} {s.overall_label}"))
        rows.append((name, cells))
    return status_grid(rows)


def meta_line(version: int | None, generated_at: datetime) -> str:
    """The line under the title and in the page margin: platform, version, when made."""
    edition = f"第{version}版" if version else "预览"
    return f"党建共建平台 · {edition} · 生成于{cn_datetime(generated_at)}"


def report_html(data, *, version: int | None = None, generated_at: datetime | None = None,
                upload_dir: str | Path | None = None) -> str:
    """The report as HTML for WeasyPrint (all user text escaped by the template environment)."""
    if upload_dir is None and has_app_context():
        upload_dir = current_app.config.get("UPLOAD_DIR")
    template = pdf_jinja_env().get_template(TEMPLATES[data.kind])
    return template.render(
        data=data,
        chart_svg=monthly_bars_svg(data.chart),
        grid=pairing_grid(data.agreements) if data.kind != "agreement" else [],
        grid_head="\t".join(" " + c.name for c in CATEGORIES) + "\t 总体",
        photos=_photos(data, upload_dir),
        meta_line=meta_line(version, generated_at or now_utc()),
        symbols=STATUS_SYMBOLS,
        status_labels=pg.STATUS_LABELS,
        categories=CATEGORIES,
        stalled_days=pg.STALLED_DAYS,
        window_days=pg.ONE_SIDED_WINDOW_DAYS,
        min_entries=pg.ONE_SIDED_MIN_ENTRIES,
    )


def pdf_page_count(pdf: bytes) -> int | None:
    """Pages of a PDF as poppler's pdfinfo reads them (None when pdfinfo is unavailable)."""
    try:
        out = subprocess.run(["pdfinfo", "-"],  # fixed poppler tool, no shell  # nosec B603 B607
                              input=pdf, capture_output=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.search(rb"^Pages:\s+(\d+)", out, re.M)
    return int(m[1]) if m else None


def render_report(data, *, version: int | None = None, generated_at: datetime | None = None,
                  upload_dir: str | Path | None = None) -> RenderedReport:
    """Render a report data object to PDF bytes, with its SHA-256 and page count."""
    html = report_html(data, version=version, generated_at=generated_at, upload_dir=upload_dir)
    pdf = render_pdf(html)
    return RenderedReport(pdf=pdf, html=html, sha256=hashlib.sha256(pdf).hexdigest(), page_count=pdf_page_count(pdf))
