"""Targets, and the three outputs of a run: latest.json, latest.md (table) and latest.png.

A target is judged on the median of its runs; the table also shows the spread (min–max over
the runs) and, for comparisons, the baseline measured in the same repetitions.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import procs


@dataclass(frozen=True)
class Target:
    """One line of the issue's table: where the figure is, and what it must reach."""

    key: str
    label: str
    path: tuple[str, ...]
    unit: str
    op: str  # ">=" or "<="
    bound: float
    reference: tuple[str, ...] | None = None
    reference_label: str = ""


TARGETS = [
    Target(
        "sub_rate",
        "submissions accepted, 1 process",
        ("submissions", "api1_per_s"),
        "/s",
        ">=",
        1000,
    ),
    Target(
        "sub_vs_flower",
        "submissions ÷ Flower send-task",
        ("submissions", "ratio_vs_flower"),
        "×",
        ">=",
        2.5,
        ("submissions", "flower_send_task_per_s"),
        "Flower send-task /s",
    ),
    Target("read_rate", "status reads, 1 process", ("reads", "api1_per_s"), "/s", ">=", 4000),
    Target(
        "read_vs_info",
        "reads ÷ Flower task/info",
        ("reads", "ratio_vs_flower_info"),
        "×",
        ">=",
        1,
        ("reads", "flower_info_per_s"),
        "Flower task/info /s",
    ),
    Target(
        "read_vs_result",
        "reads ÷ Flower task/result",
        ("reads", "ratio_vs_flower_result"),
        "×",
        ">=",
        3,
        ("reads", "flower_result_per_s"),
        "Flower task/result /s",
    ),
    Target(
        "read_vs_baseline",
        "reads ÷ AsyncResult-in-a-thread app",
        ("reads", "ratio_vs_baseline"),
        "×",
        ">=",
        3,
        ("reads", "baseline_per_s"),
        "AsyncResult app /s",
    ),
    Target(
        "read_p99",
        "read p99 at half the peak of its 8 connections",
        ("reads", "half_peak_p99_ms"),
        "ms",
        "<=",
        10,
        ("reads", "half_peak_achieved_per_s"),
        "rate held /s",
    ),
    Target(
        "list_p50",
        "list page of 50, 100,000 stored: p50",
        ("listing", "p50_ms_large"),
        "ms",
        "<=",
        10,
    ),
    Target(
        "list_ratio",
        "list p50, 100,000 ÷ 1,000 stored",
        ("listing", "ratio_large_vs_small"),
        "×",
        "<=",
        1.5,
        ("listing", "p50_ms_small"),
        "p50 with 1,000 stored, ms",
    ),
    Target(
        "start_p50", "submit → STARTED p50 (idle worker)", ("latency", "p50_ms"), "ms", "<=", 10
    ),
    Target(
        "start_p99", "submit → STARTED p99 (idle worker)", ("latency", "p99_ms"), "ms", "<=", 50
    ),
    Target(
        "worker_ratio",
        "worker throughput ÷ bare Celery",
        ("worker", "ratio_vs_bare"),
        "×",
        ">=",
        0.8,
        ("worker", "bare_per_s"),
        "bare Celery tasks/s",
    ),
    Target(
        "worker_vs_monitored",
        "worker throughput ÷ bare Celery with task events and STARTED",
        ("worker", "ratio_vs_bare_monitored"),
        "×",
        ">=",
        0.95,
        ("worker", "bare_monitored_per_s"),
        "monitored bare Celery tasks/s",
    ),
    Target(
        "redis_cpu_ratio",
        "Redis CPU per task, submit + run ÷ the monitored bare worker's",
        ("redis_per_task", "ratio_vs_bare"),
        "×",
        "<=",
        1.0,
        ("redis_per_task", "bare_us_per_task"),
        "bare, µs/task",
    ),
    Target(
        "sse_complete",
        "SSE: every client saw every progress event (share of runs)",
        ("sse", "all_clients_all_events"),
        "",
        ">=",
        1,
    ),
    Target(
        "sse_cpu", "SSE fan-out: API CPU (% of one core)", ("sse", "api_cpu_pct"), "%", "<=", 50
    ),
    Target(
        "line_sse_complete",
        "GET /events, 200 clients: every client saw every progress event (share of runs)",
        ("line_sse", "all_clients_all_events"),
        "",
        ">=",
        1,
    ),
    Target(
        "line_sse_cpu",
        "GET /events fan-out: API CPU (% of one core)",
        ("line_sse", "api_cpu_pct"),
        "%",
        "<=",
        50,
    ),
    Target(
        "api_rss",
        "API RSS after reading 100,000 tasks",
        ("memory", "api_after_reading_all", "rss_mb"),
        "MB",
        "<=",
        150,
    ),
    Target(
        "api_rss_main",
        "API RSS after all load phases",
        ("memory", "api_main", "rss_mb"),
        "MB",
        "<=",
        150,
    ),
    Target("worker_rss", "worker RSS growth", ("worker", "rss_growth_pct"), "%", "<=", 10),
    Target(
        "sub_scale",
        "submissions, 2 processes ÷ 1",
        ("submissions", "ratio_two_vs_one"),
        "×",
        ">=",
        1.5,
        ("submissions", "api2_per_s"),
        "2 processes /s",
    ),
    Target(
        "read_scale",
        "reads, 2 processes ÷ 1",
        ("reads", "ratio_two_vs_one"),
        "×",
        ">=",
        1.5,
        ("reads", "api2_per_s"),
        "2 processes /s",
    ),
    Target(
        "access_read_cost",
        "access log cost: API CPU per status read, on ÷ off - 1",
        ("access_log", "reads_cpu_cost_pct"),
        "%",
        "<=",
        5,
        ("access_log", "reads_cpu_us_off"),
        "CPU µs per read without",
    ),
    Target(
        "access_submit_cost",
        "access log cost: API CPU per submission, on ÷ off - 1",
        ("access_log", "submissions_cpu_cost_pct"),
        "%",
        "<=",
        5,
        ("access_log", "submissions_cpu_us_off"),
        "CPU µs per submission without",
    ),
    Target(
        "metrics_read_cost",
        "metrics cost: API CPU per status read, on ÷ off - 1",
        ("metrics", "reads_cpu_cost_pct"),
        "%",
        "<=",
        5,
        ("metrics", "reads_cpu_us_off"),
        "CPU µs per read without",
    ),
    Target(
        "metrics_submit_cost",
        "metrics cost: API CPU per submission, on ÷ off - 1",
        ("metrics", "submissions_cpu_cost_pct"),
        "%",
        "<=",
        5,
        ("metrics", "submissions_cpu_us_off"),
        "CPU µs per submission without",
    ),
    Target(
        "stored_ratio",
        "Redis bytes per stored task ÷ its 400 KB body",
        ("stored", "ratio_vs_body"),
        "×",
        "<=",
        1.2,
    ),
    Target(
        "takeover",
        "standby takeover: kill -9 of the active worker → the interrupted task's rerun starts",
        ("takeover", "rerun_start_s"),
        "s",
        "<=",
        15,
        ("takeover", "next_start_s"),
        "next task in line started, s",
    ),
]


@dataclass(frozen=True)
class Info:
    """A figure shown as measured, without a target; with a reference measured beside it."""

    label: str
    path: tuple[str, ...]
    reference: tuple[str, ...] | None = None
    reference_label: str = ""


# Figures shown as measured on their own (baselines measured in the same run, context).
INFO = [
    Info(
        "bare Celery producer, confirmed publishes /s (one thread)",
        ("submissions", "bare_producer_per_s"),
    ),
    Info("Taskline worker, trivial tasks /s", ("worker", "taskline_per_s")),
    Info(
        "bare Celery worker with task events and STARTED (as Taskline's), tasks /s",
        ("worker", "bare_monitored_per_s"),
    ),
    Info("Taskline worker CPU per task (main + pool child), ms", ("worker", "cpu_ms_per_task")),
    Info("monitored bare worker CPU per task, ms", ("worker", "bare_monitored_cpu_ms_per_task")),
    Info("worker CPU per task ÷ the monitored bare's", ("worker", "cpu_ratio_vs_bare_monitored")),
    Info(
        "Redis CPU per task, Taskline submit, µs",
        ("redis_per_task", "taskline_submit", "us_per_task"),
    ),
    Info(
        "Redis CPU per task, Taskline run and finish, µs",
        ("redis_per_task", "taskline_run", "us_per_task"),
    ),
    Info(
        "Redis CPU per task, monitored bare submit, µs",
        ("redis_per_task", "bare_submit", "us_per_task"),
    ),
    Info(
        "Redis CPU per task, monitored bare run, µs", ("redis_per_task", "bare_run", "us_per_task")
    ),
    Info(
        "Redis CPU per task, Taskline submit + run ÷ the bare run alone",
        ("redis_per_task", "ratio_vs_bare_run"),
    ),
    Info(
        "tasks/s one Redis core carries (1e6 ÷ Redis µs per task, submit + run and finish), "
        "Taskline",
        ("redis_per_task", "taskline_tasks_per_core_s"),
        ("redis_per_task", "bare_tasks_per_core_s"),
        "monitored bare Celery (submit + run)",
    ),
    Info(
        "two lines, each alone: default (reverse) tasks /s",
        ("lines", "default_alone_per_s"),
        ("lines", "serials_alone_per_s"),
        "serials (generate_serials) alone /s",
    ),
    Info(
        "two lines side by side: default (reverse) tasks /s",
        ("lines", "default_together_per_s"),
        ("lines", "serials_together_per_s"),
        "serials (generate_serials) meanwhile /s",
    ),
    Info(
        "two lines side by side: both lines' tasks /s ÷ the faster line alone",
        ("lines", "together_vs_best_alone"),
        ("lines", "together_per_s"),
        "both lines /s",
    ),
    Info("status read p50 at peak, ms", ("reads", "api1_p50_ms_at_peak")),
    Info(
        "status reads /s with 8 connections (half of it: the p99's rate)",
        ("reads", "half_peak_of_per_s"),
    ),
    Info("submission p50 at peak, ms", ("submissions", "api1_p50_ms")),
    Info("listing p50 with 1,000 stored, ms", ("listing", "p50_ms_small")),
    Info("submit → STARTED max, ms", ("latency", "max_ms")),
    Info("access log cost: status reads /s, 1 - on ÷ off, %", ("access_log", "reads_cost_pct")),
    Info("predicted start, mean absolute error, ms", ("predict", "start_mae_ms")),
    Info("predicted end, mean absolute error, ms", ("predict", "end_mae_ms")),
    Info(
        "access log cost: submissions /s, 1 - on ÷ off, %",
        ("access_log", "submissions_cost_pct"),
    ),
]


def lookup(figures: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = figures
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def median(value: Any) -> float | None:
    if value is None:
        return None
    return value["median"] if isinstance(value, dict) else float(value)


def judge(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with its median, spread, reference and verdict."""
    rows = []
    for t in TARGETS:
        value = lookup(figures, t.path)
        med = median(value)
        met = None
        if med is not None:
            met = med >= t.bound if t.op == ">=" else med <= t.bound
        rows.append(
            {
                "key": t.key,
                "figure": t.label,
                "value": value,
                "median": med,
                "target": f"{t.op} {t.bound:g}{t.unit}",
                "op": t.op,
                "bound": t.bound,
                "met": met,
                "reference_label": t.reference_label,
                "reference": lookup(figures, t.reference) if t.reference else None,
            }
        )
    return rows


def fmt(value: Any, digits: int = 0) -> str:
    """median [min–max] for a figure with runs, the number alone otherwise."""
    if value is None:
        return "—"
    if isinstance(value, dict):
        spec = _spec(value["median"], digits)
        return f"{value['median']:{spec}} [{value['min']:{spec}}–{value['max']:{spec}}]"
    return f"{value:{_spec(value, digits)}}"


def _spec(x: float, digits: int) -> str:
    if digits:
        return f",.{digits}f"
    return ",.0f" if abs(x) >= 100 else ",.2f" if abs(x) < 10 else ",.1f"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = None
    if shutil.which("git"):
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=procs.ROOT, capture_output=True, text=True
        )
        commit = out.stdout.strip() or None
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    versions = {}
    for name in ("celery", "kombu", "fastapi", "uvicorn", "flower", "redis", "pydantic"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "commit": commit,
        "wrk": wrk.split(" [")[0].strip() if wrk else None,
        **versions,
    }


def markdown_table(results: dict[str, Any]) -> str:
    """The targets table: median [min–max] over the runs, the same-run reference, verdict."""
    lines = [
        "| figure | Taskline: median [min–max] | reference in the same run | target | result |",
        "|---|---|---|---|---|",
    ]
    for row in results["targets"]:
        verdict = {True: "**met**", False: "**missed**", None: "not measured"}[row["met"]]
        ref = f"{row['reference_label']}: {fmt(row['reference'])}" if row["reference"] else ""
        lines.append(
            f"| {row['figure']} | {fmt(row['value'])} | {ref} | {row['target']} | {verdict} |"
        )
    lines += [
        "",
        "| also measured (same run) | median [min–max] | beside it in the same run |",
        "|---|---|---|",
    ]
    figures = results["figures"]
    for info in INFO:
        ref = ""
        if info.reference:
            ref = f"{info.reference_label}: {fmt(lookup(figures, info.reference))}"
        lines.append(f"| {info.label} | {fmt(lookup(figures, info.path))} | {ref} |")
    return "\n".join(lines + search_table(figures))


def search_table(figures: dict[str, Any]) -> list[str]:
    """The searches of `GET /tasks` (a page of 50), p50 and p95 against the p50 target."""
    search = figures.get("search")
    if not search:
        return []
    target = search["target_p50_ms"]
    lines = [
        "",
        f"| search, page of 50 among {search['stored']:,} stored | query | p50 ms "
        f"[min–max] | p95 ms [min–max] | p50 ≤ {target} ms |",
        "|---|---|---|---|---|",
    ]
    for label, found in search["searches"].items():
        met = "**met**" if found["p50_ms"]["median"] <= target else "**missed**"
        lines.append(
            f"| {label} | `{found['query']}` | {fmt(found['p50_ms'])} | "
            f"{fmt(found['p95_ms'])} | {met} |"
        )
    return lines


def markdown(results: dict[str, Any]) -> str:
    m, f, o = results["machine"], results["figures"], results["options"]
    met = sum(1 for r in results["targets"] if r["met"])
    memory = f.get("memory", {})
    parts = [
        "# Taskline benchmark: latest run",
        "",
        f"- date: {m['date']}; commit: `{m['commit'] or 'unknown'}`",
        f"- machine: {m['cpu_model']}, {m['cpu_count']} cores, {m['platform']}, "
        f"Python {m['python']}",
        f"- versions: celery {m['celery']}, kombu {m['kombu']}, fastapi {m['fastapi']}, "
        f"uvicorn {m['uvicorn']}, flower {m['flower']}, redis-py {m['redis']}; {m['wrk']}",
        f"- runs per figure: {o['runs']}; closed-loop runs {o['seconds']} s with wrk -t2 -c32; "
        f"runtime of the suite {f.get('runtime_s', 0):.0f} s",
        f"- targets met: {met} of {len(results['targets'])}",
        "",
        markdown_table(results),
        "",
        "## How each figure was taken",
        "",
        "- submissions: `POST /tasks` (bearer token, `reverse`, no Idempotency-Key), worker "
        "stopped: 202 = record written + persistent message confirmed by RabbitMQ. Flower: "
        "`POST /api/task/send-task/reverse` (basic auth) on the same queue and app.",
        "- status reads: `GET /tasks/{id}` of a running `leibniz_pi` reporting progress; "
        "Flower `task/info` (its in-memory event state) and `task/result` (AsyncResult), and "
        "bench/baseline_app.py (AsyncResult(id).state/.info via run_in_threadpool), same task.",
        "- p99 at half the peak: bench/lua/fixed_rate.lua, 8 connections each on its own "
        "schedule, latency from the due time when the previous answer was late, at half the "
        "peak that 8 closed-loop connections carry (measured in each repetition; reads asked "
        "together are read together, so 32 connections carry more than 8 could at any rate).",
        f"- listing: {lookup(f, ('listing', 'method'))}; records written by the `create` "
        "script in pipelines under separate prefixes, one API each, no worker.",
        f"- submit → STARTED: {lookup(f, ('latency', 'method'))}; "
        f"{lookup(f, ('latency', 'tasks_per_run'))} tasks per run.",
        f"- worker: {lookup(f, ('worker', 'method'))}; N = {lookup(f, ('worker', 'tasks_per_run'))}"
        ". Bare Celery: bench/bare_celery.py, same queue arguments, confirms, acks late, "
        "prefetch 1, prefork with one child, Redis result backend, no task events; and the "
        "same worker with task events and the STARTED state on (BENCH_BARE_MONITORED), as "
        "Taskline's worker has them for Flower.",
        f"- SSE: {lookup(f, ('sse', 'clients'))} clients (bench/sse_clients.py) on "
        "`GET /tasks/{id}/events` of `leibniz_pi` digits 8 with a delay, connected while it "
        "waits behind another task; API CPU from psutil between its started_at and "
        "finished_at; events compared with the task's Redis stream.",
        f"- access log cost: {lookup(f, ('access_log', 'method'))}.",
        f"- metrics cost: {lookup(f, ('metrics', 'method'))}.",
        f"- memory: {lookup(memory, ('api_after_reading_all', 'what'))}. "
        f"{lookup(memory, ('api_main', 'what'))}. Worker: RSS of the worker and its pool "
        f"child before and after {lookup(f, ('worker', 'tasks_between'))} tasks "
        f"({fmt(lookup(f, ('worker', 'rss_mb_before')))} → "
        f"{fmt(lookup(f, ('worker', 'rss_mb_after')))} MB).",
        f"- standby takeover: {lookup(f, ('takeover', 'method'))}.",
        f"- two lines: {lookup(f, ('lines', 'method'))}; N = "
        f"{lookup(f, ('lines', 'tasks_per_run'))}.",
    ]
    redis_cost = f.get("redis_per_task")
    if redis_cost:
        parts += ["", "## Redis per task", "", f"{redis_cost['method']}.", ""]
        if redis_cost.get("taskline_tasks_per_core_s"):  # older results lack it
            parts += [
                "Tasks per second one Redis core carries (1e6 ÷ µs per task, submit + run): "
                f"Taskline {fmt(redis_cost['taskline_tasks_per_core_s'])}, the monitored bare "
                f"Celery worker {fmt(redis_cost['bare_tasks_per_core_s'])}.",
                "",
            ]
        parts += [
            "| burst | CPU µs/task | commands/task | script calls/task | most called |",
            "|---|---|---|---|---|",
        ]
        for burst in ("taskline_submit", "taskline_run", "bare_submit", "bare_run"):
            cost = redis_cost[burst]
            top = ", ".join(f"{k} {v:.1f}" for k, v in list(cost["calls_per_task"].items())[:8])
            parts.append(
                f"| {burst.replace('_', ' ')} | {fmt(cost['us_per_task'])} | "
                f"{fmt(cost['commands_per_task'], 1)} | {fmt(cost['scripts_per_task'], 1)} | "
                f"{top} |"
            )
    problems = lookup(f, ("sse", "problems"))
    if problems:
        parts += ["", "SSE problems: " + "; ".join(problems)]
    foreign = f.get("foreign_cpu_pct") or {}
    if foreign:
        worst = max(foreign.values())
        parts += [
            "",
            "## Other load on the machine",
            "",
            "CPU used meanwhile by processes that were neither the suite's nor RabbitMQ/Redis, "
            "in % of one core: "
            + ", ".join(f"{name} {load:.0f} %" for name, load in foreign.items())
            + (
                ". **The machine was shared during this run: figures are disturbed.**"
                if worst > 10
                else "."
            ),
        ]
    if results.get("notes"):
        parts += ["", "## Problems", ""] + [f"- {note}" for note in results["notes"]]
    return "\n".join(parts) + "\n"


def plot(results: dict[str, Any], path: Path) -> None:
    """Throughputs against their baselines, and every target as measured ÷ bound."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = results["figures"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 7.5))
    bars: list[tuple[str, Any, str]] = [
        ("POST /tasks, 1 proc", lookup(f, ("submissions", "api1_per_s")), "tab:blue"),
        ("POST /tasks, 2 procs", lookup(f, ("submissions", "api2_per_s")), "tab:blue"),
        ("Flower send-task", lookup(f, ("submissions", "flower_send_task_per_s")), "tab:gray"),
        ("bare producer", lookup(f, ("submissions", "bare_producer_per_s")), "tab:gray"),
        ("GET /tasks/{id}, 1 proc", lookup(f, ("reads", "api1_per_s")), "tab:green"),
        ("GET /tasks/{id}, 2 procs", lookup(f, ("reads", "api2_per_s")), "tab:green"),
        ("Flower task/info", lookup(f, ("reads", "flower_info_per_s")), "tab:gray"),
        ("Flower task/result", lookup(f, ("reads", "flower_result_per_s")), "tab:gray"),
        ("AsyncResult app", lookup(f, ("reads", "baseline_per_s")), "tab:gray"),
        ("Taskline worker", lookup(f, ("worker", "taskline_per_s")), "tab:orange"),
        ("bare Celery worker", lookup(f, ("worker", "bare_per_s")), "tab:gray"),
        ("line default alone", lookup(f, ("lines", "default_alone_per_s")), "tab:purple"),
        ("line serials alone", lookup(f, ("lines", "serials_alone_per_s")), "tab:purple"),
        ("default beside serials", lookup(f, ("lines", "default_together_per_s")), "tab:purple"),
        ("serials beside default", lookup(f, ("lines", "serials_together_per_s")), "tab:purple"),
    ]
    bars = [b for b in bars if b[1]]
    if bars:
        _bars(left, bars)
        left.set_xlabel("per second (median; whiskers: min–max of the runs)")
        left.set_title("Throughput: Taskline (colour) and baselines (grey), same run")
        left.set_xscale("log")
        for bound, label in ((1000, "submit target"), (4000, "read target")):
            left.axvline(bound, color="red", linestyle=":", linewidth=1)
            left.text(bound, len(bars) - 0.4, label, color="red", fontsize=8, ha="center")
    else:  # a phase alone without throughputs (--only takeover): room for the target labels
        left.set_axis_off()
    scored = []
    for row in results["targets"]:
        value = row["value"]
        if row["median"] is None:
            continue
        bound, higher = row["bound"], row["op"] == ">="
        norm = {
            k: ((value[k] if isinstance(value, dict) else value) / bound if bound else 0)
            for k in ("median", "min", "max")
        }
        if not higher:  # show every target as "≥ 1 is met"
            norm = {k: (1 / v if v else 100.0) for k, v in norm.items()}
            norm["min"], norm["max"] = norm["max"], norm["min"]
        norm = {k: min(100.0, max(0.01, v)) for k, v in norm.items()}  # 0 on a log scale
        colour = "tab:green" if row["met"] else "tab:red"
        scored.append((f"{row['figure']} ({row['target']})", norm, colour))
    _bars(right, scored)
    right.axvline(1.0, color="black", linewidth=1)
    right.set_xscale("log")
    right.set_xlabel("measured ÷ target, oriented so that ≥ 1 means met (log scale)")
    right.set_title("Targets: green met, red missed")
    m = results["machine"]
    fig.suptitle(
        f"Taskline bench {m['date']} · {m['cpu_model']} ({m['cpu_count']} cores) · "
        f"commit {str(m['commit'])[:10]}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(ax: Any, bars: list[tuple[str, Any, str]]) -> None:
    labels = [b[0] for b in bars]
    meds = [b[1]["median"] for b in bars]
    lows = [max(0.0, b[1]["median"] - b[1]["min"]) for b in bars]
    highs = [max(0.0, b[1]["max"] - b[1]["median"]) for b in bars]
    ys = range(len(bars))
    ax.barh(ys, meds, xerr=[lows, highs], color=[b[2] for b in bars], capsize=3)
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.invert_yaxis()
    for y, med, bar in zip(ys, meds, bars, strict=True):
        ax.text(max(med, bar[1]["max"]) * 1.04, y, f"{med:,.3g}", va="center", fontsize=7)


def write(results: dict[str, Any], out: Path, stem: str = "latest") -> None:
    """<stem>.json (everything), <stem>.md (the table), <stem>.png (the plot)."""
    results["machine"] = machine()
    results["targets"] = judge(results["figures"])
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=2, default=_plain) + "\n")
    (out / f"{stem}.md").write_text(markdown(results))
    plot(results, out / f"{stem}.png")


def main() -> None:
    """Render latest.md and latest.png again from latest.json (after editing this module)."""
    out = procs.ROOT / "bench" / "results"
    results = json.loads((out / "latest.json").read_text())
    results["targets"] = judge(results["figures"])
    (out / "latest.md").write_text(markdown(results))
    plot(results, out / "latest.png")


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {value!r}")


if __name__ == "__main__":
    main()
