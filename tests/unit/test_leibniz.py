"""Unit tests of tasks.leibniz. mpmath's pi is the known value here, and only here."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest

from taskline.builtins import leibniz
from taskline.builtins.leibniz import (
    MAX_EM_DIGITS,
    MAX_SERIES_DIGITS,
    Bracket,
    EmPlan,
    PiProgress,
    compute_pi,
    em_bracket,
    em_plan,
    euler_numbers,
    iter_pi,
    series_brackets,
)


def pi_truncated(digits: int) -> str:
    """Pi cut (not rounded) after `digits` decimals, from mpmath."""
    with mpmath.workdps(digits + 40):
        text = mpmath.nstr(mpmath.pi, digits + 30, strip_zeros=False)
    assert set(text[digits + 2 : digits + 28]) != {"9"}  # rounding could not carry this far
    return text[: digits + 2]


def to_mpf(x: Fraction) -> mpmath.mpf:
    """A fraction as an mpf at the current precision."""
    return mpmath.mpf(x.numerator) / x.denominator


def leibniz_partial_sum(n: int) -> Fraction:
    """S_n = 4 * sum_{k<n} (-1)**k / (2k + 1), exactly."""
    return sum((Fraction(4 * (-1) ** k, 2 * k + 1) for k in range(n)), Fraction(0))


def contains_pi(b: Bracket) -> bool:
    """Whether the bracket really encloses pi."""
    with mpmath.workdps(b.bits // 3 + 60):
        return to_mpf(b.lower) <= mpmath.pi <= to_mpf(b.upper)


def check_snapshots(snapshots: list[PiProgress], digits: int) -> None:
    """Shared invariants of a progress stream."""
    assert snapshots, "no snapshot"
    for before, after in zip(snapshots, snapshots[1:], strict=False):
        assert after.terms >= before.terms
        assert after.certain_digits >= before.certain_digits
    for p in snapshots:
        assert 0 <= p.certain_digits <= digits
        assert p.total_terms >= p.terms
        assert p.estimate.startswith("3.")
    assert all(not p.done and p.value is None for p in snapshots[:-1])
    last = snapshots[-1]
    assert last.done and last.certain_digits == digits
    assert last.value == pi_truncated(digits)
    assert len(last.estimate) == digits + 4
    assert last.estimate[: digits + 2] == last.value  # the midpoint lies in the same cell


# ---------------------------------------------------------------- series


@pytest.mark.parametrize("digits", range(1, MAX_SERIES_DIGITS))
def test_series_gives_pi_truncated(digits: int) -> None:
    result = compute_pi(digits, "series")
    assert result.done
    assert result.value == pi_truncated(digits)
    assert result.certain_digits == digits
    assert len(result.estimate) == digits + 4


@pytest.mark.slow
@pytest.mark.timeout(600)  # about a minute alone; more on a loaded machine
def test_series_ten_digits() -> None:
    result = compute_pi(10, "series")
    assert result.value == pi_truncated(10)
    assert result.terms > 9 * 10**10  # pi = 3.1415926535|8979: 1e-11 from the next grid point


def test_series_bracket_encloses_exact_partial_sums() -> None:
    """Small chunks: compare with S_n and S_(n+1) computed exactly."""
    brackets = series_brackets(chunk_terms=64)
    for _ in range(5):
        b = next(brackets)
        s_n = leibniz_partial_sum(b.terms)
        s_next = s_n + Fraction(4 * (-1) ** b.terms, 2 * b.terms + 1)
        assert b.lower <= s_n < s_next <= b.upper
        # The widening for rounding is tiny next to the bracket itself.
        assert (s_n - b.lower) + (b.upper - s_next) < Fraction(1, 10**12)
        assert contains_pi(b)


@pytest.mark.parametrize("digits", range(1, 9))
def test_series_certification(digits: int) -> None:
    """The stopping bracket contains pi and both ends truncate to the same decimals."""
    scale = 10**digits
    for b in series_brackets():
        assert contains_pi(b)
        if (b.lo * scale) >> b.bits == (b.hi * scale) >> b.bits:
            break
    lower = str((b.lo * scale) >> b.bits)
    assert f"{lower[0]}.{lower[1:]}" == pi_truncated(digits)


def test_series_rejects_index_overflow() -> None:
    summer = leibniz._PairSummer(8)
    summer.pairs = 1 << 51
    with pytest.raises(OverflowError):
        summer.run(1)


def test_series_progress_snapshots() -> None:
    snapshots = list(iter_pi(6, chunk_terms=1 << 16))
    assert len(snapshots) > 10
    check_snapshots(snapshots, 6)
    terms = [p.terms for p in snapshots]
    assert terms == sorted(set(terms))  # strictly increasing
    assert terms[0] == 1 << 16
    final = snapshots[-1].terms
    for p in snapshots[1:]:  # the midpoint is accurate early, so is the estimated total
        assert final / 2 <= p.total_terms <= 2 * final
        assert abs(float(p.estimate) - float(mpmath.pi)) < 1e-6


# ---------------------------------------------------------------- euler-maclaurin


@pytest.mark.parametrize("digits", range(1, 21))
def test_em_small_digits(digits: int) -> None:
    assert compute_pi(digits, "euler-maclaurin").value == pi_truncated(digits)


@pytest.mark.parametrize("digits", [300, 1000, MAX_EM_DIGITS])
def test_em_many_digits(digits: int) -> None:
    result = compute_pi(digits, "euler-maclaurin")
    assert result.value == pi_truncated(digits)
    assert result.certain_digits == digits


def test_em_plain_python_ints(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module must also work without gmpy2."""
    monkeypatch.setattr(leibniz, "_mpz", int)
    assert compute_pi(500, "euler-maclaurin").value == pi_truncated(500)


def test_euler_numbers() -> None:
    numbers = euler_numbers(40)
    assert numbers[:6] == [1, -1, 5, -61, 1385, -50521]
    assert numbers == [mpmath.eulernum(2 * m, exact=True) for m in range(40)]


@pytest.mark.parametrize("n", [2, 10, 20])
def test_expansion_envelopes_the_tail(n: int) -> None:
    """pi - S_n against 2 * sum E_2m / N**(2m+1): error at most, and signed as, the next term."""
    big_n = 2 * n
    euler = euler_numbers(14)
    with mpmath.workdps(60):
        tail = 4 * mpmath.nsum(lambda k: (-1) ** k / (2 * k + 1), [n, mpmath.inf])
        s_n = leibniz_partial_sum(n)
        assert abs(tail - (mpmath.pi - to_mpf(s_n))) < mpmath.mpf(10) ** -50
        partial = mpmath.mpf(0)
        for m, e in enumerate(euler):
            rest = tail - partial
            first_omitted = 2 * mpmath.mpf(e) / mpmath.mpf(big_n) ** (2 * m + 1)
            assert rest * first_omitted > 0
            assert abs(rest) <= abs(first_omitted)
            partial += first_omitted


@pytest.mark.parametrize("bits", [12, 20, 300])
@pytest.mark.parametrize("corrections", range(1, 9))
def test_em_bracket_small_n(corrections: int, bits: int) -> None:
    """Few bits make the rounding slack matter; many make the neglected term matter."""
    b = em_bracket(EmPlan(terms=10, corrections=corrections, bits=bits))
    assert b.terms == 10
    assert contains_pi(b)
    neglected = Fraction(2 * abs(euler_numbers(corrections + 1)[-1]), 20 ** (2 * corrections + 1))
    assert b.upper - b.lower <= neglected + Fraction(20, 2**bits)


def test_em_plan_meets_target() -> None:
    target = 1010
    plan = em_plan(target)
    assert plan.terms % 2 == 0 and plan.corrections >= 1
    last = euler_numbers(plan.corrections + 1)[-1]
    assert Fraction(2 * abs(last), (2 * plan.terms) ** (2 * plan.corrections + 1)) < Fraction(
        1, 10**target
    )
    assert 2**plan.bits > 10**target


def test_em_progress_snapshots() -> None:
    snapshots = list(iter_pi(2000, "euler-maclaurin", chunk_terms=1000))
    assert len(snapshots) > 5
    check_snapshots(snapshots, 2000)


def test_em_redoes_a_run_that_falls_short(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plan too weak to certify must not give digits; a stronger run follows."""
    real_plan = leibniz.em_plan
    calls: list[int] = []

    def weak_first(target_digits: int) -> EmPlan:
        calls.append(target_digits)
        if len(calls) == 1:
            return EmPlan(terms=10, corrections=2, bits=200)
        return real_plan(target_digits)

    monkeypatch.setattr(leibniz, "em_plan", weak_first)
    snapshots = list(iter_pi(50, "euler-maclaurin"))
    assert len(calls) == 2 and calls[1] > calls[0]
    check_snapshots(snapshots, 50)
    assert snapshots[-1].terms > 10  # the first run's terms count too


# ---------------------------------------------------------------- arguments


@pytest.mark.parametrize(
    ("digits", "method"),
    [
        (0, "series"),
        (-1, "series"),
        (MAX_SERIES_DIGITS + 1, "series"),
        (0, "euler-maclaurin"),
        (MAX_EM_DIGITS + 1, "euler-maclaurin"),
        (5, "bbp"),
        (5, ""),
    ],
)
def test_invalid_arguments(digits: int, method: str) -> None:
    with pytest.raises(ValueError):
        iter_pi(digits, method)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        compute_pi(digits, method)  # type: ignore[arg-type]


@pytest.mark.parametrize("digits", ["3", 3.0, True, None])
def test_digits_must_be_int(digits: object) -> None:
    with pytest.raises(TypeError):
        iter_pi(digits)  # type: ignore[arg-type]


@pytest.mark.parametrize("chunk_terms", [0, 1, -5, 2.5, True])
def test_invalid_chunk_terms(chunk_terms: object) -> None:
    with pytest.raises(ValueError):
        iter_pi(3, chunk_terms=chunk_terms)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        series_brackets(chunk_terms)  # type: ignore[arg-type]
