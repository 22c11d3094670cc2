"""SMS encoding and segments as Twilio bills them, and shortening to SMS_MAX_SEGMENTS."""

from __future__ import annotations

import pytest

from webapp.channels.sms_text import GSM7, UCS2, measure, shorten


@pytest.mark.parametrize(
    ("text", "encoding", "segments"),
    [
        ("", GSM7, 0),
        ("a" * 160, GSM7, 1),
        ("a" * 161, GSM7, 2),  # 153 per segment once concatenated
        ("a" * 306, GSM7, 2),
        ("a" * 307, GSM7, 3),
        ("€" * 80, GSM7, 1),  # extension characters take two septets
        ("€" * 81, GSM7, 2),
        ("é" * 160, GSM7, 1),  # é is in the GSM-7 basic set
        ("ł" + "a" * 69, UCS2, 1),
        ("ł" + "a" * 70, UCS2, 2),  # one non-GSM character: 70, then 67 per segment
        ("🚨" + "a" * 68, UCS2, 1),  # an emoji is two UTF-16 units
        ("🚨" + "a" * 69, UCS2, 2),
    ],
)
def test_encoding_and_segments(text, encoding, segments):
    measured = measure(text)
    assert (measured.encoding, measured.segments) == (encoding, segments)


def test_shorten_keeps_short_text_and_cuts_long_text_at_a_word():
    assert shorten("disk full on db-1", 1) == "disk full on db-1"
    text = " ".join(["word"] * 200)
    short = shorten(text, 2)
    assert short.endswith("word…")
    assert measure(short).segments <= 2
    assert len(short) > 100


def test_shorten_never_splits_an_emoji():
    text = "🚨" * 300
    short = shorten(text, 1)
    assert measure(short).segments == 1
    short.encode("utf-8")  # a lone surrogate would raise here
    assert set(short[:-1]) == {"🚨"}
