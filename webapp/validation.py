"""Normalising what people type (phone numbers to E.164, email addresses) and masking what logs and lists show
(a phone number's last four digits only)."""

from __future__ import annotations

import functools

import phonenumbers
from email_validator import EmailNotValidError, validate_email


def to_e164(raw: str, *, region: str | None = "US") -> str:
    """Parse a phone number (international, or national in `region`) into E.164, or raise ValueError."""
    text = (raw or "").strip()
    if not text:
        raise ValueError("Enter a phone number.")
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"{text!r} is not a phone number; use the international format, e.g. +14155550123.") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{text!r} is not a valid phone number for its country.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@functools.lru_cache(maxsize=4096)  # every SMS sent is priced by it; the people paged are few
def country_of(number: str | None) -> str:
    """The ISO country (region) code of an E.164 number (for a number of no known range, the main country of
    its calling code: +44 is GB), "unknown" if it has none."""
    try:
        parsed = phonenumbers.parse(number or "", None)
    except phonenumbers.NumberParseException:
        return "unknown"
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(
        parsed.country_code
    )
    return "unknown" if region in (None, "ZZ") else region


def normalise_email(raw: str) -> str:
    """A syntactically valid address, lower-cased; ValueError with a readable message otherwise."""
    try:
        result = validate_email((raw or "").strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    return result.normalized.lower()


def mask_phone(number: str) -> str:
    """A phone number as logs, audit entries and lists may show it: the last four digits only."""
    return "…" + (number or "")[-4:]


def shown_recipient(channel: str, recipient: str | None) -> str | None:
    """A notification's recipient as pages and the API show it: phone numbers (SMS, calls) masked, addresses and
    URLs whole."""
    if not recipient:
        return recipient
    return mask_phone(recipient) if str(channel) in ("sms", "voice") else recipient
