#!/usr/bin/env bash
# Make sure RabbitMQ and Redis answer with the credentials of TASKLINE_BROKER_URL and
# TASKLINE_REDIS_URL: use running ones, start installed ones, install missing ones with apt-get
# when root; create the URL's RabbitMQ user and virtual host on a local node when root;
# otherwise say which command to run.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
. scripts/apt.sh

answers() {  # host port
  timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null
}

wait_for() {  # name host port seconds
  local deadline=$((SECONDS + $4))
  until answers "$2" "$3"; do
    if ((SECONDS >= deadline)); then
      echo "$1 did not answer on $2:$3 within $4 s" >&2
      exit 1
    fi
    sleep 0.5
  done
}

install_or_explain() {  # package
  apt_install "$1" || { echo "$1 is not installed. Install it with: sudo apt-get install -y $1" >&2; exit 1; }
}

read -r redis_host redis_port amqp_host amqp_port amqp_user amqp_vhost < <(python3 - <<'PY'
import os
from urllib.parse import unquote, urlsplit
r = urlsplit(os.environ["TASKLINE_REDIS_URL"])
a = urlsplit(os.environ["TASKLINE_BROKER_URL"].split(";")[0])
vhost = unquote(a.path[1:]) if len(a.path) > 1 else "/"
user = unquote(a.username or "guest")
print(r.hostname or "127.0.0.1", r.port or 6379, a.hostname or "127.0.0.1", a.port or 5672,
      user, vhost)
PY
)

local_host() { [ "$1" = 127.0.0.1 ] || [ "$1" = localhost ] || [ "$1" = ::1 ]; }

if ! answers "$redis_host" "$redis_port"; then
  local_host "$redis_host" || { echo "Redis at $redis_host:$redis_port does not answer" >&2; exit 1; }
  command -v redis-server >/dev/null || install_or_explain redis-server
  echo "Starting Redis on port $redis_port…"
  # deploy/redis.conf (append-only, memory bound, no eviction: Redis holds the truth about
  # tasks) with this port, a folder of its own in the run folder, and the URL's password:
  # in a file only the owner reads, never on a command line.
  redis_dir="$TASKLINE_RUN_DIR/redis-$redis_port"
  mkdir -p "$redis_dir"
  REDIS_DIR="$redis_dir" REDIS_PORT="$redis_port" python3 - <<'PY'
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

folder, port = Path(os.environ["REDIS_DIR"]), os.environ["REDIS_PORT"]
url = urlsplit(os.environ["TASKLINE_REDIS_URL"])
password = unquote(url.password or parse_qs(url.query).get("password", [""])[0])
quoted = lambda value: '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
# deploy/redis.conf but its port and folder (Redis enters a `dir` as it reads it).
shared = Path("deploy/redis.conf").read_text().splitlines()
lines = [line for line in shared if line.split()[:1] not in (["port"], ["dir"])]
lines += [
    f"port {port}",
    f"dir {quoted(str(folder))}",
    'save ""',
    "daemonize yes",
    f"pidfile {quoted(str(folder / 'redis.pid'))}",
    f"logfile {quoted(str(folder.parent / ('redis-' + port + '.log')))}",
]
if password:
    lines.append(f"requirepass {quoted(password)}")
conf = folder / "redis.conf"
conf.touch(mode=0o600)
conf.chmod(0o600)
conf.write_text("\n".join(lines) + "\n")
PY
  redis-server "$redis_dir/redis.conf" >/dev/null
  wait_for Redis "$redis_host" "$redis_port" 20
fi

if ! answers "$amqp_host" "$amqp_port"; then
  local_host "$amqp_host" || { echo "RabbitMQ at $amqp_host:$amqp_port does not answer" >&2; exit 1; }
  command -v rabbitmq-server >/dev/null || install_or_explain rabbitmq-server
  echo "Starting RabbitMQ on port $amqp_port…"
  if [ "$(id -u)" = 0 ]; then
    rabbitmq-server -detached >/dev/null 2>&1 || true
  else
    echo "RabbitMQ is installed but stopped. Start it with: sudo rabbitmq-server -detached" >&2
    exit 1
  fi
  wait_for RabbitMQ "$amqp_host" "$amqp_port" 90
fi
# A consumer holds a task's message for the whole run: RabbitMQ's consumer_timeout (30 min by
# default) should exceed the longest task time limit, or a long run's channel is closed and its
# message delivered again each time (held while the run holds its lease, then dropped).
# deploy/rabbitmq.conf sets it for new nodes; a running local node is adjusted in place.
if local_host "$amqp_host" && [ "$(id -u)" = 0 ] && command -v rabbitmqctl >/dev/null; then
  rabbitmqctl -q eval 'application:set_env(rabbit, consumer_timeout, 7200000).' >/dev/null 2>&1 \
    || echo "Note: could not raise RabbitMQ's consumer_timeout (see deploy/rabbitmq.conf)." >&2
fi

# Sign in as the processes will; a local node gets the URL's user and virtual host when root.
signs_in() { PYTHONPATH=. "$TASKLINE_PYTHON" scripts/signs_in.py "$1"; }
signs_in redis || exit 1
if ! signs_in rabbitmq 2>/dev/null; then
  if local_host "$amqp_host" && [ "$amqp_user" != guest ] && [ "$(id -u)" = 0 ] &&
    command -v rabbitmqctl >/dev/null; then
    echo "Creating RabbitMQ user $amqp_user with virtual host $amqp_vhost…"
    rabbitmqctl -q list_vhosts | grep -qxF -- "$amqp_vhost" ||
      rabbitmqctl -q add_vhost "$amqp_vhost" >/dev/null
    # The password goes through stdin, never on a command line.
    password="$(python3 -c 'import os, urllib.parse as u
print(u.unquote(u.urlsplit(os.environ["TASKLINE_BROKER_URL"].split(";")[0]).password or ""))')"
    if rabbitmqctl -q list_users | cut -f1 | grep -qxF -- "$amqp_user"; then
      printf '%s\n' "$password" | rabbitmqctl -q change_password "$amqp_user" >/dev/null
    else
      printf '%s\n' "$password" | rabbitmqctl -q add_user "$amqp_user" >/dev/null
    fi
    unset password
    rabbitmqctl -q set_permissions -p "$amqp_vhost" "$amqp_user" '.*' '.*' '.*' >/dev/null
  fi
  signs_in rabbitmq || {
    echo "Give Taskline a RabbitMQ user: sudo rabbitmqctl add_vhost $amqp_vhost;" \
      "sudo rabbitmqctl add_user $amqp_user (its password from TASKLINE_BROKER_URL, on stdin);" \
      "sudo rabbitmqctl set_permissions -p $amqp_vhost $amqp_user '.*' '.*' '.*'" >&2
    exit 1
  }
fi
echo "RabbitMQ ($amqp_host:$amqp_port) and Redis ($redis_host:$redis_port) answer."
