"""Webhooks through the real stack: a receiver on loopback checks each call's signature, hears
of the right ends only, sees retries (and their attempts in the task's history), is never
followed through a redirect; callbacks to hosts off the allow-list are refused at submission;
a delivery waiting in the outbox survives a restart of the scheduler that delivers it; a
receiver that never finishes answering is cut off and holds up no other delivery; a host
taken off the allow-list is called no more."""

import itertools
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from taskline.core.webhooks import SIGNATURE_HEADER, verify
from tests.client import submit, wait_done
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

SECRET = "webhook-test-secret-0123456789"


class Receiver:
    """A tiny HTTP server: records each POST (path, body, whether its signature holds) and
    answers with the next of `answers` for its path (200 once they run out)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict, bool]] = []
        self.answers: dict[str, list[int]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                good = verify(SECRET.encode(), self.headers[SIGNATURE_HEADER], body) and (
                    self.headers["Content-Type"] == "application/json"
                )
                receiver.calls.append((self.path, json.loads(body), good))
                queued = receiver.answers.get(self.path, [])
                code = queued.pop(0) if queued else 200
                self.send_response(code)
                if code in (301, 302, 307):
                    self.send_header("Location", "/followed")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def of(self, path: str) -> list[tuple[str, dict, bool]]:
        return [call for call in self.calls if call[0] == path]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    found.thread.start()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture
def hooked(make_stack: Callable[..., Stack], receiver: Receiver) -> Stack:
    stack = make_stack(
        TASKLINE_WEBHOOK_HOSTS="127.0.0.1",
        TASKLINE_WEBHOOK_SECRET=SECRET,
        TASKLINE_WEBHOOKS=f"FAILURE={receiver.url}/alerts;SUCCESS,FAILURE={receiver.url}/all",
        TASKLINE_WEBHOOK_RETRY_SECONDS="60",
    )
    stack.start()
    return stack


def webhook_history(api: httpx.Client, task_id: str, url: str = "") -> list[dict]:
    """The task's delivery attempts (to `url` alone, if given)."""
    history = api.get(f"/tasks/{task_id}/history").json()
    return [e for e in history if e["change"] == "webhook" and url in ("", e["url"])]


def test_callbacks_and_global_webhooks_hear_of_the_right_ends_signed(
    hooked: Stack, receiver: Receiver
) -> None:
    with hooked.client() as api:
        good = submit(api, "reverse", {"text": "abc"}, callback_url=f"{receiver.url}/own")
        done = wait_done(api, good["id"])
        assert done["state"] == "SUCCESS"
        wait_until(lambda: receiver.of("/own") and receiver.of("/all"), 30, what="deliveries")
        ((_, body, signed),) = receiver.of("/own")
        assert signed and body == api.get(f"/tasks/{good['id']}").json()  # GET /tasks/{id}'s
        assert body["state"] == "SUCCESS" and body["result"] == done["result"]
        assert all(signed for _, _, signed in receiver.calls)
        assert receiver.of("/alerts") == []  # FAILURE only
        wait_until(lambda: len(webhook_history(api, good["id"])) == 2, 10, what="history")
        assert {e["url"] for e in webhook_history(api, good["id"])} == {
            f"{receiver.url}/own",
            f"{receiver.url}/all",
        }
        assert all(
            e["status"] == 200 and e["attempt"] == 1 for e in webhook_history(api, good["id"])
        )


def test_a_failed_call_is_retried_and_a_redirect_is_not_followed(
    hooked: Stack, receiver: Receiver
) -> None:
    receiver.answers["/flaky"] = [500, 200]
    receiver.answers["/moved"] = [302]
    with hooked.client() as api:
        flaky = submit(api, "reverse", {"text": "a"}, callback_url=f"{receiver.url}/flaky")
        moved = submit(api, "reverse", {"text": "b"}, callback_url=f"{receiver.url}/moved")
        own = f"{receiver.url}/flaky"
        wait_until(lambda: len(webhook_history(api, flaky["id"], own)) >= 2, 30, what="a retry")
        attempts = [(e["attempt"], e.get("status")) for e in webhook_history(api, flaky["id"], own)]
        assert (1, 500) in attempts and (2, 200) in attempts
        assert len(receiver.of("/flaky")) == 2
        to = f"{receiver.url}/moved"
        wait_until(lambda: webhook_history(api, moved["id"], to), 30, what="the redirect")
        assert webhook_history(api, moved["id"], to)[0]["status"] == 302
        assert receiver.of("/followed") == []


def test_a_host_off_the_allow_list_is_refused_and_nothing_is_created(
    hooked: Stack, receiver: Receiver
) -> None:
    with hooked.client() as api:
        before = api.get("/tasks").json()["items"]
        for url in (
            "http://evil.example/x",
            "ftp://127.0.0.1/x",
            "http://127.0.0.1/" + "a" * 3000,
            # never callable (httpx refuses them), and a line of its own in a text log
            "http://127.0.0.1/x\n2026-12-05T10:00:00.000Z ERROR forged",
            "http://127.0.0.1/\x00",
        ):
            response = api.post(
                "/tasks", json={"name": "reverse", "params": {"text": "x"}, "callback_url": url}
            )
            assert response.status_code == 422, response.text
            assert "detail" in response.json()
        refused = api.post(
            "/tasks",
            json={
                "name": "reverse",
                "params": {"text": "x"},
                "callback_url": "http://evil.example/",
            },
        )
        assert "TASKLINE_WEBHOOK_HOSTS" in refused.json()["detail"]
        assert api.get("/tasks").json()["items"] == before


def test_the_callback_url_is_shown_kept_by_a_retry_and_changed_by_a_clone(
    hooked: Stack, receiver: Receiver
) -> None:
    own = f"{receiver.url}/own"
    with hooked.client() as api:
        later = {"not_before": "2999-01-01T00:00:00Z"}
        task = submit(api, "reverse", {"text": "abc"}, callback_url=own, **later)
        assert task["callback_url"] == own
        assert api.get(f"/tasks/{task['id']}").json()["callback_url"] == own  # the hot path
        assert api.get(f"/tasks/{task['id']}?wait=0").json()["callback_url"] == own  # the route
        assert api.post(f"/tasks/{task['id']}/cancel").status_code in (200, 202)
        wait_until(lambda: receiver.of("/own"), 30, what="the cancelled task's call")
        retry = api.post(f"/tasks/{task['id']}/retry", json={})
        assert retry.status_code == 202, retry.text
        assert retry.json()["callback_url"] == own
        kept = api.post(f"/tasks/{task['id']}/clone", json=later)
        assert kept.status_code == 202 and kept.json()["callback_url"] == own
        moved = api.post(
            f"/tasks/{task['id']}/clone", json={"callback_url": f"{receiver.url}/other", **later}
        )
        assert moved.status_code == 202 and moved.json()["callback_url"] == f"{receiver.url}/other"
        dropped = api.post(f"/tasks/{task['id']}/clone", json={"callback_url": None, **later})
        assert dropped.status_code == 202 and dropped.json()["callback_url"] is None
        refused = api.post(
            f"/tasks/{task['id']}/clone", json={"callback_url": "http://evil.example/", **later}
        )
        assert refused.status_code == 422 and "TASKLINE_WEBHOOK_HOSTS" in refused.json()["detail"]
        plain = submit(api, "reverse", {"text": "x"}, **later)
        assert plain["callback_url"] is None


def test_a_waiting_delivery_survives_a_restart_of_the_scheduler(
    hooked: Stack, receiver: Receiver
) -> None:
    receiver.answers["/later"] = [503, 503, 503, 503, 503, 503, 200]
    with hooked.client() as api:
        task = submit(api, "reverse", {"text": "abc"}, callback_url=f"{receiver.url}/later")
        own = f"{receiver.url}/later"
        wait_until(lambda: webhook_history(api, task["id"], own), 30, what="a first attempt")
        hooked.stop("scheduler")
        waiting = hooked.redis.zrange(hooked.key("webhook-deliveries"), 0, -1)
        assert [json.loads(m)["url"] for m in waiting] == [own]
        receiver.answers["/later"] = [200]
        hooked.start("scheduler")
        wait_until(
            lambda: any(e.get("status") == 200 for e in webhook_history(api, task["id"], own)),
            30,
            what="the delivery after the restart",
        )
        assert hooked.redis.zcard(hooked.key("webhook-deliveries")) == 0


class Dripper:
    """A receiver that never finishes answering: it reads the call, then sends its status
    line a byte at a time, each well within the read timeout, until stopped."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/drip"
        self.stop = threading.Event()
        self.calls = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            self.calls += 1
            for byte in itertools.cycle(b"HTTP/1.1 200 OK\r\nX-Slow: "):
                if self.stop.wait(0.2):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return


@pytest.fixture
def dripper() -> Iterator[Dripper]:
    found = Dripper()
    found.thread.start()
    yield found
    found.stop.set()
    found.server.close()


def test_a_receiver_that_never_finishes_answering_holds_up_no_other_delivery(
    make_stack: Callable[..., Stack], receiver: Receiver, dripper: Dripper
) -> None:
    stack = make_stack(
        TASKLINE_WEBHOOK_HOSTS="127.0.0.1",
        TASKLINE_WEBHOOK_SECRET=SECRET,
        TASKLINE_WEBHOOK_CONNECT_TIMEOUT="1",
        TASKLINE_WEBHOOK_READ_TIMEOUT="1",
    )
    stack.start()
    with stack.client() as api:
        slow = submit(api, "reverse", {"text": "a"}, callback_url=dripper.url)
        wait_until(lambda: dripper.calls >= 1, 30, what="the dripping receiver called")
        good = submit(api, "reverse", {"text": "b"}, callback_url=f"{receiver.url}/own")
        # An attempt takes at most the connect and read timeouts in all: the dripping one is
        # cut off after 2 s, and the next pass delivers the other.
        wait_until(lambda: receiver.of("/own"), 15, what="the other task's delivery")
        attempts = webhook_history(api, slow["id"], dripper.url)
        assert attempts and "error" in attempts[0] and "delivered" not in attempts[0]
        assert webhook_history(api, good["id"])[0]["status"] == 200


def test_a_host_taken_off_the_allow_list_is_called_no_more(
    make_stack: Callable[..., Stack], receiver: Receiver
) -> None:
    stack = make_stack(
        TASKLINE_WEBHOOK_HOSTS="127.0.0.1",
        TASKLINE_WEBHOOK_SECRET=SECRET,
        TASKLINE_WEBHOOKS=f"*={receiver.url}/all",
    )
    stack.start("api", "scheduler")
    with stack.client() as api:
        own = f"{receiver.url}/own"
        task = submit(
            api, "reverse", {"text": "a"}, not_before="2099-01-01T00:00:00Z", callback_url=own
        )
        stack.env["TASKLINE_WEBHOOK_HOSTS"] = "hooks.example"
        stack.restart("scheduler")
        assert api.post(f"/tasks/{task['id']}/cancel").status_code == 200
        # the global webhook tells that the end was delivered; the callback is not called
        wait_until(lambda: webhook_history(api, task["id"], own), 30, what="the callback's turn")
        assert receiver.of("/all") and receiver.of("/own") == []
        ((refused,),) = [webhook_history(api, task["id"], own)]
        assert refused["gave_up"] and "TASKLINE_WEBHOOK_HOSTS" in refused["error"]
