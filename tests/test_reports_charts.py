"""Charts drawn by the app: the 12-month bar chart and the pairings × categories status grid."""
import base64
from collections import namedtuple

import pytest

from coop.reports.charts import (
    GRID_ROWS_PER_CHUNK,
    STATUS_FILLS,
    axis_step,
    fit_text,
    monthly_bars_svg,
    status_grid,
    text_width_em,
)

Point = namedtuple("Point", "label held confirmed")


@pytest.mark.parametrize("peak, step", [(0, 1), (3, 1), (4, 1), (5, 2), (8, 2), (9, 5), (12, 5), (21, 10), (130, 50)])
def test_axis_steps_are_round_and_reach_the_peak(peak, step):
    assert axis_step(peak) == step and 4 * step >= peak


def test_bar_chart_draws_each_month_with_its_number_and_escapes_labels():
    points = [Point(f"{m}月", held, conf) for m, held, conf in [(1, 3, 2), (2, 0, 0), (3, 5, 5)]] + [Point("<b>", 1, 0)]
    svg = str(monthly_bars_svg(points))
    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg"') and svg.endswith("</svg>")
    assert svg.count('fill="#8e1414"/>') == 2 + 1  # confirmed parts of Jan and Mar, plus the legend swatch
    for label in ("1月", "2月", "3月", ">3<", ">5<", ">0<", "已确认", "待确认或有异议"):
        assert label in svg
    assert "&lt;b&gt;" in svg and "<b>" not in svg


def test_fit_text_cuts_with_an_ellipsis():
    assert text_width_em("党支部ab") == pytest.approx(3 + 1.1)
    assert fit_text("运维检修党支部", 52) == "运维检修党支部"
    cut = fit_text("运维检修党支部、石家庄市疾病预防控制中心第一党支部", 40)
    assert cut.endswith("…") and text_width_em(cut) <= 40 / (7 * 25.4 / 72)


def test_status_grid_chunks_rows_and_paints_colours():
    rows = [(f"结对{i}", [("behind", "▲ 1/4"), ("na", "—"), ("none", "× 0/2")]) for i in range(GRID_ROWS_PER_CHUNK + 3)]
    chunks = status_grid(rows)
    assert [c.rows for c in chunks] == [GRID_ROWS_PER_CHUNK, 3]
    first = chunks[0]
    assert first.names.splitlines()[0] == " 结对0" and len(first.names.splitlines()) == GRID_ROWS_PER_CHUNK
    assert first.cells.splitlines()[0] == " ▲ 1/4\t —\t × 0/2"
    svg = base64.b64decode(first.background.split(",", 1)[1]).decode()
    # One path per colour used, none for white cells, plus one for the rules.
    assert svg.count("<path") == 3 and STATUS_FILLS["behind"] in svg and STATUS_FILLS["none"] in svg
    assert svg.count("M52.00 ") == GRID_ROWS_PER_CHUNK + 1  # behind cells in the first column + its rule
