"""The agreement PDF: Chinese text and fonts, layout of the signature boxes, and a renderer that reads
nothing but static/ — whatever a user types."""
from __future__ import annotations

import logging
import re
import subprocess
from datetime import date

import pytest
from PIL import Image

from agreements.document import agreement_html, render_agreement_pdf
from coop.categories import CATEGORIES
from coop.pdf import (
    HEI_FAMILY,
    SONG_FAMILY,
    ResourceRefused,
    embedded_fonts,
    missing_glyphs,
    render_pdf,
    static_url_fetcher,
)

PARTY_A = "中国某某集团有限公司第一党支部"
PARTY_B = "某某市某某区人力资源和社会保障局机关党支部"


def agreement_ctx(**overrides) -> dict:
    """A full two-party agreement using all eight 八联 categories."""
    ctx = {
        "title": "党建结对共建协议",
        "number": "共建〔2026〕3号",
        "parties": [
            {"name": PARTY_A, "kind_label": "党支部", "secretary_name": "张建国", "liaisons": ["陈明", "刘洋"]},
            {"name": PARTY_B, "kind_label": "党支部", "secretary_name": "李晓红", "liaisons": ["周婷"]},
        ],
        "starts_on": date(2026, 1, 1),
        "ends_on": date(2026, 12, 31),
        "purpose": "通过结对共建实现组织共建、资源共享、优势互补、共同提高。\n以高质量党建引领高质量发展。",
        "commitments": [
            {"code": c.code, "name": c.name, "count_per_year": i % 4 + 1, "text": f"围绕{c.examples}开展共建。"}
            for i, c in enumerate(CATEGORIES)
        ],
        "clauses": [
            "各方每季度至少召开一次联络员会议，及时解决共建中遇到的问题。",
            "本协议以电子签名方式签署，自各方签署完成之日起生效。",
        ],
        "verify_url": "https://djgj.example.cn/v/7QK3-MX2P",
        "verify_code": "7QK3-MX2P",
        "version": "1",
    }
    ctx.update(overrides)
    return ctx


def pdftotext(pdf: bytes, *args: str) -> str:
    return subprocess.run(
        ["pdftotext", *args, "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode("utf-8")


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


@pytest.fixture(scope="module")
def agreement():
    pdf, boxes = render_agreement_pdf(agreement_ctx())
    return pdf, boxes


def test_agreement_text_has_title_parties_and_all_categories(agreement):
    pdf, _boxes = agreement
    text = squash(pdftotext(pdf))
    for expected in ("党建结对共建协议", "共建〔2026〕3号", PARTY_A, PARTY_B, "书记（签字）：张建国",
                     "联络员陈明、刘洋", "2026年1月1日起至2026年12月31日止"):
        assert expected in text
    for category in CATEGORIES:
        assert category.name in text
    # Fixed sections then the caller's clauses, numbered on: 一 … 四 fixed, 五/六 from ctx.
    assert "一、共建目标" in text and "四、联络机制" in text and "六、本协议以电子签名方式签署" in text


def test_every_page_is_numbered_with_dashes_and_carries_the_verify_line(agreement):
    pdf, _boxes = agreement
    pages = pdftotext(pdf).split("\f")[:-1]
    assert len(pages) >= 2
    for number, page in enumerate(pages, start=1):
        flat = squash(page)
        assert f"—{number}—" in flat
        assert "djgj.example.cn/v/7QK3-MX2P" in flat and "验证码：7QK3-MX2P" in flat


def test_fonts_are_embedded_cjk_subsets(agreement):
    pdf, _boxes = agreement
    fonts = embedded_fonts(pdf)
    names = " ".join(f["name"] for f in fonts)
    assert "Noto-Serif-CJK-SC" in names and "Noto-Sans-CJK-SC" in names
    assert all(f["embedded"] and f["subset"] for f in fonts), fonts
    # Subsetting is what keeps a CJK document small (a full face is ~16 MB).
    assert len(pdf) < 1_000_000


def test_fonts_can_draw_every_character_of_the_document(agreement):
    pdf, _boxes = agreement
    text = pdftotext(pdf)
    assert missing_glyphs(text, SONG_FAMILY) == set()
    assert missing_glyphs(text, HEI_FAMILY) == set()
    # …and the check can fail: an extension-B ideograph is outside the Noto CJK SC faces.
    assert missing_glyphs("张\U00020000三") == {"\U00020000"}


def test_signature_boxes_sit_between_the_secretary_line_and_the_date(agreement):
    pdf, boxes = agreement
    last_page = pdftotext(pdf).count("\f") - 1
    assert [b.page for b in boxes] == [last_page, last_page]
    a, b = boxes
    assert a.width == pytest.approx(198.4, abs=1) and a.height == pytest.approx(68, abs=1)  # 70 × 24 mm
    assert a.box[1] == pytest.approx(b.box[1]) and a.box[2] < b.box[0]  # side by side, same height
    assert a.box[0] == pytest.approx(28 / 25.4 * 72, abs=1)  # flush with the 28 mm left margin

    # Word positions from poppler (top-left origin, points) for the last page.
    html = pdftotext(pdf, "-f", str(last_page + 1), "-l", str(last_page + 1), "-bbox")
    page_height = float(re.search(r'<page width="[\d.]+" height="([\d.]+)"', html)[1])
    words = [
        (float(m[1]), float(m[2]), float(m[3]), float(m[4]), m[5])
        for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', html)
    ]
    for box, secretary in ((a, "张建国"), (b, "李晓红")):
        x1, y1, x2, y2 = box.box
        top, bottom = page_height - y2, page_height - y1  # to poppler's top-left coordinates
        name = next(w for w in words if secretary in w[4])
        date_line = min((w for w in words if w[4].startswith("日期") and x1 - 1 <= w[0] <= x2), key=lambda w: w[1])
        assert name[3] <= top + 2, "the box must start below the 书记（签字） line"
        assert date_line[1] >= bottom - 2, "the date line must follow the box"
        assert not any(top < (w[1] + w[3]) / 2 < bottom and x1 < w[0] < x2 for w in words), "box must be empty"


def test_emoji_typed_into_a_title_are_drawn_not_boxes():
    """Titles are typed on phones: an emoji must print (scripts/setup installs Noto Color Emoji), not a box."""
    pdf, _boxes = render_agreement_pdf(agreement_ctx(title="运输车队结对共建协议🚚"))
    assert "运输车队结对共建协议🚚" in pdftotext(pdf)
    names = [f["name"] for f in embedded_fonts(pdf)]
    assert any("Emoji" in name for name in names), names


def test_user_text_is_escaped_and_shown_as_text():
    hostile = agreement_ctx(
        parties=[
            {"name": "<script>alert(1)</script>党支部", "secretary_name": "张三", "liaisons": []},
            {"name": '<img src="http://example.com/x.png">', "secretary_name": "李四", "liaisons": []},
        ],
        purpose='<img src="file:///etc/passwd"> <link rel="stylesheet" href="file:///etc/passwd">',
    )
    html = agreement_html(hostile)
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<img src="http://example.com' not in html and '<img src="file:' not in html
    text = squash(pdftotext(render_agreement_pdf(hostile)[0]))
    assert "<script>alert(1)</script>党支部" in text
    assert '<imgsrc="http://example.com/x.png">' in text
    assert '<imgsrc="file:///etc/passwd">' in text


def test_agreement_needs_two_parties():
    with pytest.raises(ValueError):
        agreement_html(agreement_ctx(parties=[{"name": "甲", "secretary_name": "张三"}]))


@pytest.fixture
def static_tree(tmp_path):
    static = tmp_path / "static"
    (static / "img").mkdir(parents=True)
    (static / "img" / "dot.svg").write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
    )
    Image.new("RGB", (4, 4), "red").save(static / "img" / "dot.png")
    (tmp_path / "secret.txt").write_text("top secret")
    (static / "img" / "link.svg").symlink_to(tmp_path / "secret.txt")
    return static


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/x.png",
        "https://example.com/x.png",
        "ftp://example.com/x.png",
        "file:///etc/passwd",
        "file://otherhost/etc/passwd",
        "//example.com/x.png",
        "gopher://example.com/",
    ],
)
def test_fetcher_refuses_network_and_outside_files(static_tree, url):
    fetcher = static_url_fetcher(static_tree)
    with pytest.raises(ResourceRefused):
        fetcher.fetch(url)
    assert fetcher.refused == [url]


def test_fetcher_refuses_dot_dot_and_symlink_escapes(static_tree):
    fetcher = static_url_fetcher(static_tree)
    for url in (
        static_tree.as_uri() + "/../secret.txt",
        static_tree.as_uri() + "/img/%2e%2e/%2e%2e/secret.txt",
        static_tree.as_uri() + "/img/link.svg",
    ):
        with pytest.raises(ResourceRefused):
            fetcher.fetch(url)


def test_fetcher_serves_static_files_and_data_uris(static_tree):
    fetcher = static_url_fetcher(static_tree)
    svg = fetcher.fetch(static_tree.as_uri() + "/img/dot.svg")
    assert b"<rect" in svg.read() and svg.content_type == "image/svg+xml"
    svg.close()
    data = fetcher.fetch("data:text/plain;base64,5YWa5bu6")
    assert data.read().decode() == "党建"
    data.close()


def test_renderer_skips_refused_resources_and_loads_static_ones(static_tree, caplog):
    html = (
        '<html><body><p>正文</p>'
        '<img src="http://example.com/x.png"><img src="file:///etc/passwd">'
        '<link rel="stylesheet" href="https://example.com/evil.css">'
        '<img src="img/dot.png"></body></html>'
    )
    with caplog.at_level(logging.ERROR, logger="weasyprint"):
        pdf = render_pdf(html, static_folder=static_tree)
    refused = [r.getMessage() for r in caplog.records if "ResourceRefused" in r.getMessage()]
    assert len(refused) == 3, refused
    assert "正文" in pdftotext(pdf)
    listing = subprocess.run(["pdfimages", "-list", "-"], input=pdf, capture_output=True, check=True).stdout
    rows = listing.decode().splitlines()[2:]  # after the two header lines
    assert len(rows) == 1 and rows[0].split()[3:5] == ["4", "4"]  # the 4×4 static PNG, nothing else
