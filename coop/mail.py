"""Outgoing e-mail: build UTF-8 messages, send them over SMTP, or drop them into an outbox folder.

With MAIL_SERVER set, a batch goes out over one SMTP connection (STARTTLS or implicit TLS and login when
configured). Without it — development, or a site that has no mail relay yet — every message is written as
an .eml file into MAIL_OUTBOX_DIR, with a UTF-8 subject and an 8-bit body so it reads in any text editor.

Sending never raises for a single bad message: `send_messages` returns one `DeliveryResult` per message,
and the reminders code records the failures and retries them later. Call it after the database commit
(side effects after commit), never inside a transaction.
"""
from __future__ import annotations

import copy
import os
import re
import secrets
import smtplib
import ssl
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, getaddresses, make_msgid, parseaddr
from pathlib import Path

# Messages are composed with the default policy (RFC 2047 headers, "\n" inside; smtplib turns line ends into
# CRLF on the wire), so get_content() gives back exactly the text that was put in.
# refold_source="none" only matters for headers stored raw (List-Unsubscribe below): a long one-click URL
# must reach the mail client intact, not folded into RFC 2047 encoded words that no client turns back
# into a link. Headers set the normal way are still folded and encoded as usual.
COMPOSE_POLICY = policy.default.clone(refold_source="none")
# The outbox form: raw UTF-8 headers (RFC 6532) and 8-bit bodies, so a developer can simply read the file.
OUTBOX_POLICY = policy.SMTPUTF8.clone(linesep="\n", refold_source="none")


@dataclass(frozen=True)
class MailSettings:
    """How to deliver mail; build it with `MailSettings.from_config(app.config)`."""

    server: str = ""
    port: int = 25
    use_tls: bool = False  # STARTTLS on a plain connection (usually port 587)
    use_ssl: bool = False  # implicit TLS from the first byte (usually port 465)
    username: str = ""
    password: str = ""
    sender: str = "党建共建平台 <noreply@localhost>"
    outbox_dir: Path | None = None
    timeout: float = 20.0
    ca_file: str = ""  # extra CA bundle for relays with an internal certificate authority

    @classmethod
    def from_config(cls, config: Mapping, *, default_outbox_dir: Path | None = None) -> "MailSettings":
        """Read MAIL_* keys from a config mapping; missing keys take the defaults above."""
        use_tls = bool(config.get("MAIL_USE_TLS", False))
        use_ssl = bool(config.get("MAIL_USE_SSL", False))
        if use_tls and use_ssl:
            raise ValueError("MAIL_USE_TLS（STARTTLS）与 MAIL_USE_SSL 只能开启一个")
        default_port = 465 if use_ssl else (587 if use_tls else 25)
        outbox = config.get("MAIL_OUTBOX_DIR") or default_outbox_dir
        return cls(
            server=str(config.get("MAIL_SERVER") or ""),
            port=int(config.get("MAIL_PORT") or default_port),
            use_tls=use_tls,
            use_ssl=use_ssl,
            username=str(config.get("MAIL_USERNAME") or ""),
            password=str(config.get("MAIL_PASSWORD") or ""),
            sender=str(config.get("MAIL_FROM") or cls.sender),
            outbox_dir=Path(outbox) if outbox else None,
            timeout=float(config.get("MAIL_TIMEOUT") or 20),
            ca_file=str(config.get("MAIL_CA_FILE") or ""),
        )


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one message: `ok` False means nothing was delivered and the caller should retry."""

    message_id: str
    recipients: tuple[str, ...]
    ok: bool
    error: str | None = None
    # Recipients the server refused while accepting the others (ok stays True: retrying would duplicate).
    refused: Mapping[str, str] | None = None
    outbox_path: Path | None = None


def build_message(
    to: str | Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    sender: str | None = None,
    unsubscribe_url: str | None = None,
) -> EmailMessage:
    """Build a UTF-8 message (plain text, optionally with an HTML alternative) ready for `send_messages`."""
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients:
        raise ValueError("邮件至少需要一个收件人")
    msg = EmailMessage(policy=COMPOSE_POLICY)
    if sender:
        msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    # Subjects are often built from user-entered titles; a line break there would be header injection,
    # which the email package refuses with an exception — fold it to spaces instead.
    msg["Subject"] = " ".join(subject.split())
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    if unsubscribe_url:
        # RFC 2369 header plus RFC 8058 one-click: mail clients POST "List-Unsubscribe=One-Click" to the URL,
        # so the view behind it must accept a POST without a login or CSRF token (the URL carries a token).
        if any(ch in unsubscribe_url for ch in "\r\n<> ") or not unsubscribe_url.isascii():
            raise ValueError("退订链接必须是不含空白的 ASCII URL")
        msg.set_raw("List-Unsubscribe", f"<{unsubscribe_url}>")  # raw: never folded (see COMPOSE_POLICY)
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in (headers or {}).items():
        if name.lower() in ("from", "to", "subject", "date"):
            raise ValueError(f"{name} 请用 build_message 的参数设置")
        msg[name] = value
    # base64 keeps the wire form 7-bit clean (no 8BITMIME needed from the relay) and cannot mangle long
    # lines or "=" in links; the outbox copy is re-encoded as 8-bit text for reading.
    msg.set_content(text, subtype="plain", charset="utf-8", cte="base64")
    if html is not None:
        msg.add_alternative(html, subtype="html", charset="utf-8", cte="base64")
        for part in msg.iter_parts():
            del part["MIME-Version"]  # the stdlib adds it to sub-parts; it belongs on the top level only
    return msg


def send_messages(settings: MailSettings, messages: Iterable[EmailMessage]) -> list[DeliveryResult]:
    """Deliver messages over SMTP (one connection) or into the outbox folder; one result per message."""
    prepared = [_prepare(settings, msg) for msg in messages]
    if not prepared:
        return []
    if settings.server:
        return _send_smtp(settings, prepared)
    return [_write_outbox(settings, msg) for msg in prepared]


# --- internals -------------------------------------------------------------------------------------------


def _prepare(settings: MailSettings, msg: EmailMessage) -> EmailMessage:
    """Fill From and Message-ID when the caller left them out, on a copy (callers may resend the original)."""
    msg = copy.deepcopy(msg)
    if msg["From"] is None:
        msg["From"] = settings.sender
    if msg["Message-ID"] is None:
        domain = parseaddr(str(msg["From"]))[1].rpartition("@")[2] or "localhost"
        msg["Message-ID"] = make_msgid(domain=domain)
    return msg


def _recipients(msg: EmailMessage) -> tuple[str, ...]:
    fields = [str(v) for name in ("To", "Cc", "Bcc") for v in (msg.get_all(name) or [])]
    return tuple(addr for _, addr in getaddresses(fields) if addr)


def _ssl_context(settings: MailSettings) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if settings.ca_file:
        context.load_verify_locations(cafile=settings.ca_file)
    return context


def _connect(settings: MailSettings) -> smtplib.SMTP:
    if settings.use_ssl:
        conn: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.server, settings.port, timeout=settings.timeout, context=_ssl_context(settings)
        )
    else:
        conn = smtplib.SMTP(settings.server, settings.port, timeout=settings.timeout)
    try:
        conn.ehlo()
        if settings.use_tls:
            conn.starttls(context=_ssl_context(settings))
            conn.ehlo()
        if settings.username:
            conn.login(settings.username, settings.password)
    except BaseException:
        conn.close()
        raise
    return conn


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return f"{type(exc).__name__}: {exc.smtp_code} {detail}"
    return f"{type(exc).__name__}: {exc}"


def _send_smtp(settings: MailSettings, messages: list[EmailMessage]) -> list[DeliveryResult]:
    results: list[DeliveryResult] = []
    conn: smtplib.SMTP | None = None
    connect_error: str | None = None
    try:
        for msg in messages:
            message_id, recipients = str(msg["Message-ID"]), _recipients(msg)
            if connect_error is None and conn is None:
                try:
                    conn = _connect(settings)
                except (smtplib.SMTPException, OSError) as exc:
                    # One failed (re)connect fails the rest of the batch: retrying per message would wait
                    # out the timeout once per message.
                    connect_error = _describe(exc)
            if connect_error is not None:
                results.append(DeliveryResult(message_id, recipients, False, connect_error))
                continue
            try:
                refused = conn.send_message(msg)
            except smtplib.SMTPServerDisconnected as exc:
                conn = None  # reconnect for the next message
                results.append(DeliveryResult(message_id, recipients, False, _describe(exc)))
            except smtplib.SMTPRecipientsRefused as exc:
                errors = {addr: _describe_refusal(code, text) for addr, (code, text) in exc.recipients.items()}
                results.append(DeliveryResult(message_id, recipients, False, "所有收件人都被拒收", refused=errors))
                conn = _reset(conn)
            except (smtplib.SMTPException, OSError) as exc:
                results.append(DeliveryResult(message_id, recipients, False, _describe(exc)))
                conn = _reset(conn)
            else:
                errors = {addr: _describe_refusal(code, text) for addr, (code, text) in refused.items()}
                results.append(DeliveryResult(message_id, recipients, True, refused=errors or None))
    finally:
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()
    return results


def _describe_refusal(code: int, text: bytes | str) -> str:
    return f"{code} {text.decode('utf-8', 'replace') if isinstance(text, bytes) else text}"


def _reset(conn: smtplib.SMTP) -> smtplib.SMTP | None:
    """Put the session back to a clean state after a failed message; None if the connection is gone."""
    try:
        conn.rset()
        return conn
    except (smtplib.SMTPException, OSError):
        conn.close()
        return None


def _readable_copy(msg: EmailMessage) -> EmailMessage:
    """Re-encode text parts as 8-bit UTF-8 so the .eml shows Chinese text and clickable links as they are."""
    readable = copy.deepcopy(msg)
    for part in readable.walk():
        part.policy = OUTBOX_POLICY
        if part.get_content_maintype() == "text" and not part.is_multipart():
            content, subtype = part.get_content(), part.get_content_subtype()
            had_version = "MIME-Version" in part
            try:
                part.set_content(content, subtype=subtype, charset="utf-8", cte="8bit")
            except ValueError:
                # 8bit allows at most 998 octets per line; long HTML lines fall back to quoted-printable.
                part.set_content(content, subtype=subtype, charset="utf-8", cte="quoted-printable")
            if not had_version and "MIME-Version" in part:
                del part["MIME-Version"]  # set_content() adds it even to sub-parts
    return readable


def _outbox_name(msg: EmailMessage) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    recipients = _recipients(msg)
    slug_source = f"{recipients[0] if recipients else 'message'} {msg.get('Subject', '')}"
    slug = re.sub(r"[^a-z0-9]+", "-", slug_source.lower()).strip("-")[:60].rstrip("-") or "message"
    return f"{stamp}-{secrets.token_hex(3)}-{slug}.eml"


def _write_outbox(settings: MailSettings, msg: EmailMessage) -> DeliveryResult:
    message_id, recipients = str(msg["Message-ID"]), _recipients(msg)
    if settings.outbox_dir is None:
        return DeliveryResult(message_id, recipients, False, "未配置 MAIL_SERVER，也未配置 MAIL_OUTBOX_DIR")
    try:
        outbox = Path(settings.outbox_dir)
        outbox.mkdir(parents=True, exist_ok=True)
        path = outbox / _outbox_name(msg)
        data = _readable_copy(msg).as_bytes(policy=OUTBOX_POLICY)
        # Atomic, so anything watching the folder never picks up a half-written message.
        fd, tmp_name = tempfile.mkstemp(dir=outbox, prefix=".mail-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        return DeliveryResult(message_id, recipients, False, _describe(exc))
    return DeliveryResult(message_id, recipients, True, outbox_path=path)


def format_address(display_name: str, address: str) -> str:
    """Format "张三 <zhang@example.org>" safely (quotes and encodes the display name when needed)."""
    return str(Address(display_name=display_name, addr_spec=address))
