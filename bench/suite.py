"""The Taskline benchmark suite (`make bench`, or `python -m bench.suite`).

Starts its own processes on queues and Redis prefixes of its own (two Taskline APIs: 1 and 2
uvicorn processes; the worker and, for the takeover, standbys; Flower; an AsyncResult baseline
app; a bare Celery worker), loads them from separate processes (wrk, the bare producer, the SSE
clients), and writes bench/results/latest.{json,md,png} (`--only worker`, `--only takeover`, …:
that phase alone, about a minute, into latest-<phase>.{json,md,png}). Every figure is the
median of several runs, with the spread; every comparison is a ratio taken within the same
repetition. Everything it started is stopped and every key and queue it made is deleted, also
on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis
from kombu import Connection

from bench import procs, redis_cpu, report
from bench.fill import fill
from bench.stack import BROKER_URL, REDIS_URL, USER, Deployment, cleanup, deployments
from bench.wrk import Request, closed_loop, fixed_rate
from taskline.worker.celery_app import create_celery_app
from taskline.worker.hooks.lease import LEASE_MS, LEASE_RENEW_SECONDS
from tests import predicting
from tests.client import TERMINAL, submit, wait_done, wait_state
from tests.support import free_port, stored_bytes, wait_until

RESULTS = procs.ROOT / "bench" / "results"
LOGS = procs.ROOT / "var" / "bench"
REVERSE_BODY = json.dumps({"name": "reverse", "params": {"text": "hello"}})
# The largest `reverse` body: 100,000 emoji, 400 KB of UTF-8.
EMOJI_TEXT = "\N{GRINNING FACE}" * 100_000
JSON_TYPE = {"Content-Type": "application/json"}
# Connections of the fixed-rate reads. Their rate is half the peak of as many connections:
# reads asked together go to Redis together, so 32 connections carry far more than 8, and
# half of their peak is about all that 8 carry (a p99 of queueing, not of a loaded API).
RATE_CONNECTIONS = 8


@dataclass
class Options:
    """Run lengths; --quick shortens them for a smoke run (figures then only indicative)."""

    runs: int = 3
    seconds: float = 4.0
    rate_seconds: float = 5.0
    latency_tasks: int = 50
    drain_tasks: int = 1000
    sse_clients: int = 200
    sse_delay: float = 10.0
    list_seconds: float = 3.0
    stored: int = 100_000
    profile: bool = False
    only: str | None = None


@dataclass
class Context:
    """What the phases share: deployments, addresses, tokens and the figures so far."""

    opts: Options
    deps: dict[str, Deployment]
    urls: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    worker: subprocess.Popen | None = None
    foreign: procs.ForeignLoad = field(default_factory=procs.ForeignLoad)

    @property
    def main(self) -> Deployment:
        return self.deps["main"]

    def auth(self, name: str = "main") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def flower_auth(self) -> dict[str, str]:
        client = httpx.BasicAuth("bench", self.main.password)
        request = client.auth_flow(httpx.Request("GET", "http://x")).__next__()
        return {"Authorization": request.headers["Authorization"]}

    def log(self, message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Run one phase; a failure is noted and the others still run (Ctrl-C still stops)."""
        self.log(name)
        before = self.foreign.sample()
        try:
            yield
        except Exception as exc:  # noqa: BLE001 (reported in the results, run goes on)
            self.log(f"{name} FAILED: {exc!r}")
            traceback.print_exc()
            self.notes.append(f"{name} failed: {exc!r}")
        finally:
            load = procs.foreign_percent(before, self.foreign.sample())
            self.figures.setdefault("foreign_cpu_pct", {})[name] = load
            if load > 10:
                self.log(f"{name}: other processes used {load:.0f} % of a core meanwhile")


def stats(values: list[float]) -> dict[str, Any]:
    """Median and spread of one figure's runs."""
    med = statistics.median(values)
    return {
        "median": med,
        "min": min(values),
        "max": max(values),
        "spread_pct": 100 * (max(values) - min(values)) / med if med else 0.0,
        "runs": values,
    }


def checked(result: dict[str, Any], ok: set[int], what: str) -> dict[str, Any]:
    """A wrk result whose every answer had an expected status (else the run is void)."""
    statuses = {int(code): n for code, n in result.get("statuses", {}).items()}
    bad = {code: n for code, n in statuses.items() if code not in ok}
    errors = sum(result.get(k, 0) for k in ("errors_connect", "errors_read", "errors_timeout"))
    if bad or errors or (not statuses and result.get("errors_status")):
        raise RuntimeError(f"{what}: unexpected answers {bad}, socket errors {errors}")
    return result


# --------------------------------------------------------------------------- processes


def start_api1(ctx: Context) -> None:
    """The 1-process API of the main deployment, and a token for it."""
    port = free_port()
    ctx.urls["api1"] = f"http://127.0.0.1:{port}"
    ctx.pids["api1"] = ctx.main.start_api(port, 1, "api1").pid
    ctx.tokens["main"] = ctx.main.token(ctx.urls["api1"])


def start_services(ctx: Context) -> None:
    """APIs (1 and 2 processes), Flower and the baseline app on the main deployment."""
    main = ctx.main
    start_api1(ctx)
    ports = {name: free_port() for name in ("api2", "flower", "baseline")}
    ctx.urls.update({name: f"http://127.0.0.1:{port}" for name, port in ports.items()})
    ctx.pids["api2"] = main.start_api(ports["api2"], 2, "api2").pid
    ctx.pids["flower"] = main.start_flower(ports["flower"]).pid
    args = [procs.PY, "-m", "uvicorn", "bench.baseline_app:app", "--host", "127.0.0.1"]
    args += ["--port", str(ports["baseline"]), "--no-access-log", "--log-level", "warning"]
    baseline = procs.start("baseline", args, main.env(), main.logs)
    procs.wait_http(f"{ctx.urls['baseline']}/health", baseline)
    ctx.pids["baseline"] = baseline.pid


def consumers(conn: Connection, queue: str) -> int:
    """Consumers attached to a queue (0 if it does not exist)."""
    try:
        _, _, count = conn.default_channel.queue_declare(queue, passive=True)
    except Exception:  # noqa: BLE001 (NotFound: not declared yet)
        conn.close()
        conn.connect()
        return 0
    return count


def wait_consumers(queue: str, wanted: Callable[[int], bool], timeout: float = 60) -> None:
    with Connection(BROKER_URL) as conn:
        wait_until(lambda: wanted(consumers(conn, queue)), timeout, 0.1, f"{queue} consumers")


def start_worker(ctx: Context) -> None:
    ctx.worker = ctx.main.start_worker()
    ctx.pids["worker"] = ctx.worker.pid
    wait_consumers(ctx.main.queue, lambda n: n >= 1)


# --------------------------------------------------------------------------- task helpers


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


# --------------------------------------------------------------------------- phases


def phase_submissions(ctx: Context) -> None:
    """POST /tasks (1 and 2 processes) vs Flower send-task vs a bare producer; worker stopped."""
    o, urls = ctx.opts, ctx.urls
    json_type = {"Content-Type": "application/json"}
    post1 = Request(f"{urls['api1']}/tasks", "POST", REVERSE_BODY, {**ctx.auth(), **json_type})
    post2 = Request(f"{urls['api2']}/tasks", "POST", REVERSE_BODY, {**ctx.auth(), **json_type})
    flower = Request(
        f"{urls['flower']}/api/task/send-task/reverse",
        "POST",
        json.dumps({"kwargs": {"text": "hello"}}),
        {**ctx.flower_auth(), **json_type},
    )
    bare_env = ctx.deps["bare"].env()
    runs: dict[str, list[float]] = {k: [] for k in ("api1", "api2", "flower", "bare", "p50")}
    ratios: dict[str, list[float]] = {"vs_flower": [], "two_vs_one": [], "vs_bare": []}
    for i in range(o.runs):
        one = checked(closed_loop(post1, o.seconds), {202}, "POST /tasks")
        two = checked(closed_loop(post2, o.seconds), {202}, "POST /tasks (2 processes)")
        fl = checked(closed_loop(flower, o.seconds), {200}, "Flower send-task")
        out = subprocess.run(
            [procs.PY, "-m", "bench.bare_celery", "produce", "--seconds", str(o.seconds - 1)],
            cwd=procs.ROOT,
            env=bare_env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        bare = json.loads(out.stdout.strip().splitlines()[-1])
        runs["api1"].append(one["rate"])
        runs["api2"].append(two["rate"])
        runs["flower"].append(fl["rate"])
        runs["bare"].append(bare["rate"])
        runs["p50"].append(one["p50_ms"])
        ratios["vs_flower"].append(one["rate"] / fl["rate"])
        ratios["two_vs_one"].append(two["rate"] / one["rate"])
        ratios["vs_bare"].append(one["rate"] / bare["rate"])
        ctx.log(
            f"submissions run {i + 1}: api {one['rate']:.0f}/s, 2 procs {two['rate']:.0f}/s, "
            f"flower {fl['rate']:.0f}/s, bare producer {bare['rate']:.0f}/s"
        )
    ctx.figures["submissions"] = {
        "api1_per_s": stats(runs["api1"]),
        "api2_per_s": stats(runs["api2"]),
        "flower_send_task_per_s": stats(runs["flower"]),
        "bare_producer_per_s": stats(runs["bare"]),
        "api1_p50_ms": stats(runs["p50"]),
        "ratio_vs_flower": stats(ratios["vs_flower"]),
        "ratio_two_vs_one": stats(ratios["two_vs_one"]),
        "ratio_vs_bare_producer": stats(ratios["vs_bare"]),
    }
    ctx.main.purge()
    ctx.deps["bare"].purge()


def phase_access_log(ctx: Context) -> None:
    """What the access line costs the hot paths: status reads and submissions on the
    1-process API (access log on, as deployed) and on a second 1-process API of the same
    deployment with TASKLINE_ACCESS_LOG=false, in turns (on, off, off, on: each half as
    long; then the other way round), worker stopped. Both log to a file, in the default
    (text) format."""
    port = free_port()
    off = ctx.main.start_api(port, 1, "api-no-access-log", TASKLINE_ACCESS_LOG="false")
    urls = {"on": ctx.urls["api1"], "off": f"http://127.0.0.1:{port}"}
    method = (
        "wrk -t2 -c32 closed loop on two 1-process APIs of one deployment, access log on and "
        "off (TASKLINE_ACCESS_LOG=false), each repetition on, off, off, on (or off, on, on, "
        "off) in runs half as long; cost = 1 - rate on ÷ rate off, and API CPU per request on "
        "÷ off - 1 (psutil, user + system, ÷ requests answered: unlike the rate, not moved by "
        "other processes taking the CPU), per repetition; text format, written to a file"
    )
    pids = {"on": ctx.pids["api1"], "off": off.pid}
    on_off(ctx, "access log", "access_log", method, urls, pids, (off,))


def phase_metrics(ctx: Context) -> None:
    """What the Prometheus counters (api.metrics) cost the hot paths: two fresh 1-process APIs
    of the deployment, each with a multiprocess directory of its own as supervisord gives it,
    one counting (TASKLINE_METRICS=true, as deployed) and one not; otherwise as the access
    log's phase (both write access lines)."""
    folder = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    ports = {"on": free_port(), "off": free_port()}
    apis = {
        k: ctx.main.start_api(
            port,
            1,
            f"api-metrics-{k}",
            TASKLINE_METRICS="true" if k == "on" else "false",
            PROMETHEUS_MULTIPROC_DIR=str(folder / k),
        )
        for k, port in ports.items()
    }
    urls = {k: f"http://127.0.0.1:{port}" for k, port in ports.items()}
    method = (
        "wrk -t2 -c32 closed loop on two fresh 1-process APIs of one deployment, metrics on "
        "and off (TASKLINE_METRICS=false), each with a PROMETHEUS_MULTIPROC_DIR of its own; "
        "each repetition on, off, off, on (or off, on, on, off) in runs half as long; cost = "
        "1 - rate on ÷ rate off, and API CPU per request on ÷ off - 1, per repetition"
    )
    try:
        pids = {k: p.pid for k, p in apis.items()}
        on_off(ctx, "metrics", "metrics", method, urls, pids, tuple(apis.values()))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def on_off(
    ctx: Context,
    label: str,
    key: str,
    method: str,
    urls: dict[str, str],
    pids: dict[str, int],
    started: tuple[subprocess.Popen, ...],
) -> None:
    """Reads and submissions on two APIs (`urls` and `pids` by "on" and "off") in turns, into
    ctx.figures[key]; `started`: the processes to stop at the end."""
    o = ctx.opts
    try:
        created = httpx.post(
            f"{urls['on']}/tasks", content=REVERSE_BODY, headers={**ctx.auth(), **JSON_TYPE}
        )
        task_id = created.json()["id"]
        loads = {
            "reads": (
                {k: Request(f"{u}/tasks/{task_id}", headers=ctx.auth()) for k, u in urls.items()},
                {200},
            ),
            "submissions": (
                {
                    k: Request(f"{u}/tasks", "POST", REVERSE_BODY, {**ctx.auth(), **JSON_TYPE})
                    for k, u in urls.items()
                },
                {202},
            ),
        }
        runs: dict[str, list[float]] = {
            f"{load}_{figure}": []
            for load in loads
            for figure in ("on", "off", "cost", "cpu_on", "cpu_off", "cpu_cost")
        }
        for i in range(o.runs):
            for load, (requests, ok) in loads.items():
                # on, off, off, on (then off, on, on, off): drift and the first run's edge
                # weigh on both alike
                order = ("on", "off", "off", "on") if i % 2 == 0 else ("off", "on", "on", "off")
                rate, cpu, answered = {"on": 0.0, "off": 0.0}, {"on": 0.0, "off": 0.0}, {}
                for k in order:
                    used = procs.cpu_seconds(pids[k])
                    result = checked(closed_loop(requests[k], o.seconds / 2), ok, f"{load} {k}")
                    cpu[k] += procs.cpu_seconds(pids[k]) - used
                    answered[k] = answered.get(k, 0) + result["requests"]
                    rate[k] += result["rate"] / 2
                us = {k: 1e6 * cpu[k] / answered[k] for k in cpu}
                for k in ("on", "off"):
                    runs[f"{load}_{k}"].append(rate[k])
                    runs[f"{load}_cpu_{k}"].append(us[k])
                runs[f"{load}_cost"].append(100 * (1 - rate["on"] / rate["off"]))
                runs[f"{load}_cpu_cost"].append(100 * (us["on"] / us["off"] - 1))
            ctx.log(
                f"{label} run {i + 1}: "
                + ", ".join(
                    f"{load} {runs[f'{load}_on'][i]:.0f}/s on, {runs[f'{load}_off'][i]:.0f}/s "
                    f"off ({runs[f'{load}_cost'][i]:+.1f} %), API CPU "
                    f"{runs[f'{load}_cpu_on'][i]:.0f} µs on, {runs[f'{load}_cpu_off'][i]:.0f} "
                    f"µs off ({runs[f'{load}_cpu_cost'][i]:+.1f} %)"
                    for load in loads
                )
            )
    finally:
        for proc in started:
            procs.stop(proc)
        ctx.main.purge()
    figures: dict[str, Any] = {"method": method}
    for load in loads:
        figures[f"{load}_on_per_s"] = stats(runs[f"{load}_on"])
        figures[f"{load}_off_per_s"] = stats(runs[f"{load}_off"])
        figures[f"{load}_cost_pct"] = stats(runs[f"{load}_cost"])
        figures[f"{load}_cpu_us_on"] = stats(runs[f"{load}_cpu_on"])
        figures[f"{load}_cpu_us_off"] = stats(runs[f"{load}_cpu_off"])
        figures[f"{load}_cpu_cost_pct"] = stats(runs[f"{load}_cpu_cost"])
    ctx.figures[key] = figures


def phase_reads(ctx: Context, client: httpx.Client) -> None:
    """GET /tasks/{id} of a running task with progress, against Flower and the baseline app.
    The task is cancelled however the phase ends: left running, it would hold the worker for
    ten minutes and every later phase's tasks would wait behind it."""
    task = submit(client, "leibniz_pi", {"digits": 8}, delay_seconds=600)
    try:
        _measure_reads(ctx, client, task["id"])
    finally:
        client.post(f"/tasks/{task['id']}/cancel")
        wait_state(client, task["id"], set(TERMINAL), timeout=60)


def _measure_reads(ctx: Context, client: httpx.Client, task_id: str) -> None:
    o, urls = ctx.opts, ctx.urls
    wait_state(client, task_id, {"PROGRESS"})
    fauth = ctx.flower_auth()
    info_url = f"{urls['flower']}/api/task/info/{task_id}"
    wait_until(lambda: httpx.get(info_url, headers=fauth).status_code == 200, 15, 0.1)
    result_url = f"{urls['flower']}/api/task/result/{task_id}"
    flower_result = httpx.get(result_url, headers=fauth)
    baseline = httpx.get(f"{urls['baseline']}/status/{task_id}").json()
    if flower_result.status_code != 200 or baseline["state"] != "PROGRESS":
        raise RuntimeError(f"baselines not ready: {flower_result.text} {baseline}")
    targets = {
        "api1": Request(f"{urls['api1']}/tasks/{task_id}", headers=ctx.auth()),
        "api2": Request(f"{urls['api2']}/tasks/{task_id}", headers=ctx.auth()),
        "flower_info": Request(info_url, headers=fauth),
        "flower_result": Request(result_url, headers=fauth),
        "baseline": Request(f"{urls['baseline']}/status/{task_id}"),
    }
    runs: dict[str, list[float]] = {k: [] for k in targets}
    runs["p50"] = []
    runs["api1_rate_connections"] = []
    ratios: dict[str, list[float]] = {
        k: [] for k in ("vs_flower_info", "vs_flower_result", "vs_baseline", "two_vs_one")
    }
    for i in range(o.runs):
        got = {k: checked(closed_loop(r, o.seconds), {200}, k) for k, r in targets.items()}
        for k, r in got.items():
            runs[k].append(r["rate"])
        runs["p50"].append(got["api1"]["p50_ms"])
        one = got["api1"]["rate"]
        ratios["vs_flower_info"].append(one / got["flower_info"]["rate"])
        ratios["vs_flower_result"].append(one / got["flower_result"]["rate"])
        ratios["vs_baseline"].append(one / got["baseline"]["rate"])
        ratios["two_vs_one"].append(got["api2"]["rate"] / one)
        few = closed_loop(targets["api1"], o.seconds, connections=RATE_CONNECTIONS)
        runs["api1_rate_connections"].append(checked(few, {200}, "api1")["rate"])
        ctx.log(
            f"reads run {i + 1}: "
            + ", ".join(f"{k} {r['rate']:.0f}/s" for k, r in got.items())
            + f"; api1 with {RATE_CONNECTIONS} connections {few['rate']:.0f}/s"
        )
    rate = 0.5 * statistics.median(runs["api1_rate_connections"])
    p99s, p50s, achieved = [], [], []
    for i in range(o.runs):
        r = fixed_rate(targets["api1"], rate, o.rate_seconds, connections=RATE_CONNECTIONS)
        if r["errors_status"]:
            raise RuntimeError(f"fixed-rate reads: {r['errors_status']} error answers")
        p99s.append(r["p99_ms"])
        p50s.append(r["p50_ms"])
        achieved.append(r["rate"])
        ctx.log(
            f"reads at {rate:.0f}/s run {i + 1}: p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms"
        )
    ctx.figures["reads"] = {
        "task_id": task_id,
        "api1_per_s": stats(runs["api1"]),
        "api2_per_s": stats(runs["api2"]),
        "flower_info_per_s": stats(runs["flower_info"]),
        "flower_result_per_s": stats(runs["flower_result"]),
        "baseline_per_s": stats(runs["baseline"]),
        "api1_p50_ms_at_peak": stats(runs["p50"]),
        "ratio_vs_flower_info": stats(ratios["vs_flower_info"]),
        "ratio_vs_flower_result": stats(ratios["vs_flower_result"]),
        "ratio_vs_baseline": stats(ratios["vs_baseline"]),
        "ratio_two_vs_one": stats(ratios["two_vs_one"]),
        "half_peak_connections": RATE_CONNECTIONS,
        "half_peak_of_per_s": stats(runs["api1_rate_connections"]),
        "half_peak_rate": rate,
        "half_peak_achieved_per_s": stats(achieved),
        "half_peak_p50_ms": stats(p50s),
        "half_peak_p99_ms": stats(p99s),
    }


class CpuTrace:
    """CPU seconds of a process tree sampled every 50 ms, to cut any window out afterwards."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), procs.cpu_seconds(self.pid)))
            self._stop.wait(0.05)

    def __enter__(self) -> CpuTrace:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def percent(self, start: float, end: float) -> float:
        """CPU use between two epoch times, in percent of one core."""
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2:
            return float("nan")
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return 100 * (c1 - c0) / (t1 - t0)


def measure_stored_bytes(client: httpx.Client, prefix: str) -> dict[str, Any]:
    """What a postponed task with a 400 KB body costs Redis (MEMORY USAGE of its keys)."""
    task = submit(client, "reverse", {"text": EMOJI_TEXT}, not_before="2999-01-01T00:00:00Z")
    store = redis.Redis.from_url(REDIS_URL)
    try:
        used = stored_bytes(store, prefix, task["id"])
    finally:
        store.close()
        client.delete(f"/tasks/{task['id']}")
    body = len(EMOJI_TEXT.encode())
    return {
        "what": "MEMORY USAGE of every key of a postponed `reverse` task of 100,000 emoji",
        "body_bytes": body,
        "bytes_per_task": used,
        "ratio_vs_body": used / body,
    }


def phase_stored_bytes(ctx: Context, client: httpx.Client) -> None:
    ctx.figures["stored"] = figure = measure_stored_bytes(client, ctx.main.prefix)
    ctx.log(f"a 400 KB body costs Redis {figure['bytes_per_task']:,} bytes")


def phase_sse(ctx: Context, client: httpx.Client, line: bool = False) -> None:
    """200 clients on one running task's event stream (or, with `line`, on the whole line's
    stream, GET /events): complete delivery, API CPU."""
    o = ctx.opts
    store = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    prefix = ctx.main.prefix
    cpu_runs, complete, counts, notes = [], [], [], []
    for i in range(o.runs):
        # A task ahead in line keeps the watched one waiting until every client listens.
        # Every watcher of the line first gets a snapshot: give 200 of them longer to connect.
        blocker = submit(client, "reverse", {"text": "x"}, delay_seconds=8 if line else 3)["id"]
        wait_state(client, blocker, {"STARTED", "PROGRESS"})
        task = submit(client, "leibniz_pi", {"digits": 8}, delay_seconds=o.sse_delay)
        url = f"{ctx.urls['api1']}/tasks/{task['id']}/events"
        if line:
            url = f"{ctx.urls['api1']}/events"
        args = [procs.PY, "-m", "bench.sse_clients", url, "--token", ctx.tokens["main"]]
        args += ["--line-task", task["id"]] if line else []
        args += ["--clients", str(o.sse_clients), "--timeout", str(o.sse_delay + 40)]
        with CpuTrace(ctx.pids["api1"]) as trace:
            proc = subprocess.Popen(
                args, cwd=procs.ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            try:
                ready = proc.stdout.readline()
                if not ready.startswith("READY"):
                    raise RuntimeError(f"SSE clients failed: {ready}")
                waited = store.hget(f"{prefix}task:{task['id']}", "state")
                out, err = proc.communicate(timeout=o.sse_delay + 60)
            finally:
                if proc.poll() is None:
                    proc.kill()
        if not out.strip():
            raise RuntimeError(f"SSE clients ended with {proc.returncode}: {err[-2000:]}")
        seen = json.loads(out.strip().splitlines()[-1])
        record = store.hgetall(f"{prefix}task:{task['id']}")
        if line:  # the line's stream: that task's progress among every task's changes
            events = store.xrange(f"{prefix}line-events")
            events = [(eid, f) for eid, f in events if f.get("id") == task["id"]]
        else:
            events = store.xrange(f"{prefix}events:{task['id']}")
        progress = [eid for eid, fields in events if fields.get("state") == "PROGRESS"]
        ok = (
            waited == "QUEUED"
            and seen["finished"] == o.sse_clients
            and seen["identical"]
            and seen["progress_ids"] == progress
            and seen["final_states"] == ["SUCCESS"]
        )
        if not (record.get("started_at") and record.get("finished_at")):
            detail = {k: v for k, v in seen.items() if k != "progress_ids"}
            raise RuntimeError(f"the watched task did not run: {record.get('state')}; {detail}")
        cpu = trace.percent(epoch(record["started_at"]), epoch(record["finished_at"]))
        cpu_runs.append(cpu)
        complete.append(1.0 if ok else 0.0)
        counts.append(len(progress))
        if not ok:
            detail = {k: v for k, v in seen.items() if k != "progress_ids"}
            notes.append(f"run {i + 1}: waited {waited}, stream had {len(progress)}: {detail}")
        ctx.log(
            f"SSE {'line' if line else 'task'} run {i + 1}: {o.sse_clients} clients, "
            f"{len(progress)} progress events, "
            f"every client saw all: {ok}, API CPU {cpu:.1f} % of a core"
        )
    store.close()
    ctx.figures["line_sse" if line else "sse"] = {
        "clients": o.sse_clients,
        "api_cpu_pct": stats(cpu_runs),
        "all_clients_all_events": stats(complete),
        "progress_events": stats(counts),
        "problems": notes,
    }


def phase_latency(ctx: Context, client: httpx.Client) -> None:
    """Submit → STARTED on an idle worker: client send time to the record's started_at."""
    o = ctx.opts
    p50s, p99s, maxes, all_ms = [], [], [], []
    for i in range(o.runs):
        samples = []
        for _ in range(o.latency_tasks):
            time.sleep(0.02)  # the previous task has ended: the worker is idle
            sent = time.time()
            task = submit(client, "reverse", {"text": "hello"})
            done = client.get(f"/tasks/{task['id']}", params={"wait": 10}).json()
            if done["state"] != "SUCCESS":
                raise RuntimeError(f"latency task ended {done['state']}")
            samples.append(1000 * (epoch(done["started_at"]) - sent))
        q = statistics.quantiles(samples, n=100, method="inclusive")
        p50s.append(statistics.median(samples))
        p99s.append(q[98])
        maxes.append(max(samples))
        all_ms += samples
        ctx.log(f"submit→STARTED run {i + 1}: p50 {p50s[-1]:.1f} ms, p99 {p99s[-1]:.1f} ms")
    ctx.figures["latency"] = {
        "method": "client clock before sending POST /tasks → the record's started_at "
        "(written by the worker's claim, ms resolution, same host clock); one task at a time, "
        "each waited for with GET ?wait= before the next",
        "tasks_per_run": o.latency_tasks,
        "p50_ms": stats(p50s),
        "p99_ms": stats(p99s),
        "max_ms": stats(maxes),
    }


async def _prefill(
    base_url: str,
    headers: dict[str, str],
    count: int,
    body: Callable[[int], str] = lambda _: REVERSE_BODY,
) -> None:
    """Create `count` tasks (reverse unless `body(i)` says) through the API, 16 at a time."""
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
        left = iter(range(count))

        async def one_by_one() -> None:
            for i in left:
                r = await client.post("/tasks", content=body(i), headers=JSON_TYPE)
                if r.status_code != 202:
                    raise RuntimeError(f"prefill: {r.status_code} {r.text}")

        await asyncio.gather(*(one_by_one() for _ in range(16)))


def drain_rate(queue: str, count: int, release: Callable[[], None], timeout: float) -> float:
    """Tasks/s while `count` waiting messages are consumed: depth 90 % → 10 %, after release()."""
    return drain_rates([queue], count, [release], timeout)[0]


def drain_rates(
    queues: list[str], count: int, releases: list[Callable[[], None]], timeout: float
) -> list[float]:
    """drain_rate of several queues released together, each queue's rate measured while
    the others drain too (their depths read in turn, every 20 ms)."""
    points: dict[str, list[tuple[float, int]]] = {queue: [] for queue in queues}
    with Connection(BROKER_URL) as conn:
        channel = conn.default_channel
        for release in releases:
            release()
        deadline = time.monotonic() + timeout
        left = set(queues)
        while left and time.monotonic() < deadline:
            for queue in sorted(left):
                _, depth, _ = channel.queue_declare(queue, passive=True)
                points[queue].append((time.monotonic(), depth))
                if depth <= 0.1 * count:
                    left.discard(queue)
            time.sleep(0.02)
    rates = []
    for queue in queues:
        start = next(t for t, d in points[queue] if d <= 0.9 * count)
        end = next((t for t, d in points[queue] if d <= 0.1 * count), None)
        if end is None:
            raise RuntimeError(f"{queue}: backlog not drained within {timeout} s")
        rates.append(0.8 * count / (end - start))
    return rates


@contextlib.contextmanager
def paused(app: Any, queue: str, hostname: str) -> Iterator[Callable[[], None]]:
    """The worker stops consuming `queue` until the yielded release() is called."""
    app.control.cancel_consumer(queue, destination=[hostname], reply=True, timeout=5)
    wait_consumers(queue, lambda n: n == 0, 10)
    released = False

    def release() -> None:
        nonlocal released
        app.control.add_consumer(queue, destination=[hostname], reply=True, timeout=5)
        released = True

    try:
        yield release
    finally:
        if not released:
            release()


def worker_rss(pid: int) -> float:
    return procs.rss_mb(pid)


def fill_bare(env: dict[str, str], count: int) -> str:
    """Put `count` trivial tasks in the bare app's queue (the producer warms up with one);
    the id of the last, which runs last."""
    args = [procs.PY, "-m", "bench.bare_celery", "produce", "--count", str(count - 1)]
    out = subprocess.run(
        [*args, "--seconds", "110"],  # no time bound: all `count` are sent
        cwd=procs.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    sent = json.loads(out.stdout.strip().splitlines()[-1])
    if sent["published"] != count:
        raise RuntimeError(f"the bare producer sent {sent['published']} of {count} tasks")
    return str(sent["last"])


def bare_succeeded(store: redis.Redis, bare: Deployment, task_id: str) -> bool:
    """Whether the bare worker stored SUCCESS for a task."""
    meta = store.get(f"{bare.prefix}celery-task-meta-{task_id}")
    return meta is not None and json.loads(meta)["status"] == "SUCCESS"


REDIS_METHOD = (
    "Redis main-thread CPU (INFO cpu: used_cpu_sys_main_thread + used_cpu_user_main_thread) and "
    "command calls (INFO commandstats, commands run by scripts included) over each burst of N "
    "tasks, less Redis's idle rate over the second before it, ÷ N. Taskline: submit = the N "
    "POST /tasks with the worker paused; run = from the consumer's release until the last "
    "task is SUCCESS. Bare worker with task events and STARTED: submit = bench/bare_celery.py "
    "produce (its result consumer subscribes to each task's channel); run = from release until "
    "the last task's SUCCESS is stored. The waits poll Redis every 50 ms (counted)"
)


def phase_worker(ctx: Context) -> None:
    """Trivial-task throughput, Taskline vs a bare Celery worker, with and without task events
    and STARTED; Taskline worker RSS growth; the Redis CPU and commands each task costs,
    Taskline's and the monitored bare worker's. Each repetition runs the three back to back."""
    o = ctx.opts
    bare, monitored = ctx.deps["bare"], ctx.deps["monitored"]
    bare_procs = [
        bare.start_worker("bench.bare_celery"),
        # Celery's own monitoring on (task events, STARTED), as Taskline's worker has it.
        monitored.start_worker("bench.bare_celery", BENCH_BARE_MONITORED="1"),
    ]
    for dep in (bare, monitored):
        wait_consumers(dep.queue, lambda n: n >= 1)
    control = create_celery_app(ctx.main.settings(), with_backend=False)
    store = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    done_key = f"{ctx.main.prefix}index:state:SUCCESS"
    rss_before = worker_rss(ctx.pids["worker"])
    done_before = store.zcard(done_key)
    rates: dict[str, list[float]] = {k: [] for k in ("taskline", "bare", "monitored")}
    cpu_ms: dict[str, list[float]] = {"taskline": [], "monitored": []}  # worker CPU per task
    costs: dict[str, list[dict[str, Any]]] = {k: [] for k in REDIS_BURSTS}
    for i in range(o.runs):
        quiet = redis_cpu.idle(store)
        wanted = done_before + (i + 1) * o.drain_tasks
        with paused(control, ctx.main.queue, ctx.main.worker_hostname) as release:
            with redis_cpu.burst(store, quiet, o.drain_tasks) as cost:
                asyncio.run(_prefill(ctx.urls["api1"], ctx.auth(), o.drain_tasks))
            costs["taskline_submit"].append(cost)
            used = procs.cpu_seconds(ctx.pids["worker"])
            with redis_cpu.burst(store, quiet, o.drain_tasks) as cost:
                rates["taskline"].append(drain_rate(ctx.main.queue, o.drain_tasks, release, 120))
                wait_until(
                    lambda n=wanted: store.zcard(done_key) >= n, 60, 0.05, "Taskline drained"
                )
            used = procs.cpu_seconds(ctx.pids["worker"]) - used
            costs["taskline_run"].append(cost)
            cpu_ms["taskline"].append(1000 * used / o.drain_tasks)
        with paused(control, monitored.queue, monitored.worker_hostname) as release:
            with redis_cpu.burst(store, quiet, o.drain_tasks) as cost:
                last = fill_bare(monitored.env(), o.drain_tasks)
            costs["bare_submit"].append(cost)
            used = procs.cpu_seconds(bare_procs[1].pid)
            with redis_cpu.burst(store, quiet, o.drain_tasks) as cost:
                rates["monitored"].append(drain_rate(monitored.queue, o.drain_tasks, release, 120))
                wait_until(
                    lambda last=last: bare_succeeded(store, monitored, last), 60, 0.05, "drained"
                )
            used = procs.cpu_seconds(bare_procs[1].pid) - used
            costs["bare_run"].append(cost)
            cpu_ms["monitored"].append(1000 * used / o.drain_tasks)
        with paused(control, bare.queue, bare.worker_hostname) as release:
            last = fill_bare(bare.env(), o.drain_tasks)
            rates["bare"].append(drain_rate(bare.queue, o.drain_tasks, release, 120))
            # all run before the next repetition measures Redis at rest
            wait_until(lambda last=last: bare_succeeded(store, bare, last), 60, 0.05, "drained")
        ctx.log(
            f"worker run {i + 1}: taskline {rates['taskline'][i]:.0f} tasks/s, bare with task "
            f"events and STARTED {rates['monitored'][i]:.0f}/s, bare {rates['bare'][i]:.0f}/s"
        )
        ctx.log(
            f"worker run {i + 1}: worker CPU ms/task: taskline {cpu_ms['taskline'][i]:.2f}, "
            f"bare with task events and STARTED {cpu_ms['monitored'][i]:.2f}"
        )
        ctx.log(
            f"worker run {i + 1}: Redis µs/task: taskline submit "
            + " + run ".join(f"{costs[k][i]['us_per_task']:.0f}" for k in REDIS_BURSTS[:2])
            + "; bare with task events and STARTED submit "
            + " + run ".join(f"{costs[k][i]['us_per_task']:.0f}" for k in REDIS_BURSTS[2:])
        )
    for proc in bare_procs:
        procs.stop(proc)
    time.sleep(0.5)
    rss_after = worker_rss(ctx.pids["worker"])
    ran = store.zcard(done_key)
    store.close()
    control.close()
    taskline = rates["taskline"]
    ctx.figures["worker"] = {
        "tasks_per_run": o.drain_tasks,
        "method": "queue paused (cancel_consumer), N tasks submitted, consumer added; rate = "
        "0.8 N / time for the queue depth to fall from 90 % to 10 % of N; each repetition "
        "runs Taskline, the monitored bare worker and the bare worker back to back; CPU per "
        "task: user + system CPU of the worker's processes (main and pool child) from the "
        "release until the last task ended, ÷ N",
        "taskline_per_s": stats(taskline),
        "bare_per_s": stats(rates["bare"]),
        "ratio_vs_bare": stats([t / b for t, b in zip(taskline, rates["bare"], strict=True)]),
        "bare_monitored_per_s": stats(rates["monitored"]),
        "ratio_vs_bare_monitored": stats(
            [t / m for t, m in zip(taskline, rates["monitored"], strict=True)]
        ),
        "cpu_ms_per_task": stats(cpu_ms["taskline"]),
        "bare_monitored_cpu_ms_per_task": stats(cpu_ms["monitored"]),
        "cpu_ratio_vs_bare_monitored": stats(
            [t / m for t, m in zip(cpu_ms["taskline"], cpu_ms["monitored"], strict=True)]
        ),
        "rss_mb_before": rss_before,
        "rss_mb_after": rss_after,
        "tasks_between": ran - done_before,
        "tasks_total": ran,
        "rss_growth_pct": 100 * (rss_after - rss_before) / rss_before,
    }
    ctx.figures["redis_per_task"] = redis_figures(costs)


# The bursts whose Redis cost phase_worker measures.
REDIS_BURSTS = ("taskline_submit", "taskline_run", "bare_submit", "bare_run")


def redis_figures(costs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Median and spread of each burst's Redis cost per task, and the same-run ratios."""
    figures: dict[str, Any] = {"method": REDIS_METHOD}
    for burst in REDIS_BURSTS:
        runs = costs[burst]
        figures[burst] = {
            "us_per_task": stats([r["us_per_task"] for r in runs]),
            "commands_per_task": stats([r["commands_per_task"] for r in runs]),
            "scripts_per_task": stats([r["scripts_per_task"] for r in runs]),
            "calls_per_task": runs[-1]["calls_per_task"],  # the last run's, by command
        }
    pairs = list(zip(*(costs[b] for b in REDIS_BURSTS), strict=True))
    totals = [ts["us_per_task"] + tr["us_per_task"] for ts, tr, _, _ in pairs]
    bare = [bs["us_per_task"] + br["us_per_task"] for _, _, bs, br in pairs]
    figures["taskline_us_per_task"] = stats(totals)
    figures["bare_us_per_task"] = stats(bare)
    # What one Redis core carries if submitting and running tasks were all it did; a run
    # whose cost came out at or below zero (others' load on a shared Redis moved its idle
    # rate) carries no such figure and is left out.
    for name, us in (("taskline", totals), ("bare", bare)):
        per_core = [1e6 / u for u in us if u > 0]
        figures[f"{name}_tasks_per_core_s"] = stats(per_core) if per_core else None
    figures["ratio_vs_bare"] = stats([t / b for t, b in zip(totals, bare, strict=True)])
    figures["ratio_vs_bare_run"] = stats(
        [t / br["us_per_task"] for t, (_, _, _, br) in zip(totals, pairs, strict=True)]
    )
    return figures


# How long the interrupted task runs: long enough to be killed while running, short enough
# that the next task in line starts soon after its rerun.
TAKEOVER_RUN_SECONDS = 1.0
RUNNING = {"STARTED", "PROGRESS"}

TAKEOVER_METHOD = (
    "a standby worker on the line (RabbitMQ's single active consumer); a `reverse` task of "
    f"{TAKEOVER_RUN_SECONDS:g} s running on the active worker and another waiting behind it; "
    "kill -9 of the active worker's process group (main process and pool child): seconds "
    "from the kill (client clock) to the interrupted task's rerun `started_at` and to the "
    "next task's `started_at` (after the rerun's run); the standby, now the active worker, "
    "gets a fresh standby before the next repetition. The standby holds the redelivered "
    f"message while the dead run's lease lasts ({LEASE_MS / 1000:g} s from its last renewal, "
    f"renewed every {LEASE_RENEW_SECONDS:g} s)"
)


def phase_takeover(ctx: Context) -> None:
    """A standby takes over the line when the active worker is killed (kill -9 of its main
    process and pool child): kill → the interrupted task's rerun, and → the next task's start.
    Every worker on the line is stopped at the end, also on failure."""
    o, main = ctx.opts, ctx.main
    line: dict[str, subprocess.Popen] = {}  # node name → worker process
    if ctx.worker is not None:
        line[main.worker_hostname] = ctx.worker
    ctx.worker = None
    ctx.pids.pop("worker", None)
    rerun, following = [], []
    try:
        with httpx.Client(base_url=ctx.urls["api1"], headers=ctx.auth(), timeout=30) as client:
            for i in range(o.runs):
                standby = f"standby{i + 1}"
                line[main.node(standby)] = main.start_worker(suffix=standby)
                wait_consumers(main.queue, lambda n: n == 2)
                killed_at, task, nxt = _kill_active(client, line)
                done = wait_done(client, task, timeout=60)
                after = wait_done(client, nxt, timeout=60)
                if done["state"] != "SUCCESS" or done["attempts"] != 2:
                    raise RuntimeError(f"the interrupted task: {done}")
                if after["state"] != "SUCCESS":
                    raise RuntimeError(f"the next task: {after}")
                rerun.append(epoch(done["started_at"]) - killed_at)
                following.append(epoch(after["started_at"]) - killed_at)
                wait_consumers(main.queue, lambda n: n == 1)
                ctx.log(
                    f"takeover run {i + 1}: rerun started {rerun[-1]:.2f} s after kill -9, "
                    f"the next task {following[-1]:.2f} s after"
                )
    finally:
        for proc in line.values():
            procs.stop(proc)
    ctx.figures["takeover"] = {
        "method": TAKEOVER_METHOD,
        "run_seconds": TAKEOVER_RUN_SECONDS,
        "lease_seconds": LEASE_MS / 1000,
        "rerun_start_s": stats(rerun),
        "next_start_s": stats(following),
    }


def _kill_active(client: httpx.Client, line: dict[str, subprocess.Popen]) -> tuple[float, str, str]:
    """Submit a task and one behind it, kill -9 the worker running the first once it runs
    (its whole process group); the kill's time and the two task ids."""
    task = submit(client, "reverse", {"text": "takeover"}, delay_seconds=TAKEOVER_RUN_SECONDS)
    nxt = submit(client, "reverse", {"text": "next"})
    running = wait_state(client, task["id"], RUNNING, timeout=30)
    node = running["worker"].rpartition(":")[0]
    proc = line.pop(node)
    group = procs.tree(proc.pid)
    if len(group) != 2:
        raise RuntimeError(f"worker {node}: expected main process and pool child, got {group}")
    killed_at = time.time()
    os.killpg(proc.pid, signal.SIGKILL)
    psutil.wait_procs(group, timeout=10)
    procs.stop(proc)  # reaped and forgotten
    return killed_at, task["id"], nxt["id"]


def phase_listing(ctx: Context) -> None:
    """GET /tasks (a page of 50) with 1,000 and with 100,000 stored; API memory after reads."""
    o = ctx.opts
    small, large = ctx.deps["list1k"], ctx.deps["list100k"]
    ports = {"small": free_port(), "large": free_port()}
    urls = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
    small.start_api(ports["small"])
    pid_large = large.start_api(ports["large"]).pid
    auth = {
        "small": {"Authorization": f"Bearer {small.token(urls['small'])}"},
        "large": {"Authorization": f"Bearer {large.token(urls['large'])}"},
    }
    client = redis.Redis.from_url(REDIS_URL)
    fill(client, small.prefix, 1000, USER)
    seconds = fill(client, large.prefix, o.stored, USER)
    client.close()
    ctx.log(f"stored {o.stored} tasks in Redis in {seconds:.1f} s")
    pages = {k: Request(f"{urls[k]}/tasks?limit=50", headers=auth[k]) for k in urls}
    p50 = {"small": [], "large": []}
    rate = {"small": [], "large": []}
    ratios = []
    for i in range(o.runs):
        got = {
            k: checked(closed_loop(r, o.list_seconds, connections=1, threads=1), {200}, k)
            for k, r in pages.items()
        }
        for k, r in got.items():
            p50[k].append(r["p50_ms"])
            rate[k].append(r["rate"])
        ratios.append(got["large"]["p50_ms"] / got["small"]["p50_ms"])
        ctx.log(
            f"listing run {i + 1}: p50 {got['small']['p50_ms']:.2f} ms (1,000 stored), "
            f"{got['large']['p50_ms']:.2f} ms ({o.stored:,} stored)"
        )
    rss_start = procs.rss_mb(pid_large)
    read = 0
    with httpx.Client(base_url=urls["large"], headers=auth["large"], timeout=60) as http:
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
            body = http.get("/tasks", params=params).json()
            read += len(body["items"])
            cursor = body["next_cursor"]
            if cursor is None:
                break
    time.sleep(0.2)
    ctx.figures["listing"] = {
        "stored_small": 1000,
        "stored_large": o.stored,
        "method": "wrk, 1 connection, closed loop, GET /tasks?limit=50 (admin: the `all` index)",
        "p50_ms_small": stats(p50["small"]),
        "p50_ms_large": stats(p50["large"]),
        "per_s_small": stats(rate["small"]),
        "per_s_large": stats(rate["large"]),
        "ratio_large_vs_small": stats(ratios),
    }
    ctx.figures["memory"]["api_after_reading_all"] = {
        "what": f"RSS of a 1-process API that served the listing runs, then paged through all "
        f"{read:,} stored tasks (GET /tasks?limit=500)",
        "tasks": read,
        "rss_mb_before_paging": rss_start,
        "rss_mb": procs.rss_mb(pid_large),
    }


# Two lines of the `lines` deployment: `generate_serials` on a line of its own, the rest
# (`reverse`) on the main line; each line has its own worker and trivial tasks (one serial
# each: `leibniz_pi` of even one digit takes ~40 ms).
LINES = "serials=generate_serials;default=*"


def serial_bodies() -> Callable[[int], str]:
    """Bodies of one serial each, numbered from 0 under a code model of their own (a code
    model per prefill keeps the bursts apart)."""
    model = f"B{secrets.token_hex(4)}"
    return lambda i: json.dumps(
        {"name": "generate_serials", "params": {"code_model": model, "number": i, "count": 1}}
    )


LINES_METHOD = (
    f"one deployment with TASKLINE_LINES={LINES!r}, one API and one worker per line; per "
    "repetition each line drains N trivial tasks alone (the other line's worker idle), then "
    "both lines drain N each at once, released together: each line's rate measured as "
    "worker throughput (queue depth 90 % → 10 % of N) while the other drains too"
)


def phase_lines(ctx: Context) -> None:
    """Two lines' throughput side by side: each alone, then both at once."""
    o, dep = ctx.opts, ctx.deps["lines"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    dep.start_api(port, 1, "api", TASKLINE_LINES=LINES)
    headers = {"Authorization": f"Bearer {dep.token(url)}"}
    line = "serials"
    other = f"{dep.queue}.{line}"
    workers = {
        dep.queue: (dep.start_worker(TASKLINE_LINES=LINES), dep.node()),
        other: (
            dep.start_worker(suffix="serials", TASKLINE_LINES=LINES, TASKLINE_WORKER_LINE=line),
            dep.node(line),
        ),
    }
    bodies: dict[str, Callable[[], Callable[[int], str]]] = {
        dep.queue: lambda: lambda _: REVERSE_BODY,
        other: serial_bodies,
    }
    for queue in workers:
        wait_consumers(queue, lambda n: n >= 1)
    control = create_celery_app(dep.settings(), with_backend=False)
    store = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    done_key = f"{dep.prefix}index:state:SUCCESS"
    rates: dict[str, list[float]] = {k: [] for k in ("main_alone", "other_alone", "main", "other")}
    done = 0

    def drain(queues: list[str]) -> list[float]:
        nonlocal done
        with contextlib.ExitStack() as stack:
            releases = [stack.enter_context(paused(control, q, workers[q][1])) for q in queues]
            for queue in queues:
                asyncio.run(_prefill(url, headers, o.drain_tasks, bodies[queue]()))
            found = drain_rates(queues, o.drain_tasks, releases, 120)
        done += len(queues) * o.drain_tasks
        wait_until(lambda: store.zcard(done_key) >= done, 60, 0.05, "both lines drained")
        return found

    try:
        for i in range(o.runs):
            rates["main_alone"] += drain([dep.queue])
            rates["other_alone"] += drain([other])
            main_rate, other_rate = drain([dep.queue, other])
            rates["main"].append(main_rate)
            rates["other"].append(other_rate)
            ctx.log(
                f"lines run {i + 1}: alone default {rates['main_alone'][i]:.0f}/s, serials "
                f"{rates['other_alone'][i]:.0f}/s; together default {main_rate:.0f}/s + "
                f"serials {other_rate:.0f}/s"
            )
    finally:
        store.close()
        control.close()
        for proc, _ in workers.values():
            procs.stop(proc)
    together = [m + p for m, p in zip(rates["main"], rates["other"], strict=True)]
    ctx.figures["lines"] = {
        "method": LINES_METHOD,
        "lines": LINES,
        "tasks_per_run": o.drain_tasks,
        "default_alone_per_s": stats(rates["main_alone"]),
        "serials_alone_per_s": stats(rates["other_alone"]),
        "default_together_per_s": stats(rates["main"]),
        "serials_together_per_s": stats(rates["other"]),
        "together_per_s": stats(together),
        "together_vs_best_alone": stats(
            [
                t / max(m, p)
                for t, m, p in zip(together, rates["main_alone"], rates["other_alone"], strict=True)
            ]
        ),
    }


# The searches of the search figure: (label, query of a page of 50).
SEARCHES = [
    ("one state (the single-index path)", "state=CANCELLED"),
    ("several states", "state=CANCELLED&state=FAILURE&state=SUCCESS"),
    ("name + state", "name=reverse&state=CANCELLED"),
    ("names + states", "name=reverse&name=leibniz_pi&state=QUEUED&state=CANCELLED"),
    ("owner + states", f"owner={USER}&state=QUEUED&state=CANCELLED"),
    ("id prefix (3 hex digits)", "id_prefix=abc"),
    ("param value", "param.text=text-501"),
    ("param value + state", "param.text=text-505&state=CANCELLED"),
]


def phase_search(ctx: Context) -> None:
    """GET /tasks searches (a page of 50) among 100,000 stored tasks, every fifth cancelled."""
    o = ctx.opts
    large = ctx.deps["search"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    large.start_api(port)
    auth = {"Authorization": f"Bearer {large.token(url)}"}
    client = redis.Redis.from_url(REDIS_URL)
    seconds = fill(client, large.prefix, o.stored, USER, cancel_every=5)
    client.close()
    ctx.log(f"stored {o.stored} tasks in Redis in {seconds:.1f} s")
    client = redis.Redis.from_url(REDIS_URL)
    middle = client.zrange(
        f"{large.prefix}index:created", o.stored // 2, o.stored // 2, withscores=True
    )
    client.close()
    searches = [
        *SEARCHES,
        (
            "created since the middle + state",
            f"created_after={middle[0][1] / 1000:.3f}&state=QUEUED",
        ),
    ]
    figures: dict[str, Any] = {}
    for label, query in searches:
        request = Request(f"{url}/tasks?limit=50&{query}", headers=auth)
        runs = [
            checked(closed_loop(request, o.list_seconds, connections=1, threads=1), {200}, label)
            for _ in range(o.runs)
        ]
        figures[label] = {
            "query": query,
            "p50_ms": stats([r["p50_ms"] for r in runs]),
            "p95_ms": stats([r["p95_ms"] for r in runs]),
        }
        ctx.log(
            f"search {label}: p50 {figures[label]['p50_ms']['median']:.2f} ms, "
            f"p95 {figures[label]['p95_ms']['median']:.2f} ms"
        )
    ctx.figures["search"] = {
        "stored": o.stored,
        "method": "wrk, 1 connection, closed loop, GET /tasks?limit=50&… as an admin, "
        "every fifth task CANCELLED, the rest QUEUED, names alternating, 500 texts of "
        "reverse (searchable) of 100 tasks each",
        "target_p50_ms": 10,
        "searches": figures,
    }


def main_api_memory(ctx: Context) -> None:
    """RSS of the main 1-process API after everything it served."""
    store = redis.Redis.from_url(REDIS_URL)
    created = store.zcard(f"{ctx.main.prefix}index:all")
    store.close()
    ctx.figures["memory"] = {
        "api_main": {
            "what": f"RSS of the 1-process API after the submission, read, SSE, latency and "
            f"worker phases ({created:,} tasks created through the two main APIs)",
            "tasks": created,
            "rss_mb": procs.rss_mb(ctx.pids["api1"]),
        },
        "api_two_processes_mb": procs.rss_mb(ctx.pids["api2"]),
    }


def run(opts: Options) -> dict[str, Any]:
    """Every phase, in an order that needs the fewest restarts; always cleans up."""
    started = time.monotonic()
    deps = deployments(["main", "bare", "monitored", "list1k", "list100k", "lines", "search"], LOGS)
    ctx = Context(opts, deps)
    ctx.log(f"run tag {ctx.main.tag}, logs in {LOGS.relative_to(procs.ROOT)}")
    try:
        start_services(ctx)
        with ctx.phase("submissions (worker stopped)"):
            phase_submissions(ctx)
        with ctx.phase("access log cost (worker stopped)"):
            phase_access_log(ctx)
        with ctx.phase("metrics cost (worker stopped)"):
            phase_metrics(ctx)
        start_worker(ctx)
        with httpx.Client(base_url=ctx.urls["api1"], headers=ctx.auth(), timeout=30) as client:
            with ctx.phase("status reads"):
                phase_reads(ctx, client)
            with ctx.phase("Redis bytes per stored task"):
                phase_stored_bytes(ctx, client)
            with ctx.phase("SSE fan-out"):
                phase_sse(ctx, client)
            with ctx.phase("submit → STARTED latency"):
                phase_latency(ctx, client)
            with ctx.phase("SSE fan-out of the whole line (GET /events)"):
                phase_sse(ctx, client, line=True)
            with ctx.phase("prediction error"):
                phase_predict(ctx, client)
        # Flower turns task events on in every worker it sees (the bare one too): stop it.
        procs.stop_pid(ctx.pids["flower"])
        procs.stop_pid(ctx.pids["baseline"])
        with ctx.phase("worker throughput"):
            phase_worker(ctx)
        main_api_memory(ctx)
        if opts.profile:
            with ctx.phase("profiles"):
                profile_phases(ctx)
        with ctx.phase("standby takeover"):
            phase_takeover(ctx)
        procs.stop_all()
        with ctx.phase("two lines side by side"):
            phase_lines(ctx)
        procs.stop_all()
        with ctx.phase("listing"):
            phase_listing(ctx)
        procs.stop_all()
        with ctx.phase("search"):
            phase_search(ctx)
    finally:
        procs.stop_all()
        cleaned = cleanup(ctx.main.tag)
        ctx.log(f"stopped everything; deleted {cleaned['keys']} keys, {cleaned['queues']} queues")
    ctx.figures["runtime_s"] = time.monotonic() - started
    return {"options": vars(opts), "figures": ctx.figures, "notes": ctx.notes}


def run_alone(
    opts: Options, names: list[str], body: Callable[[Context], None], worker: bool = True
) -> dict[str, Any]:
    """One phase alone (`--only`) on the 1-process API (and, with `worker`, the worker) of a
    fresh main deployment (and the deployments `names`); always cleans up."""
    started = time.monotonic()
    ctx = Context(opts, deployments(["main", *names], LOGS))
    ctx.log(f"run tag {ctx.main.tag}, logs in {LOGS.relative_to(procs.ROOT)}")
    try:
        start_api1(ctx)
        if worker:
            start_worker(ctx)
        body(ctx)
    finally:
        procs.stop_all()
        cleaned = cleanup(ctx.main.tag)
        ctx.log(f"stopped everything; deleted {cleaned['keys']} keys, {cleaned['queues']} queues")
    ctx.figures["runtime_s"] = time.monotonic() - started
    return {"options": vars(opts), "figures": ctx.figures, "notes": ctx.notes}


def phase_predict(ctx: Context, client: httpx.Client) -> None:
    """The mean absolute error of GET /tasks/{id}/eta's expected starts and ends on a known
    workload of padded runs behind a running one (tests/predicting.py), once per run."""
    starts, ends = [], []
    for _ in range(ctx.opts.runs):
        found = predicting.measure(client)
        starts.append(found["start_mae_s"] * 1000)
        ends.append(found["end_mae_s"] * 1000)
    ctx.figures["predict"] = {
        "what": f"{len(predicting.DELAYS)} padded `reverse` runs of known length waiting "
        "behind a running one: |expected - real| of their starts and ends, mean",
        "start_mae_ms": stats(starts),
        "end_mae_ms": stats(ends),
    }


def predict_alone(ctx: Context) -> None:
    """`--only predict`: the predictions' error on a known workload."""
    with (
        httpx.Client(base_url=ctx.urls["api1"], headers=ctx.auth(), timeout=30) as client,
        ctx.phase("prediction error"),
    ):
        phase_predict(ctx, client)


def worker_alone(ctx: Context) -> None:
    """`--only worker`: the worker phase with the bare workers (and the worker's profile)."""
    with ctx.phase("worker throughput"):
        phase_worker(ctx)
    if ctx.opts.profile:
        with ctx.phase("profiles"):
            profile_worker(ctx)


def alone(title: str, phase: Callable[[Context], None]) -> Callable[[Context], None]:
    """`--only`: a phase that needs nothing but the context, run under its title."""

    def body(ctx: Context) -> None:
        with ctx.phase(title):
            phase(ctx)

    return body


# --only NAME: the deployments besides main that the phase needs, the phase, and whether it
# runs with the main deployment's worker.
ALONE: dict[str, tuple[list[str], Callable[[Context], None], bool]] = {
    "worker": (["bare", "monitored"], worker_alone, True),
    "takeover": ([], alone("standby takeover", phase_takeover), True),
    "access": ([], alone("access log cost", phase_access_log), False),
    "lines": (["lines"], alone("two lines side by side", phase_lines), False),
    "predict": ([], predict_alone, True),
    "metrics": ([], alone("metrics cost", phase_metrics), False),
    "search": (["search"], alone("search", phase_search), False),
}


def profile_phases(ctx: Context) -> None:
    """py-spy profiles of the API and the worker under the loads that miss their targets."""
    from bench.profile import spy

    o = ctx.opts
    json_type = {"Content-Type": "application/json"}
    post = Request(f"{ctx.urls['api1']}/tasks", "POST", REVERSE_BODY, {**ctx.auth(), **json_type})
    with spy("api-post", ctx.pids["api1"]):
        closed_loop(post, o.seconds + 2)
    task_id = ctx.figures["reads"]["task_id"]
    get = Request(f"{ctx.urls['api1']}/tasks/{task_id}", headers=ctx.auth())
    with spy("api-get", ctx.pids["api1"]):
        closed_loop(get, o.seconds + 2)
    profile_worker(ctx)


def profile_worker(ctx: Context) -> None:
    """py-spy profile of the worker (main process and pool child) draining trivial tasks."""
    from bench.profile import spy

    o = ctx.opts
    control = create_celery_app(ctx.main.settings(), with_backend=False)
    with paused(control, ctx.main.queue, ctx.main.worker_hostname) as release:
        asyncio.run(_prefill(ctx.urls["api1"], ctx.auth(), o.drain_tasks))
        with spy("worker", ctx.pids["worker"], subprocesses=True):
            drain_rate(ctx.main.queue, o.drain_tasks, release, 120)
    control.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short runs, to try the suite out")
    parser.add_argument("--profile", action="store_true", help="also record py-spy profiles")
    parser.add_argument(
        "--only",
        choices=sorted(ALONE),
        help="run one phase alone, about a minute (worker: throughput and Redis cost per "
        "task; takeover: a standby taking over from a killed worker; access: the access "
        "log's cost to reads and submissions; lines: two lines' throughput side by side; "
        "predict: the error of expected starts and ends; metrics: the Prometheus counters' "
        "cost; search: GET /tasks searches among 100,000 stored)",
    )
    args = parser.parse_args()
    opts = Options(profile=args.profile, only=args.only)
    if args.quick:
        opts = Options(
            runs=3,
            seconds=2,
            rate_seconds=2,
            latency_tasks=15,
            drain_tasks=300,
            sse_clients=50,
            sse_delay=3,
            list_seconds=1,
            stored=10_000,
            profile=args.profile,
            only=args.only,
        )
    procs.install_handlers()
    os.chdir(procs.ROOT)
    results = run_alone(opts, *ALONE[opts.only]) if opts.only else run(opts)
    stem = f"latest-{opts.only}" if opts.only else "latest"
    report.write(results, RESULTS, stem)
    print(report.markdown_table(results))
    print(
        f"wrote bench/results/{stem}.json, {stem}.md, {stem}.png "
        f"({results['figures']['runtime_s']:.0f} s)"
    )


if __name__ == "__main__":
    main()
