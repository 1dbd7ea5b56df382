"""py-spy profiles of running processes, summarised as their top frames.

`spy(name, pid)` samples a process (and with subprocesses=True its children: the Celery pool,
uvicorn's workers) while the block runs, writes bench/results/profiles/<name>.txt (py-spy's
raw collapsed stacks) and <name>.top.txt: per thread group, the frames with the most samples
on top of the stack (self) and anywhere in it (inclusive). Idle time (waiting in epoll, on a
lock, on a socket) is left out, so the shares are of the time spent working.
"""

from __future__ import annotations

import collections
import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from bench import procs

PROFILES = procs.ROOT / "bench" / "results" / "profiles"
RATE = 200


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(procs.PY).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: pip install -r bench/requirements.txt")
    return found


@contextlib.contextmanager
def spy(name: str, pid: int, subprocesses: bool = False) -> Iterator[Path]:
    """Record the process while the block runs; summarise the profile afterwards."""
    PROFILES.mkdir(parents=True, exist_ok=True)
    raw = PROFILES / f"{name}.txt"
    args = [py_spy(), "record", "--pid", str(pid), "--rate", str(RATE), "--format", "raw"]
    args += ["--output", str(raw), "--nonblocking", "--threads"]
    if subprocesses:
        args.append("--subprocesses")
    recorder = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    try:
        yield raw
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(30)
        except subprocess.TimeoutExpired:
            recorder.kill()
    if raw.exists():
        (PROFILES / f"{name}.top.txt").write_text(summarize(raw))


def summarize(raw: Path, top: int = 25) -> str:
    """Top self and inclusive frames, per process and thread (event loop, pool threads…)."""
    groups: dict[str, tuple[collections.Counter, collections.Counter]] = {}
    totals: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        process, thread = "", ""
        while frames and frames[0].startswith(("process ", "thread ")):
            head = frames.pop(0)
            if head.startswith("process "):
                process = head.split(":")[0]
            else:
                thread = head.partition(": ")[2].rstrip("0123456789 ")
        frames = frames or ["<no Python frame>"]
        key = " ".join(x for x in (process, thread or _group(frames)) if x)
        selfs, incl = groups.setdefault(key, (collections.Counter(), collections.Counter()))
        n = int(count)
        totals[key] += n
        selfs[frames[-1]] += n
        for frame in set(frames):
            incl[frame] += n
    out = [f"py-spy at {RATE} Hz; shares of each thread group's samples\n"]
    for key, (selfs, incl) in sorted(groups.items(), key=lambda kv: -totals[kv[0]]):
        total = totals[key]
        out.append(f"== {key}: {total} samples ({total / RATE:.1f} s)")
        out.append("-- self")
        out += [f"{n / total:6.1%}  {frame}" for frame, n in selfs.most_common(top)]
        out.append("-- inclusive")
        out += [f"{n / total:6.1%}  {frame}" for frame, n in incl.most_common(top + 20)]
        out.append("")
    return "\n".join(out)


def _group(frames: list[str]) -> str:
    if any("Runner.run" in f or "run_forever" in f for f in frames):
        return "event loop thread"
    if any("WorkerThread.run" in f for f in frames):
        return "thread pool (anyio)"
    return "other threads"
