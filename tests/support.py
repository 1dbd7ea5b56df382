"""What the tests and the benchmarks share: ports, waits, processes, clean-up (submitting and
waiting for a task: tests.client).

One module, so that a test and a benchmark start, wait for and remove things the same way:
processes in their own session (a group that stops together), polling with a deadline instead
of sleeping, every queue and key of a run removed at its end.

Every queue, exchange and Redis key prefix a test run makes starts with RUN_PREFIX, one id per
run: others run tests against the same RabbitMQ and Redis at the same time, and the check at the
run's end (`leftovers`, from tests/conftest.py) must look at this run's names only. So do the
private RabbitMQ nodes' names and data folders, and the workers' host names; and every process
the run starts carries it in its environment (RUN_MARK): a process or a folder a failed
teardown left is found by the same id.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
import redis
from kombu import Connection

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCELLED"})
# The test users' passwords (tests.processes configures them with argon2 hashes).
PASSWORDS = {
    "admin": "admin-password",
    "alice": "alice-password",
    "bob": "bob-password",
    "carol": "carol-password",
}
# The test users' roles: admin is an admin, carol a viewer, the others users.
ROLES = {"admin": "admin", "carol": "viewer"}
# The RabbitMQ and Redis every test run shares (fault tests bring private ones of their own).
BROKER_URL = "amqp://guest:guest@127.0.0.1:5672//"
REDIS_URL = "redis://127.0.0.1:6379/0"
RUN_PREFIX = f"test-{uuid.uuid4().hex[:8]}-"
# Inherited by every process the run starts (a redis-server, a sentinel, an API), whatever its
# command line; not a TASKLINE_ setting, which a stack's settings would leave out.
RUN_MARK = "TESTS_RUN_PREFIX"
os.environ[RUN_MARK] = RUN_PREFIX
# The names run_name handed out in this process: what `leftovers` can still look for where
# RabbitMQ cannot be asked for its whole list.
MINTED: set[str] = set()
RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"

__all__ = [
    "BROKER_URL",
    "MINTED",
    "REDIS_URL",
    "ROOT",
    "PASSWORDS",
    "ROLES",
    "RUN_MARK",
    "RUN_PREFIX",
    "TERMINAL",
    "Leftovers",
    "free_port",
    "leftovers",
    "remove",
    "remove_local",
    "run_name",
    "start_process",
    "stop_process",
    "stored_bytes",
    "wait_until",
]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(
    args: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> subprocess.Popen:
    """Start a process in its own session (its children stop with it), output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_process(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    """TERM the process group, KILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def remove(
    broker_url: str,
    redis_url: str,
    queues: list[str],
    key_pattern: str,
    client: redis.Redis | None = None,
) -> int:
    """Delete the queues (and their exchanges) and the Redis keys matching `key_pattern`;
    returns how many keys went. A queue that was never declared is no error. The keys are
    looked for at `redis_url`, or with `client` (a primary found through sentinels)."""
    with Connection(broker_url) as connection:
        for queue in queues:
            channel = connection.channel()
            try:
                channel.queue_delete(queue)
                channel.exchange_delete(queue)
            except Exception:  # noqa: BLE001 (never declared: nothing to remove)
                connection.close()
                connection.connect()
            else:
                channel.close()
    deleted = 0
    with contextlib.nullcontext(client) if client else redis.Redis.from_url(redis_url) as client:
        batch: list[bytes] = []
        for key in client.scan_iter(match=key_pattern, count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                deleted += client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += client.unlink(*batch)
    return deleted


def run_name(kind: str = "") -> str:
    """A new queue name or key prefix stem of this run's own: RUN_PREFIX, `kind`, a random tag."""
    name = f"{RUN_PREFIX}{kind}{uuid.uuid4().hex[:10]}"
    MINTED.add(name)
    return name


@dataclass
class Leftovers:
    """Queues (name: messages), exchanges and Redis keys found under a prefix; processes
    (pid: command line) naming it and folders of the temporary directory starting with it."""

    queues: dict[str, str] = field(default_factory=dict)
    exchanges: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    processes: dict[int, str] = field(default_factory=dict)
    folders: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.queues or self.exchanges or self.keys or self.processes or self.folders)

    def describe(self, shown_keys: int = 50) -> str:
        """One line per queue, exchange, process, folder and key (the first `shown_keys`)."""
        lines = [f"queue {name} ({messages} messages)" for name, messages in self.queues.items()]
        lines += [f"exchange {name}" for name in self.exchanges]
        lines += [f"process {pid}: {command}" for pid, command in self.processes.items()]
        lines += [f"folder {path}" for path in self.folders]
        lines += [f"key {key}" for key in self.keys[:shown_keys]]
        if len(self.keys) > shown_keys:
            lines.append(f"… and {len(self.keys) - shown_keys} more keys")
        return "\n".join(lines)


def _rabbitmqctl() -> tuple[dict[str, str], dict[str, str]] | None:
    """Queues {name: messages} and exchanges {name: type} as `rabbitmqctl` lists them (it needs
    root; both asked at once, each takes seconds); None where it fails."""
    columns = {"queues": "messages", "exchanges": "type"}
    try:
        procs = [
            subprocess.Popen(
                [RABBITMQCTL, "-q", f"list_{what}", "--no-table-headers", "name", column],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for what, column in columns.items()
        ]
    except OSError:
        return None
    listed = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return None
        if proc.returncode != 0:
            return None
        listed.append(dict(line.rsplit("\t", 1) for line in out.splitlines() if "\t" in line))
    return listed[0], listed[1]


def _management(broker_url: str, what: str) -> dict[str, str] | None:
    """The same from the management API, where its plugin is enabled; else None."""
    url = urlsplit(broker_url)
    column = "messages" if what == "queues" else "type"
    try:
        answer = httpx.get(
            f"http://{url.hostname}:15672/api/{what}/%2F",
            auth=(url.username or "guest", url.password or "guest"),
            timeout=10,
        )
    except httpx.TransportError:
        return None
    if answer.status_code != 200:
        return None
    return {item["name"]: str(item.get(column, "?")) for item in answer.json()}


def _passive(broker_url: str, names: Iterable[str]) -> tuple[dict[str, str], dict[str, str]]:
    """Which of `names` still exist as queues (with their messages) and as exchanges."""
    queues: dict[str, str] = {}
    exchanges: dict[str, str] = {}
    with Connection(broker_url) as connection:
        for name in sorted(names):
            for kind in ("queue", "exchange"):
                channel = connection.channel()
                try:
                    if kind == "queue":
                        queues[name] = str(channel.queue_declare(name, passive=True)[1])
                    else:
                        channel.exchange_declare(name, "direct", passive=True)
                        exchanges[name] = "direct"
                except Exception:  # noqa: BLE001 (not found, as it should be: the channel is closed)
                    connection.close()
                    connection.connect()
                else:
                    channel.close()
    return queues, exchanges


def _processes(prefix: str) -> dict[int, str]:
    """The processes whose command line names `prefix` (a worker's host name, a private
    RabbitMQ node's name) or whose environment has it as RUN_MARK, with the start of their
    command line. Neither the test process itself (whose environment was set before) nor
    epmd (a private RabbitMQ node starts it when none runs; every node shares it) is one."""
    found = {}
    for proc in psutil.process_iter(["name", "cmdline", "environ"]):
        command = " ".join(" ".join(proc.info["cmdline"] or ()).split())
        marked = (proc.info["environ"] or {}).get(RUN_MARK) == prefix
        ours = proc.pid != os.getpid() and proc.info["name"] != "epmd"
        if (prefix in command or marked) and ours:
            found[proc.pid] = command[:200]
    return found


def _folders(prefix: str) -> list[str]:
    """The folders of the temporary directory whose names start with `prefix`."""
    return sorted(str(path) for path in Path(tempfile.gettempdir()).glob(f"{prefix}*"))


def leftovers(
    broker_url: str, redis_url: str, prefix: str = RUN_PREFIX, shared: bool = True
) -> Leftovers:
    """The queues, exchanges and Redis keys whose names start with `prefix` (unless not
    `shared`: then none are looked for), the processes that name it and the temporary folders
    named after it.

    RabbitMQ is asked with rabbitmqctl (as root), else with its management API; where neither
    answers, only the names that run_name handed out are looked for, one by one."""
    if not shared:
        return Leftovers(processes=_processes(prefix), folders=_folders(prefix))
    listed = _rabbitmqctl()
    if listed is None:
        queues, exchanges = _management(broker_url, "queues"), _management(broker_url, "exchanges")
        if queues is not None and exchanges is not None:
            listed = queues, exchanges
    if listed is None:
        listed = _passive(broker_url, (n for n in MINTED if n.startswith(prefix)))
    queues, exchanges = listed
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        keys = sorted(client.scan_iter(match=f"{prefix}*", count=5000))
    return Leftovers(
        {name: messages for name, messages in sorted(queues.items()) if name.startswith(prefix)},
        sorted(name for name in exchanges if name.startswith(prefix)),
        keys,
        _processes(prefix),
        _folders(prefix),
    )


def remove_local(left: Leftovers) -> None:
    """Kill the processes `leftovers` found and remove its folders."""
    for pid in left.processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(pid).kill()
    for folder in left.folders:
        shutil.rmtree(folder, ignore_errors=True)


def stored_bytes(client: redis.Redis, prefix: str, task_id: str) -> int:
    """What one task costs Redis: MEMORY USAGE of every key of its own (record, events,
    history, lease, result pages, Celery's result), all of each value counted."""
    names = ("task", "events", "history", "lease", "pages", "celery-task-meta-")
    keys = [f"{prefix}{name}{'' if name.endswith('-') else ':'}{task_id}" for name in names]
    return sum(client.memory_usage(key, samples=0) or 0 for key in keys)


class RoundTrip(redis.Connection):
    """A connection to the real Redis that counts what it sends: one count per round trip
    (a pipeline, a transaction included, is sent at once)."""

    sent = 0

    def send_packed_command(self, command: object, check_health: bool = True) -> None:
        RoundTrip.sent += 1
        super().send_packed_command(command, check_health)  # type: ignore[arg-type]


def counting_client() -> redis.Redis:
    """A client of the test Redis (decoding replies) whose round trips round_trips counts."""
    pool = redis.ConnectionPool(connection_class=RoundTrip, decode_responses=True)
    return redis.Redis.from_pool(pool)


def round_trips(client: redis.Redis) -> int:
    """The round trips made so far by the clients of counting_client."""
    assert client.connection_pool.connection_class is RoundTrip
    return RoundTrip.sent
