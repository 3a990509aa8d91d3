"""Report PDFs: the text pdftotext reads, embedded subset CJK fonts, glyph coverage, photos, margins."""
import re
import subprocess
from datetime import date, datetime, timezone

import pytest

from coop.pdf import HEI_FAMILY, SONG_FAMILY, embedded_fonts, missing_glyphs
from coop.reports.pdf import render_report, report_html, thumbnail_data_uri
from coop.reports.queries import agreement_report_data, committee_report_data, organization_report_data

MADE = datetime(2026, 11, 1, 2, 0, tzinfo=timezone.utc)


def pdftotext(pdf: bytes, layout: bool = True) -> str:
    """The PDF's text: laid out as on the page (rows of a table on one line), or in reading order."""
    args = ["pdftotext", *(["-layout"] if layout else []), "-", "-"]
    return subprocess.run(args, input=pdf, capture_output=True, check=True).stdout.decode("utf-8")


def _plain_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", re.sub(r"<(style|svg)[\s\S]*?</\1>", " ", html))


@pytest.fixture
def agreement_pdf(report_month, tmp_path):
    data = agreement_report_data(report_month.agreement, 2026, 10)
    rendered = render_report(data, version=1, generated_at=MADE)
    (tmp_path / "agreement.pdf").write_bytes(rendered.pdf)
    return data, rendered


def test_agreement_pdf_text_shows_figures_and_chinese_names(agreement_pdf):
    data, rendered = agreement_pdf
    text = pdftotext(rendered.pdf)
    flat = re.sub(r"\s+", " ", text)
    squeezed = re.sub(r"\s+", "", pdftotext(rendered.pdf, layout=False))  # cells wrap long text over lines
    for needle in ("运维检修党支部", "石家庄市疾病预防控制中心第一党支部", "张伟", "郑凯", "八联事项进度",
                   "联合主题党日：重温入党誓词", "我方未参加此次活动", "书记送课上门（计划）", "近12个月开展情况",
                   "运维检修党支部与疾控中心第一党支部党建结对共建协议"):
        assert needle in squeezed, needle
    # The category table: name, held this month, confirmed, year to date, target, expected, status.
    assert re.search(r"党员联学 2 1 3 4 3 .*○ 进度正常", flat)
    assert re.search(r"组织联合 1 1 8 12 9 .*▲ 进度滞后", flat)
    assert re.search(r"活动联办 1 0 0 2 1 .*× 尚未开展", flat)
    assert re.search(r"人才联育 1 1 1 — — .*✓ 已完成", flat)
    # Margins: title on every page, page numbers "第 1 页 / 共 N 页", version line.
    pages = text.split("\f")
    pages = [p for p in pages if p.strip()]
    assert rendered.page_count == len(pages) >= 2
    for i, page in enumerate(pages, 1):
        assert re.search(rf"第 ?{i} ?页 ?/ ?共 ?{len(pages)} ?页", page)
        assert "2026年10月" in page and "运维检修党支部与疾控中心" in page
    assert "第1版 · 生成于2026年11月1日 10:00" in text  # 02:00 UTC is 10:00 in Shanghai


def test_agreement_pdf_embeds_subset_cjk_fonts_covering_every_character(agreement_pdf):
    data, rendered = agreement_pdf
    fonts = embedded_fonts(rendered.pdf)
    assert fonts and all(f["embedded"] and f["subset"] for f in fonts)
    # Two faces only (each CJK subset weighs 100+ KB): Song bold for titles, Hei regular for the rest.
    assert sorted(f["name"].split("+", 1)[1] for f in fonts) == ["Noto-Sans-CJK-SC", "Noto-Serif-CJK-SC-Bold"]
    text = _plain_text(rendered.html)
    assert missing_glyphs(text, HEI_FAMILY) == set()
    assert missing_glyphs(text, SONG_FAMILY) == set()
    assert len(rendered.pdf) < 400_000  # subset fonts: the whole CJK faces would weigh megabytes


def test_agreement_pdf_embeds_thumbnails_and_an_svg_chart(agreement_pdf, report_month):
    data, rendered = agreement_pdf
    assert rendered.html.count('src="data:image/jpeg;base64,') == 2
    assert '<svg xmlns="http://www.w3.org/2000/svg" class="chart"' in rendered.html
    out = subprocess.run(["pdfimages", "-list", "-", ], input=rendered.pdf, capture_output=True)
    if out.returncode == 0:  # pdfimages reads stdin only in newer poppler versions
        assert out.stdout.count(b"\n") >= 4


def test_thumbnails_outside_upload_dir_are_refused(app, tmp_path):
    upload = tmp_path / "up"
    upload.mkdir()
    (tmp_path / "secret.jpg").write_bytes(b"\xff\xd8\xff\xe0 secret")
    (upload / "ok.jpg").write_bytes(b"\xff\xd8\xff\xe0 ok")
    (upload / "fake.jpg").write_bytes(b"<svg onload=alert(1)>")
    assert thumbnail_data_uri(upload, "ok.jpg").startswith("data:image/jpeg;base64,")
    assert thumbnail_data_uri(upload, "../secret.jpg") is None
    assert thumbnail_data_uri(upload, str(tmp_path / "secret.jpg")) is None
    assert thumbnail_data_uri(upload, "fake.jpg") is None
    assert thumbnail_data_uri(upload, "missing.jpg") is None


def test_user_text_is_escaped_in_the_report(report_month, report_activity):
    from datetime import date

    report_activity(report_month.agreement, "culture", date(2026, 10, 3), title='<img src="file:///etc/passwd">文化长廊')
    html = report_html(agreement_report_data(report_month.agreement, 2026, 10), version=1, generated_at=MADE)
    assert '<img src="file:///etc/passwd">' not in html and "&lt;img src=" in html


def test_committee_and_organization_pdfs(report_month, tmp_path):
    committee = render_report(committee_report_data(report_month.committee_org, 2026, 10), version=1, generated_at=MADE)
    (tmp_path / "committee.pdf").write_bytes(committee.pdf)
    text = pdftotext(committee.pdf)
    flat = re.sub(r"\s+", " ", text)
    assert "华夏电力公司党委2026年10月党建共建工作月度报告" in re.sub(r"\s+", "", text)
    for needle in ( "结对 × 八联进度矩阵", "停滞的结对", "单方推动的结对",
                   "本月暂无党委标记的典型案例", "附录：各结对情况一览", "营销服务党支部、华北能源大学电力学院团支部",
                   "已72天无活动", "图例"):
        assert needle in flat, needle
    assert re.search(r"党员联学 2 1 0 ↑ 增2 2", flat)
    assert missing_glyphs(_plain_text(committee.html), HEI_FAMILY) == set()

    org = render_report(organization_report_data(report_month.ops, 2026, 10), version=1, generated_at=MADE)
    (tmp_path / "organization.pdf").write_bytes(org.pdf)
    text = pdftotext(org.pdf)
    assert "运维检修党支部2026年10月党建共建月度报告" in re.sub(r"\s+", "", text)
    assert "各协议进度" in text and "疾控中心第一党支部" in text


def test_committee_pdf_counts_activities_outside_the_commitments_apart(report_month, tmp_path):
    """人才联育 has no commitment in either pairing but one activity in October: 约定外开展, not ✓ 已完成."""
    data = committee_report_data(report_month.committee_org, 2026, 10)
    talent = next(t for t in data.category_totals if t.code == "talent")
    assert (talent.committed, talent.status_counts["done"], talent.status_counts["extra"]) == (0, 0, 1)
    rendered = render_report(data, version=1, generated_at=MADE)
    (tmp_path / "committee.pdf").write_bytes(rendered.pdf)
    flat = re.sub(r"\s+", " ", pdftotext(rendered.pdf))
    assert "+ 约定外开展" in flat
    assert re.search(r"人才联育 1 1 0 ↑ 增1 0 0 0 0 0 1", flat)
    squeezed = re.sub(r"\s+", "", pdftotext(rendered.pdf, layout=False))
    assert "不设下限" in squeezed and "有活动为“约定外开展”" in squeezed  # the stated rule is the code's


def test_agreement_pdf_before_the_term_says_it_has_not_started(report_month, make_agreement, tmp_path):
    later = make_agreement(parties=[report_month.ops, report_month.cdc], commitments={"study": 4, "event": 2},
                           starts_on=date(2027, 1, 1), ends_on=date(2027, 12, 31), title="明年起的共建协议")
    data = agreement_report_data(later, 2026, 11)
    assert data.summary.overall_status == "not_started"
    assert {c.code: c.status for c in data.categories if c.commitment} == {"study": "not_started", "event": "not_started"}
    rendered = render_report(data, version=1, generated_at=MADE)
    (tmp_path / "not-started.pdf").write_bytes(rendered.pdf)
    squeezed = re.sub(r"\s+", "", pdftotext(rendered.pdf, layout=False))
    assert "协议期限自2027年1月1日开始，本月尚未进入协议期限" in squeezed
    # The overall figure, the two committed categories and the legend; "× 尚未开展" only in the legend.
    assert squeezed.count("◇期限未开始") == 4 and squeezed.count("×尚未开展") == 1
