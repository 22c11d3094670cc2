"""Email through Flask-Mail (the customer's SmtpConfig, else the app's MAIL_* settings): multipart text + HTML.

One path for every message: a Flask-Mail `Message`, sent through `VerifiedConnection` — Flask-Mail's
`Connection` with the socket opened by `open_smtp()` (the one place a connection to a mail server starts:
verified TLS with an SSL context, a timeout, AUTH whenever a username is set). SMTP 4xx answers are transient
(retried), 5xx permanent; the Message-ID (on the sender's domain) is the provider id.

`EMAIL_BACKEND` chooses where messages go: `smtp` (the default), `console` (logged and marked simulated, like
the console SMS) or `file` (an .eml file per message in `EMAIL_FILE_DIR`). The console and file backends
suppress the connection as Flask-Mail's MAIL_SUPPRESS_SEND does, so `mail.record_messages()` sees every message
whatever the backend.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.mime.base import MIMEBase
from email.utils import make_msgid
from pathlib import Path

from flask_mail import Connection, Message

from webapp import egress
from webapp.channels.base import PermanentError, SendResult, TransientError

log = logging.getLogger(__name__)

BACKENDS = ("smtp", "console", "file")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str  # none, starttls, ssl
    username: str | None
    password: str | None
    from_email: str
    from_name: str | None = None
    reply_to: str | None = None
    timeout: float = 30
    ca_file: str | None = None  # trust this CA (a private relay's); the system's store otherwise
    source: str = "app"  # "smtp config #<id>" or "app": said in errors


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    text: str
    html: str | None = None
    # The same key on every attempt gives every attempt the same Message-ID: mail systems drop the copy.
    idempotency_key: str | None = None


class AlternativeMessage(Message):
    """Flask-Mail's Message, as multipart/alternative (text + HTML) when it has no attachments, rather than
    an alternative wrapped in a multipart/mixed of one part."""

    def _message(self) -> MIMEBase:
        built = super()._message()
        parts = built.get_payload() if built.is_multipart() else None
        if self.attachments or not parts or len(parts) != 1 or parts[0].get_content_type() != "multipart/alternative":
            return built
        alternative = parts[0]
        for name, value in built.items():
            if name.lower() not in {"content-type", "mime-version"}:
                alternative[name] = value
        alternative.policy = built.policy
        return alternative


def build_message(settings: SmtpSettings, email: Email) -> AlternativeMessage:
    sender = (settings.from_name, settings.from_email) if settings.from_name else settings.from_email
    message = AlternativeMessage(
        subject=email.subject,
        recipients=[email.to],
        body=email.text,
        html=email.html,
        sender=sender,
        reply_to=settings.reply_to,
    )
    domain = settings.from_email.rpartition("@")[2] or "opsrelay.local"
    key = email.idempotency_key
    message.msgId = f"<{key}@{domain}>" if key else make_msgid(domain=domain)
    return message


def open_smtp(settings: SmtpSettings) -> smtplib.SMTP:
    """Connect to the mail server (TLS verified against the system's CAs or SMTP_CA_FILE) and log in.
    The only place a connection to a mail server is opened."""
    context = ssl.create_default_context(cafile=settings.ca_file)
    if settings.security == "ssl":  # both open their socket under the egress policy
        host = _SmtpSsl(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        host = _Smtp(settings.host, settings.port, timeout=settings.timeout)
    try:
        if settings.security == "starttls":
            host.starttls(context=context)
        if settings.username:
            host.login(settings.username, settings.password or "")
    except BaseException:
        host.close()
        raise
    return host


@dataclass
class _MailState:
    """What Flask-Mail's Connection reads from its `mail` (a per-send `_Mail`)."""

    settings: SmtpSettings
    suppress: bool
    max_emails: int | None = None
    debug: int = 0


class VerifiedConnection(Connection):
    """Flask-Mail's Connection, opening the socket through open_smtp (its own opens TLS without an SSL context,
    so without checking the server's certificate)."""

    def __init__(self, settings: SmtpSettings, *, suppress: bool):
        super().__init__(_MailState(settings, suppress))  # type: ignore[arg-type]

    def configure_host(self) -> smtplib.SMTP:
        return open_smtp(self.mail.settings)

    def __exit__(self, exc_type, exc_value, tb) -> None:
        if self.host is not None:
            try:
                self.host.quit()
            except (smtplib.SMTPException, OSError):  # the answer is in; a failed QUIT changes nothing
                self.host.close()


def _classify(exc: smtplib.SMTPResponseException, settings: SmtpSettings) -> Exception:
    """4xx: the server asks to try later; 5xx: it refuses for good."""
    detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
    detail = egress.excerpt(detail) or ""
    message = f"SMTP {exc.smtp_code} from {settings.host} ({settings.source}): {detail}"
    if 400 <= exc.smtp_code < 500:
        return TransientError(message, code=str(exc.smtp_code))
    return PermanentError(message, code=str(exc.smtp_code))


class _Smtp(smtplib.SMTP):
    """smtplib's client, its socket opened under the egress policy (TLS still checks the host's name)."""

    def _get_socket(self, host, port, timeout):
        return egress.create_connection(host, port, timeout, source_address=self.source_address)


class _SmtpSsl(smtplib.SMTP_SSL):
    def _get_socket(self, host, port, timeout):
        sock = egress.create_connection(host, port, timeout, source_address=self.source_address)
        return self.context.wrap_socket(sock, server_hostname=self._host)


class SmtpEmail:
    """Sends one message per connection: notifications are few and each one's outcome is its own."""

    def __init__(self, backend: str = "smtp", *, file_dir: str | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"email backend must be one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.file_dir = Path(file_dir) if file_dir else None

    @property
    def simulated(self) -> bool:
        return self.backend != "smtp"

    def send(self, settings: SmtpSettings, email: Email) -> SendResult:
        message = build_message(settings, email)
        try:
            with VerifiedConnection(settings, suppress=self.simulated) as connection:
                connection.send(message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, detail = next(iter(exc.recipients.values()))
            raise _classify(smtplib.SMTPResponseException(code, detail), settings) from None
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth failed, ...
            raise _classify(exc, settings) from None
        except ssl.SSLCertVerificationError as exc:
            raise PermanentError(
                f"TLS certificate of {settings.host} not trusted ({settings.source}): {exc.verify_message}",
                code="tls",
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"{settings.host} ({settings.source}): {exc}", code="smtp") from None
        except egress.EgressUnresolved:
            raise PermanentError(
                f"SMTP server {settings.host}:{settings.port} ({settings.source}): the name {settings.host} does not "
                "exist in DNS; check the host name",
                code="dns",
            ) from None
        except egress.EgressBlocked:
            raise PermanentError(
                f"SMTP server {settings.host}:{settings.port} ({settings.source}): {egress.BLOCKED}", code="egress"
            ) from None
        except (smtplib.SMTPException, OSError):  # refused, timed out, TLS failure: never said which (no port scan)
            raise TransientError(
                f"SMTP server {settings.host}:{settings.port} ({settings.source}): {egress.COULD_NOT_CONNECT}",
                code="network",
            ) from None
        if self.backend == "console":
            log.info("simulated email %s to %s: %s\n%s", message.msgId, email.to, email.subject, email.text)
        elif self.backend == "file":
            self._write(message)
        return SendResult(provider_id=message.msgId, simulated=self.simulated)

    def _write(self, message: Message) -> Path:
        directory = self.file_dir or Path("emails")
        directory.mkdir(parents=True, exist_ok=True)
        name = message.msgId.strip("<>").replace("@", "_at_").replace("/", "_")
        path = directory / f"{name}.eml"
        path.write_bytes(message.as_bytes())
        log.info("email %s written to %s", message.msgId, path)
        return path
