"""Whether Redis or RabbitMQ accepts the credentials of TASKLINE_REDIS_URL or _BROKER_URL.

`python scripts/signs_in.py redis|rabbitmq`, run by scripts/ensure-services.sh once the
service answers: it exits 1 saying why, so that `make run` stops before supervisord starts
processes that could not sign in.
"""

import sys
from urllib.parse import urlsplit

import redis
from kombu import Connection

from taskline.core import redis_clients
from taskline.core.settings import get_settings


def redis_problem() -> str | None:
    settings = get_settings()
    parts = urlsplit(settings.redis_url)
    try:
        # With sentinels, the primary they name: as every process reaches it.
        with redis_clients.client(settings, socket_timeout=5) as client:
            client.ping()
        if parts.password:  # a password that Redis does not ask for protects nothing
            keyless = parts._replace(netloc=parts.netloc.rpartition("@")[2], query="")
            without = settings.model_copy(update={"redis_url": keyless.geturl()})
            with redis_clients.client(without, socket_timeout=5) as anyone:
                anyone.ping()
            return (
                "Redis at TASKLINE_REDIS_URL answers without a password: stop it, or set its "
                "requirepass to the URL's"
            )
    except redis.AuthenticationError:
        return None  # only without the password
    except redis.RedisError as exc:
        return f"Redis refused TASKLINE_REDIS_URL: {exc}"
    return None


def rabbitmq_problem() -> str | None:
    try:
        with Connection(get_settings().broker_url, connect_timeout=5) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:  # noqa: BLE001 (amqp and socket errors alike: say which)
        return f"RabbitMQ refused TASKLINE_BROKER_URL: {type(exc).__name__}: {exc}"
    return None


def main() -> None:
    check = {"redis": redis_problem, "rabbitmq": rabbitmq_problem}[sys.argv[1]]
    if problem := check():
        sys.exit(problem)


if __name__ == "__main__":
    main()
