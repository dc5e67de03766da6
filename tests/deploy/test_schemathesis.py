"""schemathesis against the server's own OpenAPI document, on a real uvicorn server on 127.0.0.1: a table model
with every input type (/predict as JSON, CSV and multipart, /health, /metadata, /plots/NAME) and a language model
(/generate). Valid and invalid requests, a bounded, seeded number of each: no 5xx, and every answer as documented
(status, content type, headers, body schema)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deepwright.deploy.predictor import Predictor  # noqa: E402
from deepwright.deploy.server import create_app  # noqa: E402
from deepwright.deploy.service import ServerSettings  # noqa: E402
from tests.deploy.serving import Served, serve_in_thread  # noqa: E402

EXAMPLES = 50  # per operation and mode
POSITIVE_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
NEGATIVE_CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def table_server(served: Served) -> Iterator[str]:
    settings = ServerSettings(max_rows=20, max_body_bytes=1 << 20, max_text_chars=2_000)
    with serve_in_thread(create_app(Predictor.from_bundle(served.bundle), settings)) as url:
        yield url


@pytest.fixture(scope="module")
def language_server() -> Iterator[str]:
    from tests.deploy.test_server import tiny_generator

    settings = ServerSettings(max_new_tokens=16, max_prompt_chars=200)
    with serve_in_thread(create_app(tiny_generator(), settings, name="tiny")) as url:
        yield url


def run_schemathesis(url: str) -> dict[str, bool]:
    """Every operation of the server's OpenAPI document, positive then negative examples: {operation: whether it
    has invalid requests to send} (every string is a valid /plots/NAME, and GET /health takes nothing)."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    tried = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        examples(operation, schemathesis.GenerationMode.POSITIVE, POSITIVE_CHECKS, url)()
        try:
            examples(operation, schemathesis.GenerationMode.NEGATIVE, NEGATIVE_CHECKS, url)()
        except Unsatisfiable:
            tried[operation.label] = False
        else:
            tried[operation.label] = True
    return tried


def examples(operation: object, mode: object, checks: list, url: str) -> object:
    """A hypothesis test of `operation`'s generated requests (`mode`: valid or invalid ones) under `checks`."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def check(case: object) -> None:
        case.call_and_validate(base_url=url, checks=checks, timeout=30)

    return check


def test_the_table_server_keeps_to_its_openapi_document(table_server: str) -> None:
    tried = run_schemathesis(table_server)
    assert {"POST /predict", "GET /health", "GET /metadata", "GET /plots/{name}"} <= set(tried), tried
    assert tried["POST /predict"], "invalid /predict requests were sent"


def test_the_language_model_server_keeps_to_its_openapi_document(language_server: str) -> None:
    tried = run_schemathesis(language_server)
    assert tried["POST /generate"] and "POST /predict" not in tried, tried
