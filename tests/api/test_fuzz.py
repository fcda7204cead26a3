"""Schema-driven and targeted fuzzing of the API: bad input is a 4xx that changes nothing.

Two kinds of generation, both against a real store (SQLite always, PostgreSQL when it is up):

* **schemathesis**, from edgemeta's own OpenAPI document: for every operation, requests that
  fit the document (positive) and requests that break it (negative). Every response must be
  no 5xx (but /secret's 501), conform to the document (status, content type, body schema,
  headers), reject every negative request with a 4xx, and put every 4xx in the EdgeX envelope.
* **targeted Hypothesis strategies** for what EdgeX clients and attackers actually send:
  wrong JSON types, case-variant keys, nulls, huge strings, control characters, deep nesting,
  non-UTF-8 bytes, non-array batches, mixed valid/invalid batches, duplicates inside a batch,
  bad paging parameters, odd percent-encoding in paths, YAML that is not a profile.

After every request that the service rejected (a 4xx, or a 207 whose elements all failed) the
stored state - every record and every queued system event - must equal what it was before.

``FUZZ_EXAMPLES`` sets the examples per test (default 12; the slow variant uses 20 times
as many). Under CI the examples are derandomized, so a run is reproducible; locally every run
explores new ones.
"""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from edgemeta.api.app import openapi_document
from tests.api.live import (
    BASE,
    Exchange,
    LiveApp,
    all_failed,
    check_batch_items,
    check_envelope,
    diff,
)

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "12"))
DERANDOMIZE = bool(os.environ.get("CI"))

SCHEMA = schemathesis.openapi.from_dict(yaml.safe_load(openapi_document()))
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]
# No 5xx is checked by check_envelope, which knows /secret's 501.
CHECKS = [
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    negative_data_rejection,
]
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    derandomize=DERANDOMIZE,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def _latin1(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1", "replace")


def send_case(app: LiveApp, case: Any) -> httpx.Response:
    """Send a schemathesis case through the app, byte for byte as `requests` would."""
    kwargs = case.as_transport_kwargs(base_url=f"http://t{BASE}")
    kwargs.pop("cookies", None)
    prepared = requests.Request(**kwargs).prepare()
    headers = [(_latin1(k), _latin1(v)) for k, v in prepared.headers.items()]
    body = prepared.body.encode() if isinstance(prepared.body, str) else prepared.body
    assert prepared.url is not None
    return app.send_raw(case.method, prepared.url, headers, body)


def exchange(app: LiveApp, case: Any) -> None:
    """Send one generated case and apply every check, including "a rejection changes nothing"."""
    writes = case.method.upper() != "GET"
    before = app.snapshot() if writes else None
    response = send_case(app, case)
    ex = Exchange(case.method.upper(), case.formatted_path, response)
    check_envelope(ex)
    check_batch_items(ex)
    case.validate_response(response, checks=CHECKS)
    if before is not None and all_failed(response):
        after = app.snapshot()
        assert before == after, f"rejected request changed {diff(before, after)}: {ex.describe()}"


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: op.label)
def test_schemathesis(seeded_app: LiveApp, operation: Any) -> None:
    strategy = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: Any) -> None:
        exchange(seeded_app, case)

    run()
