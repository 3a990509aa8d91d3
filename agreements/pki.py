"""The platform's own certificate authority: a root CA, a seal certificate, and one certificate per signer.

Everything lives in one folder (normally ``instance/pki/``), created on first use:

    root-ca.pem   root certificate (RSA 3072, 30 years)          — public
    root-ca.key   root private key, PKCS#8 encrypted with the CA passphrase
    seal.pem      platform seal certificate (final seal, completion certificates)
    seal.key      seal private key, PKCS#8 encrypted with the CA passphrase

Files are written 0600 and the folder 0700. Signers' private keys are never stored here: the
caller keeps the encrypted PEM (in the database) and only the signer's password opens it.

Keys are RSA 3072: poppler's ``pdfsig`` (NSS), Adobe Reader and pyHanko all verify RSA
PKCS#1 v1.5 with SHA-256; 3072 bits keeps them acceptable past 2030.

Private keys are PKCS#8 ``EncryptedPrivateKeyInfo`` with PBES2 (PBKDF2-HMAC-SHA256,
600 000 iterations, AES-256-CBC). ``cryptography``'s ``BestAvailableEncryption`` only does 2 048
PBKDF2 iterations, far too cheap for a human password, so the envelope is built here; OpenSSL and
``cryptography`` read it as any standard encrypted key.
"""
from __future__ import annotations

import fcntl
import hashlib
import hmac
import os
import secrets
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from asn1crypto import algos, keys as asn1_keys, pem as asn1_pem, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.x509.oid import NameOID

RSA_BITS = 3072
KDF_ITERATIONS = 600_000
ROOT_YEARS = 30
SEAL_YEARS = 20
SIGNER_YEARS = 10  # without a timestamp authority, a signature is checked against today's validity

ROOT_CERT, ROOT_KEY = "root-ca.pem", "root-ca.key"
SEAL_CERT, SEAL_KEY = "seal.pem", "seal.key"


class PkiError(RuntimeError):
    """A problem with the platform's certificates; the message is fit to show to a user."""


class WrongSignerPassword(PkiError):
    """The signer's password does not open the signer's private key."""

    def __init__(self, message: str = "签名密码不正确。") -> None:
        super().__init__(message)


class WrongCaPassphrase(PkiError):
    """The configured passphrase does not open the platform CA key (SECRET_KEY changed?)."""

    def __init__(self, message: str = "平台证书密钥无法解密：密钥口令与创建时不一致（SECRET_KEY 是否被更改？）。") -> None:
        super().__init__(message)


@dataclass(frozen=True)
class SignerCredentials:
    """What the caller stores for a signer: encrypted key, certificate and its identity."""

    key_pem: bytes  # PKCS#8 EncryptedPrivateKeyInfo, opened only by the signer's password
    cert_pem: bytes
    serial: str  # certificate serial number, lower-case hex
    not_after: datetime  # aware UTC
    common_name: str
    organization: str
    fingerprint_sha256: str


def derive_ca_passphrase(secret_key: str | bytes) -> str:
    """The CA key passphrase derived from the app's SECRET_KEY (a separate purpose-bound value)."""
    if isinstance(secret_key, str):
        secret_key = secret_key.encode()
    return hmac.new(secret_key, b"coop/agreements/pki/ca-passphrase/v1", hashlib.sha256).hexdigest()


# --- private key envelopes ----------------------------------------------------------------------


def _password_bytes(password: str) -> bytes:
    if not password:
        raise WrongSignerPassword("签名密码不能为空。")
    return password.encode("utf-8")


def encrypt_private_key(key, password: str, *, iterations: int = KDF_ITERATIONS) -> bytes:
    """PEM ``ENCRYPTED PRIVATE KEY`` (PBES2: PBKDF2-SHA256 with many iterations + AES-256-CBC)."""
    plain_der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    salt, iv = secrets.token_bytes(16), secrets.token_bytes(16)
    kek = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations).derive(
        _password_bytes(password)
    )
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plain_der) + padder.finalize()
    encryptor = Cipher(algorithms.AES(kek), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(padded) + encryptor.finalize()
    info = asn1_keys.EncryptedPrivateKeyInfo({
        "encryption_algorithm": algos.EncryptionAlgorithm({
            "algorithm": "pbes2",
            "parameters": algos.Pbes2Params({
                "key_derivation_func": algos.KdfAlgorithm({
                    "algorithm": "pbkdf2",
                    "parameters": algos.Pbkdf2Params({
                        "salt": algos.Pbkdf2Salt(name="specified", value=salt),
                        "iteration_count": iterations,
                        "prf": algos.HmacAlgorithm({"algorithm": "sha256", "parameters": None}),
                    }),
                }),
                "encryption_scheme": algos.EncryptionAlgorithm({"algorithm": "aes256_cbc", "parameters": iv}),
            }),
        }),
        "encrypted_data": ciphertext,
    })
    return asn1_pem.armor("ENCRYPTED PRIVATE KEY", info.dump())


def load_private_key(encrypted_pem: bytes, password: str, *, error: type[PkiError] = WrongSignerPassword):
    """Open an encrypted PKCS#8 PEM; a wrong password raises ``error`` (WrongSignerPassword)."""
    if not password:
        raise error()
    try:
        return serialization.load_pem_private_key(encrypted_pem, password.encode("utf-8"))
    except (ValueError, TypeError) as exc:
        # cryptography reports a wrong password, a damaged file and an unencrypted key
        # (TypeError) alike; for the caller they all mean "this password does not open it".
        raise error() from exc


def rewrap_signer_key(encrypted_pem: bytes, old_password: str, new_password: str) -> bytes:
    """Re-encrypt a signer's private key under a new password (the key and certificate stay)."""
    key = load_private_key(encrypted_pem, old_password)
    if not new_password:
        raise WrongSignerPassword("新签名密码不能为空。")
    return encrypt_private_key(key, new_password)


# --- files --------------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with mode 0600 from the first byte (no window with wider permissions)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _name(common_name: str, organization: str, user_ref: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ]
    if user_ref:
        # Ties the certificate to the platform account without putting personal data in it.
        attrs.append(x509.NameAttribute(NameOID.USER_ID, user_ref))
    return x509.Name(attrs)


def _fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex()


class PlatformPKI:
    """The platform CA kept in ``folder``; ``passphrase`` encrypts the CA and seal keys at rest."""

    def __init__(self, folder: Path | str, org_name: str = "党建共建平台", *, passphrase: str) -> None:
        if not passphrase:
            raise PkiError("平台证书口令未配置。")
        self.folder = Path(folder)
        self.org_name = org_name
        self._passphrase = passphrase
        self._root_cert: x509.Certificate | None = None
        self._root_key = None
        self._seal_cert: x509.Certificate | None = None
        self._seal_key = None

    # -- set-up --

    @contextmanager
    def _lock(self):
        # Two workers starting at once must not each create a different root CA.
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.folder, 0o700)
        with open(self.folder / ".lock", "a+b") as fh:
            os.chmod(fh.name, 0o600)
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def ensure(self) -> None:
        """Create the root CA and the seal certificate if the folder does not have them yet."""
        with self._lock():
            if not (self.folder / ROOT_CERT).exists():
                self._create_root()
            if not (self.folder / SEAL_CERT).exists():
                self._create_seal()

    def _create_root(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        name = _name(f"{self.org_name}根证书", self.org_name)
        now = _now()
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=365 * ROOT_YEARS))
            # path_length=0: the root signs end-entity certificates only, never another CA.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(self.folder / ROOT_KEY, encrypt_private_key(key, self._passphrase))
        _write_private(self.folder / ROOT_CERT, cert.public_bytes(serialization.Encoding.PEM))
        self._root_cert, self._root_key = cert, key

    def _create_seal(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        cert = self._issue(key.public_key(), _name(f"{self.org_name}电子签章", self.org_name), SEAL_YEARS)
        _write_private(self.folder / SEAL_KEY, encrypt_private_key(key, self._passphrase))
        _write_private(self.folder / SEAL_CERT, cert.public_bytes(serialization.Encoding.PEM))
        self._seal_cert, self._seal_key = cert, key

    # -- loading --

    def _read(self, name: str) -> bytes:
        path = self.folder / name
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise PkiError("平台证书尚未创建。") from exc

    @property
    def root_certificate(self) -> x509.Certificate:
        """The root CA certificate (cryptography object)."""
        if self._root_cert is None:
            self._root_cert = x509.load_pem_x509_certificate(self._read(ROOT_CERT))
        return self._root_cert

    @property
    def root_cert_pem(self) -> bytes:
        """The root CA certificate as PEM, for publishing on the verification page."""
        return self.root_certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def root_fingerprint(self) -> str:
        """SHA-256 fingerprint of the root certificate, lower-case hex."""
        return _fingerprint(self.root_certificate)

    def trust_roots(self) -> list[asn1_x509.Certificate]:
        """The root as an asn1crypto certificate, the form pyHanko's validation context takes."""
        return [asn1_x509.Certificate.load(self.root_certificate.public_bytes(serialization.Encoding.DER))]

    def _ca_key(self):
        if self._root_key is None:
            self._root_key = load_private_key(self._read(ROOT_KEY), self._passphrase, error=WrongCaPassphrase)
        return self._root_key

    @property
    def seal_certificate(self) -> x509.Certificate:
        """The platform seal certificate (public; verification needs no key)."""
        if self._seal_cert is None:
            self._seal_cert = x509.load_pem_x509_certificate(self._read(SEAL_CERT))
        return self._seal_cert

    def seal_key_and_cert(self):
        """The platform seal's private key and certificate (cryptography objects)."""
        if self._seal_key is None:
            self._seal_key = load_private_key(self._read(SEAL_KEY), self._passphrase, error=WrongCaPassphrase)
        return self._seal_key, self.seal_certificate

    # -- issuing --

    def _issue(self, public_key, subject: x509.Name, years: int) -> x509.Certificate:
        root, ca_key = self.root_certificate, self._ca_key()
        now = _now()
        not_after = min(now + timedelta(days=365 * years), root.not_valid_after_utc)
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(root.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                # non-repudiation (content_commitment) is what pyHanko requires of a signer by default.
                x509.KeyUsage(
                    digital_signature=True, content_commitment=True, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(root.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )

    def issue_signer(
        self, common_name: str, organization: str, password: str, *, user_ref: str
    ) -> SignerCredentials:
        """A new key pair and certificate for a signatory; the key is encrypted with ``password``."""
        if not common_name.strip() or not organization.strip():
            raise PkiError("签名人姓名和组织名称不能为空。")
        _password_bytes(password)  # refuse an empty password before spending time on a key
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        cert = self._issue(key.public_key(), _name(common_name.strip(), organization.strip(), user_ref), SIGNER_YEARS)
        return SignerCredentials(
            key_pem=encrypt_private_key(key, password),
            cert_pem=cert.public_bytes(serialization.Encoding.PEM),
            serial=format(cert.serial_number, "x"),
            not_after=cert.not_valid_after_utc,
            common_name=common_name.strip(),
            organization=organization.strip(),
            fingerprint_sha256=_fingerprint(cert),
        )

    def __repr__(self) -> str:
        return f"<PlatformPKI {self.folder}>"
