#!/usr/bin/env bash
# Make sure RabbitMQ and Redis answer: use running ones, start installed ones, install missing
# ones with apt-get when root; otherwise say which command to run.
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

read -r redis_host redis_port amqp_host amqp_port < <(python3 - <<'PY'
import os
from urllib.parse import urlsplit
r = urlsplit(os.environ["TASKLINE_REDIS_URL"])
a = urlsplit(os.environ["TASKLINE_BROKER_URL"])
print(r.hostname or "127.0.0.1", r.port or 6379, a.hostname or "127.0.0.1", a.port or 5672)
PY
)

local_host() { [ "$1" = 127.0.0.1 ] || [ "$1" = localhost ] || [ "$1" = ::1 ]; }

if ! answers "$redis_host" "$redis_port"; then
  local_host "$redis_host" || { echo "Redis at $redis_host:$redis_port does not answer" >&2; exit 1; }
  command -v redis-server >/dev/null || install_or_explain redis-server
  echo "Starting Redis on port $redis_port…"
  # Redis holds the truth about tasks: keep an append-only file (see the README).
  redis-server --daemonize yes --bind 127.0.0.1 --port "$redis_port" --save "" \
    --appendonly yes --dir "$TASKLINE_RUN_DIR" --logfile "$TASKLINE_RUN_DIR/redis-local.log" \
    >/dev/null
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
# default) must exceed the longest task time limit, or a long task would be delivered twice.
# deploy/rabbitmq.conf sets it for new nodes; a running local node is adjusted in place.
if local_host "$amqp_host" && [ "$(id -u)" = 0 ] && command -v rabbitmqctl >/dev/null; then
  rabbitmqctl -q eval 'application:set_env(rabbit, consumer_timeout, 7200000).' >/dev/null 2>&1 \
    || echo "Note: could not raise RabbitMQ's consumer_timeout (see deploy/rabbitmq.conf)." >&2
fi
echo "RabbitMQ ($amqp_host:$amqp_port) and Redis ($redis_host:$redis_port) answer."
