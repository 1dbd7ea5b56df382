"""Benchmark of tasks.leibniz; writes bench/results/leibniz.json.

Run from the repository root: `python -m bench.leibniz_bench` or `python bench/leibniz_bench.py`
(add --digits-10 to also time the ~1e11-term series run, about a minute).
Everything runs pinned to one core; each figure is the best of a few runs unless noted.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "leibniz.json"

C_LOOP = r"""
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Same pairs as the NumPy kernel: pi = 8 * sum_j 1/(t*t - 1), t = 4j + 2. */
int main(int argc, char **argv) {
    long long pairs = atoll(argv[1]);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    double s = 0.0;
    for (long long j = 0; j < pairs; j++) {
        double t = 4.0 * (double)j + 2.0;
        s += 1.0 / (t * t - 1.0);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.17g %.9f\n", 8.0 * s, (b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec));
    return 0;
}
"""


def load_leibniz() -> ModuleType:
    """Import tasks.leibniz whether run as a module or as a file."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    return importlib.import_module("taskline.builtins.leibniz")


def best_time(fn: Callable[[], object], repeat: int = 3) -> float:
    """Fastest wall time of fn over `repeat` runs (least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def python_loop(pairs: int) -> float:
    """The kernel's pairs summed one at a time in pure Python."""
    s = 0.0
    for j in range(pairs):
        t = 4.0 * j + 2.0
        s += 1.0 / (t * t - 1.0)
    return 8.0 * s


def c_loop(pairs: int, repeat: int = 3) -> dict[str, Any] | None:
    """Compile C_LOOP with gcc -O2 in a temporary folder and time it; None without gcc."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        source, binary = Path(tmp) / "leibniz.c", Path(tmp) / "leibniz"
        source.write_text(C_LOOP)
        subprocess.run([gcc, "-O2", "-o", str(binary), str(source)], check=True)
        runs = []
        for _ in range(repeat):
            out = subprocess.run(
                [str(binary), str(pairs)], check=True, capture_output=True, text=True
            )
            total, seconds = out.stdout.split()
            runs.append((float(seconds), float(total)))
    seconds, total = min(runs)
    version = subprocess.run([gcc, "--version"], capture_output=True, text=True).stdout
    return {
        "compiler": version.splitlines()[0],
        "flags": "-O2",
        "terms": 2 * pairs,
        "seconds": seconds,
        "terms_per_s": 2 * pairs / seconds,
        "sum": total,
    }


def series_throughput(leibniz: ModuleType, terms: int) -> dict[str, Any]:
    """Terms/s of the public bracket stream (NumPy kernel plus a bracket per chunk)."""

    def run() -> None:
        for b in leibniz.series_brackets():
            if b.terms >= terms:
                break

    seconds = best_time(run)
    chunk = leibniz.DEFAULT_CHUNK_TERMS
    done = -(-terms // chunk) * chunk
    return {"terms": done, "seconds": seconds, "terms_per_s": done / seconds}


def snapshot_overhead(leibniz: ModuleType, digits: int) -> dict[str, Any]:
    """Cost of progress snapshots, measured two ways.

    1. iter_pi with a consumer doing trivial work per snapshot (a cancellation check and a
       counter) against the bare kernel summing the same terms in one call (no brackets,
       no snapshots). Seven interleaved pairs: best of each, and the median pair ratio.
       Other load on the machine makes this noisy by a few percent either way.
    2. The snapshot path alone (bracket, certain digits, total estimate, PiProgress) timed
       on a real bracket, times the number of snapshots, over the run time.
    """
    cancel = threading.Event()
    final = leibniz.compute_pi(digits)
    block = leibniz._BLOCK_PAIRS
    blocks = final.terms // (2 * block)

    def with_snapshots() -> int:
        count = 0
        for _ in leibniz.iter_pi(digits):
            if cancel.is_set():
                break
            count += 1
        return count

    def bare() -> None:
        leibniz._PairSummer(block).run(blocks)

    snaps, plain = [], []
    for _ in range(7):
        snaps.append(best_time(with_snapshots, 1))
        plain.append(best_time(bare, 1))
    ratios = sorted(a / b for a, b in zip(snaps, plain, strict=True))
    count = with_snapshots()

    summer = leibniz._PairSummer(block)
    summer.run(1)
    calls = 2000

    def snapshot_path() -> None:
        for _ in range(calls):
            b = summer.bracket()
            certain = leibniz._certain_digits(b, digits)
            total = leibniz._series_terms_estimate(b, digits)
            leibniz._snapshot(b, digits, certain, b.terms, total, False)

    per_snapshot = best_time(snapshot_path) / calls
    return {
        "digits": digits,
        "terms": final.terms,
        "snapshots": count,
        "seconds_with_snapshots": min(snaps),
        "seconds_bare_kernel": min(plain),
        "measured_overhead": min(snaps) / min(plain) - 1,
        "measured_overhead_median_pair": ratios[len(ratios) // 2] - 1,
        "seconds_per_snapshot": per_snapshot,
        "computed_overhead": per_snapshot * count / min(plain),
    }


def timed_compute(leibniz: ModuleType, digits: int, method: str, repeat: int) -> dict[str, Any]:
    """Best wall time of compute_pi and what it did."""
    result = leibniz.compute_pi(digits, method)
    seconds = best_time(lambda: leibniz.compute_pi(digits, method), repeat)
    row: dict[str, Any] = {"digits": digits, "method": method, "seconds": seconds}
    row["terms"] = result.terms
    if method == "euler-maclaurin":
        plan = leibniz.em_plan(digits + 10)
        row.update(corrections=plan.corrections, bits=plan.bits)
    return row


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    versions = {}
    for name in ("numpy", "mpmath", "gmpy2"):
        try:
            versions[name] = importlib.import_module(name).__version__
        except ImportError:
            versions[name] = None
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        **versions,
    }


def main() -> None:
    """Measure, print and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--digits-10", action="store_true", help="also time digits=10 (slow)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core, inherited by gcc's
    leibniz = load_leibniz()
    report: dict[str, Any] = {"machine": machine()}

    numpy_run = series_throughput(leibniz, 1 << 31)
    report["series_numpy"] = numpy_run
    print(f"series (NumPy): {numpy_run['terms_per_s']:.3e} terms/s")

    py_pairs = 2_000_000
    py_seconds = best_time(lambda: python_loop(py_pairs))
    py_rate = 2 * py_pairs / py_seconds
    report["python_loop"] = {"terms": 2 * py_pairs, "seconds": py_seconds, "terms_per_s": py_rate}
    report["speedup_vs_python"] = numpy_run["terms_per_s"] / py_rate
    print(f"pure Python loop: {py_rate:.3e} terms/s, NumPy is {report['speedup_vs_python']:.1f}x")

    c_run = c_loop(500_000_000)
    report["c_loop"] = c_run
    if c_run is not None:
        report["c_over_numpy"] = c_run["terms_per_s"] / numpy_run["terms_per_s"]
        print(
            f"C loop ({c_run['flags']}): {c_run['terms_per_s']:.3e} terms/s, "
            f"C / NumPy = {report['c_over_numpy']:.2f}"
        )

    runs = [timed_compute(leibniz, 9, "series", 3)]
    if args.digits_10:
        runs.append(timed_compute(leibniz, 10, "series", 1))
    runs.append(timed_compute(leibniz, 1000, "euler-maclaurin", 5))
    runs.append(timed_compute(leibniz, 10_000, "euler-maclaurin", 2))
    report["compute_pi"] = runs
    for row in runs:
        print(f"compute_pi({row['digits']}, {row['method']!r}): {row['seconds']:.3f} s")

    overhead = snapshot_overhead(leibniz, 9)
    report["snapshot_overhead"] = overhead
    print(
        f"snapshots: {overhead['snapshots']} for digits=9, measured overhead "
        f"{overhead['measured_overhead']:+.2%} (best) "
        f"{overhead['measured_overhead_median_pair']:+.2%} (median pair), "
        f"computed {overhead['computed_overhead']:.3%} "
        f"({overhead['seconds_per_snapshot'] * 1e6:.0f} us each)"
    )

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
