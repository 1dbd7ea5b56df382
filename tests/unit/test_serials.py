"""Unit tests of tasks.serials."""

from __future__ import annotations

import hashlib
import hmac
import re

import pytest

from taskline.builtins.serials import (
    CODE_MODEL_PATTERN,
    MAX_NUMBER,
    ParsedSerial,
    checksum,
    is_genuine,
    iter_serials,
    make_serial,
    parse_serial,
)

SECRET = b"unit-test-secret"
OTHER_SECRET = b"another-secret"


def test_checksum_is_the_documented_hmac() -> None:
    digest = hmac.new(SECRET, b"0111:000001", hashlib.sha256).digest()
    expected = f"{int.from_bytes(digest, 'big') % 1_000_000:06d}"
    assert checksum(SECRET, "0111", 1) == expected


def test_checksum_depends_on_every_input() -> None:
    base = checksum(SECRET, "0111", 1)
    assert re.fullmatch(r"[0-9]{6}", base)
    assert checksum(SECRET, "0111", 1) == base  # deterministic
    assert checksum(OTHER_SECRET, "0111", 1) != base
    assert checksum(SECRET, "0112", 1) != base
    assert checksum(SECRET, "0111", 2) != base
    spread = {checksum(SECRET, "0111", n) for n in range(200)}
    assert len(spread) > 190  # a 6-digit hash rarely collides in 200 draws


def test_serial_format() -> None:
    serial = make_serial(SECRET, "0111", 1)
    assert len(serial) == 6 + 4 + 6
    assert serial[6:] == "0111000001"
    assert serial[:6] == checksum(SECRET, "0111", 1)


@pytest.mark.parametrize("code_model", ["0111", "A", "abcDEF0123456789", "999999"])
@pytest.mark.parametrize("number", [0, 1, 42, MAX_NUMBER])
def test_round_trip(code_model: str, number: int) -> None:
    serial = make_serial(SECRET, code_model, number)
    parsed = parse_serial(serial)
    assert parsed == ParsedSerial(checksum(SECRET, code_model, number), code_model, number)
    assert is_genuine(SECRET, serial)


@pytest.mark.parametrize(
    "serial",
    [
        "",
        "123456",
        "123456000001",  # no code model
        "12345A0111000001",  # letter in the checksum
        "1234560111A00001",  # letter in the number
        "123456ABC00001",  # number too short
        "123456" + "A" * 17 + "000001",  # code model too long
        "123456-0111000001",
        "123456 0111000001",
        "1234560111000001\n",
        "١٢٣٤٥٦0111000001",  # non-ASCII digits
        None,
        1234560111000001,
    ],
)
def test_malformed_serials(serial: object) -> None:
    assert parse_serial(serial) is None  # type: ignore[arg-type]
    assert not is_genuine(SECRET, serial)  # type: ignore[arg-type]


def test_every_single_digit_change_is_detected() -> None:
    serial = make_serial(SECRET, "0111", 123456)
    for i, char in enumerate(serial):
        if not char.isdigit():
            continue
        for digit in "0123456789":
            if digit != char:
                assert not is_genuine(SECRET, serial[:i] + digit + serial[i + 1 :])


def test_truncated_serial_is_not_genuine() -> None:
    """Digits may belong to the code model, so a cut serial can still parse; it must not pass."""
    serial = make_serial(SECRET, "0111", 1)
    assert parse_serial(serial[:-1]) is not None
    assert not is_genuine(SECRET, serial[:-1])


def test_wrong_secret_or_model_is_rejected() -> None:
    serial = make_serial(SECRET, "0111", 7)
    assert is_genuine(SECRET, serial)
    assert not is_genuine(OTHER_SECRET, serial)
    assert not is_genuine(SECRET, serial.replace("0111", "0112"))


def test_iter_serials() -> None:
    serials = list(iter_serials(SECRET, "0111", 1, 3))
    assert serials == [make_serial(SECRET, "0111", n) for n in (1, 2, 3)]
    assert list(iter_serials(SECRET, "0111", 5, 0)) == []
    last_two = [parse_serial(s) for s in iter_serials(SECRET, "0111", MAX_NUMBER - 1, 2)]
    assert [p.number for p in last_two if p] == [MAX_NUMBER - 1, MAX_NUMBER]


@pytest.mark.parametrize(
    ("number", "count"),
    [(MAX_NUMBER, 2), (MAX_NUMBER - 1, 3), (0, MAX_NUMBER + 2), (1, -1), (-1, 1)],
)
def test_iter_serials_bounds(number: int, count: int) -> None:
    with pytest.raises(ValueError):
        iter_serials(SECRET, "0111", number, count)  # raises at the call, not lazily


@pytest.mark.parametrize(
    ("secret", "code_model", "number"),
    [
        (b"", "0111", 1),
        ("text", "0111", 1),
        (SECRET, "", 1),
        (SECRET, "01-11", 1),
        (SECRET, "A" * 17, 1),
        (SECRET, "0111\n", 1),
        (SECRET, "0111", MAX_NUMBER + 1),
        (SECRET, "0111", -1),
        (SECRET, "0111", True),
        (SECRET, "0111", 1.0),
    ],
)
def test_invalid_inputs(secret: object, code_model: object, number: object) -> None:
    with pytest.raises(ValueError):
        make_serial(secret, code_model, number)  # type: ignore[arg-type]


def test_pattern_bounds() -> None:
    assert re.fullmatch(CODE_MODEL_PATTERN, "A" * 16)
    assert not re.fullmatch(CODE_MODEL_PATTERN, "A" * 17)
    assert not re.fullmatch(CODE_MODEL_PATTERN, "")
