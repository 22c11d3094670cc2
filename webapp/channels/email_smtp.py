"""Email over SMTP (the customer's SmtpConfig, else the app's MAIL_* settings): multipart text + HTML."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from webapp import egress
from webapp.channels.base import PermanentError, SendResult, TransientError


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


def build_message(settings: SmtpSettings, email: Email) -> EmailMessage:
    message = EmailMessage()
    message["From"] = (
        formataddr((settings.from_name, settings.from_email)) if settings.from_name else settings.from_email
    )
    message["To"] = email.to
    message["Subject"] = email.subject
    if settings.reply_to:
        message["Reply-To"] = settings.reply_to
    domain = settings.from_email.rpartition("@")[2] or "opsrelay.local"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(email.text)
    if email.html:
        message.add_alternative(email.html, subtype="html")
    return message


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

    def send(self, settings: SmtpSettings, email: Email) -> SendResult:
        message = build_message(settings, email)
        context = ssl.create_default_context(cafile=settings.ca_file)
        try:
            if settings.security == "ssl":
                connection = _SmtpSsl(settings.host, settings.port, timeout=settings.timeout, context=context)
            else:
                connection = _Smtp(settings.host, settings.port, timeout=settings.timeout)
            with connection:
                if settings.security == "starttls":
                    connection.starttls(context=context)
                if settings.username:
                    connection.login(settings.username, settings.password or "")
                refused = connection.send_message(message)
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
        except egress.EgressBlocked:
            raise PermanentError(
                f"SMTP server {settings.host}:{settings.port} ({settings.source}): {egress.BLOCKED}", code="egress"
            ) from None
        except (smtplib.SMTPException, OSError):  # refused, timed out, TLS failure: never said which (no port scan)
            raise TransientError(
                f"SMTP server {settings.host}:{settings.port} ({settings.source}): {egress.COULD_NOT_CONNECT}",
                code="network",
            ) from None
        if refused:
            code, detail = next(iter(refused.values()))
            raise _classify(smtplib.SMTPResponseException(code, detail), settings)
        return SendResult(provider_id=message["Message-ID"])
