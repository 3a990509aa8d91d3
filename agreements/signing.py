"""PAdES signatures on agreement PDFs with pyHanko: sign, seal, verify, completion certificate.

* :func:`sign_pdf` adds one party's signature as an incremental update (earlier signatures stay
  valid), with a visible appearance drawn into the box the layout reserved for that party.
* :func:`seal_pdf` adds the platform's own signature last, covering the whole file.
* :func:`verify_pdf` checks every signature against *our* root only and never raises on bad input.
* :func:`completion_certificate_pdf` is a one-page, sealed record of who signed when.

Signatures are PAdES B-B (``ETSI.CAdES.detached``, SHA-256, RSA). There is no timestamp authority,
so the signing time is the one the signer's software declared; the platform seal and the audit
log are what vouch for it.

pyHanko draws appearance text with a font it embeds itself. The Noto CJK faces ship as ``.ttc``
collections, which pyHanko's OpenType engine cannot open (it loads a single-face font file), and
a whole face weighs 16 MB. So for every appearance a tiny OpenType font holding just the glyphs of
its text is cut in memory from the system's Noto Sans CJK SC with fontTools and handed to pyHanko:
nothing is cached on disk and nothing large goes into git.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from io import BytesIO
from typing import Protocol
from zoneinfo import ZoneInfo

from asn1crypto import keys as asn1_keys, x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from flask_babel import gettext

from agreements.pki import PlatformPKI, load_private_key
from coop.i18n import N_
from coop.pdf import HEI_FAMILY, font_file, missing_glyphs, pdf_jinja_env, render_pdf

logger = logging.getLogger(__name__)

SHANGHAI = ZoneInfo("Asia/Shanghai")
SEAL_FIELD = "platform_seal"
CERTIFICATE_TEMPLATE = "pdf/completion_certificate.html"
STAMP_COLOUR = (0.72, 0.07, 0.07)  # seal red; still dark enough when printed in grey


class SigningError(RuntimeError):
    """Signing failed; the message is fit to show to a user (Chinese, marked with N_: translate it with
    gettext where it is shown)."""


class SignerKeyMaterial(Protocol):
    """Anything carrying a signer's encrypted key and certificate (SignerCredentials, a model row…)."""

    key_pem: bytes
    cert_pem: bytes


# --- helpers --------------------------------------------------------------------------------------


def outside_event_loop(fn, *args, **kwargs):
    """Call one of pyHanko's synchronous functions from any thread.

    They wrap asyncio.run(), which refuses to start inside a thread that already runs an event loop (an
    async server worker, or a test driving a browser with Playwright's sync API in the same thread). Only
    there, the call runs in a short-lived helper thread; everywhere else it is a plain call.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return fn(*args, **kwargs)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyhanko") as pool:
        return pool.submit(fn, *args, **kwargs).result()



def _beijing_timestamp(value: datetime) -> str:
    """2026年11月22日 14:05:09 in Asia/Shanghai — to the second, as a record of signing should be."""
    local = value.astimezone(SHANGHAI)
    return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M:%S}"


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def _asn1_key(key) -> asn1_keys.PrivateKeyInfo:
    return asn1_keys.PrivateKeyInfo.load(
        key.private_bytes(
            serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _simple_signer(key, cert: x509.Certificate, pki: PlatformPKI):
    from pyhanko.sign.signers import SimpleSigner
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    root = pki.trust_roots()
    return SimpleSigner(
        signing_cert=_asn1_cert(cert),
        signing_key=_asn1_key(key),
        # The chain travels inside the signature so any verifier can build the path to our root.
        cert_registry=SimpleCertificateStore.from_certs(root),
    )


def _check_issued_by_platform(cert: x509.Certificate, pki: PlatformPKI) -> None:
    root = pki.root_certificate
    try:
        cert.verify_directly_issued_by(root)
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise SigningError(N_("签名证书不是本平台签发的，无法用于签署。")) from exc
    now = datetime.now(timezone.utc)
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        raise SigningError(N_("签名证书已过期或尚未生效，请重新申领签名证书。"))


def stamp_font_bytes(text: str) -> bytes:
    """A small OpenType font (Noto Sans CJK SC cut down to exactly the glyphs of ``text``)."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    missing = missing_glyphs(text, HEI_FAMILY)
    if missing:
        # Rare characters (e.g. CJK extension B in a name) would draw as empty boxes.
        logger.warning("signature appearance: font lacks %r", "".join(sorted(missing)))
    path, index = font_file(HEI_FAMILY)
    options = subset.Options()
    options.hinting = False
    options.desubroutinize = True
    options.name_IDs = ["*"]  # pyHanko names the embedded font after the PostScript name
    options.notdef_outline = True
    font = TTFont(str(path), fontNumber=index, lazy=True)
    try:
        subsetter = subset.Subsetter(options)
        subsetter.populate(text=text + " ")
        subsetter.subset(font)
        out = BytesIO()
        font.save(out)
        return out.getvalue()
    finally:
        font.close()


def _in_memory_font_factory(font_bytes: bytes, font_size: int):
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator, GlyphAccumulatorFactory

    class InMemoryGlyphAccumulatorFactory(GlyphAccumulatorFactory):
        # pyHanko's factory opens a font *file* and never closes it; a BytesIO needs neither a
        # file on disk nor a close, and GlyphAccumulator only seeks and reads the handle.
        def create_font_engine(self, writer, obj_stream=None):
            if obj_stream is None and writer.stream_xrefs and self.create_objstream_if_needed:
                obj_stream = writer.prepare_object_stream()
            return GlyphAccumulator(
                writer=writer, font_handle=BytesIO(font_bytes), font_size=self.font_size,
                obj_stream=obj_stream,
            )

    return InMemoryGlyphAccumulatorFactory(font_file="<memory>", font_size=font_size)


def _stamp_style(font_bytes: bytes):
    from pyhanko.pdf_utils import layout
    from pyhanko.pdf_utils.text import TextBoxStyle
    from pyhanko.stamp import TextStampStyle

    return TextStampStyle(
        stamp_text="%(lines)s",
        text_box_style=TextBoxStyle(
            font=_in_memory_font_factory(font_bytes, 12),
            font_size=12,
            leading=17,
            text_color=STAMP_COLOUR,
        ),
        border_width=1,
        border_color=STAMP_COLOUR,
        background=None,
        # Text is centred and shrunk to fit if the lines are longer than the reserved box.
        inner_content_layout=layout.SimpleBoxLayoutRule(
            x_align=layout.AxisAlignment.ALIGN_MID,
            y_align=layout.AxisAlignment.ALIGN_MID,
            margins=layout.Margins.uniform(5),
        ),
    )


def _signature_meta(field_name: str, *, reason: str, location: str, name: str):
    from pyhanko.sign import fields, signers

    return signers.PdfSignatureMetadata(
        field_name=field_name,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason,
        location=location,
        name=name,
    )


def _field_state(pdf: bytes, field_name: str) -> str:
    """'absent', 'empty' or 'signed' for the signature field ``field_name``."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.fields import enumerate_sig_fields

    reader = PdfFileReader(BytesIO(pdf), strict=False)
    for name, value, _ref in enumerate_sig_fields(reader, filled_status=None):
        if name == field_name:
            return "empty" if value is None else "signed"
    return "absent"


def _writer(pdf: bytes):
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    try:
        return IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    except Exception as exc:
        raise SigningError(N_("文件不是有效的 PDF，无法签署。")) from exc


# --- signing --------------------------------------------------------------------------------------


def sign_pdf(
    pdf: bytes,
    creds: SignerKeyMaterial,
    password: str,
    *,
    pki: PlatformPKI,
    field_name: str,
    page: int,
    box: tuple[float, float, float, float],
    appearance_lines: list[str],
    reason: str,
    location: str,
) -> bytes:
    """Add one party's visible PAdES signature in ``box`` (PDF points) on ``page``; return the new PDF.

    The signature is appended as an incremental update, so earlier signatures stay intact.
    A wrong ``password`` raises :class:`~agreements.pki.WrongSignerPassword`; a field that is
    already signed, a certificate from elsewhere or a broken PDF raise :class:`SigningError`.
    ``appearance_lines`` are drawn centred in the box, e.g. ``["张建国", "某某党支部",
    "2026年11月22日"]`` (see :func:`default_appearance_lines`).
    """
    from pyhanko.sign import fields, signers

    cert = x509.load_pem_x509_certificate(creds.cert_pem)
    _check_issued_by_platform(cert, pki)
    key = load_private_key(creds.key_pem, password)
    if key.public_key().public_numbers() != cert.public_key().public_numbers():
        raise SigningError(N_("签名密钥与证书不匹配。"))

    state = _field_state(pdf, field_name)
    if state == "signed":
        raise SigningError(N_("该签名位已签署，不能重复签署。"))
    writer = _writer(pdf)
    spec = None
    if state == "absent":
        spec = fields.SigFieldSpec(sig_field_name=field_name, on_page=page, box=tuple(round(v, 2) for v in box))

    subject = cert.subject
    common_name = _name_attr(subject, x509.NameOID.COMMON_NAME)
    text = "\n".join(line for line in appearance_lines if line)
    pdf_signer = signers.PdfSigner(
        _signature_meta(field_name, reason=reason, location=location, name=common_name),
        signer=_simple_signer(key, cert, pki),
        stamp_style=_stamp_style(stamp_font_bytes(text)),
        new_field_spec=spec,
    )
    out = BytesIO()
    try:
        outside_event_loop(pdf_signer.sign_pdf, writer, appearance_text_params={"lines": text}, output=out)
    except Exception as exc:
        logger.exception("pyHanko signing failed for field %s", field_name)
        raise SigningError(N_("签署失败：PDF 文件无法签名。")) from exc
    return out.getvalue()


def default_appearance_lines(common_name: str, organization: str, when: datetime) -> list[str]:
    """The usual three lines of a visible signature: name, organization, date in Chinese."""
    local = when.astimezone(SHANGHAI)
    return [f"{common_name}（数字签名）", organization, f"{local.year}年{local.month}月{local.day}日"]


def seal_pdf(pdf: bytes, *, pki: PlatformPKI, reason: str = "党建共建平台签署完成确认", location: str = "党建共建平台") -> bytes:
    """Add the platform's (invisible) seal signature last, covering the whole document."""
    from pyhanko.sign import fields, signers

    key, cert = pki.seal_key_and_cert()
    if _field_state(pdf, SEAL_FIELD) != "absent":
        raise SigningError(N_("文件已加盖平台签章。"))
    writer = _writer(pdf)
    pdf_signer = signers.PdfSigner(
        _signature_meta(SEAL_FIELD, reason=reason, location=location, name=pki.org_name),
        signer=_simple_signer(key, cert, pki),
        new_field_spec=fields.SigFieldSpec(sig_field_name=SEAL_FIELD),  # no box: invisible
    )
    out = BytesIO()
    try:
        outside_event_loop(pdf_signer.sign_pdf, writer, output=out)
    except Exception as exc:
        logger.exception("pyHanko sealing failed")
        raise SigningError(N_("平台签章失败：PDF 文件无法签名。")) from exc
    return out.getvalue()


# --- verification ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignatureCheck:
    """What verification found about one signature."""

    field_name: str
    signer_name: str
    organization: str
    signing_time: datetime | None  # as declared by the signer (no timestamp authority)
    intact: bool  # the signed bytes hash to the digest in the signature
    valid: bool  # the cryptographic signature over that digest is correct
    trusted: bool  # the certificate chains to this platform's root (and no other)
    covers_whole_document: bool
    modification_level: str  # pyHanko's diff analysis: NONE, LTA_UPDATES, FORM_FILLING, ANNOTATIONS, OTHER
    modifications_ok: bool  # later changes are of a kind that leaves the signature meaningful
    is_platform_seal: bool
    certificate_serial: str
    container_clean: bool = True  # no bytes after the CMS blob, only this platform's certificates inside

    @property
    def ok(self) -> bool:
        """Intact, valid, trusted, a clean container, and not followed by disallowed changes."""
        return self.intact and self.valid and self.trusted and self.container_clean and self.modifications_ok


@dataclass(frozen=True)
class VerificationResult:
    """The verdict on a PDF: per-signature checks, overall validity and a summary for people."""

    document_sha256: str
    signatures: list[SignatureCheck] = field(default_factory=list)
    # Set when the file could not be examined at all: Chinese, marked with N_ (gettext it where shown).
    error: str | None = None

    @property
    def is_fully_valid(self) -> bool:
        """Every signature ok, at least one, and the last one covers the whole file."""
        return (
            self.error is None
            and bool(self.signatures)
            and all(s.ok for s in self.signatures)
            and self.signatures[-1].covers_whole_document
        )

    @property
    def sealed(self) -> bool:
        """The last signature is the platform seal and it covers the whole file."""
        return bool(self.signatures) and self.signatures[-1].is_platform_seal and self.signatures[-1].covers_whole_document

    @property
    def summary(self) -> str:
        """One sentence for people: is this the document that was signed? In the interface language when
        read while handling a request, else Chinese (it is never stored nor printed into a PDF)."""
        if self.error:
            return gettext(self.error)
        if not self.signatures:
            return gettext("该文件不含电子签名，无法证明其出自本平台。")
        signers_text = gettext("、").join(
            gettext("%(name)s（%(organization)s）", name=s.signer_name, organization=s.organization)
            for s in self.signatures if not s.is_platform_seal
        ) or gettext("平台")
        if self.is_fully_valid and self.sealed:
            return gettext("验证通过：文件自签署后未被篡改，签名人为%(signers)s，并经平台签章确认。", signers=signers_text)
        if self.is_fully_valid:
            return gettext("验证通过：文件自签署后未被篡改，签名人为%(signers)s（尚未加盖平台签章，签署流程可能未完成）。",
                           signers=signers_text)
        problems = []
        if any(not (s.intact and s.valid and s.container_clean) for s in self.signatures):
            problems.append(gettext("签名数据与文件内容不符，文件可能已被篡改"))
        if any(not s.trusted for s in self.signatures):
            problems.append(gettext("存在非本平台签发证书的签名"))
        if any(not s.modifications_ok for s in self.signatures):
            problems.append(gettext("签署后文件被做了不允许的修改"))
        if not self.signatures[-1].covers_whole_document:
            problems.append(gettext("最后一个签名之后文件又被改动"))
        return gettext("验证未通过：%(problems)s。", problems=gettext("；").join(problems or [gettext("签名无效")]))


def _name_attr(name: x509.Name, oid) -> str:
    attrs = name.get_attributes_for_oid(oid)
    return str(attrs[0].value) if attrs else ""


def _container_clean(embedded, root: x509.Certificate) -> bool:
    """The /Contents holds one CMS blob, zero padding, and only certificates of our own CA.

    The bytes of a signature's /Contents are the only ones its digest does not cover. Nothing in
    them may vary without the signature breaking, so that a file whose bytes differ from the
    signed original never passes: no data hidden in the padding, no swapped-in certificates.
    """
    from asn1crypto import parser

    raw = bytes(embedded.sig_object["/Contents"])
    _cls, _method, _tag, header, contents, _trailer = parser.parse(raw)
    if any(raw[len(header) + len(contents):]):
        return False
    signed_data = embedded.signed_data
    signer_infos = signed_data["signer_infos"]
    # Fields a validator reads nothing from must still hold exactly what our signer writes.
    if (
        len(signer_infos) != 1
        or signed_data["version"].native != "v1"
        or signer_infos[0]["version"].native != "v1"
        or signed_data["digest_algorithms"].dump()
        != type(signed_data["digest_algorithms"])([signer_infos[0]["digest_algorithm"]]).dump()
        or signed_data["encap_content_info"].native != {"content_type": "data", "content": None}
        or signed_data["crls"]
        or signer_infos[0]["unsigned_attrs"]
    ):
        return False
    # Certificates: our root, byte for byte, and the signer's own (whose hash the signed
    # attributes carry, so pyHanko already ties it to the signature). Nothing else.
    allowed = {root.public_bytes(serialization.Encoding.DER), embedded.signer_cert.dump()}
    for choice in signed_data["certificates"] or []:
        if choice.name != "certificate" or choice.chosen.dump() not in allowed:
            return False
    return True


def _check_one(embedded, vc_factory, seal_fingerprint: bytes, root: x509.Certificate) -> SignatureCheck:
    from pyhanko.sign.diff_analysis import ModificationLevel
    from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature

    status = outside_event_loop(validate_pdf_signature, embedded, vc_factory())
    cert = status.signing_cert
    subject = cert.subject.native
    level = status.modification_level
    # Later signatures add their own fields and appearances: that is FORM_FILLING, expected.
    modifications_ok = (
        level is not None
        and level <= ModificationLevel.FORM_FILLING
        and status.docmdp_ok is not False
    )
    return SignatureCheck(
        field_name=embedded.field_name or "",
        signer_name=subject.get("common_name", ""),
        organization=subject.get("organization_name", ""),
        signing_time=status.signer_reported_dt,
        intact=bool(status.intact),
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        covers_whole_document=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        modification_level=level.name if level is not None else "UNKNOWN",
        modifications_ok=modifications_ok,
        is_platform_seal=cert.sha256 == seal_fingerprint,
        certificate_serial=format(cert.serial_number, "x"),
        container_clean=_container_clean(embedded, root),
    )


def verify_pdf(pdf: bytes, *, pki: PlatformPKI) -> VerificationResult:
    """Check every signature of ``pdf`` against the platform root only; never raises on bad input."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko_certvalidator import ValidationContext

    digest = hashlib.sha256(pdf).hexdigest()
    roots = pki.trust_roots()
    seal_fingerprint = _asn1_cert(pki.seal_certificate).sha256

    def vc_factory():
        # Only our root is trusted (no system store), and nothing is fetched from the network.
        return ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")

    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        embedded = reader.embedded_signatures
    except Exception:
        logger.info("verify_pdf: unreadable PDF (%d bytes)", len(pdf), exc_info=True)
        return VerificationResult(digest, error=N_("文件无法识别为有效的 PDF 文档，或文件已损坏。"))

    checks = []
    for emb in embedded:
        try:
            checks.append(_check_one(emb, vc_factory, seal_fingerprint, pki.root_certificate))
        except Exception:
            logger.info("verify_pdf: signature %r could not be validated", getattr(emb, "field_name", "?"), exc_info=True)
            return VerificationResult(
                digest, signatures=checks, error=N_("文件中的签名数据已损坏，无法验证，文件可能已被篡改。")
            )
    return VerificationResult(digest, signatures=checks)


# --- completion certificate -----------------------------------------------------------------------


def completion_certificate_pdf(
    events: list[dict],
    *,
    agreement_title: str,
    document_sha256: str,
    verify_url: str,
    pki: PlatformPKI,
    agreement_number: str = "",
    issued_at: datetime | None = None,
) -> bytes:
    """A sealed one-page record (签署完成证明) of every signature event of an agreement.

    ``events`` (in signing order), each a dict with: ``signer_name``, ``organization``,
    ``signed_at`` (aware datetime, shown in Asia/Shanghai), ``ip`` (str), ``document_sha256``
    (hash of the PDF right after that signature), optional ``role`` (e.g. "甲方书记") and
    ``certificate_serial``. ``document_sha256`` is the final signed file's hash.
    """
    issued_at = issued_at or datetime.now(timezone.utc)
    rows = [
        {
            "role": e.get("role", ""),
            "signer_name": e["signer_name"],
            "organization": e["organization"],
            "signed_at": _beijing_timestamp(e["signed_at"]),
            "ip": e.get("ip") or "—",
            "document_sha256": e.get("document_sha256") or "",
            "certificate_serial": e.get("certificate_serial") or "",
        }
        for e in events
    ]
    html = pdf_jinja_env().get_template(CERTIFICATE_TEMPLATE).render(
        agreement_title=agreement_title,
        agreement_number=agreement_number,
        document_sha256=document_sha256,
        verify_url=verify_url,
        events=rows,
        issued_at=_beijing_timestamp(issued_at),
        platform=pki.org_name,
        root_fingerprint=pki.root_fingerprint,
    )
    return seal_pdf(render_pdf(html), pki=pki, reason="签署完成证明")
