"""Fault injection fixtures: private RabbitMQ nodes and Redis servers that tests may stop.

The shared RabbitMQ (127.0.0.1:5672) and Redis (127.0.0.1:6379) are never touched: a test that
takes a service down gets its own node of it, on free ports and in its own temporary folder,
and removes it afterwards.
"""

import contextlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import redis
from amqp.exceptions import AMQPError
from kombu import Connection
from kombu.exceptions import OperationalError

from tests.processes import Stack, free_port
from tests.support import RUN_MARK, RUN_PREFIX, run_name
from tests.waiting import wait_until

RABBITMQ_BIN = Path("/usr/lib/rabbitmq/bin")
RABBITMQ_USER = "rabbitmq"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
REDIS_CLI = shutil.which("redis-cli") or "/usr/bin/redis-cli"
# redis-server rewrites its command line (and with it its environment's memory): its title
# names the run instead, so that the run's end finds one a failed teardown left.
REDIS_TITLE = ("--proc-title-template", f"{{title}} {{listen-addr}} {{server-mode}} {RUN_PREFIX}")


def tail(path: Path, lines: int = 40) -> str:
    """The end of a log file, for failure messages."""
    if not path.exists():
        return f"({path} does not exist)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class RabbitNode:
    """One private RabbitMQ node: its own name, ports, data folder and Erlang cookie.

    It runs as the `rabbitmq` user (as Debian's wrapper would), from a folder under /tmp that
    user owns, so pytest's root-only temporary folders are no obstacle. Stopping it with
    `rabbitmqctl stop` and starting it again keeps its data: durable queues and persistent
    messages survive, as on a real broker restart.
    """

    def __init__(self, *erl_args: str, cookie: str | None = None) -> None:
        # Named after the run, as its queues and keys are: the run's end finds what is left.
        stem = run_name("rabbit-")
        self.name = f"{stem}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.dir = Path(tempfile.mkdtemp(prefix=f"{stem}-"))
        self.proc: subprocess.Popen | None = None
        self.paused = False
        account = pwd.getpwnam(RABBITMQ_USER)
        self._uid, self._gid = account.pw_uid, account.pw_gid
        (self.dir / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        # Our own (empty) env file: the system one names the shared node.
        (self.dir / "rabbitmq-env.conf").write_text("")
        (self.dir / "enabled_plugins").write_text("[].\n")
        # The nodes of one cluster share their Erlang cookie; a lone node has its own.
        cookie_file = self.dir / ".erlang.cookie"
        cookie_file.write_text(cookie or secrets.token_hex(16))
        for sub in ("mnesia", "log"):
            (self.dir / sub).mkdir()
        for path in (self.dir, *self.dir.iterdir()):
            os.chown(path, self._uid, self._gid)
        cookie_file.chmod(0o400)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "LANG": "C.UTF-8",
            RUN_MARK: RUN_PREFIX,
            # The server and rabbitmqctl both read the cookie from $HOME/.erlang.cookie.
            "HOME": str(self.dir),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.dir / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(self.dir / "rabbitmq-env.conf"),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_PID_FILE": str(self.dir / "rabbitmq.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": " ".join(
                ["-kernel inet_dist_use_interface {127,0,0,1}", *erl_args]
            ),
        }

    @property
    def log(self) -> Path:
        """The node's console output, quoted when it fails to start."""
        return self.dir / "server.out"

    def _as_rabbitmq(self) -> dict[str, object]:
        """Popen arguments that run a command as the rabbitmq user, in this node's setting."""
        return {
            "cwd": self.dir,
            "env": self.env,
            "user": self._uid,
            "group": self._gid,
            "extra_groups": [],
        }

    def answers(self) -> bool:
        """Whether an AMQP connection (guest, from loopback) succeeds."""
        try:
            with Connection(self.url, connect_timeout=1) as conn:
                conn.ensure_connection(max_retries=1, interval_start=0, timeout=1)
                return True
        except (OSError, OperationalError, AMQPError):
            return False

    def start(self, timeout: float = 60) -> None:
        """Start the node in the foreground (we hold its process) and wait for AMQP."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [str(RABBITMQ_BIN / "rabbitmq-server")],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._as_rabbitmq(),
            )

        def up() -> bool:
            assert self.proc.poll() is None, f"RabbitMQ exited:\n{tail(self.log)}"
            return self.answers()

        wait_until(up, timeout, interval=0.2)

    def running(self) -> bool:
        """Whether the node's process is alive (a fixture restarts a node left stopped)."""
        return self.proc is not None and self.proc.poll() is None

    def pause(self) -> None:
        """Stall the node (SIGSTOP to its processes): connections stay open, nothing answers."""
        os.killpg(self.proc.pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """Let a stalled node go on (SIGCONT): it then handles what was sent meanwhile."""
        os.killpg(self.proc.pid, signal.SIGCONT)
        self.paused = False

    def stop(self, timeout: float = 30) -> None:
        """Stop the node cleanly with `rabbitmqctl stop` (messages on disk stay there)."""
        if not self.running():
            return
        if self.paused:
            self.resume()
        stopped = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, "stop"],
            capture_output=True,
            timeout=timeout,
            check=False,
            **self._as_rabbitmq(),
        )
        try:
            # rabbitmqctl failing (it should not) leaves SIGTERM, which the node also takes
            # as a clean stop.
            self.proc.wait(timeout if stopped.returncode == 0 else 0.1)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """Run `rabbitmqctl -n NODE ARGS` as the rabbitmq user; its output (it must succeed)."""
        done = subprocess.run(
            [str(RABBITMQ_BIN / "rabbitmqctl"), "-n", self.name, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **self._as_rabbitmq(),
        )
        assert done.returncode == 0, f"rabbitmqctl {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM (beam), as a crash of its machine would end it."""
        assert self.proc is not None
        started = psutil.Process(self.proc.pid).children(recursive=True)
        beams = [proc for proc in started if proc.name().startswith("beam")]
        assert beams, f"no beam of {self.name}"
        for beam in beams:
            beam.kill()
        self.proc.wait(30)

    def close(self) -> None:
        """Stop the node, kill anything of this node that lingers, remove its folder."""
        try:
            self.stop()
        finally:
            for proc in psutil.process_iter(["cmdline"]):
                # Only processes of this node carry its unique name (epmd is shared: kept).
                if any(self.name in part for part in proc.info["cmdline"] or ()):
                    with contextlib.suppress(psutil.NoSuchProcess):
                        proc.kill()
            shutil.rmtree(self.dir, ignore_errors=True)


class RabbitCluster:
    """Three private RabbitMQ nodes joined in one cluster (one Erlang cookie, each its own
    name, ports and data folder), so that a quorum queue has a replica on each."""

    def __init__(self, size: int = 3) -> None:
        cookie = secrets.token_hex(16)
        self.nodes = [RabbitNode(cookie=cookie) for _ in range(size)]

    def start(self) -> None:
        """Start the first node, then each other one and join it to the first's cluster."""
        first, *others = self.nodes
        first.start()
        for node in others:
            node.start()
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            wait_until(node.answers, 60, interval=0.2)
        wait_until(self._joined, 60, interval=0.5)

    def _joined(self) -> bool:
        status = self.nodes[0].ctl("cluster_status", "--formatter", "json")
        return len(json.loads(status)["running_nodes"]) == len(self.nodes)

    @property
    def url(self) -> str:
        """A broker URL naming every node, for kombu's and the API's failover."""
        return ";".join(node.url for node in self.nodes)

    def close(self) -> None:
        """Close every node, each even when closing another failed."""
        with contextlib.ExitStack() as closing:
            for node in self.nodes:
                closing.callback(node.close)


class RedisServer:
    """A private redis-server on a free port; with `persist`, an append-only file keeps data;
    `options` are more of its command line (`--maxmemory 2mb`)."""

    def __init__(self, folder: Path, persist: bool = False, options: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.persist = persist
        self.options = options
        self.proc: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        """The server's output, quoted when it fails to start."""
        return self.dir / "redis.out"

    def answers(self) -> bool:
        """Whether the server answers PING."""
        try:
            with redis.Redis(port=self.port, socket_connect_timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def start(self, timeout: float = 20) -> None:
        """Start redis-server in the foreground on the same port as before."""
        assert not self.running(), "already running"
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--daemonize", "no", "--dir", str(self.dir)]
        args += ["--appendonly", "yes" if self.persist else "no", *REDIS_TITLE, *self.options]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

        def up() -> bool:
            assert self.proc.poll() is None, f"redis-server exited:\n{tail(self.log)}"
            return self.answers()

        wait_until(up, timeout, interval=0.05)

    def running(self) -> bool:
        """Whether the server's process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20) -> None:
        """`redis-cli shutdown`: with append-only persistence the data is on disk first."""
        if not self.running():
            return
        try:
            subprocess.run(
                [REDIS_CLI, "-p", str(self.port), "shutdown"],
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            timeout = 0  # it does not answer (a test stalled it): killed at once
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    def close(self) -> None:
        """Stop the server and remove its data folder."""
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def make_rabbit() -> Iterator[Callable[..., RabbitNode]]:
    """Private RabbitMQ nodes, started; stopped and removed after the test (each, even when
    another's closing failed)."""
    with contextlib.ExitStack() as closing:

        def make(*erl_args: str) -> RabbitNode:
            node = RabbitNode(*erl_args)
            closing.callback(node.close)
            node.start()
            return node

        yield make


@pytest.fixture
def rabbit_cluster() -> Iterator[Callable[[], RabbitCluster]]:
    """Private three-node RabbitMQ clusters, started; stopped and removed after the test.

    Requested before make_stack, so that the stacks (deleting their queues) are closed
    first."""
    with contextlib.ExitStack() as closing:

        def make() -> RabbitCluster:
            cluster = RabbitCluster()
            closing.callback(cluster.close)
            cluster.start()
            return cluster

        yield make


@pytest.fixture
def make_redis(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Private Redis servers, started; stopped and removed after the test (each, even when
    another's closing failed)."""
    made = 0
    with contextlib.ExitStack() as closing:

        def make(persist: bool = False, options: tuple[str, ...] = ()) -> RedisServer:
            nonlocal made
            server = RedisServer(tmp_path / f"redis-{made}", persist, options)
            made += 1
            closing.callback(server.close)
            server.start()
            return server

        yield make


@pytest.fixture
def rabbit_stack(
    make_rabbit: Callable[..., RabbitNode], make_stack: Callable[..., Stack]
) -> Iterator[Callable[..., tuple[RabbitNode, Stack]]]:
    """A stack on a private RabbitMQ node; the node is up again before the stack is closed.

    Teardown order: this fixture (resume a node a failed test left stalled, restart one it
    left stopped), then
    make_stack (close the stacks: delete queues and keys), then make_rabbit (remove nodes).
    """
    made: list[RabbitNode] = []

    def make(*erl_args: str, **overrides: str) -> tuple[RabbitNode, Stack]:
        node = make_rabbit(*erl_args)
        made.append(node)
        return node, make_stack(TASKLINE_BROKER_URL=node.url, **overrides)

    try:
        yield make
    finally:
        for node in made:
            if node.paused:
                node.resume()
            if not node.running():
                node.start()


@pytest.fixture
def redis_stack(
    make_redis: Callable[..., RedisServer], make_stack: Callable[..., Stack]
) -> Iterator[Callable[..., tuple[RedisServer, Stack]]]:
    """A stack on a private Redis; the server is up again before the stack is closed."""
    made: list[RedisServer] = []

    def make(
        persist: bool = False, options: tuple[str, ...] = (), **overrides: str
    ) -> tuple[RedisServer, Stack]:
        server = make_redis(persist, options)
        made.append(server)
        return server, make_stack(TASKLINE_REDIS_URL=server.url, **overrides)

    try:
        yield make
    finally:
        for server in made:
            if not server.running():
                server.start()


# Helpers shared by the fault tests.


def events(stack: Stack, task_id: str) -> list[dict[str, str]]:
    """The task's event stream as the worker and API wrote it (state changes, progress)."""
    return [fields for _, fields in stack.redis.xrange(stack.key(f"events:{task_id}"))]


def states(stack: Stack, task_id: str) -> list[str]:
    """The states the task went through, progress left out."""
    return [e["state"] for e in events(stack, task_id) if e["state"] != "PROGRESS"]


def received(stack: Stack, task_id: str) -> int:
    """How many times the worker log shows the task's message received."""
    log = stack.logs / "worker.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return len(re.findall(rf"Task \w+\[{re.escape(task_id)}\] received", text))


def pool_children(stack: Stack) -> list[psutil.Process]:
    """The prefork pool processes: children of the worker's main process."""
    return psutil.Process(stack.procs["worker"].pid).children()


def ran_once_to_success(stack: Stack, api: httpx.Client, task_id: str, attempts: int) -> dict:
    """Assert the task ended SUCCESS exactly once after `attempts` starts; return it."""
    task = api.get(f"/tasks/{task_id}").json()
    assert task["state"] == "SUCCESS", task
    assert task["attempts"] == attempts, task
    assert task["finished_at"], task
    seen = states(stack, task_id)
    assert seen.count("SUCCESS") == 1 and seen[-1] == "SUCCESS", seen
    assert seen.count("STARTED") == attempts, seen
    assert not {"FAILURE", "CANCELLED"} & set(seen), seen
    return task


# Redis with a replica and sentinels, for failover.

MASTER = "taskline-test"


class RedisSentinel:
    """A private `redis-server --sentinel` watching a primary as MASTER; it rewrites its
    config file as it learns the replicas, the other sentinels and each failover."""

    def __init__(self, folder: Path, primary_port: int, quorum: int) -> None:
        self.port = free_port()
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {primary_port} {quorum}\n"
            # A primary silent for a second is down; a failover that stalls is retried soon.
            f"sentinel down-after-milliseconds {MASTER} 1000\n"
            f"sentinel failover-timeout {MASTER} 5000\n"
        )
        self.proc: subprocess.Popen | None = None

    @property
    def log(self) -> Path:
        return self.dir / "sentinel.out"

    def master(self) -> dict | None:
        """What this sentinel says of MASTER (`SENTINEL MASTER`), None if it does not answer."""
        try:
            with redis.Redis(port=self.port, socket_timeout=1, decode_responses=True) as client:
                return client.sentinel_master(MASTER)
        except redis.RedisError:
            return None

    def start(self, timeout: float = 20) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, str(self.conf), "--sentinel", *REDIS_TITLE],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        def up() -> bool:
            assert self.proc.poll() is None, f"sentinel exited:\n{tail(self.log)}"
            return self.master() is not None

        wait_until(up, timeout, interval=0.05)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class ReplicatedRedis:
    """A primary and one replica (append-only, fsync every second) and three sentinels
    (quorum two) that promote the replica when the primary is down for a second."""

    def __init__(self, folder: Path) -> None:
        # A replica (the old primary once back) syncs at once rather than after 5 s.
        options = ("--appendfsync", "everysec", "--repl-diskless-sync-delay", "0")
        self.primary = RedisServer(folder / "primary", persist=True, options=options)
        self.replica = RedisServer(
            folder / "replica",
            persist=True,
            options=(*options, "--replicaof", "127.0.0.1", str(self.primary.port)),
        )
        self.sentinels = [
            RedisSentinel(folder / f"sentinel-{n}", self.primary.port, quorum=2) for n in range(3)
        ]

    def start(self) -> None:
        """Start them all; ready for a failover once every sentinel knows the replica and
        the two other sentinels."""
        self.primary.start()
        self.replica.start()
        for sentinel in self.sentinels:
            sentinel.start()
        wait_until(self._watched, 30, interval=0.1)

    def _watched(self) -> bool:
        for sentinel in self.sentinels:
            state = sentinel.master()
            if not state or state["num-slaves"] < 1 or state["num-other-sentinels"] < 2:
                return False
        return self.replica.answers()

    def primary_port(self) -> int | None:
        """The primary's port as a majority of the sentinels name it (None while they differ)."""
        named = [int(s["port"]) for s in map(RedisSentinel.master, self.sentinels) if s]
        top = max(set(named), key=named.count, default=None)
        return top if named.count(top) >= 2 else None

    def settings(self) -> dict[str, str]:
        """The TASKLINE_* settings of a stack that finds the primary through the sentinels;
        the URL's host is the first primary's, which the processes must not rely on."""
        return {
            "TASKLINE_REDIS_URL": self.primary.url,
            "TASKLINE_REDIS_SENTINELS": ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels),
            "TASKLINE_REDIS_MASTER": MASTER,
        }

    def close(self) -> None:
        """Kill the sentinels and the servers, each even when another's closing failed."""
        with contextlib.ExitStack() as closing:
            for sentinel in self.sentinels:
                closing.callback(sentinel.close)
            for server in (self.primary, self.replica):
                closing.callback(self._kill, server)

    @staticmethod
    def _kill(server: RedisServer) -> None:
        if server.proc is not None and server.running():
            server.proc.kill()
            server.proc.wait(5)
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def replicated_redis(tmp_path: Path) -> Iterator[Callable[[], ReplicatedRedis]]:
    """Private primaries with a replica and sentinels; all stopped and removed afterwards.

    Requested before make_stack, so that the stacks (removing their keys through the
    sentinels) are closed first."""
    made = 0
    with contextlib.ExitStack() as closing:

        def make() -> ReplicatedRedis:
            nonlocal made
            group = ReplicatedRedis(tmp_path / f"replicated-{made}")
            made += 1
            closing.callback(group.close)
            group.start()
            return group

        yield make
