"""The signed agreement PDF as the app produces it: verified by pyHanko and by poppler's pdfsig, a one-byte
change caught by the public verification page, fonts that really cover the Chinese text, and a page that
looks like a document."""
from __future__ import annotations

import io
import re
import subprocess
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from agreements import operations as ops
from agreements.models import AgreementVersion
from agreements.signatures import archive_path, platform_pki
from agreements.signing import verify_pdf
from coop.categories import CATEGORY_BY_CODE
from coop.extensions import db
from coop.pdf import HEI_FAMILY, SONG_FAMILY, embedded_fonts, missing_glyphs, render_pdf
from tests.conftest import DEFAULT_PASSWORD

pytestmark = pytest.mark.usefixtures("fast_keys")


TITLE = "营销服务党支部、电力学院团支部、建北街道党工委共建协议"


@pytest.fixture
def three_party(signed_agreement):
    """A three-party agreement, fully signed and sealed, with its files and rows (for the pages)."""
    s = signed_agreement(n_parties=3, title=TITLE)
    return _with_files(s)


@pytest.fixture(scope="module")
def signed_files(_schema, database_url, instance_dir, tmp_path_factory):
    """The same agreement signed once for the whole module: bytes only (rows are wiped after building)."""
    from app import create_app
    from tests.conftest import _wipe_all_tables
    from tests.fixtures.agreements import build_signed_agreement, use_fast_keys

    tmp = tmp_path_factory.mktemp("agreement-files")
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test-secret",
                      "ARCHIVE_DIR": str(tmp / "archive"), "BASE_URL": "http://coop.test"},
                     instance_path=str(instance_dir))
    with pytest.MonkeyPatch.context() as mp, app.app_context():
        use_fast_keys(mp)
        try:
            s = _with_files(build_signed_agreement(n_parties=3, title=TITLE))
            return SimpleNamespace(
                final=s.final, certificate=s.certificate, content=dict(s.version.content),
                party_names=[p.org.name for p in s.parties], signature_boxes=list(s.version.signature_boxes),
                unsigned=next(archive_path(s.version.pdf_path).parent.glob("v1-0-unsigned-*.pdf")).read_bytes(),
                pki=platform_pki(),
            )
        finally:
            db.session.rollback()
            _wipe_all_tables()
            db.session.remove()
            db.engine.dispose()


def _with_files(s):
    v = s.version
    return SimpleNamespace(**vars(s), final=archive_path(v.pdf_path).read_bytes(),
                           certificate=archive_path(v.certificate_path).read_bytes())


def pdf_text(data: bytes) -> str:
    return subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True).stdout.decode()


def test_pyhanko_verifies_every_signature_and_the_seal(signed_files):
    result = verify_pdf(signed_files.final, pki=signed_files.pki)
    assert result.error is None and result.is_fully_valid and result.sealed
    names = [s.signer_name for s in result.signatures]
    assert names[:3] == ["李红梅", "吴晓燕", "何雨桐"] and result.signatures[-1].is_platform_seal
    assert [s.organization for s in result.signatures[:3]] == signed_files.party_names
    assert all(s.intact and s.valid and s.trusted for s in result.signatures)
    assert not any(s.covers_whole_document for s in result.signatures[:-1])  # later revisions follow
    cert = verify_pdf(signed_files.certificate, pki=signed_files.pki)
    assert cert.is_fully_valid and cert.sealed


def test_pdfsig_agrees(signed_files, tmp_path):
    path = tmp_path / "final.pdf"
    path.write_bytes(signed_files.final)
    out = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout
    blocks = re.split(r"^Signature #\d+:", out, flags=re.M)[1:]
    assert len(blocks) == 4  # three parties and the platform seal
    for block in blocks:
        assert "Signature Validation: Signature is Valid." in block
        assert "ETSI.CAdES.detached" in block
    assert "Total document signed" in blocks[-1]
    assert all("Not total document signed" in b for b in blocks[:-1])
    assert "何雨桐" in blocks[2] and "party-3" in blocks[2]


def test_fonts_are_embedded_subsets_that_cover_the_chinese_text(signed_files):
    fonts = embedded_fonts(signed_files.final)
    assert fonts and all(f["embedded"] and f["subset"] for f in fonts)
    assert any("Noto" in f["name"] and "Serif" in f["name"] for f in fonts)  # the Song face of the body
    text = pdf_text(signed_files.final)
    content = signed_files.content
    # What was typed comes back out of the PDF: every glyph is there and maps to its character.
    expected = [content["title"], *(p["name"] for p in content["parties"]), "以党建共建促进业务融合",
                *(CATEGORY_BY_CODE[c["category"]].name for c in content["commitments"]), "各方建立联席会议制度"]
    flat = re.sub(r"\s+", "", text)
    for phrase in expected:
        assert re.sub(r"\s+", "", phrase) in flat, phrase
    chinese = {ch for ch in flat if "\u4e00" <= ch <= "\u9fff"}
    assert len(chinese) > 100
    assert missing_glyphs("".join(chinese), SONG_FAMILY) == set()
    assert missing_glyphs("".join(chinese), HEI_FAMILY) == set()
    assert "\ufffd" not in text


def test_final_pdf_renders_as_a_document(signed_files, tmp_path):
    from PIL import Image

    path = tmp_path / "final.pdf"
    path.write_bytes(signed_files.final)
    subprocess.run(["pdftoppm", "-png", "-r", "40", str(path), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2
    last = Image.open(pages[-1]).convert("RGB")
    # The signature stamps are drawn in seal red somewhere on the last page.
    reds = sum(1 for r, g, b in last.get_flattened_data() if r > 150 and g < 90 and b < 90)
    assert reds > 50


def test_verification_page_accepts_the_final_file_and_catches_a_one_byte_change(client, three_party):
    resp = client.post("/verify", data={"file": (io.BytesIO(three_party.final), "协议.pdf")},
                       content_type="multipart/form-data")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "验证通过" in page
    for name in ("李红梅", "吴晓燕", "何雨桐", "营销服务党支部、电力学院团支部"):
        assert name in page

    tampered = bytearray(three_party.final)
    # A character inside the first revision's page content (well before any signature dictionary).
    tampered[len(tampered) // 5] ^= 0x01
    resp = client.post("/verify", data={"file": (io.BytesIO(bytes(tampered)), "协议.pdf")},
                       content_type="multipart/form-data")
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "不是本平台签发的有效协议" in page and "被改动" in page and "验证通过" not in page

    resp = client.post("/verify", data={"file": (io.BytesIO(three_party.certificate), "证明.pdf")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200 and "签署完成证明" in resp.get_data(as_text=True)


def test_verification_page_refuses_a_file_signed_by_another_ca(client, signed_files, tmp_path):
    from agreements.pki import PlatformPKI
    from agreements.signing import seal_pdf, sign_pdf

    other = PlatformPKI(tmp_path / "elsewhere", passphrase="another-platform")
    other.ensure()
    creds = other.issue_signer("李红梅", "运维检修党支部", "Passw0rd!", user_ref="user-1")
    unsigned = signed_files.unsigned
    page, *box = signed_files.signature_boxes[0]
    forged = seal_pdf(sign_pdf(unsigned, creds, "Passw0rd!", pki=other, field_name="party-1", page=page,
                               box=tuple(box), appearance_lines=["李红梅（数字签名）"], reason="签署", location="别处"),
                      pki=other)
    assert verify_pdf(forged, pki=other).is_fully_valid  # valid on its own terms…
    resp = client.post("/verify", data={"file": (io.BytesIO(forged), "x.pdf")}, content_type="multipart/form-data")
    page_text = resp.get_data(as_text=True)
    assert resp.status_code == 422  # …but not issued by this platform
    assert "不是本平台签发的有效协议" in page_text and "签名证书不是本平台签发的" in page_text


def test_verification_page_refuses_foreign_unsigned_intermediate_and_non_pdf(client, app, three_party):
    def upload(data):
        return client.post("/verify", data={"file": (io.BytesIO(data), "x.pdf")}, content_type="multipart/form-data")

    foreign = render_pdf("<h1>结对共建协议</h1><p>甲方、乙方签字。</p>")
    resp = upload(foreign)
    assert resp.status_code == 422 and "不是本平台签发的有效协议" in resp.get_data(as_text=True)

    first_signed = archive_path(db.session.execute(
        sa.select(AgreementVersion.pdf_path)).scalar_one()).parent  # archive folder of the agreement
    intermediates = [p for p in first_signed.glob("v1-1-*.pdf")]
    resp = upload(intermediates[0].read_bytes())
    assert resp.status_code == 422
    page = resp.get_data(as_text=True)
    assert "不是本平台签发的有效协议" in page and "签署流程尚未完成" in page

    resp = upload(b"GIF89a not a pdf at all")
    assert resp.status_code == 422 and "不是 PDF" in resp.get_data(as_text=True)

    # No file, or one too large to check: "not checked", not a verdict on a document.
    resp = client.post("/verify", data={}, content_type="multipart/form-data")
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "请选择要验证的 PDF 文件" in page and "未能验证" in page
    assert "不是本平台签发的有效协议" not in page
    app.config["AGREEMENT_VERIFY_MAX_BYTES"] = 1024
    resp = upload(three_party.final)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 422 and "文件超过" in page and "未能验证" in page


def test_qr_code_page_shows_the_public_summary_only(client, three_party):
    v = three_party.version
    assert v.verify_code in pdf_text(three_party.final)
    page = client.get(f"/verify/{v.verify_code}").get_data(as_text=True)
    assert "本平台签发的协议，已由各方完整签署" in page
    assert v.final_sha256 in page and "何雨桐" in page and three_party.parties[2].org.name in page
    for private in ("10.0.0.1", "联络员", "以党建共建促进业务融合", "书记送课上门"):
        assert private not in page, private
    # Typed codes are forgiving; unknown ones are simply not found.
    resp = client.get(f"/verify/{v.verify_code.lower().replace('-', '')}")
    assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/verify/{v.verify_code}")
    assert client.get("/verify/ZZZZ-ZZZZ-ZZZZ").status_code == 404
    assert client.get("/verify/not-a-code").status_code == 404
    assert client.get("/verify/platform-root.pem").data.startswith(b"-----BEGIN CERTIFICATE-----")


def test_signing_version_pdf_is_downloadable_while_signing(client, login, make_party, agreement_content):
    a, b = make_party("运维检修党支部", secretary_name="李红梅"), make_party("石家庄市疾病预防控制中心第一党支部", secretary_name="吴晓燕")
    agreement = ops.create_draft(agreement_content(a.org, b.org), actor=a.secretary)
    db.session.commit()
    login(client, a.liaison)
    preview = client.get(f"/agreements/{agreement.id}/pdf")
    assert preview.status_code == 200 and preview.data.startswith(b"%PDF-")
    ops.submit_for_signing(agreement, actor=a.secretary)
    ops.sign_agreement(agreement, actor=b.secretary, password=DEFAULT_PASSWORD, ip=None)
    db.session.commit()
    half = client.get(f"/agreements/{agreement.id}/pdf").data
    result = verify_pdf(half, pki=platform_pki())
    assert [s.signer_name for s in result.signatures] == ["吴晓燕"] and not result.sealed
