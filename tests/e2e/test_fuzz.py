"""Property-based fuzzing of the whole HTTP API against a real API process.

No worker runs: created tasks just wait. Signed in as admin. Two fuzzers: schemathesis builds
requests from the OpenAPI document and checks every answer against it; a Hypothesis test sends
what the document does not describe (any JSON, text with lone surrogates, bytes that are not
UTF-8, odd content types, arbitrary path, query and header values) to every operation. No
request may get a 5xx, and every 4xx carries a JSON `detail`.
"""

import json
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import (
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.processes import PASSWORDS, Stack

# 150 requests per operation take about 80 s on an idle machine: twice the margin of the
# suite's default timeout, for a loaded one.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

# Examples per operation. About 30 operations: each fuzzer takes about a minute.
SCHEMA_EXAMPLES = 150
ARBITRARY_EXAMPLES = 150
# /ready answers 503 by design here: this stack runs no worker.
SKIPPED_PATHS = {"/ready"}
# schemathesis reads every answer to its end: a stream of the whole line never ends.
ENDLESS_PATHS = {"/events"}
# `wait` holds a request up to a minute: schemathesis covers it, within its bounds.
SKIPPED_QUERY = {"wait"}


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with Stack(tmp_path_factory.mktemp("fuzz"), TASKLINE_CREATIONS_PER_MINUTE="100000") as stack:
        stack.start("api")
        yield stack


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    negative_data_rejection,
]

FUZZ = settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))


def test_no_request_gets_a_server_error_or_breaks_the_schema(fuzz_stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_stack.url}/openapi.json")
    operations = [
        op
        for op in (result.ok() for result in schema.get_all_operations())
        if op.path not in SKIPPED_PATHS | ENDLESS_PATHS
    ]
    assert len(operations) >= 20

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(FUZZ, max_examples=SCHEMA_EXAMPLES)
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=fuzz_stack.url,
                auth=("admin", PASSWORDS["admin"]),
                timeout=20,
                checks=CHECKS,
            )

        check()


# Any code point, lone surrogates included: st.text() leaves them out by default and, among
# all code points, draws them rarely; half the texts here mix them in on purpose.
CHARACTERS = st.characters(codec=None, exclude_categories=())
SURROGATES = st.characters(categories=["Cs"]).map(str)  # mapped: drawn apart, not merged
WITH_SURROGATES = st.lists(CHARACTERS | SURROGATES, max_size=12).map("".join)
TEXT = st.text(CHARACTERS, max_size=12) | WITH_SURROGATES
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
# Bodies close to what the routes take, so that validation goes deep: known fields and task
# names, any values.
FIELDS = st.sampled_from(
    ["name", "params", "qwargs", "priority", "delay_seconds", "not_before", "code_model"]
    + ["number", "count", "digits", "method", "text", "username", "password"]
)
NEAR_BODIES = st.dictionaries(
    FIELDS | TEXT,
    st.sampled_from(["leibniz_pi", "reverse", "generate_serials"])
    | JSON_VALUES
    | st.dictionaries(FIELDS | TEXT, JSON_VALUES, max_size=4),
    max_size=5,
)
BODIES = st.one_of(
    st.builds(lambda value: json.dumps(value).encode(), JSON_VALUES | NEAR_BODIES),
    # Surrogates as raw bytes: not UTF-8.
    st.builds(
        lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"),
        JSON_VALUES | NEAR_BODIES,
    ),
    st.binary(max_size=64),
    st.none(),
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/merge-patch+json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=fuzz",
        "text/plain",
        None,
    ]
)
# What a header can carry: Latin-1, no line breaks, no spaces around.
HEADER_VALUES = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=40,
).map(lambda value: value.strip(" "))


def url_text(text: str) -> str:
    """Text as one URL component; a lone surrogate goes as the bytes Python would give it
    (not UTF-8), dots escaped so that they stay part of the component."""
    return quote(text, safe="", errors="surrogatepass").replace(".", "%2E")


def test_arbitrary_json_and_unicode_never_get_a_server_error(fuzz_stack: Stack) -> None:
    with fuzz_stack.client() as api:
        document = api.get("/openapi.json").json()
        waiting = api.post("/tasks", json={"name": "reverse", "params": {"text": "w"}})
        cancelled = api.post("/tasks", json={"name": "reverse", "params": {"text": "c"}})
        assert waiting.status_code == cancelled.status_code == 202
        assert api.post(f"/tasks/{cancelled.json()['id']}/cancel").status_code == 200
        real_ids = [waiting.json()["id"], cancelled.json()["id"]]
        operations = [
            (method.upper(), path, operation.get("parameters", []))
            for path, methods in document["paths"].items()
            if path not in SKIPPED_PATHS
            for method, operation in methods.items()
        ]
        assert len(operations) >= 20
        path_values = st.sampled_from(real_ids) | TEXT
        for method, path, parameters in operations:
            check_operation(api, method, path, parameters, path_values)


def check_operation(
    api: httpx.Client,
    method: str,
    template: str,
    parameters: list[dict],
    path_values: st.SearchStrategy[str],
) -> None:
    by_place = {
        place: [p["name"] for p in parameters if p["in"] == place]
        for place in ("path", "query", "header")
    }
    query = [name for name in by_place["query"] if name not in SKIPPED_QUERY]

    @given(
        path=st.fixed_dictionaries(dict.fromkeys(by_place["path"], path_values)),
        params=st.fixed_dictionaries({}, optional=dict.fromkeys(query, TEXT)),
        headers=st.fixed_dictionaries(
            {}, optional=dict.fromkeys(by_place["header"], HEADER_VALUES)
        ),
        body=BODIES,
        content_type=CONTENT_TYPES,
    )
    @settings(FUZZ, max_examples=ARBITRARY_EXAMPLES)
    def check(
        path: dict[str, str],
        params: dict[str, str],
        headers: dict[str, str],
        body: bytes | None,
        content_type: str | None,
    ) -> None:
        url = template
        for name, value in path.items():
            url = url.replace(f"{{{name}}}", url_text(value))
        if params:
            url += "?" + "&".join(f"{url_text(k)}={url_text(v)}" for k, v in params.items())
        sent = {name: value.encode("latin-1") for name, value in headers.items()}
        if content_type is not None:
            sent["Content-Type"] = content_type.encode()
        answer(api, method, url, sent, body)

    check()


def answer(
    api: httpx.Client, method: str, url: str, headers: dict[str, bytes], body: bytes | None
) -> None:
    """Send one request: no 5xx, and a 4xx says why in JSON (an event stream is not read)."""
    with api.stream(method, url, headers=headers, content=body, timeout=20) as response:
        status = response.status_code
        assert status < 500, (method, url, headers, body, status, response.read())
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return
        content = response.read()
    if 400 <= status < 500:
        detail = json.loads(content)["detail"]
        assert detail, (method, url, headers, body, status, content)
