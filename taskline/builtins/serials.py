"""Serial numbers: f"{checksum}{code_model}{number:06d}", e.g. "NNNNNN" "0111" "000001".

The 6-digit checksum is HMAC-SHA256 under a secret key over f"{code_model}:{number:06d}",
read as a big-endian integer and reduced mod 10**6 (the bias of 2**256 mod 10**6 is
negligible). Without the secret a serial cannot be forged except by guessing 1 in 10**6.
Pure functions, no I/O, light on purpose: the worker makes serials, the API verifies them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from dataclasses import dataclass

# ASCII letters and digits only, 1 to 16 characters: unambiguous inside a serial (the
# checksum and the number have fixed widths) and short enough for a label.
CODE_MODEL_PATTERN = r"^[0-9A-Za-z]{1,16}$"
MAX_NUMBER = 999_999  # numbers are 0..MAX_NUMBER, written with 6 digits
CHECKSUM_DIGITS = 6

_CODE_MODEL = re.compile(CODE_MODEL_PATTERN)
_SERIAL = re.compile(r"([0-9]{6})([0-9A-Za-z]{1,16})([0-9]{6})")


@dataclass(frozen=True)
class ParsedSerial:
    """The three fields of a well-formed serial (not yet checked against a secret)."""

    checksum: str
    code_model: str
    number: int


def _check(secret: bytes, code_model: str, number: int) -> None:
    """Reject inputs that would make an ambiguous or unverifiable serial."""
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("secret must be non-empty bytes")
    if not isinstance(code_model, str) or not _CODE_MODEL.fullmatch(code_model):
        raise ValueError(f"code_model must match {CODE_MODEL_PATTERN}")
    if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= MAX_NUMBER:
        raise ValueError(f"number must be an int in 0..{MAX_NUMBER}")


def checksum(secret: bytes, code_model: str, number: int) -> str:
    """Six decimal digits derived from HMAC-SHA256(secret, f"{code_model}:{number:06d}")."""
    _check(secret, code_model, number)
    message = f"{code_model}:{number:06d}".encode("ascii")
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return f"{int.from_bytes(digest, 'big') % 10**CHECKSUM_DIGITS:06d}"


def make_serial(secret: bytes, code_model: str, number: int) -> str:
    """The serial of one numbered item of a model."""
    return f"{checksum(secret, code_model, number)}{code_model}{number:06d}"


def iter_serials(secret: bytes, code_model: str, number: int, count: int) -> Iterator[str]:
    """Serials for number .. number + count - 1; arguments are checked before iterating."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError("count must be a non-negative int")
    _check(secret, code_model, number)
    if number + count - 1 > MAX_NUMBER:
        raise ValueError(f"number + count - 1 exceeds {MAX_NUMBER}")
    return (make_serial(secret, code_model, n) for n in range(number, number + count))


def parse_serial(serial: str) -> ParsedSerial | None:
    """Split a serial into its fields, or None when it is malformed."""
    if not isinstance(serial, str):
        return None
    match = _SERIAL.fullmatch(serial)
    if match is None:
        return None
    return ParsedSerial(match[1], match[2], int(match[3]))


def is_genuine(secret: bytes, serial: str) -> bool:
    """True when the serial is well formed and its checksum matches (constant-time compare)."""
    parsed = parse_serial(serial)
    if parsed is None:
        return False
    expected = checksum(secret, parsed.code_model, parsed.number)
    return hmac.compare_digest(expected, parsed.checksum)
