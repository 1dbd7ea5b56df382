"""Redis replies narrowed to text: a decoding client's pass, anything else fails loudly."""

import pytest

from taskline.core.replies import entries, read_entries, scored, text, text_or_none, texts


def test_text_replies_pass_and_bytes_fail() -> None:
    assert text("a") == "a"
    assert text_or_none(None) is None
    assert texts(["a", "b"]) == ["a", "b"]
    assert scored([("a", "1.5")]) == [("a", 1.5)]
    with pytest.raises(TypeError):
        text(b"a")  # a client made without decode_responses
    with pytest.raises(TypeError):
        texts([b"a"])


def test_stream_entries_are_checked_to_the_field() -> None:
    reply = [("1-0", {"kind": "created"}), ("2-0", {"kind": "ended"})]
    assert entries(reply) == reply
    assert read_entries([("stream", reply)]) == reply
    assert entries(None) == []
    with pytest.raises(TypeError):
        entries([("1-0", {"kind": b"created"})])
    with pytest.raises(TypeError):
        entries({"1-0": {}})
