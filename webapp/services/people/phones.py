"""Phone numbers: add (E.164), label, primary, SMS verification codes, opt-out state."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app

from webapp import outbox
from webapp.channels.sms_text import measure
from webapp.extensions import db
from webapp.models import Channel, Notification, NotificationStatus, PhoneNumber, User, utcnow
from webapp.security import constant_time_equals, decrypt_secret, encrypt_secret
from webapp.services import audit
from webapp.validation import to_e164

MAX_CODE_ATTEMPTS = 5
VERIFICATION_SUBJECT = "Phone verification"
# What the delivery log, the inbox and the API show of a verification SMS: the code reaches the number only,
# so typing it back proves possession of the phone.
HIDDEN_BODY = "verification code (hidden)"
RESEND_AFTER = timedelta(seconds=60)  # one code a minute per number: no SMS flood from the button
CODE_DIGITS = 6


class PhoneError(ValueError):
    def __init__(self, message: str, *, field: str | None = None):
        super().__init__(message)
        self.field = field


def add(user: User, *, number: str, label: str, by: User, region: str | None = None) -> PhoneNumber:
    """Normalise `number` to E.164 (national formats in `region`) and add it; the first becomes primary."""
    try:
        e164 = to_e164(number, region=region or current_app.config["DEFAULT_PHONE_REGION"])
    except ValueError as exc:
        raise PhoneError(str(exc), field="number") from None
    if any(p.number == e164 for p in user.phone_numbers):
        raise PhoneError(f"This user already has {e164}.", field="number")
    phone = PhoneNumber(number=e164, label=label.strip() or "Mobile", is_primary=not user.phone_numbers)
    user.phone_numbers.append(phone)
    db.session.flush()
    audit.record(actor=by, action="phone.add", target=phone, summary=f"added {phone.masked} to {user.email}")
    return phone


def relabel(phone: PhoneNumber, *, label: str, by: User) -> None:
    old, phone.label = phone.label, label.strip() or "Mobile"
    audit.record(actor=by, action="phone.label", target=phone, changes={"label": [old, phone.label]})


def make_primary(phone: PhoneNumber, *, by: User) -> None:
    if phone.is_primary:
        return
    for other in phone.user.phone_numbers:
        other.is_primary = False
    db.session.flush()  # the partial unique index allows one primary per user at a time
    phone.is_primary = True
    db.session.flush()
    audit.record(actor=by, action="phone.primary", target=phone, summary=f"{phone.masked} made primary")


def remove(phone: PhoneNumber, *, by: User) -> None:
    user = phone.user
    was_primary = phone.is_primary
    audit.record(actor=by, action="phone.remove", target=phone, summary=f"removed {phone.masked} from {user.email}")
    user.phone_numbers.remove(phone)
    db.session.flush()
    if was_primary and user.phone_numbers:
        user.phone_numbers[0].is_primary = True
        db.session.flush()


def set_opt_out(phone: PhoneNumber, opted_out: bool, *, via: str, by: User, now: datetime | None = None) -> bool:
    """Record an opt-out (or opt-in) with when and how it was set."""
    if phone.opted_out == opted_out:
        return False
    phone.opted_out = opted_out
    phone.opted_out_at = now or utcnow()
    phone.opted_out_via = via[:60]
    audit.record(
        actor=by,
        action="phone.opt_out" if opted_out else "phone.opt_in",
        target=phone,
        summary=f"{phone.masked} {'opted out' if opted_out else 'opted in'} via {via}",
    )
    return True


def _code_hash(phone: PhoneNumber, code: str) -> str:
    key = hashlib.sha256(b"opsrelay-phone-code:" + current_app.config["SECRET_KEY"].encode()).digest()
    return hmac.new(key, f"{phone.id}:{phone.number}:{code}".encode(), hashlib.sha256).hexdigest()


def start_verification(phone: PhoneNumber, *, by: User, now: datetime | None = None) -> Notification:
    """A new code: its hash and expiry on the phone, and a pending SMS carrying it.

    The SMS is queued through the outbox: it leaves when the caller commits."""
    now = now or utcnow()
    ttl = timedelta(seconds=current_app.config["PHONE_CODE_TTL_SECONDS"])
    if phone.verify_expires_at is not None and phone.verify_expires_at - ttl + RESEND_AFTER > now:
        raise PhoneError("A code was sent less than a minute ago; wait a moment before asking again.")
    code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
    phone.verify_code_hash = _code_hash(phone, code)
    phone.verify_code_encrypted = encrypt_secret(code)
    phone.verify_expires_at = now + ttl
    phone.verify_attempts = 0
    length = measure(_text(code))
    notification = Notification(
        event_id=None,
        user_id=phone.user_id,
        channel=Channel.SMS,
        recipient=phone.number,
        subject=VERIFICATION_SUBJECT,
        body=HIDDEN_BODY,
        status=NotificationStatus.QUEUED,
        queued_at=now,
        sms_encoding=length.encoding,
        sms_segments=length.segments,
    )
    db.session.add(notification)
    db.session.flush()
    outbox.deliver([notification.id])
    audit.record(actor=by, action="phone.verify_start", target=phone, summary=f"code sent to {phone.masked}")
    return notification


def _text(code: str) -> str:
    return f"OpsRelay: your verification code is {code}. It expires in a few minutes."


def is_verification(notification: Notification) -> bool:
    return notification.event_id is None and notification.subject == VERIFICATION_SUBJECT


def verification_text(notification: Notification) -> str | None:
    """The SMS text of a verification notification, with the current code of its number; None once the code
    was used (nothing worth sending). An expired code is still sent: typing it back says it expired."""
    phone = db.session.scalars(
        db.select(PhoneNumber).where(
            PhoneNumber.user_id == notification.user_id, PhoneNumber.number == notification.recipient
        )
    ).first()
    if phone is None or not phone.verify_code_encrypted:
        return None
    try:
        return _text(decrypt_secret(phone.verify_code_encrypted))
    except ValueError:
        return None


def _clear_code(phone: PhoneNumber) -> None:
    phone.verify_code_hash = None
    phone.verify_code_encrypted = None
    phone.verify_expires_at = None
    phone.verify_attempts = 0


def confirm(phone: PhoneNumber, code: str, *, by: User, now: datetime | None = None) -> None:
    """Mark the phone verified if `code` matches the live code; PhoneError (on field "code") otherwise.

    Each try takes one of the MAX_CODE_ATTEMPTS with one conditional UPDATE before the code is compared, so
    concurrent guesses cannot evaluate more than that many (the caller commits, wrong tries included)."""
    now = now or utcnow()
    if phone.verify_code_hash is None or phone.verify_expires_at is None:
        raise PhoneError("No code was sent to this number; send one first.", field="code")
    if phone.verify_expires_at <= now:
        raise PhoneError("This code has expired; send a new one.", field="code")
    taken = db.session.execute(
        sa.update(PhoneNumber)
        .where(
            PhoneNumber.id == phone.id,
            PhoneNumber.verify_code_hash == phone.verify_code_hash,
            PhoneNumber.verify_attempts < MAX_CODE_ATTEMPTS,
        )
        .values(verify_attempts=PhoneNumber.verify_attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(phone, ["verify_attempts", "verify_code_hash"])
    if not taken:
        raise PhoneError("Too many wrong codes; send a new one.", field="code")
    if not constant_time_equals(_code_hash(phone, code.strip()), phone.verify_code_hash):
        raise PhoneError("That code is not right.", field="code")
    phone.verified_at = now
    _clear_code(phone)
    audit.record(actor=by, action="phone.verify", target=phone, summary=f"{phone.masked} verified")
