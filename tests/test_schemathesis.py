"""Schemathesis against the app's own OpenAPI schema: no 5xx, no response the schema does not allow.

Every operation gets positive (schema-valid) and negative (schema-violating) generated requests,
with the admin token sent, on the tiny playbook and the fake embedder; every response goes
through all of schemathesis's checks (server errors, status codes, content types, response
schemas, valid data accepted, invalid data rejected). Derandomized, so CI sends the same
requests every time: about 1,500 in under a minute.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from app.config import Settings
from app.engine.engine import Engine
from app.web.app import create_app
from tests.fakes import FakeEmbedder

pytestmark = pytest.mark.fuzz  # about a minute: in `make test`, not `make test-fast`

TOKEN = "schemathesis-admin-token"
EXAMPLES_PER_MODE = 100  # x 2 modes x 11 operations; operations with no inputs stop at one
MINIMUM_REQUESTS = 1000


@pytest.fixture
def api_schema(tiny_settings: Settings, fake_embedder: FakeEmbedder) -> Any:
    # A workbench draft may be far larger than a question: with room for every body the schema
    # allows, each request is judged on its content, not refused whole as too large (413).
    configured = tiny_settings.model_copy(update={"admin_token": TOKEN, "watch_seconds": 0,
                                                  "max_body_bytes": 64 * 1024 * 1024})
    engine = Engine(configured, fake_embedder)
    engine.load()
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(configured, engine))


def test_generated_requests_get_no_server_error_and_match_the_schema(api_schema: Any) -> None:
    sent: Counter[str] = Counter()
    for operation in [result.ok() for result in api_schema.get_all_operations()]:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES_PER_MODE, derandomize=True, deadline=None,
                      database=None, suppress_health_check=list(HealthCheck))
            def check(case: Any) -> None:
                sent[case.operation.label] += 1
                case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}"})

            try:
                check()
            except Unsatisfiable:
                # Nothing to break: /healthz and GET /api/entries take no input, and the others
                # here take only strings that may be anything (an entry id, the token).
                assert mode is GenerationMode.NEGATIVE, operation.label
    assert sum(sent.values()) >= MINIMUM_REQUESTS, dict(sent)
    assert len(sent) == 28, dict(sent)  # every operation in the schema
