"""Pi by the Leibniz series, pi = 4 * sum_{k>=0} (-1)**k / (2k + 1), with certified digits.

Pure maths: no I/O. Both methods produce a proven enclosure ("bracket") of pi and only
report decimals on which both ends of the bracket agree, so every returned digit is proved.

* "series": plain partial sums in float64 with NumPy. S_n (n even) < pi < S_(n+1), and the
  floating-point error of the computed S_n is bounded rigorously (see _PairSummer).
* "euler-maclaurin": S_n in exact fixed point plus the Euler-number expansion of the tail
  (Borwein, Borwein & Dilcher, Amer. Math. Monthly 96 (1989) 681-687), with N = 2n, n even:

      pi - S_n = 2 * (sum_{m<M} E_2m / N**(2m+1) + r_M),
      r_M between 0 and E_2M / N**(2M+1)  (same sign, at most the first omitted term).

  Why the remainder bound holds (derived here, and checked numerically in the tests):
  pi - S_n = 2 * sum_j (-1)**j / (n + 1/2 + j) = integral_0^inf exp(-n t) sech(t/2) dt for
  n even, and sech x = sum_k (-1)**k 2 a_k / (x**2 + a_k**2) with a_k = (k + 1/2) pi.
  Expanding each 1/(x**2 + a_k**2) to M terms leaves the Taylor remainder of sech as
      (-1)**M x**2M * F(x),  F(x) = sum_k (-1)**k 2 / (a_k**(2M-1) (x**2 + a_k**2)).
  F is an alternating sum of decreasing positive terms, so F(x) > 0, and
  F(x) - F(0) = -x**2 * (another such sum) <= 0, with F(0) = |E_2M| / (2M)!. So the remainder
  has the sign of E_2M and is at most |E_2M| x**2M / (2M)! for every real x; integrating
  term by term (Watson's lemma) against the positive kernel exp(-n t) gives the bound on r_M.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import numpy as np

try:  # GMP integers make the arbitrary-precision method 2-3x faster; plain ints also work.
    from gmpy2 import mpz as _mpz

    _HAVE_GMPY2 = True
except ImportError:  # pragma: no cover - depends on the environment
    _mpz = int
    _HAVE_GMPY2 = False

Method = Literal["series", "euler-maclaurin"]
METHODS: tuple[Method, ...] = ("series", "euler-maclaurin")
MAX_SERIES_DIGITS = 10
MAX_EM_DIGITS = 10_000

DEFAULT_CHUNK_TERMS = 1 << 25  # series terms per snapshot: ~20 ms at ~1.7e9 terms/s

_U = Fraction(1, 1 << 53)  # unit roundoff of float64
_BLOCK_PAIRS = 16384  # pairs per NumPy buffer: 3 buffers of 128 KiB stay in L2 (fastest here)
_FLUSH_BLOCKS = 256  # blocks summed in the float accumulator before it is flushed exactly
_EXACT_FLOATS = 1 << 53  # integers below this are exact in float64
_BRACKET_BITS = 200  # series brackets are rounded outwards to multiples of 2**-200
_LOG10_2 = math.log10(2)

# Rough costs measured on the reference machine; they only steer the choice of N and the
# chunk sizes of the arbitrary-precision method, never the result.
_NS_PER_STEP = 300.0
_NS_PER_DIVISION_BIT = 0.066 if _HAVE_GMPY2 else 0.45
_NS_PER_MULADD_BIT = 0.043 if _HAVE_GMPY2 else 0.095
_CHUNK_NS = 25e6
_TWO_OVER_PI_BOUND = 2 / 3  # > 2/pi as pi > 3; only used to estimate sizes of Euler numbers


@dataclass(frozen=True, slots=True)
class PiProgress:
    """One progress snapshot; the last one of a run has done=True and value set."""

    terms: int  # series terms summed so far
    total_terms: int  # current best estimate of the terms needed in all (>= terms)
    estimate: str  # bracket midpoint; digits + 2 decimals when done, fewer meanwhile
    certain_digits: int  # decimals proved by the bracket, 0..digits
    done: bool
    value: str | None  # pi truncated to `digits` decimals when done, else None


@dataclass(frozen=True, slots=True)
class Bracket:
    """Proof that lo / 2**bits <= pi <= hi / 2**bits, reached after `terms` series terms."""

    terms: int
    lo: int
    hi: int
    bits: int

    @classmethod
    def enclosing(cls, terms: int, lower: Fraction, upper: Fraction) -> Bracket:
        """Round an exact rational bracket outwards to a dyadic one (cheap to compare)."""
        lo = (lower.numerator << _BRACKET_BITS) // lower.denominator
        hi = -((-upper.numerator << _BRACKET_BITS) // upper.denominator)
        return cls(terms, lo, hi, _BRACKET_BITS)

    @property
    def lower(self) -> Fraction:
        """Lower end as an exact fraction."""
        return Fraction(self.lo, 1 << self.bits)

    @property
    def upper(self) -> Fraction:
        """Upper end as an exact fraction."""
        return Fraction(self.hi, 1 << self.bits)


# ---------------------------------------------------------------- decimal helpers


def _truncated(x: int, bits: int, decimals: int) -> int:
    """floor(x / 2**bits * 10**decimals): a non-negative number's first decimals as one int."""
    scale: int = 10**decimals  # an int: decimals is not negative
    return (x * scale) >> bits


def _zero_padded(x: int, width: int) -> str:
    """str(x) left-padded to width; split up since CPython caps int -> str at 4300 digits."""
    if width <= 4000:
        return str(x).zfill(width)
    half = width // 2
    high, low = divmod(x, 10**half)
    return _zero_padded(high, width - half) + _zero_padded(low, half)


def _decimal(q: int, decimals: int) -> str:
    """q / 10**decimals written out, e.g. (3141, 3) -> "3.141"."""
    whole, frac = divmod(q, 10**decimals)
    return f"{whole}.{_zero_padded(frac, decimals)}"


def _certain_digits(b: Bracket, digits: int) -> int:
    """Most decimals (<= digits) on which both ends of the bracket truncate equally."""
    # Ends at distance w >= 10**-d differ at d decimals, so start just above -log10(w).
    width_bits = (b.hi - b.lo).bit_length()
    d = min(digits, int((b.bits - width_bits + 1) * _LOG10_2) + 1)
    while d > 0 and _truncated(b.lo, b.bits, d) != _truncated(b.hi, b.bits, d):
        d -= 1
    return max(d, 0)


def _snapshot(
    b: Bracket, digits: int, certain: int, terms: int, total_terms: int, done: bool
) -> PiProgress:
    """Turn a bracket into the snapshot callers see."""
    # Decimals past the certain ones are noise; capping them keeps snapshots cheap.
    decimals = digits + 2 if done else min(digits + 2, certain + 12)
    middle = _truncated(b.lo + b.hi, b.bits + 1, decimals)
    value = _decimal(_truncated(b.lo, b.bits, digits), digits) if done else None
    return PiProgress(
        terms=terms,
        total_terms=max(total_terms, terms),
        estimate=_decimal(middle, decimals),
        certain_digits=certain,
        done=done,
        value=value,
    )


# ---------------------------------------------------------------- method "series"


class _PairSummer:
    """Sums the Leibniz series in pairs with NumPy, keeping a rigorous error bound.

    Pair j is 4/(4j+1) - 4/(4j+3) = 8/(t*t - 1) with t = 4j + 2, so S_2m = 8 * X_m where
    X_m = sum_{j<m} 1/(t*t - 1). Floating-point error, with u = 2**-53:
    * t is an integer below 2**53, exact. fl(t*t) - 1 is within (4/3)u of t*t - 1 relatively
      (t*t / (t*t - 1) <= 4/3 for t >= 2); with the rounding of the subtraction and of the
      division each computed term is x(1 + theta), |theta| <= 4u.
    * Terms are added into a float accumulator at most _FLUSH_BLOCKS times, then the
      accumulator is summed by halving (log2(block) levels), so each term takes part in at
      most d = _FLUSH_BLOCKS + log2(block) additions: error <= gamma_d * sum (Higham, ASNA
      ch. 4, valid for any order of summation), gamma_d = d u / (1 - d u).
    * Flushed sums are added exactly (Fraction). All terms are positive, so the total T
      satisfies |T - X| <= eta X with eta = (1 + 4u) gamma_d + 4u, hence
      |T - X| <= eta / (1 - eta) * T.
    """

    def __init__(self, block: int) -> None:
        if block < 1 or block & (block - 1):
            raise ValueError("block must be a power of two")
        self.block = block
        self.pairs = 0
        self.total = Fraction(0)
        self._offsets = np.arange(block, dtype=np.float64) * 4.0
        self._t = np.empty(block, dtype=np.float64)
        self._acc = np.zeros(block, dtype=np.float64)
        depth = _FLUSH_BLOCKS + block.bit_length() - 1
        gamma = depth * _U / (1 - depth * _U)
        self._eta = (1 + 4 * _U) * gamma + 4 * _U

    def run(self, blocks: int) -> None:
        """Add the next `blocks` blocks of pairs; no Python work per term."""
        if 4 * (self.pairs + blocks * self.block) + 2 >= _EXACT_FLOATS:
            raise OverflowError("too many terms for exact float64 indices")
        t, acc, offsets = self._t, self._acc, self._offsets
        base = 4.0 * self.pairs + 2.0
        step = 4.0 * self.block
        pending = 0
        for _ in range(blocks):
            np.add(offsets, base, out=t)
            np.multiply(t, t, out=t)
            np.subtract(t, 1.0, out=t)
            np.divide(1.0, t, out=t)
            np.add(acc, t, out=acc)
            base += step  # exact: integers below 2**53
            pending += 1
            if pending == _FLUSH_BLOCKS:
                self._flush()
                pending = 0
        if pending:
            self._flush()
        self.pairs += blocks * self.block

    def _flush(self) -> None:
        """Sum the accumulator by halving (known depth) and add it exactly to the total."""
        acc = self._acc
        n = acc.size
        while n > 1:
            n //= 2
            np.add(acc[:n], acc[n : 2 * n], out=acc[:n])
        self.total += Fraction(float(acc[0]))
        acc.fill(0.0)

    def bracket(self) -> Bracket:
        """S_2m - error <= pi <= S_2m + 4/(4m + 1) + error, m = pairs summed."""
        err = self.total * self._eta / (1 - self._eta)
        lower = 8 * (self.total - err)
        upper = 8 * (self.total + err) + Fraction(4, 4 * self.pairs + 1)
        return Bracket.enclosing(2 * self.pairs, lower, upper)


def series_brackets(chunk_terms: int = DEFAULT_CHUNK_TERMS) -> Iterator[Bracket]:
    """Endless proven brackets [S_n, S_(n+1)] (widened by the rounding bound), every chunk."""
    if isinstance(chunk_terms, bool) or not isinstance(chunk_terms, int) or chunk_terms < 2:
        raise ValueError("chunk_terms must be an int >= 2")
    pairs = chunk_terms // 2
    block = min(_BLOCK_PAIRS, 1 << (pairs.bit_length() - 1))
    return _series_brackets(_PairSummer(block), pairs // block)


def _series_brackets(summer: _PairSummer, blocks: int) -> Iterator[Bracket]:
    """Generator behind series_brackets, so argument errors surface at the call."""
    while True:
        summer.run(blocks)
        yield summer.bracket()


def _series_terms_estimate(b: Bracket, digits: int) -> int:
    """Terms n needed: S_n is about pi -+ 1/n, so 1/n must fit in pi's gap to the digit grid."""
    scaled = (b.lo + b.hi) / (1 << (b.bits + 1)) * 10**digits
    gap = min(scaled - math.floor(scaled), math.floor(scaled) + 1 - scaled) / 10**digits
    return max(b.terms, math.ceil(1 / gap)) if gap > 0 else b.terms


def _iter_series(digits: int, chunk_terms: int) -> Iterator[PiProgress]:
    """Snapshots of the plain series until the bracket certifies `digits` decimals."""
    certain = 0
    for b in series_brackets(chunk_terms):
        certain = max(certain, _certain_digits(b, digits))
        done = certain == digits
        total = b.terms if done else _series_terms_estimate(b, digits)
        yield _snapshot(b, digits, certain, b.terms, total, done)
        if done:
            return


# ---------------------------------------------------------------- method "euler-maclaurin"


@dataclass(frozen=True, slots=True)
class EmPlan:
    """Parameters of one Euler-Maclaurin run."""

    terms: int  # n, even: series terms summed exactly (N = 2n in the expansion)
    corrections: int  # M: E_0 .. E_2(M-1) are used, E_2M bounds the remainder
    bits: int  # fixed-point precision


def _log_neglected(m: int, big_n: int) -> float:
    """Natural log of an upper bound on 2 |E_2m| / N**(2m+1), as |E_2m| < 2 (2m)! (2/pi)**(2m+1)."""
    return math.log(4) + math.lgamma(2 * m + 1) + (2 * m + 1) * math.log(_TWO_OVER_PI_BOUND / big_n)


def _corrections_needed(n: int, target_digits: int) -> int | None:
    """Fewest corrections M >= 1 whose neglected term is below 10**-target_digits, if any."""
    big_n = 2 * n
    goal = -target_digits * math.log(10)
    # The bound decreases while (2m+1)(2m+2) < (1.5 N)**2: search only there.
    hi = max(1, int(big_n / (2 * _TWO_OVER_PI_BOUND)) - 1)
    if _log_neglected(hi, big_n) > goal:
        return None
    lo = 1
    while lo < hi:
        mid = (lo + hi) // 2
        if _log_neglected(mid, big_n) <= goal:
            hi = mid
        else:
            lo = mid + 1
    return lo


def em_plan(target_digits: int) -> EmPlan:
    """Cheapest plan (by the cost model) whose neglected error is below 10**-target_digits.

    Larger n means a longer exact partial sum but fewer Euler numbers, whose cost grows
    like M**2 times their size; the model weighs the two.
    """
    best: tuple[float, EmPlan] | None = None
    for k in range(0, 110):
        n = 2 * max(1, round(1.2**k / 2))
        m = _corrections_needed(n, target_digits)
        if m is None:
            continue
        bits = math.ceil(target_digits / _LOG10_2) + n.bit_length() + 4
        euler_bits = _log_neglected(m, 2 * n) / math.log(2) + (2 * m + 1) * math.log2(2 * n)
        cost = n / 2 * (_NS_PER_STEP + bits * _NS_PER_DIVISION_BIT) + m * m / 2 * (
            _NS_PER_STEP + euler_bits / 2 * _NS_PER_MULADD_BIT
        )
        if best is None or cost < best[0]:
            best = (cost, EmPlan(n, m, bits))
    assert best is not None  # large n always works
    return best[1]


def _secant_numbers(count: int, out: list[int], step_ns: float) -> Iterator[None]:
    """Fill `out` with |E_0|, |E_2|, ..., |E_2(count-1)|, yielding every ~step_ns of work.

    Brent & Harvey, "Fast computation of Bernoulli, Tangent and Secant numbers" (2011),
    algorithm SecantNumbers: O(count**2) multiplications by small integers and additions.
    """
    n = count - 1
    s = [_mpz(1)] * count
    for k in range(1, count):
        s[k] = k * s[k - 1]
    work = 0.0
    for k in range(1, count):
        for j in range(k + 1, count):
            s[j] = (j - k) * s[j - 1] + (j - k + 1) * s[j]
        work += (n - k) * (_NS_PER_STEP + s[n].bit_length() * _NS_PER_MULADD_BIT)
        if work >= step_ns:
            work = 0.0
            yield
    out[:] = [int(x) for x in s]


def euler_numbers(count: int) -> list[int]:
    """Signed Euler numbers E_0, E_2, ..., E_2(count-1): 1, -1, 5, -61, 1385, ..."""
    secants: list[int] = []
    for _ in _secant_numbers(count, secants, math.inf):
        pass
    return [-e if m % 2 else e for m, e in enumerate(secants)]


def _corrected(s: int, n: int, euler: Sequence[int], bits: int) -> tuple[int, int]:
    """Bracket pi * 2**bits from s and the Euler numbers E_0 .. E_2M (M = len(euler) - 1).

    s is sum of floor(8 * 2**bits / ((4j+1)(4j+3))) over j < n/2, so S_n * 2**bits is in
    [s, s + n/2]. C = sum_{m<M} E_2m / N**(2m+1) is evaluated by Horner with floor divisions,
    which leaves C * 2**bits in [c, c + 2). The remainder bound is the module docstring's.
    """
    big_n = 2 * n
    m = len(euler) - 1
    step = big_n * big_n
    h = _mpz(0)
    for e in reversed(euler[:m]):
        h = (_mpz(e) << bits) + h // step
    c = h // big_n
    last = euler[m]
    t = -(-(_mpz(abs(last)) << bits) // _mpz(big_n) ** (2 * m + 1))  # ceil |E_2M| 2**bits / N**..
    lo = s + 2 * c - (2 * t if last < 0 else 0)
    hi = s + n // 2 + 2 * c + 4 + (2 * t if last > 0 else 0)
    return int(lo), int(hi)


def _em_steps(plan: EmPlan, chunk_pairs: int, step_ns: float) -> Iterator[tuple[Bracket, bool]]:
    """Brackets while the plan runs; the last one (flag True) is the full expansion's."""
    n, bits = plan.terms, plan.bits
    eight = _mpz(8) << bits
    s = _mpz(0)
    pairs = n // 2
    for start in range(0, pairs, chunk_pairs):
        stop = min(start + chunk_pairs, pairs)
        for j in range(start, stop):
            s += eight // ((4 * j + 1) * (4 * j + 3))
        # S_2k * 2**bits is in [s, s + k] and pi <= S_(2k+1) = S_2k + 4/(4k + 1).
        upper = s + stop - (-(4 << bits) // (4 * stop + 1))
        yield Bracket(2 * stop, int(s), int(upper), bits), False
    rough = Bracket(n, *_corrected(s, n, [1, -1], bits), bits)  # first correction only
    yield rough, False
    secants: list[int] = []
    for _ in _secant_numbers(plan.corrections + 1, secants, step_ns):
        yield rough, False
    euler = [-e if m % 2 else e for m, e in enumerate(secants)]
    yield Bracket(n, *_corrected(s, n, euler, bits), bits), True


def em_bracket(plan: EmPlan) -> Bracket:
    """The proven bracket of a whole Euler-Maclaurin run (no progress)."""
    last = None
    for bracket, _ in _em_steps(plan, max(1, plan.terms // 2), math.inf):
        last = bracket
    assert last is not None
    return last


def _iter_em(digits: int, chunk_terms: int | None) -> Iterator[PiProgress]:
    """Snapshots of Euler-Maclaurin runs; a run that falls short is redone with more guard."""
    guard = 10  # extra decimals, so only a run of ~10 nines or zeros in pi forces a redo
    earlier = 0  # terms summed by runs that fell short
    certain = 0
    while True:
        plan = em_plan(digits + guard)
        if chunk_terms is None:
            chunk_pairs = int(_CHUNK_NS / (_NS_PER_STEP + plan.bits * _NS_PER_DIVISION_BIT))
        else:
            chunk_pairs = chunk_terms // 2
        total = earlier + plan.terms
        for b, final in _em_steps(plan, max(1, chunk_pairs), _CHUNK_NS):
            certain = max(certain, _certain_digits(b, digits))
            done = final and certain == digits
            yield _snapshot(b, digits, certain, earlier + b.terms, total, done)
            if done:
                return
        earlier = total
        guard *= 2


# ---------------------------------------------------------------- public entry points


def iter_pi(
    digits: int, method: Method = "series", *, chunk_terms: int | None = None
) -> Iterator[PiProgress]:
    """Yield a progress snapshot after every chunk of work; the last one has done=True.

    chunk_terms: series terms per snapshot; None picks ~10-50 ms of work per snapshot.
    Arguments are checked here, before the first snapshot is asked for.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if isinstance(digits, bool) or not isinstance(digits, int):
        raise TypeError("digits must be an int")
    limit = MAX_SERIES_DIGITS if method == "series" else MAX_EM_DIGITS
    if not 1 <= digits <= limit:
        raise ValueError(f"digits must be in 1..{limit} for method {method!r}")
    if chunk_terms is not None and (
        isinstance(chunk_terms, bool) or not isinstance(chunk_terms, int) or chunk_terms < 2
    ):
        raise ValueError("chunk_terms must be an int >= 2")
    if method == "series":
        return _iter_series(digits, chunk_terms or DEFAULT_CHUNK_TERMS)
    return _iter_em(digits, chunk_terms)


def compute_pi(digits: int, method: Method = "series") -> PiProgress:
    """Run iter_pi to the end and return its last (done) snapshot."""
    last = None
    for snapshot in iter_pi(digits, method):
        last = snapshot
    assert last is not None and last.done
    return last
