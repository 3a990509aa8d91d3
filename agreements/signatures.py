"""Glue between the agreement lifecycle and the PDF/PKI library: the platform CA of this app, the
archive of signed PDFs, the document context, and signatories' keys.

The library (agreements.pki, agreements.signing, agreements.document) knows nothing of Flask or the
database; this module is where app configuration and rows meet it.
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path, PurePosixPath

import sqlalchemy as sa
from flask import current_app
from flask_babel import gettext

from agreements.models import AgreementError, SignerKey
from agreements.pki import PlatformPKI, WrongSignerPassword, derive_ca_passphrase, rewrap_signer_key
from coop.audit.operations import record
from coop.categories import CATEGORY_BY_CODE
from coop.db import now_utc
from coop.extensions import db

logger = logging.getLogger(__name__)

ARCHIVE_SUBDIR = "agreements"
# Crockford-style alphabet: no 0/O, 1/I/L, so a code read aloud or typed from paper survives.
_CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
_CODE_GROUPS, _CODE_GROUP_LEN = 3, 4


class ArchiveError(AgreementError):
    """An archived PDF is missing or does not match its recorded hash."""


# --- the platform CA -----------------------------------------------------------------------------

_pki_cache: dict[tuple[str, str], PlatformPKI] = {}
_pki_lock = threading.Lock()


def platform_pki() -> PlatformPKI:
    """The platform CA kept in PKI_DIR (created on first use), cached per folder for the process.

    Cached because opening the CA and seal keys costs a deliberate key-derivation delay each time.
    """
    folder = str(Path(current_app.config["PKI_DIR"]).resolve())
    passphrase = derive_ca_passphrase(current_app.config["SECRET_KEY"])
    key = (folder, hashlib.sha256(passphrase.encode()).hexdigest())
    with _pki_lock:
        pki = _pki_cache.get(key)
        if pki is None:
            pki = PlatformPKI(folder, passphrase=passphrase)
            pki.ensure()
            _pki_cache[key] = pki
    return pki


# --- archive files -------------------------------------------------------------------------------


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of bytes."""
    return hashlib.sha256(data).hexdigest()


def _archive_root() -> Path:
    return Path(current_app.config["ARCHIVE_DIR"]).resolve()


def archive_path(relative: str) -> Path:
    """The absolute path of an archived file; refuses anything that would leave ARCHIVE_DIR."""
    root = _archive_root()
    path = (root / PurePosixPath(relative)).resolve()
    if not path.is_relative_to(root):
        raise ArchiveError(gettext("存档路径无效。"))
    return path


def store_archive_file(agreement_id: int, name: str, data: bytes) -> tuple[str, str]:
    """Write a new file under ARCHIVE_DIR/agreements/<id>/ (never overwriting); return (relative path, sha256).

    Every step gets its own file, so an interrupted transaction never damages a file a row points to.
    """
    relative = f"{ARCHIVE_SUBDIR}/{agreement_id}/{name}-{secrets.token_hex(4)}.pdf"
    path = archive_path(relative)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return relative, sha256_hex(data)


def read_archive_file(relative: str, expected_sha256: str | None = None) -> bytes:
    """Read an archived file, checking its hash against the recorded one when given."""
    try:
        data = archive_path(relative).read_bytes()
    except FileNotFoundError as exc:
        raise ArchiveError(gettext("协议存档文件缺失，请联系管理员。")) from exc
    if expected_sha256 and sha256_hex(data) != expected_sha256:
        logger.error("archived agreement file %s does not match its recorded hash", relative)
        raise ArchiveError(gettext("协议存档文件与登记的哈希值不符，已停止操作，请联系管理员。"))
    return data


# --- verification codes and the document ---------------------------------------------------------


def new_verify_code() -> str:
    """A random public code such as K7Q2-M9XD-3HFP (about 59 bits)."""
    groups = ["".join(secrets.choice(_CODE_ALPHABET) for _ in range(_CODE_GROUP_LEN)) for _ in range(_CODE_GROUPS)]
    return "-".join(groups)


def normalise_verify_code(text: str | None) -> str | None:
    """A typed code in canonical form (upper case, dashes in place), or None when it cannot be one."""
    raw = "".join(ch for ch in (text or "").upper() if ch.isalnum())
    if len(raw) != _CODE_GROUPS * _CODE_GROUP_LEN or any(ch not in _CODE_ALPHABET for ch in raw):
        return None
    return "-".join(raw[i:i + _CODE_GROUP_LEN] for i in range(0, len(raw), _CODE_GROUP_LEN))


def verify_url_for(code: str) -> str:
    """The public verification address printed (and QR-coded) on an agreement."""
    return f"{current_app.config['BASE_URL'].rstrip('/')}/verify/{code}"


def document_context(snapshot: dict, *, verify_code: str | None = None, version_label: str = "") -> dict:
    """The ctx for agreements.document.render_agreement_pdf from a frozen content snapshot."""
    return {
        "title": snapshot["title"],
        "number": snapshot.get("number") or "",
        "parties": [
            {
                "name": p["name"],
                "kind_label": p.get("kind_label") or "",
                "secretary_name": p.get("secretary_name") or "",
                "liaisons": [l["name"] for l in p.get("liaisons", [])],
            }
            for p in snapshot["parties"]
        ],
        "starts_on": date.fromisoformat(snapshot["starts_on"]),
        "ends_on": date.fromisoformat(snapshot["ends_on"]),
        "purpose": snapshot.get("purpose") or "",
        "commitments": [
            {
                "code": c["category"],
                "name": CATEGORY_BY_CODE[c["category"]].name,
                "count_per_year": c["count_per_year"],
                "text": c.get("text") or "",
            }
            for c in snapshot.get("commitments", [])
        ],
        "clauses": list(snapshot.get("clauses") or []),
        "verify_url": verify_url_for(verify_code) if verify_code else "",
        "verify_code": verify_code or "",
        "version": version_label,
    }


def render_snapshot_pdf(snapshot: dict, *, verify_code: str | None = None, version_label: str = ""):
    """Render the agreement PDF of a snapshot; returns (pdf bytes, [[page, x1, y1, x2, y2] per party])."""
    from agreements.document import render_agreement_pdf

    pdf, boxes = render_agreement_pdf(document_context(snapshot, verify_code=verify_code, version_label=version_label))
    return pdf, [[b.page, *b.box] for b in boxes]


# --- signatories' keys ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyMaterial:
    """The encrypted key and certificate of a SignerKey row, as bytes for agreements.signing."""

    key_pem: bytes
    cert_pem: bytes


def key_material(row: SignerKey) -> KeyMaterial:
    """Bytes view of a stored signer key."""
    return KeyMaterial(key_pem=row.key_pem.encode("ascii"), cert_pem=row.cert_pem.encode("ascii"))


def active_signer_key(user) -> SignerKey | None:
    """The user's usable (not discarded, not expired) signer key, newest first."""
    return db.session.execute(
        sa.select(SignerKey)
        .where(SignerKey.user_id == user.id, SignerKey.revoked_at.is_(None), SignerKey.key_pem.is_not(None),
               SignerKey.not_after > now_utc())
        .order_by(SignerKey.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def discard_signer_keys(user, reason: str) -> int:
    """Revoke every usable key of the user and drop the encrypted private key; returns how many."""
    rows = db.session.execute(
        sa.select(SignerKey).where(SignerKey.user_id == user.id, SignerKey.revoked_at.is_(None))
    ).scalars().all()
    for row in rows:
        row.key_pem = None
        row.revoked_at = now_utc()
        row.revoke_reason = reason[:100]
    return len(rows)


def signer_key_for(user, organization_name: str, password: str) -> SignerKey:
    """The key the user signs with for `organization_name`, issuing one (under `password`) when needed.

    A certificate names its holder and organization; when either changed since it was issued, a new
    one is issued so a signature never shows a stale name.
    """
    row = active_signer_key(user)
    if row is not None and row.common_name == user.display_name and row.organization_name == organization_name:
        return row
    if row is not None:
        discard_signer_keys(user, "姓名或组织变更，重新签发")
    creds = platform_pki().issue_signer(user.display_name, organization_name, password, user_ref=f"user-{user.id}")
    row = SignerKey(
        user_id=user.id,
        key_pem=creds.key_pem.decode("ascii"),
        cert_pem=creds.cert_pem.decode("ascii"),
        serial=creds.serial,
        fingerprint_sha256=creds.fingerprint_sha256,
        common_name=creds.common_name,
        organization_name=creds.organization,
        not_after=creds.not_after,
    )
    db.session.add(row)
    db.session.flush()
    record(
        "agreement.signer_key_issued",
        f"为 {user.display_name} 签发签名证书（{organization_name}）",
        actor=user, organization_id=user.organization_id, target=row,
        detail={"serial": creds.serial, "fingerprint_sha256": creds.fingerprint_sha256},
    )
    return row


def on_password_change(user, old_password: str | None, new_password: str) -> None:
    """Password hook: re-wrap the signer key under the new password, or discard it on an admin reset.

    An admin reset (old password unknown) cannot open the key, and must not: the key is the user's
    alone. So it is discarded and a new key and certificate are issued at the next signature.
    """
    rows = db.session.execute(
        sa.select(SignerKey).where(SignerKey.user_id == user.id, SignerKey.revoked_at.is_(None),
                                   SignerKey.key_pem.is_not(None))
    ).scalars().all()
    if not rows:
        return
    if old_password is None:
        discard_signer_keys(user, "管理员重置密码")
        record("agreement.signer_key_discarded", f"{user.display_name} 的密码被重置，签名密钥作废",
               actor=None, organization_id=user.organization_id, target=user)
        return
    for row in rows:
        try:
            row.key_pem = rewrap_signer_key(row.key_pem.encode("ascii"), old_password, new_password).decode("ascii")
        except WrongSignerPassword:
            # The key was wrapped under some other password (should not happen): it is unusable anyway.
            row.key_pem, row.revoked_at, row.revoke_reason = None, now_utc(), "无法用原密码解开，作废"
