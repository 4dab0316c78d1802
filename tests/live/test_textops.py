"""Unit tests of the live layer's codec and text arithmetic (no server needed)."""

from __future__ import annotations

import pytest
from pycrdt import Doc, Text

from app.live import messages
from app.live.messages import Kind, ProtocolError
from app.live.textops import apply_edits, edits, merge, summary


def test_apply_edits_touches_only_the_difference_with_multibyte_text() -> None:
    doc = Doc()
    text = doc.get("content", type=Text)
    old = "# T\n\nHello 😀 world.\nSecond para here.\n"
    text += old
    new = "# T\n\nHello 😀 brave world!\nSecond para.\nThird\n"
    with doc.transaction():
        apply_edits(text, old, edits(old, new))
    assert str(text) == new
    assert summary(old, new) == "Live edit: +2 −1 words"


def test_merge_different_paragraphs_and_same_words() -> None:
    assert merge("p1\n\np2\n", "p1 live\n\np2\n", "p1\n\np2 api\n").text == "p1 live\n\np2 api\n"
    assert merge("one two three\n", "one TWO three\n", "one two THREE\n").text == (
        "one TWO THREE\n"
    )
    both = merge("ship on Friday\n", "ship on Monday\n", "ship on Sunday\n")
    assert both.text == "ship on Monday Sunday\n" and both.conflicts == 1


def test_decode_round_trip_and_rejects_garbage() -> None:
    assert messages.decode(messages.encode_update(b"\x00\x00")).kind is Kind.UPDATE
    assert messages.decode(messages.encode_sync_step1(b"\x00")).kind is Kind.SYNC_STEP1
    for frame in (b"", b"\x00", b"\x00\x07\x01", b"\x09", b"\x00\x02\x05\x01"):
        with pytest.raises(ProtocolError):
            messages.decode(frame)
