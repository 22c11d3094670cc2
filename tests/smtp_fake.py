"""A real SMTP server on loopback (aiosmtpd) with STARTTLS or implicit TLS and AUTH, for email tests.

The TLS certificate is self-signed, made here with `cryptography` for 127.0.0.1 and localhost; the app
trusts it through SMTP_CA_FILE, so the client really verifies it. A test can script answers per
recipient: `fail_next("bob@example.com", "451 4.3.0 Try again later")`.
"""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import threading
import warnings
from collections import defaultdict, deque
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

# aiosmtpd warns about AUTH without STARTTLS; in the "ssl" mode the whole connection is TLS.
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Handler:
    def __init__(self, server: FakeSmtp):
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):  # noqa: N802
        scripted = self.server._next_script(address)
        if scripted is not None:
            return scripted
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):  # noqa: N802
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.server._lock:
            self.server.messages.append(message)
            self.server.logins.append(session.auth_data.login.decode() if session.auth_data else None)
            self.server.tls.append(smtp.transport.get_extra_info("ssl_object") is not None)
        return "250 Message accepted"


class FakeSmtp:
    """security: "starttls" (STARTTLS required, AUTH only after it) or "ssl" (implicit TLS)."""

    def __init__(self, cert: Path, key: Path, *, security: str = "starttls", username="mailer", password="s3cret"):  # noqa: S107
        self.username, self.password = username, password
        self.messages: list[EmailMessage] = []
        self.logins: list[str | None] = []
        self.tls: list[bool] = []
        self._script: dict[str, deque[str]] = defaultdict(deque)
        self._lock = threading.Lock()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        self.port = _free_port()
        options = {"authenticator": self._authenticate, "auth_required": True, "auth_require_tls": True}
        if security == "ssl":
            # the whole connection is TLS; aiosmtpd only counts STARTTLS as TLS for AUTH
            options.update(ssl_context=context, auth_require_tls=False)
        else:
            options.update(tls_context=context, require_starttls=True)
        self._controller = Controller(_Handler(self), hostname="127.0.0.1", port=self.port, **options)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        ) == (self.username, self.password)
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    def start(self) -> FakeSmtp:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def fail_next(self, address: str, answer: str, *, times: int = 1) -> None:
        """The next `times` RCPT TO:<address> get `answer` (e.g. "451 4.3.0 Try later", "550 5.1.1 No such user")."""
        with self._lock:
            self._script[address].extend([answer] * times)

    def _next_script(self, address: str) -> str | None:
        with self._lock:
            queue = self._script.get(address)
            return queue.popleft() if queue else None
