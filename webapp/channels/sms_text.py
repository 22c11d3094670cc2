"""SMS length as carriers bill it: GSM-7 or UCS-2 encoding, segment count, and shortening to a cap."""

from __future__ import annotations

from typing import NamedTuple

GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")  # two septets each (escape + character)
GSM7 = "GSM-7"
UCS2 = "UCS-2"
ELLIPSIS = "…"  # not in GSM-7: a shortened GSM-7 text is measured with it, as sent


class SmsLength(NamedTuple):
    encoding: str
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int


def measure(text: str) -> SmsLength:
    """Encoding, length in units and segments: 160/153 septets for GSM-7, 70/67 UTF-16 units for UCS-2."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENDED for ch in text):
        units = sum(2 if ch in GSM7_EXTENDED else 1 for ch in text)
        single, multi, encoding = 160, 153, GSM7
    else:
        units = len(text.encode("utf-16-le")) // 2  # an emoji is two units (a surrogate pair)
        single, multi, encoding = 70, 67, UCS2
    if units <= single:
        return SmsLength(encoding, units, 1 if units else 0)
    return SmsLength(encoding, units, -(-units // multi))


def shorten(text: str, max_segments: int, *, suffix: str = "") -> str:
    """`text + suffix` if it fits in `max_segments`, else `text` cut at a word boundary with '…', then
    `suffix` (kept whole: an ACK code must survive), so that it fits.

    Cuts only between characters (never inside a surrogate pair or an escape), so nothing is garbled."""
    if max_segments < 1 or measure(text + suffix).segments <= max_segments:
        return text + suffix
    low, high = 0, len(text)  # the longest prefix that fits with the ellipsis
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle].rstrip() + ELLIPSIS + suffix).segments <= max_segments:
            low = middle
        else:
            high = middle - 1
    prefix = text[:low]
    boundary = max(prefix.rfind(" "), prefix.rfind("\n"))
    if boundary > low // 2:  # a word boundary that does not throw away half the message
        prefix = prefix[:boundary]
    return prefix.rstrip() + ELLIPSIS + suffix
