"""The body limit: 413 for a body over it on every route, declared or streamed in chunks."""

from collections.abc import Iterator

import pytest

from tests.processes import PASSWORDS, Stack

pytestmark = pytest.mark.e2e

LIMIT = 4096


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """An API with a small body limit (no worker: created tasks wait)."""
    with Stack(tmp_path_factory.mktemp("limits"), TASKLINE_MAX_BODY_BYTES=str(LIMIT)) as stack:
        stack.start("api")
        yield stack


def chunks(body: bytes, size: int = 1000) -> Iterator[bytes]:
    """The body in pieces: httpx sends a generator chunked, with no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def padded(head: bytes, tail: bytes, length: int) -> bytes:
    """head + x…x + tail, exactly `length` bytes."""
    return head + b"x" * (length - len(head) - len(tail)) + tail


def json_body(length: int) -> bytes:
    """A valid submission of exactly `length` bytes (the text pads it)."""
    return padded(b'{"name":"reverse","params":{"text":"', b'"}}', length)


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SIGN_IN = f"username=admin&password={PASSWORDS['admin']}".encode()


def requests(task_id: str) -> list[tuple[str, str, dict[str, str], bytes]]:
    """(method, path, headers, body at the limit) of every route that reads a body."""
    return [
        ("POST", "/tasks", JSON, json_body(LIMIT)),  # the hot path
        ("POST", "/tasks?via=route", JSON, json_body(LIMIT)),  # the route
        (
            "POST",
            "/api/tasks",
            JSON,
            padded(b'{"name":"reverse","qwargs":{"text":"', b'"}}', LIMIT),
        ),
        ("PATCH", f"/tasks/{task_id}", JSON, padded(b'{"params":{"text":"', b'"}}', LIMIT)),
        ("POST", "/generate_sn", JSON, b"{" + b" " * (LIMIT - 2) + b"}"),
        ("POST", "/auth/token", FORM, padded(SIGN_IN + b"&client_id=", b"", LIMIT)),
    ]


def test_a_body_over_the_limit_is_413_on_every_route_chunked_or_declared(small: Stack) -> None:
    with small.client() as api:
        waiting = api.post("/tasks", content=json_body(100), headers=JSON)
        assert waiting.status_code == 202, waiting.text
        task_id, etag = waiting.json()["id"], waiting.headers["etag"]
        before = api.get("/tasks", params={"limit": 500}).json()["items"]
        for method, path, headers, at_limit in requests(task_id):
            # One byte over, and far over (the limit is passed in the middle of the stream).
            for body in (at_limit + b" ", at_limit * 100):
                streamed = api.request(method, path, content=chunks(body), headers=headers)
                assert streamed.request.headers["transfer-encoding"] == "chunked"
                assert "content-length" not in streamed.request.headers
                declared = api.request(method, path, content=body, headers=headers)
                assert declared.request.headers["content-length"] == str(len(body))
                for response in (streamed, declared):
                    assert response.status_code == 413, (method, path, response.text)
                    assert response.json() == {"detail": f"request body over {LIMIT} bytes"}
        assert api.get("/tasks", params={"limit": 500}).json()["items"] == before
        assert api.get(f"/tasks/{task_id}").headers["etag"] == etag  # never edited


def test_a_body_at_the_limit_is_read_chunked_or_declared(small: Stack) -> None:
    with small.client() as api:
        task_id = api.post("/tasks", content=json_body(100), headers=JSON).json()["id"]
        expected = [202, 202, 202, 200, 422, 200]
        for (method, path, headers, body), status in zip(requests(task_id), expected, strict=True):
            assert len(body) == LIMIT
            for content in (chunks(body), body):
                auth = None if path == "/auth/token" else ("admin", PASSWORDS["admin"])
                response = api.request(method, path, content=content, headers=headers, auth=auth)
                assert response.status_code == status, (method, path, response.text)


def test_a_chunked_body_over_the_limit_is_413_even_where_no_body_is_read(small: Stack) -> None:
    """Streamed bodies are read before any route runs: a route that takes no body (the hot
    read, a listing, a public route) refuses one over the limit all the same."""
    with small.client() as api:
        task_id = api.post("/tasks", content=json_body(100), headers=JSON).json()["id"]
        for path in (f"/tasks/{task_id}", "/tasks", "/health"):
            refused = api.request("GET", path, content=chunks(b"x" * (LIMIT + 1)))
            assert refused.status_code == 413, (path, refused.text)
            assert "bytes" in refused.json()["detail"]
            assert api.request("GET", path, content=chunks(b"x" * LIMIT)).status_code == 200
