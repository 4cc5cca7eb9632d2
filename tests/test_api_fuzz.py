"""schemathesis against the OpenAPI document of a real server: no request it generates, for any
operation and any of the roles below, gets a 5xx. Slow: run by `make test-all`."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

pytestmark = pytest.mark.slow
EXAMPLES = 25


def _operations(api):
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20
    return operations


@pytest.mark.parametrize("role", ["self", "steward", "analyst", "auditor"])
def test_no_server_errors(api, role):
    headers = api.headers(role, api.persons[0] if role == "self" else None)
    failures, calls = [], []
    operations = _operations(api)
    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            response = case.call_and_validate(base_url=api.url, headers=headers, checks=[not_a_server_error])
            calls.append(response.status_code)

        try:
            run()
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:800]}")
    assert not failures, "\n\n".join(failures)
    assert len(calls) >= 5 * len(operations) and all(code < 500 for code in calls)
