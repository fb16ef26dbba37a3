"""The admin API fuzzed against its own OpenAPI document (schemathesis), with a valid token.

A real aiohttp server runs on a free port in the test's event loop; schemathesis' synchronous
client runs in a worker thread. Every generated request, valid and deliberately invalid, must
get a non-5xx answer that the document describes (status, content type, body schema, headers).
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from roles.app.server import OPENAPI_PATH
from tests.app.conftest import AUTH

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25  # per operation and generation mode: keeps the whole run well under a minute
# negative_data_rejection is left out on purpose: unknown query parameters are ignored (not refused),
# and the token is always sent, which that check counts as "invalid data accepted"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance]


def _fuzz_operation(operation: Any, mode: schemathesis.GenerationMode, base_url: str,
                    session: requests.Session) -> int:
    calls = 0

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, derandomize=True,
              phases=[Phase.explicit, Phase.generate, Phase.shrink],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        nonlocal calls
        response = case.call(base_url=base_url, session=session, headers=AUTH, timeout=10)
        calls += 1
        assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code}"
        case.validate_response(response, checks=CHECKS, headers=AUTH)

    run()
    return calls


def fuzz(base_url: str) -> dict[str, int]:
    """Requests sent per operation; any failing check raises with the falsifying example."""
    document = json.loads(Path(OPENAPI_PATH).read_text(encoding="utf-8"))
    schema = schemathesis.openapi.from_dict(document)
    sent: dict[str, int] = {}
    with requests.Session() as session:
        for result in schema.get_all_operations():
            operation = result.ok()
            label = f"{operation.method.upper()} {operation.path}"
            described = document["paths"][operation.path][operation.method.lower()]
            modes = [schemathesis.GenerationMode.POSITIVE]
            if "parameters" in described or "requestBody" in described:  # something to make invalid
                modes.append(schemathesis.GenerationMode.NEGATIVE)
            for mode in modes:
                sent[label] = sent.get(label, 0) + _fuzz_operation(operation, mode, base_url, session)
    return sent


async def test_admin_api_survives_fuzzing_against_its_openapi_document(admin_app, db_pool):
    # a known user behind the documented example id, so the card and actions also answer 200
    await db_pool.execute("INSERT INTO users (user_id, first_name, created_at) VALUES (1001, 'Ann', $1)",
                          datetime.now(UTC))
    server = TestServer(admin_app, host="127.0.0.1")
    await server.start_server()
    try:
        sent = await asyncio.to_thread(fuzz, str(server.make_url("")).rstrip("/"))
    finally:
        await server.close()
    assert len(sent) == 20  # every operation of the document (/metrics lives on METRICS_PORT only)
    assert all(count > 0 for count in sent.values()), sent
