"""Schemathesis against the API's own OpenAPI document, with an operator's key and with a
tenant's: for every operation, generated requests never get a 5xx, every answer matches the
document (status, content type, body), and a request without the key is refused
(schemathesis' ``ignored_auth`` check). Bounded examples per operation, to stay fast."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from tests.service.api.conftest import Api

EXAMPLES = 6


def check(cases: st.SearchStrategy[Any], headers: dict[str, str]) -> None:
    @given(case=cases)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        # business rules the schema cannot state (a silence names a kind or a subject and
        # ends in the future; `since` before `until`) answer 400: not a schema failure
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    run()


@pytest.mark.parametrize("park_store", ["sqlite"], indirect=True)
def test_the_api_keeps_its_openapi_document(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) > 15
    checked = 0
    for op in operations:
        for headers in (api.operator, api.a):
            check(op.as_strategy(), headers)
            checked += 1
    assert checked == 2 * len(operations)
