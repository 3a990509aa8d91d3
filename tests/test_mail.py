"""Outgoing mail against a real SMTP server on localhost (aiosmtpd), and the outbox-folder mode."""
from __future__ import annotations

import datetime as dt
import email
import ipaddress
import re
import socket
import ssl
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from coop.mail import DeliveryResult, MailSettings, build_message, format_address, send_messages

SUBJECT = "【党建共建】待确认：11月主题党日联学活动"
LINK = "https://coop.example.org/activities/42/confirm?token=a1b2=c3"
UNSUBSCRIBE = "https://coop.example.org/unsubscribe/tok-123"
BODY = f"王联络员，您好：\n\n对方联络员登记了一次党员联学活动，请确认：\n{LINK}\n\n党建共建平台"


def reminder(to: str = "wang@example.org", **kwargs) -> EmailMessage:
    return build_message(
        [format_address("王联络员", to)],
        SUBJECT,
        BODY,
        html=f'<p>王联络员，您好：</p><p><a href="{LINK}">确认活动</a></p>',
        unsubscribe_url=UNSUBSCRIBE,
        **kwargs,
    )


class Collector:
    """An aiosmtpd handler that keeps what it receives and refuses addresses starting with "nobody"."""

    def __init__(self):
        self.envelopes = []
        self.peers = []
        self.logins = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.peers.append(session.peer)
        return "250 Message accepted"

    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(e.original_content, policy=policy.default) for e in self.envelopes]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield handler, controller.port
    controller.stop()


def settings_for(port: int, **overrides) -> MailSettings:
    config = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": port, "MAIL_FROM": "党建共建平台 <noreply@coop.example.org>", "MAIL_TIMEOUT": 5}
    config.update(overrides)
    return MailSettings.from_config(config)


# --- building --------------------------------------------------------------------------------------------------


def test_build_message_sets_utf8_parts_and_one_click_unsubscribe():
    msg = reminder()
    assert msg["Subject"] == SUBJECT
    assert msg["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_body(("plain",)).get_content() == BODY + "\n"
    assert LINK in msg.get_body(("html",)).get_content()
    wire = msg.as_bytes(policy=policy.SMTP)
    assert wire.isascii(), "the wire form is 7-bit clean: any relay accepts it"
    assert b"MIME-Version" in wire and wire.count(b"MIME-Version") == 1


def test_a_long_one_click_url_reaches_the_client_as_one_plain_link(smtp_server):
    # Real unsubscribe URLs carry a long signed token; folded into RFC 2047 encoded words, no mail
    # client would recognise the link any more.
    url = "https://coop.example.org/reminders/unsubscribe/" + "Tk_-9" * 40
    msg = build_message("wang@example.org", SUBJECT, BODY, sender="noreply@coop.example.org", unsubscribe_url=url)
    handler, port = smtp_server
    assert send_messages(settings_for(port), [msg])[0].ok
    assert f"List-Unsubscribe: <{url}>\r\n".encode() in handler.envelopes[0].original_content
    assert handler.messages()[0]["List-Unsubscribe"] == f"<{url}>"
    with pytest.raises(ValueError):
        build_message("a@example.org", "主题", "正文", unsubscribe_url="https://x/\r\nBcc: victim@example.org")


def test_build_message_without_unsubscribe_url_has_no_list_headers_and_takes_extra_headers():
    msg = build_message("a@example.org", "主题", "正文", headers={"X-Coop-Reminder": "r-17"})
    assert "List-Unsubscribe" not in msg and "List-Unsubscribe-Post" not in msg
    assert msg["X-Coop-Reminder"] == "r-17"
    assert not msg.is_multipart()
    with pytest.raises(ValueError):
        build_message("a@example.org", "主题", "正文", headers={"Subject": "x"})
    with pytest.raises(ValueError):
        build_message([], "主题", "正文")


def test_line_breaks_in_a_user_entered_subject_cannot_inject_headers():
    msg = build_message("a@example.org", "活动：主题党日\r\nBcc: victim@example.org", "正文")
    assert msg["Subject"] == "活动：主题党日 Bcc: victim@example.org"
    assert msg["Bcc"] is None


def test_settings_from_config_defaults_and_conflicts(tmp_path):
    settings = MailSettings.from_config({"MAIL_USE_SSL": True}, default_outbox_dir=tmp_path)
    assert (settings.server, settings.port, settings.outbox_dir) == ("", 465, tmp_path)
    assert MailSettings.from_config({"MAIL_USE_TLS": True}).port == 587
    assert MailSettings.from_config({}).port == 25
    with pytest.raises(ValueError):
        MailSettings.from_config({"MAIL_USE_TLS": True, "MAIL_USE_SSL": True})


# --- SMTP --------------------------------------------------------------------------------------------------------


def test_batch_goes_out_over_one_smtp_connection_and_decodes_correctly(smtp_server):
    handler, port = smtp_server
    results = send_messages(settings_for(port), [reminder("wang@example.org"), reminder("li@example.org")])

    assert [r.ok for r in results] == [True, True]
    assert [r.recipients for r in results] == [("wang@example.org",), ("li@example.org",)]
    assert len(set(handler.peers)) == 1, "one connection for the whole batch"
    received = handler.messages()
    assert [e.rcpt_tos for e in handler.envelopes] == [["wang@example.org"], ["li@example.org"]]
    for msg, result in zip(received, results):
        assert msg["Subject"] == SUBJECT
        assert str(msg["From"]) == "党建共建平台 <noreply@coop.example.org>"
        assert msg["To"].addresses[0].display_name == "王联络员"
        assert msg["Message-ID"] == result.message_id
        assert LINK in msg.get_body(("plain",)).get_content()
        assert LINK in msg.get_body(("html",)).get_content()
        assert msg["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_refused_recipient_fails_only_its_own_message(smtp_server):
    handler, port = smtp_server
    messages = [reminder("a@example.org"), reminder("nobody@example.org"), reminder("b@example.org")]
    results = send_messages(settings_for(port), messages)

    assert [r.ok for r in results] == [True, False, True]
    assert "550" in results[1].refused["nobody@example.org"]
    assert [e.rcpt_tos for e in handler.envelopes] == [["a@example.org"], ["b@example.org"]]


def test_partially_refused_message_is_delivered_and_reports_the_refusal(smtp_server):
    handler, port = smtp_server
    msg = build_message(["a@example.org", "nobody@example.org"], "主题", "正文")
    (result,) = send_messages(settings_for(port), [msg])
    assert result.ok and set(result.refused) == {"nobody@example.org"}
    assert handler.envelopes[0].rcpt_tos == ["a@example.org"]


def test_unreachable_server_returns_errors_instead_of_raising():
    results = send_messages(settings_for(free_port(), MAIL_TIMEOUT=2), [reminder(), reminder("li@example.org")])
    assert [r.ok for r in results] == [False, False]
    assert all("ConnectionRefusedError" in r.error for r in results)
    assert results[0].message_id != results[1].message_id


def test_caller_message_is_not_modified_so_it_can_be_retried(smtp_server):
    _, port = smtp_server
    msg = reminder()
    send_messages(settings_for(port), [msg])
    assert msg["From"] is None and msg["Message-ID"] is None


# --- TLS and login ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 / localhost, also used as the client's CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("tls")
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def server_tls_context(certificate) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    return context


def authenticator(handler):
    def check(server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"liaison", b"s3cret")
        if ok:
            handler.logins.append(auth_data.login)
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    return check


@pytest.fixture
def starttls_server(certificate):
    handler = Collector()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_tls_context(certificate),
        require_starttls=True,
        auth_required=True,
        # PLAIN only: aiosmtpd's LOGIN does not take smtplib's initial response and would stall the test.
        auth_exclude_mechanism=["LOGIN"],
        authenticator=authenticator(handler),
    )
    controller.start()
    yield handler, controller.port
    controller.stop()


def test_starttls_and_login(starttls_server, certificate):
    handler, port = starttls_server
    settings = settings_for(
        port, MAIL_USE_TLS=True, MAIL_USERNAME="liaison", MAIL_PASSWORD="s3cret", MAIL_CA_FILE=str(certificate[0])
    )
    (result,) = send_messages(settings, [reminder()])
    assert result.ok, result.error
    assert handler.logins == [b"liaison"]
    assert handler.messages()[0]["Subject"] == SUBJECT


def test_wrong_password_and_untrusted_certificate_are_reported(starttls_server, certificate):
    handler, port = starttls_server
    bad_login = settings_for(
        port, MAIL_USE_TLS=True, MAIL_USERNAME="liaison", MAIL_PASSWORD="wrong", MAIL_CA_FILE=str(certificate[0])
    )
    (result,) = send_messages(bad_login, [reminder()])
    assert not result.ok and "SMTPAuthenticationError" in result.error

    untrusted = settings_for(port, MAIL_USE_TLS=True, MAIL_USERNAME="liaison", MAIL_PASSWORD="s3cret")
    (result,) = send_messages(untrusted, [reminder()])
    assert not result.ok and "CERTIFICATE_VERIFY_FAILED" in result.error
    assert handler.envelopes == []


def test_implicit_tls(certificate):
    handler = Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), ssl_context=server_tls_context(certificate))
    controller.start()
    try:
        settings = settings_for(controller.port, MAIL_USE_SSL=True, MAIL_CA_FILE=str(certificate[0]))
        (result,) = send_messages(settings, [reminder()])
    finally:
        controller.stop()
    assert result.ok, result.error
    assert handler.messages()[0]["Subject"] == SUBJECT


# --- outbox folder -----------------------------------------------------------------------------------------------


def test_without_a_server_messages_become_readable_eml_files(tmp_path):
    outbox = tmp_path / "outbox"
    settings = MailSettings.from_config({"MAIL_OUTBOX_DIR": str(outbox), "MAIL_FROM": "党建共建平台 <noreply@coop.example.org>"})
    results = send_messages(settings, [reminder("wang@example.org"), reminder("li@example.org")])

    assert all(isinstance(r, DeliveryResult) and r.ok for r in results)
    files = sorted(outbox.iterdir())
    assert [r.outbox_path for r in results] == files
    # UTC time stamp, random part, ASCII slug from the recipient and the ASCII bits of the subject ("11月").
    assert re.fullmatch(r"\d{8}T\d{12}Z-[0-9a-f]{6}-wang-example-org-11\.eml", files[0].name), files[0].name

    text = files[0].read_text(encoding="utf-8")
    # Readable in a text editor: Chinese subject and body, and the link exactly as sent.
    assert f"Subject: {SUBJECT}" in text
    assert "对方联络员登记了一次党员联学活动" in text
    assert LINK in text
    assert "base64" not in text.lower()
    assert "List-Unsubscribe-Post: List-Unsubscribe=One-Click" in text

    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Subject"] == SUBJECT
    assert parsed.get_body(("plain",)).get_content() == BODY + "\n"
    assert parsed["Message-ID"] == results[0].message_id
    assert list(outbox.glob(".mail-*")) == [], "no temporary files left"


def test_long_html_lines_fall_back_to_quoted_printable_in_the_outbox(tmp_path):
    html = "<p>" + "党建共建" * 400 + "</p>"  # one line, far over 998 bytes
    settings = MailSettings(outbox_dir=tmp_path)
    (result,) = send_messages(settings, [build_message("a@example.org", "长邮件", "正文", html=html)])
    parsed = email.message_from_bytes(result.outbox_path.read_bytes(), policy=policy.default)
    assert parsed.get_body(("html",)).get_content().strip() == html
    assert "正文" in result.outbox_path.read_text(encoding="utf-8")


def test_no_server_and_no_outbox_is_an_error_result():
    (result,) = send_messages(MailSettings(), [reminder()])
    assert not result.ok and "MAIL_OUTBOX_DIR" in result.error


def test_empty_batch_does_nothing(tmp_path):
    assert send_messages(MailSettings(outbox_dir=tmp_path / "o"), []) == []
    assert not (tmp_path / "o").exists()
