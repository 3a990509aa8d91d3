"""Signing an agreement: the platform CA, two parties signing one after the other, the platform seal,
and verification that refuses anything that is not exactly what was signed — without raising."""
from __future__ import annotations

import hashlib
import re
import subprocess
from datetime import date, datetime, timezone

import pytest
from asn1crypto import cms, keys as asn1_keys, pem as asn1_pem
from cryptography.hazmat.primitives import serialization
from PIL import Image

from agreements.document import render_agreement_pdf
from agreements.pki import (
    KDF_ITERATIONS,
    PlatformPKI,
    WrongCaPassphrase,
    WrongSignerPassword,
    derive_ca_passphrase,
    load_private_key,
    rewrap_signer_key,
)
from agreements.signing import (
    SigningError,
    completion_certificate_pdf,
    default_appearance_lines,
    seal_pdf,
    sign_pdf,
    verify_pdf,
)
from coop.pdf import HEI_FAMILY, embedded_fonts, missing_glyphs, render_pdf

PASSPHRASE = derive_ca_passphrase("test-secret-key")
SIGNED_AT = datetime(2026, 11, 22, 6, 30, tzinfo=timezone.utc)  # 14:30 in Beijing
PARTIES = [
    ("张建国", "中国某某集团有限公司第一党支部", "甲方口令-1"),
    ("李晓红", "某某市某某区人社局机关党支部", "乙方口令-2"),
]


def small_agreement() -> dict:
    return {
        "title": "党建结对共建协议",
        "number": "共建〔2026〕5号",
        "parties": [
            {"name": org, "kind_label": "党支部", "secretary_name": name, "liaisons": ["王芳"]}
            for name, org, _pw in PARTIES
        ],
        "starts_on": date(2026, 1, 1),
        "ends_on": date(2026, 12, 31),
        "purpose": "组织共建、资源共享、优势互补、共同提高。",
        "commitments": [{"code": "study", "name": "党员联学", "count_per_year": 4, "text": "书记送课上门。"}],
        "clauses": ["本协议以电子签名方式签署。"],
        "verify_url": "https://djgj.example.cn/v/ABCD-1234",
        "verify_code": "ABCD-1234",
        "version": "1",
    }


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    pki = PlatformPKI(tmp_path_factory.mktemp("instance") / "pki", passphrase=PASSPHRASE)
    pki.ensure()
    return pki


@pytest.fixture(scope="module")
def signers(pki):
    return [pki.issue_signer(name, org, pw, user_ref=f"user:{i}") for i, (name, org, pw) in enumerate(PARTIES)]


@pytest.fixture(scope="module")
def flow(pki, signers):
    """Render, sign by 甲方 then 乙方, seal; keep every stage."""
    pdf, boxes = render_agreement_pdf(small_agreement())
    stages = {"unsigned": pdf, "boxes": boxes}
    for i, (creds, box) in enumerate(zip(signers, boxes)):
        pdf = sign_pdf(
            pdf, creds, PARTIES[i][2], pki=pki, field_name=f"party_{i}", page=box.page, box=box.box,
            appearance_lines=default_appearance_lines(creds.common_name, creds.organization, SIGNED_AT),
            reason="签署结对共建协议", location="党建共建平台",
        )
        stages[f"after_{i}"] = pdf
    stages["sealed"] = seal_pdf(pdf, pki=pki)
    return stages


def sign_as(pki, creds, password, pdf, box, field="party_0"):
    return sign_pdf(
        pdf, creds, password, pki=pki, field_name=field, page=box.page, box=box.box,
        appearance_lines=["签名"], reason="测试", location="测试",
    )


# --- the certificate authority --------------------------------------------------------------------


def test_pki_files_are_private_and_keys_encrypted_with_a_strong_kdf(pki):
    assert oct(pki.folder.stat().st_mode & 0o777) == "0o700"
    names = {p.name for p in pki.folder.iterdir() if not p.name.startswith(".")}
    assert names == {"root-ca.pem", "root-ca.key", "seal.pem", "seal.key"}
    for path in pki.folder.iterdir():
        assert path.stat().st_mode & 0o077 == 0, path
    for key_file in ("root-ca.key", "seal.key"):
        _type, _headers, der = asn1_pem.unarmor((pki.folder / key_file).read_bytes())
        params = asn1_keys.EncryptedPrivateKeyInfo.load(der)["encryption_algorithm"]["parameters"]
        assert params["key_derivation_func"]["parameters"]["iteration_count"].native == KDF_ITERATIONS
        assert params["encryption_scheme"]["algorithm"].native == "aes256_cbc"


def test_ensure_keeps_the_existing_root_and_a_wrong_passphrase_cannot_issue(pki):
    again = PlatformPKI(pki.folder, passphrase=PASSPHRASE)
    again.ensure()
    assert again.root_fingerprint == pki.root_fingerprint
    with pytest.raises(WrongCaPassphrase):
        PlatformPKI(pki.folder, passphrase=derive_ca_passphrase("another-secret")).issue_signer(
            "张三", "某党支部", "口令", user_ref="user:9"
        )


def test_signer_key_opens_only_with_its_password_and_rewraps(signers):
    creds = signers[0]
    assert creds.key_pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert creds.not_after > datetime.now(timezone.utc)
    key = load_private_key(creds.key_pem, PARTIES[0][2])
    for wrong in ("wrong", "", PARTIES[1][2]):
        with pytest.raises(WrongSignerPassword):
            load_private_key(creds.key_pem, wrong)
    rewrapped = rewrap_signer_key(creds.key_pem, PARTIES[0][2], "新口令")
    assert load_private_key(rewrapped, "新口令").public_key().public_numbers() == key.public_key().public_numbers()
    with pytest.raises(WrongSignerPassword):
        load_private_key(rewrapped, PARTIES[0][2])
    with pytest.raises(WrongSignerPassword):
        rewrap_signer_key(creds.key_pem, "wrong", "新口令")


# --- signing and verifying ------------------------------------------------------------------------


def test_two_signatures_then_seal_verify_intact_valid_trusted(flow, pki):
    result = verify_pdf(flow["sealed"], pki=pki)
    assert result.is_fully_valid and result.sealed, result.summary
    assert [s.field_name for s in result.signatures] == ["party_0", "party_1", "platform_seal"]
    assert [s.signer_name for s in result.signatures[:2]] == ["张建国", "李晓红"]
    assert result.signatures[1].organization == "某某市某某区人社局机关党支部"
    assert all(s.intact and s.valid and s.trusted and s.container_clean for s in result.signatures)
    assert [s.covers_whole_document for s in result.signatures] == [False, False, True]
    assert [s.modification_level for s in result.signatures] == ["FORM_FILLING", "FORM_FILLING", "NONE"]
    assert result.summary.startswith("验证通过") and "张建国" in result.summary
    assert result.document_sha256 == hashlib.sha256(flow["sealed"]).hexdigest()


def test_signatures_are_incremental_updates(flow, pki):
    assert flow["after_0"].startswith(flow["unsigned"])
    assert flow["after_1"].startswith(flow["after_0"])
    assert flow["sealed"].startswith(flow["after_1"])
    partial = verify_pdf(flow["after_0"], pki=pki)
    assert partial.is_fully_valid and not partial.sealed and "尚未加盖平台签章" in partial.summary


def test_pdfsig_accepts_every_signature_and_the_seal_covers_the_file(flow, tmp_path):
    path = tmp_path / "signed.pdf"
    path.write_bytes(flow["sealed"])
    out = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True).stdout
    blocks = re.split(r"^Signature #\d+:", out, flags=re.M)[1:]
    assert len(blocks) == 3
    assert all("Signature Validation: Signature is Valid." in b for b in blocks)
    assert all("ETSI.CAdES.detached" in b for b in blocks)
    assert "Not total document signed" in blocks[0] and "Not total document signed" in blocks[1]
    assert "Total document signed" in blocks[2] and "Not total" not in blocks[2]
    assert "张建国" in blocks[0] and "李晓红" in blocks[1]


def _contents_ranges(pdf: bytes) -> list[tuple[int, int]]:
    """Byte offsets of each signature's /Contents hex string (the part no digest covers)."""
    ranges = []
    for m in re.finditer(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf):
        start, length, second = int(m[1]), int(m[2]), int(m[3])
        ranges.append((start + length, second))
    return ranges


def _uncovered_positions(pdf: bytes, start: int, end: int, root_der: bytes) -> set[int]:
    """Offsets inside one /Contents hex string worth tampering with: every kind of field a
    validator might skip (versions, algorithm sets, embedded certificates, padding)."""
    hex_body = pdf[start + 1:end - 1]
    padded = bytes.fromhex(hex_body.decode())
    # The CMS blob's own DER header says how long it is; stripping the zero padding instead
    # would also strip a signature that happens to end in 0x00 (one run in 256).
    assert padded[0] == 0x30 and padded[1] == 0x82, "expected a SEQUENCE with a two-byte length"
    der = padded[:4 + int.from_bytes(padded[2:4], "big")]
    signed_data = cms.ContentInfo.load(der)["content"]
    signer_info_at = der.find(signed_data["signer_infos"][0].dump())
    root_at = der.find(root_der)
    unused_bits_at = root_at + root_der.rfind(b"\x03\x82\x01\x81\x00") + 4  # root signature BIT STRING
    byte_offsets = {
        1,  # ContentInfo length
        25,  # SignedData version
        30, 33,  # digestAlgorithms (sha256 OID)
        signer_info_at + 6,  # SignerInfo version
        root_at + 40,  # inside the embedded root certificate
        unused_bits_at,
        len(der) // 2,
        len(der) - 3,  # signature value
    }
    positions = {start + 1 + 2 * b + nibble for b in byte_offsets for nibble in (0, 1)}
    positions |= {start + 1 + 2 * len(der) + 6, end - 2}  # zero padding after the CMS blob
    return positions


def test_any_one_byte_change_breaks_verification(flow, pki):
    pdf = flow["sealed"]
    root_der = pki.root_certificate.public_bytes(serialization.Encoding.DER)
    first, _second, seal = _contents_ranges(pdf)
    positions = set(range(0, len(pdf), len(pdf) // 24))  # spread over every revision
    positions |= _uncovered_positions(pdf, *first, root_der) | _uncovered_positions(pdf, *seal, root_der)
    positions |= {len(pdf) - 20, len(pdf) - 2}  # trailer / %%EOF
    for pos in sorted(positions):
        tampered = bytearray(pdf)
        tampered[pos] ^= 0x01
        result = verify_pdf(bytes(tampered), pki=pki)
        assert not result.is_fully_valid, f"byte {pos} changed and still valid"
        assert not result.summary.startswith("验证通过"), result.summary


def test_appended_bytes_after_the_seal_are_detected(flow, pki):
    result = verify_pdf(flow["sealed"] + b"\n% extra\n", pki=pki)
    assert not result.is_fully_valid


def test_a_foreign_ca_is_not_trusted(flow, tmp_path, pki):
    foreign = PlatformPKI(tmp_path / "foreign", org_name="别的平台", passphrase="foreign")
    foreign.ensure()
    creds = foreign.issue_signer("张建国", "中国某某集团有限公司第一党支部", "口令", user_ref="user:0")
    box = flow["boxes"][0]
    signed = sign_as(foreign, creds, "口令", flow["unsigned"], box)
    assert verify_pdf(signed, pki=foreign).is_fully_valid  # fine for *their* root…
    result = verify_pdf(signed, pki=pki)  # …but not ours
    assert not result.is_fully_valid
    assert result.signatures[0].intact and not result.signatures[0].trusted
    assert "非本平台" in result.summary
    # A foreign certificate cannot be used to sign through our PKI either.
    with pytest.raises(SigningError):
        sign_as(pki, creds, "口令", flow["unsigned"], box)


def test_unsigned_truncated_and_garbage_input_are_results_not_exceptions(flow, pki):
    unsigned = verify_pdf(flow["unsigned"], pki=pki)
    assert not unsigned.is_fully_valid and unsigned.error is None and "不含电子签名" in unsigned.summary
    plain = verify_pdf(render_pdf("<p>普通文件</p>"), pki=pki)
    assert not plain.is_fully_valid and plain.signatures == []
    for junk in (b"", b"garbage", b"%PDF-1.7\n" + b"\x00" * 100, flow["sealed"][: len(flow["sealed"]) // 2]):
        result = verify_pdf(junk, pki=pki)
        assert not result.is_fully_valid
        assert result.summary and result.document_sha256


def test_wrong_password_and_double_signing_are_refused(flow, signers, pki):
    box = flow["boxes"][0]
    with pytest.raises(WrongSignerPassword):
        sign_as(pki, signers[0], "not-the-password", flow["unsigned"], box)
    with pytest.raises(SigningError):
        sign_as(pki, signers[0], PARTIES[0][2], flow["after_0"], box, field="party_0")
    with pytest.raises(SigningError):
        seal_pdf(flow["sealed"], pki=pki)


def test_visible_signature_is_drawn_in_the_reserved_box_with_cjk_glyphs(flow, tmp_path):
    pdf = flow["sealed"]
    box = flow["boxes"][0]
    # The appearance text uses a subset of Noto Sans CJK SC embedded by pyHanko.
    lines = default_appearance_lines("张建国", PARTIES[0][1], SIGNED_AT)
    assert lines[-1] == "2026年11月22日"
    assert missing_glyphs("".join(lines), HEI_FAMILY) == set()
    fonts = embedded_fonts(pdf)
    assert len(fonts) > len(embedded_fonts(flow["unsigned"]))
    assert all(f["embedded"] for f in fonts), fonts

    dpi = 72
    subprocess.run(
        ["pdftoppm", "-png", "-r", str(dpi), "-f", str(box.page + 1), "-l", str(box.page + 1),
         "-singlefile", "-", str(tmp_path / "page")],
        input=pdf, check=True,
    )
    image = Image.open(tmp_path / "page.png").convert("RGB")
    height = image.height

    def red_pixels(x1, y1, x2, y2):
        crop = image.crop((int(x1), int(height - y2), int(x2), int(height - y1)))
        data = crop.tobytes()
        return sum(1 for i in range(0, len(data), 3) if data[i] > 150 and data[i + 1] < 90 and data[i + 2] < 90)

    for b in flow["boxes"]:
        x1, y1, x2, y2 = b.box
        inside = red_pixels(x1 + 3, y1 + 3, x2 - 3, y2 - 3)  # the text
        frame = red_pixels(x1 - 1, y1 - 1, x2 + 1, y1 + 2)  # the bottom edge of the frame
        assert inside > 150 and frame > 100, (inside, frame)
    # Nothing red outside the two boxes.
    total = red_pixels(0, 0, image.width, height)
    boxed = sum(red_pixels(b.box[0] - 2, b.box[1] - 2, b.box[2] + 2, b.box[3] + 2) for b in flow["boxes"])
    assert total == boxed


def test_completion_certificate_is_one_sealed_page_listing_every_event(flow, signers, pki):
    events = [
        {
            "role": f"{'甲乙'[i]}方书记",
            "signer_name": c.common_name,
            "organization": c.organization,
            "signed_at": SIGNED_AT,
            "ip": f"10.0.0.{i + 1}",
            "document_sha256": hashlib.sha256(flow[f"after_{i}"]).hexdigest(),
            "certificate_serial": c.serial,
        }
        for i, c in enumerate(signers)
    ]
    final_hash = hashlib.sha256(flow["sealed"]).hexdigest()
    pdf = completion_certificate_pdf(
        events, agreement_title="党建结对共建协议<b>", document_sha256=final_hash,
        verify_url="https://djgj.example.cn/v/ABCD-1234", pki=pki, agreement_number="共建〔2026〕5号",
    )
    result = verify_pdf(pdf, pki=pki)
    assert result.is_fully_valid and result.sealed
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True).stdout.decode()
    assert text.count("\f") == 1  # one page
    flat = re.sub(r"\s+", "", text)
    for expected in ("电子签署完成证明", "党建结对共建协议<b>", "张建国", "李晓红", "10.0.0.2",
                     "2026年11月22日14:30:00", final_hash[:16], events[0]["document_sha256"][:16]):
        assert expected in flat, expected



def test_signing_and_verifying_work_inside_a_running_event_loop(flow, signers, pki):
    # pyHanko's sync API calls asyncio.run(); an async worker, or a browser test in the same thread, runs a loop.
    import asyncio

    async def inside():
        signed = sign_as(pki, signers[0], PARTIES[0][2], flow["unsigned"], flow["boxes"][0])
        return verify_pdf(signed, pki=pki)

    result = asyncio.run(inside())
    assert result.signatures and result.signatures[0].intact
