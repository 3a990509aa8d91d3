"""Charts drawn by the app as inline SVG — the same markup in report PDFs and on screens, nothing fetched.

Colours are chosen to stay apart when printed in grey (a dark and a light fill), and every bar carries its
number, so nothing depends on colour alone.
"""
from __future__ import annotations

import base64
import math
import unicodedata
from dataclasses import dataclass
from typing import Sequence

from markupsafe import Markup, escape

FONT = "'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif"
CONFIRMED_FILL = "#8e1414"  # dark: reads as near-black in grey
OTHER_FILL = "#e8b4b0"  # light: reads as pale grey
AXIS = "#666666"
GRID = "#d0d0d0"


def axis_step(peak: int, ticks: int = 4) -> int:
    """A whole, round gridline step (1, 2, 5, 10, 20, 50 …) so that `ticks` steps reach at least `peak`."""
    raw = max(1, math.ceil(peak / ticks))
    magnitude = 10 ** int(math.log10(raw))
    for nice in (1, 2, 5, 10):
        if nice * magnitude >= raw:
            return nice * magnitude
    return raw


LEGEND = ("已确认", "待确认或有异议", "柱顶数字为当月开展活动次数")


def monthly_bars_svg(points: Sequence, *, width: int = 640, height: int = 170, label: str = "近12个月活动开展情况",
                     labels: Sequence[str] | None = None, legend: Sequence[str] = LEGEND) -> Markup:
    """A bar per month: held activities, the confirmed part dark, the rest light, the count on top.

    `points` are objects with .label, .held and .confirmed (queries.MonthPoint). PDFs draw the Chinese texts;
    screens in another language pass `label`, the month `labels` and the three `legend` texts translated.
    """
    labels = [p.label for p in points] if labels is None else list(labels)
    confirmed_text, other_text, note_text = legend
    left, right, top, bottom = 30, 8, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(points))
    ticks = 4
    step = axis_step(max((p.held for p in points), default=0), ticks)
    peak = step * ticks
    slot = plot_w / n
    bar_w = slot * 0.62

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / peak

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}" '
        f'font-family="{FONT}" font-size="11">',
        f"<title>{escape(label)}</title>",
    ]
    for i in range(ticks + 1):
        v = step * i
        yy = y(v)
        parts.append(f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" stroke="{GRID}" stroke-width="0.6"/>')
        parts.append(f'<text x="{left - 4}" y="{yy + 3.5:.1f}" text-anchor="end" fill="{AXIS}">{v}</text>')
    for i, p in enumerate(points):
        x = left + slot * i + (slot - bar_w) / 2
        cx = x + bar_w / 2
        if p.held:
            parts.append(
                f'<rect x="{x:.1f}" y="{y(p.held):.1f}" width="{bar_w:.1f}" height="{y(0) - y(p.held):.1f}" '
                f'fill="{OTHER_FILL}" stroke="{CONFIRMED_FILL}" stroke-width="0.6"/>'
            )
        if p.confirmed:
            parts.append(
                f'<rect x="{x:.1f}" y="{y(p.confirmed):.1f}" width="{bar_w:.1f}" '
                f'height="{y(0) - y(p.confirmed):.1f}" fill="{CONFIRMED_FILL}"/>'
            )
        parts.append(f'<text x="{cx:.1f}" y="{y(p.held) - 3:.1f}" text-anchor="middle" fill="#000">{p.held}</text>')
        parts.append(f'<text x="{cx:.1f}" y="{top + plot_h + 14:.1f}" text-anchor="middle" fill="#000">{escape(labels[i])}</text>')
    parts.append(f'<line x1="{left}" y1="{y(0):.1f}" x2="{width - right}" y2="{y(0):.1f}" stroke="{AXIS}" stroke-width="1"/>')
    # Legend under the axis labels.
    ly = height - 8
    parts.append(f'<rect x="{left}" y="{ly - 9}" width="10" height="10" fill="{CONFIRMED_FILL}"/>')
    # The second key starts after the first one's text (Chinese: 3 characters; other languages are longer).
    second = left + max(64, round(14 + text_width_em(confirmed_text) * 11 + 12))
    parts.append(f'<text x="{left + 14}" y="{ly}" fill="#000">{escape(confirmed_text)}</text>')
    parts.append(f'<rect x="{second}" y="{ly - 9}" width="10" height="10" fill="{OTHER_FILL}" stroke="{CONFIRMED_FILL}" stroke-width="0.6"/>')
    parts.append(f'<text x="{second + 14}" y="{ly}" fill="#000">{escape(other_text)}</text>')
    parts.append(f'<text x="{width - right}" y="{ly}" text-anchor="end" fill="{AXIS}">{escape(note_text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # every text from data goes through escape() above  # nosec B704


# --- the pairings × categories grid of committee and organization reports ---------------------------------
#
# A table of 600 pairings × 10 cells is 6,000+ CSS boxes, and WeasyPrint spends ~1 ms on each (a group-wide
# report took 30 s). So the PDF grid is drawn differently: per chunk of rows, ONE SVG background paints
# the status colours and rules, and the text is two preformatted blocks — names on the left, cells on the
# right aligned by tab stops — with a fixed line height matching the SVG rows. A few boxes per 52 rows.

GRID_WIDTH_MM = 180.0
GRID_NAME_MM = 52.0
GRID_CELL_MM = 13.0
GRID_ROW_MM = 4.3
GRID_ROWS_PER_CHUNK = 52  # header + 52 rows ≈ 230 mm: a chunk and its heading fit one A4 page
GRID_FONT_PT = 7.0
STATUS_FILLS = {"done": "#ffffff", "on_track": "#e3f1e4", "behind": "#f6c343", "none": "#ec8b84",
                "not_started": "#ffffff", "ended": "#ffffff", "extra": "#ffffff", "na": "#ffffff"}


@dataclass(frozen=True)
class GridChunk:
    """Up to GRID_ROWS_PER_CHUNK rows of the grid: fits one page with its header."""
    background: str  # data: URI of the SVG painting this chunk's colours and rules
    names: str  # one line per row
    cells: str  # one line per row, cells separated by tabs
    rows: int

    @property
    def height_mm(self) -> float:
        return round(self.rows * GRID_ROW_MM, 3)


def text_width_em(text: str) -> float:
    """Approximate advance of `text` in em: CJK and full-width characters 1, the rest 0.55."""
    return sum(1.0 if unicodedata.east_asian_width(ch) in "WF" else 0.55 for ch in text)


def fit_text(text: str, width_mm: float, font_pt: float = GRID_FONT_PT) -> str:
    """`text` cut with "…" so that it fits `width_mm` at `font_pt`."""
    max_em = width_mm / (font_pt * 25.4 / 72)
    if text_width_em(text) <= max_em:
        return text
    out = ""
    for ch in text:
        if text_width_em(out + ch) > max_em - 1:
            break
        out += ch
    return out + "…"


def _grid_svg(statuses: Sequence[Sequence[str]]) -> str:
    """One SVG for a chunk: a path per fill colour and one for all rules (WeasyPrint pays per element)."""
    rows = len(statuses)
    height = rows * GRID_ROW_MM
    fills: dict[str, list[str]] = {}
    for i, row in enumerate(statuses):
        y = i * GRID_ROW_MM
        for k, status in enumerate(row):
            fill = STATUS_FILLS[status]
            if fill != "#ffffff":
                x = GRID_NAME_MM + k * GRID_CELL_MM
                w = GRID_CELL_MM if k < len(row) - 1 else GRID_WIDTH_MM - x
                fills.setdefault(fill, []).append(f"M{x:.2f} {y:.3f}h{w:.2f}v{GRID_ROW_MM}h{-w:.2f}z")
    rules = [f"M0 {min(i * GRID_ROW_MM, height - 0.05) if i else 0.05:.3f}H{GRID_WIDTH_MM}" for i in range(rows + 1)]
    columns = [0.05] + [GRID_NAME_MM + k * GRID_CELL_MM for k in range(len(statuses[0]) if rows else 0)] + [GRID_WIDTH_MM - 0.05]
    rules += [f"M{x:.2f} 0V{height:.3f}" for x in columns]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{GRID_WIDTH_MM}mm" height="{height:.3f}mm" '
        f'viewBox="0 0 {GRID_WIDTH_MM} {height:.3f}" preserveAspectRatio="none">'
    ]
    parts += [f'<path fill="{fill}" d="{"".join(d)}"/>' for fill, d in fills.items()]
    parts.append(f'<path fill="none" stroke="#8a8a8a" stroke-width="0.12" d="{"".join(rules)}"/>')
    parts.append("</svg>")
    return "data:image/svg+xml;base64," + base64.b64encode("".join(parts).encode("utf-8")).decode("ascii")


def status_grid(rows: Sequence[tuple[str, Sequence[tuple[str, str]]]], *,
                rows_per_chunk: int = GRID_ROWS_PER_CHUNK) -> list[GridChunk]:
    """Chunks of a status grid. Each row is (name, [(status, cell text), …]); the last cell is the widest."""
    chunks = []
    for start in range(0, len(rows), rows_per_chunk):
        part = rows[start : start + rows_per_chunk]
        chunks.append(GridChunk(
            background=_grid_svg([[status for status, _text in cells] for _name, cells in part]),
            names="\n".join(" " + fit_text(name, GRID_NAME_MM - 2) for name, _cells in part),
            cells="\n".join("\t".join(" " + text for _status, text in cells) for _name, cells in part),
            rows=len(part),
        ))
    return chunks
