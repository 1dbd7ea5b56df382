"""api.metrics adds requests up in memory and writes them at a flush: what it writes is what
prometheus_client's own observe() and inc() would have, request by request."""

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from taskline.api.metrics import LATENCY_BUCKETS, ProcessMetrics
from taskline.core import task_metrics

DURATIONS = [0.0001, 0.0005, 0.0007, 0.001, 0.003, 0.3, 2.5, 59.0, 61.0, 7200.0]


def test_a_flush_writes_what_observing_each_request_would() -> None:
    process = ProcessMetrics()
    reference = CollectorRegistry()
    requests = Counter("taskline_http_requests", "", ["method", "route", "status"],
                       registry=reference)  # fmt: skip
    latency = Histogram("taskline_http_request_duration_seconds", "", ["method", "route"],
                        buckets=LATENCY_BUCKETS, registry=reference)  # fmt: skip
    for seconds in DURATIONS:
        process.answered("GET", "/tasks/{task_id}", 200, seconds)
        requests.labels("GET", "/tasks/{task_id}", "200").inc()
        latency.labels("GET", "/tasks/{task_id}").observe(seconds)
    process.answered("BREW", None, 404, 0.002)  # an odd method, no route: bounded labels
    requests.labels("OTHER", "unmatched", "404").inc()
    latency.labels("OTHER", "unmatched").observe(0.002)
    assert not samples(process.registry)  # nothing written before the flush
    process.flush()

    assert samples(process.registry) == samples(reference)


def test_odd_methods_a_client_makes_up_cost_the_process_one_entry() -> None:
    # httptools knows a fixed list of methods, but h11 (`uvicorn --http h11`) passes any
    # token on: what is kept per labels must be keyed by the label, not the raw method.
    process = ProcessMetrics()
    for n in range(1000):
        process.answered(f"BREW{n}", None, 404, 0.002)
    assert len(process._pending) == 1
    process.flush()
    assert len(process._requests) == 1
    assert 'method="OTHER",route="unmatched",status="404"} 1000.0' in str(samples(process.registry))


def samples(registry: CollectorRegistry) -> set[str]:
    """The request samples written, but for their creation times."""
    return {
        line
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith("taskline_http") and "_created" not in line
    }


def test_an_ended_task_lands_in_its_bucket() -> None:
    assert task_metrics.BUCKETS[task_metrics.bucket(0.005)] == 0.005
    assert task_metrics.BUCKETS[task_metrics.bucket(0.0051)] == 0.01
    assert task_metrics.bucket(10**9) == len(task_metrics.BUCKETS) - 1
    parsed = task_metrics.parse(
        {"ended|reverse|SUCCESS": "3", "run|reverse|2": "3", "run_sum|reverse": "0.06", "x": "1"}
    )
    assert parsed.ends == {("reverse", "SUCCESS"): 3}
    assert parsed.runs["reverse"].counts[2] == 3 and parsed.runs["reverse"].total == 0.06
