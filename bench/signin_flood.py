"""Good reads during a flood of wrong passwords: what a password guesser costs everyone else.

For 12 s, 32 clients send wrong HTTP Basic credentials to `GET /tasks/{id}` (names cycling
through the three users, a wrong password each) while one client reads the same task with a
valid bearer token in a loop. Recorded: the good reads' p50/p99/max (and the same reads for
3 s with no flood, for reference) and the flood's answers by status. The flood and the reader
run in processes of their own, so neither waits on the other's event loop.

`--tree` runs the API from another checkout (e.g. a git worktree of an older commit, with
.venv linked) to compare before and after; each run is stored under its `--label` in `--out`:

    .venv/bin/python -m bench.signin_flood --tree /tmp/before --label before
    .venv/bin/python -m bench.signin_flood --label after

Needs RabbitMQ and Redis on 127.0.0.1. Loopback only; bounded in time; the API process, its
queue and its keys are removed at the end, also after a failure.
"""

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from tempfile import TemporaryDirectory

import httpx

from tests.processes import PASSWORDS, Stack, api_command, stop, wait_for_api

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "results" / "signin_flood.json"
CLIENTS = 32
SECONDS = 12.0
QUIET_SECONDS = 3.0
# Beyond the run itself: start-up, the quiet reads, and stopping.
SLACK_SECONDS = 60.0
# The load processes start together this long after they are launched (imports take ~1 s).
LAUNCH_SECONDS = 3.0


def percentiles(latencies: list[float]) -> dict[str, float | int]:
    """p50, p99 and max in ms, and how many."""
    ordered = sorted(latencies)
    if not ordered:
        return {"count": 0}
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(p99 * 1000, 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }


def until(moment: float) -> None:
    """Wait for a wall-clock moment (both load processes begin at the same one)."""
    time.sleep(max(0.0, moment - time.time()))


def read_loop(url: str, token: str, seconds: float, start: float = 0.0) -> dict:
    """Read one task with a bearer token, one request after another, for `seconds`."""
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(timeout=10, headers=headers) as client:
        until(start)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sent = time.perf_counter()
            status = client.get(url).status_code
            latencies.append(time.perf_counter() - sent)
            statuses[status] += 1
    return {**percentiles(latencies), "statuses": dict(statuses)}


async def flood(url: str, clients: int, seconds: float, start: float) -> dict:
    """`clients` connections sending wrong Basic credentials, as fast as answers come.

    The clients are made before the clock starts: making one takes tens of ms of CPU."""
    names = list(PASSWORDS)
    statuses: Counter[str] = Counter()
    pool = [
        httpx.AsyncClient(timeout=10, auth=(names[i % len(names)], f"wrong-{i}"))
        for i in range(clients)
    ]
    await asyncio.sleep(max(0.0, start - time.time()))
    deadline = time.monotonic() + seconds

    async def one(client: httpx.AsyncClient) -> None:
        async with client:
            while time.monotonic() < deadline:
                try:
                    statuses[str((await client.get(url)).status_code)] += 1
                except httpx.TransportError as exc:
                    statuses[type(exc).__name__] += 1

    await asyncio.gather(*(one(client) for client in pool))
    return {"clients": clients, "seconds": seconds, "statuses": dict(statuses)}


def child(mode: str, *args: str) -> subprocess.Popen:
    """This module in another process, in one of its load modes; JSON on its stdout."""
    command = [sys.executable, "-m", "bench.signin_flood", f"--{mode}", *args]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, start_new_session=True)


def answer(proc: subprocess.Popen, timeout: float) -> dict:
    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"load process {proc.args} exited with {proc.returncode}")
    return json.loads(out)


def commit_of(tree: Path) -> str:
    found = subprocess.run(
        ["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return found.stdout.strip() or "unknown"


def measure(tree: Path, clients: int, seconds: float) -> dict:
    """Start an API from `tree` on a stack of its own, load it, and stop it."""
    load_before = os.getloadavg()[0]  # other processes' load: the flood's own comes later
    with TemporaryDirectory(prefix="signin-flood-") as logs:
        stack = Stack(Path(logs))
        env = {k: v for k, v in stack.env.items() if k != "PYTHONPATH"}
        load: list[subprocess.Popen] = []
        try:
            with (Path(logs) / "api.log").open("ab") as log:
                stack.procs["api"] = subprocess.Popen(
                    api_command(stack.port),
                    cwd=tree,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            wait_for_api(stack.url)
            with httpx.Client(base_url=stack.url, timeout=10) as api:
                created = api.post(
                    "/tasks",
                    json={"name": "reverse", "params": {"text": "flood"}},
                    auth=("admin", PASSWORDS["admin"]),
                )
                created.raise_for_status()
                signin = {"username": "admin", "password": PASSWORDS["admin"]}
                token = api.post("/auth/token", data=signin).json()["access_token"]
            url = f"{stack.url}/tasks/{created.json()['id']}"
            quiet = read_loop(url, token, QUIET_SECONDS)
            start = str(time.time() + LAUNCH_SECONDS)
            load = [
                child("flood", url, str(clients), str(seconds), start),
                child("read", url, token, str(seconds), start),
            ]
            flooded = answer(load[0], LAUNCH_SECONDS + seconds + SLACK_SECONDS)
            reads = answer(load[1], seconds + SLACK_SECONDS)
            with httpx.Client(base_url=stack.url, timeout=10) as api:
                metrics = api.get("/metrics", headers={"Authorization": f"Bearer {token}"}).text
        finally:
            for proc in load:
                stop(proc)
            stack.close()
    checks = [line for line in metrics.splitlines() if line.startswith("taskline_password")]
    return {
        "tree": str(tree),
        "commit": commit_of(tree),
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpus": os.cpu_count(),
        "load_average_before": round(load_before, 2),
        "quiet_reads": quiet,
        "good_reads": reads,
        "flood": flooded,
        "password_checks": int(float(checks[0].split()[-1])) if checks else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout the API runs from")
    parser.add_argument("--label", default="after", help="the run's name in --out")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--flood", nargs=4, metavar=("URL", "CLIENTS", "SECONDS", "START"))
    parser.add_argument("--read", nargs=4, metavar=("URL", "TOKEN", "SECONDS", "START"))
    args = parser.parse_args()
    if args.flood:
        url, clients, seconds, start = args.flood
        print(json.dumps(asyncio.run(flood(url, int(clients), float(seconds), float(start)))))
        return
    if args.read:
        url, token, seconds, start = args.read
        print(json.dumps(read_loop(url, token, float(seconds), float(start))))
        return
    result = measure(args.tree.resolve(), args.clients, args.seconds)
    runs = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs[args.label] = result
    args.out.write_text(json.dumps(runs, indent=2) + "\n")
    print(json.dumps({args.label: result}, indent=2))


if __name__ == "__main__":
    main()
