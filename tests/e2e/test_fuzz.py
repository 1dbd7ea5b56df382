"""Property-based fuzzing of the whole HTTP API from its OpenAPI schema (schemathesis).

Runs against a real API process (no worker: generated tasks just wait), signed in as admin.
No generated request may get a 5xx or a response that contradicts the schema.
"""

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.processes import PASSWORDS, Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(tmp_path_factory.mktemp("fuzz"), TASKLINE_CREATIONS_PER_MINUTE="100000")
    try:
        stack.start("api")
        yield stack
    finally:
        stack.close()


CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    negative_data_rejection,
]


def test_no_request_gets_a_server_error_or_breaks_the_schema(fuzz_stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_stack.url}/openapi.json")
    # /ready answers 503 by design here: this stack runs no worker.
    operations = [
        op for op in (result.ok() for result in schema.get_all_operations()) if op.path != "/ready"
    ]
    assert len(operations) >= 20

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=fuzz_stack.url,
                auth=("admin", PASSWORDS["admin"]),
                timeout=20,
                checks=CHECKS,
            )

        check()
