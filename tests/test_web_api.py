from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.engine.engine import Engine
from app.web.app import create_app

ADDRESS = {
    "entry_id": "change-address",
    "source_question": "Customer wants to change the shipping address",
    "answer": "#SD - Too Late - Can't Change Shipping Address (RP)",
    "macro": "#SD - Too Late - Can't Change Shipping Address (RP)",
    "applies_when": [],
}
CANCEL = {
    "entry_id": "cancel-order",
    "source_question": "Customer wants to cancel an order",
    "answer": "send #SD - Too Late to Cancel",
    "macro": "#SD - Too Late to Cancel",
    "applies_when": [],
}
SLA = {
    "entry_id": "shipping-sla",
    "source_question": "What is our SLA for shipping most orders",
    "answer": "3-5 business days",
    "macro": None,
    "applies_when": [],
}


@pytest.fixture
def client(tiny_settings: Settings, tiny_engine: Engine) -> TestClient:
    return TestClient(create_app(tiny_settings, tiny_engine))


def test_ask_returns_the_matched_entry_and_alternatives(client: TestClient) -> None:
    response = client.post("/api/ask", json={"question": "cx wants to update the delivery address",
                                             "top_k": 1})
    assert response.status_code == 200
    assert response.json() == {
        "question": "cx wants to update the delivery address",
        "matched": True,
        "answer": ADDRESS["answer"],
        "macro": ADDRESS["macro"],
        "source_question": ADDRESS["source_question"],
        "entry_id": "change-address",
        "tags": ["address"],
        "confidence": 0.9937,
        "ambiguous": False,
        "applies_when": [],
        "alternatives": [{**CANCEL, "confidence": 0.0}],
        "ruled_out": [], "out_of_scope": None,
    }


def test_no_confident_match_has_nulls_and_suggestions(client: TestClient) -> None:
    response = client.post("/api/ask", json={"question": "tell me a joke about cats", "top_k": 2})
    assert response.json() == {
        "question": "tell me a joke about cats",
        "matched": False,
        "answer": None,
        "macro": None,
        "source_question": None,
        "entry_id": None,
        "tags": [],
        "confidence": 0.137,
        "ambiguous": False,
        "applies_when": [],
        "alternatives": [{**ADDRESS, "confidence": 0.137}, {**CANCEL, "confidence": 0.0001}],
        "ruled_out": [], "out_of_scope": "tell me a joke",
    }


def test_close_top_two_are_flagged_ambiguous(client: TestClient) -> None:
    body = client.post("/api/ask", json={"question": "order", "top_k": 2}).json()
    assert (body["matched"], body["ambiguous"]) == (False, True)
    assert [a["entry_id"] for a in body["alternatives"]] == ["cancel-order", "change-address"]


def test_tags_limit_which_entries_compete(client: TestClient) -> None:
    body = client.post("/api/ask", json={"question": "cancel the order", "tags": ["shipping"]}).json()
    assert [a["entry_id"] for a in body["alternatives"]] == ["shipping-sla"]
    assert client.post("/api/ask", json={"question": "x", "tags": ["nope"]}).json()[
        "alternatives"] == []


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"question": ""}, "the question is empty"),
        ({"question": "   \n\t "}, "the question is empty"),
        ({"question": "x" * 4001}, "the question is 4001 characters long; the limit is 4000"),
        ({"question": "why\x00"}, "the question contains control characters"),
        ({"question": 5}, "question: Input should be a valid string"),
        ({}, "question: Field required"),
        ({"question": "hi", "top_k": 99}, "top_k: Input should be less than or equal to 20"),
        ({"question": "hi", "tags": "address"}, "tags: Input should be a valid list"),
    ],
)
def test_bad_questions_get_a_clear_422(client: TestClient, body: Any, detail: str) -> None:
    response = client.post("/api/ask", json=body)
    assert (response.status_code, response.json()) == (422, {"detail": detail})


def test_malformed_json_gets_a_clear_422(client: TestClient) -> None:
    response = client.post("/api/ask", content=b'{"question": ',
                           headers={"content-type": "application/json"})
    assert (response.status_code, response.json()) == (
        422, {"detail": "the request body is not valid JSON"})


def test_search_ranks_entries_with_scores(client: TestClient) -> None:
    response = client.get("/api/search", params={"q": "shipping time", "k": 2})
    assert response.json() == {
        "query": "shipping time",
        "results": [
            {"rank": 1, **SLA, "matched_text": "delivery time for most orders",
             "score": 0.3162, "confidence": 0.0268},
            {"rank": 2, **ADDRESS, "matched_text": "Customer wants to change the shipping address",
             "score": 0.2673, "confidence": 0.0019},
        ],
    }


def test_entries_and_entry(client: TestClient) -> None:
    assert [e["id"] for e in client.get("/api/entries").json()] == [
        "change-address", "cancel-order", "shipping-sla"]
    assert client.get("/api/entries/cancel-order").json() == {
        "id": "cancel-order",
        "question": "Customer wants to cancel an order",
        "answer": "send #SD - Too Late to Cancel",
        "macro": "#SD - Too Late to Cancel",
        "alternates": ["cancel my order please", "stop the order before it ships"],
        "tags": ["cancellation"],
        "source": {"file": "tiny.txt", "line": 3},
        "applies_when": [],
    }
    missing = client.get("/api/entries/nope")
    assert (missing.status_code, missing.json()) == (404, {"detail": "no entry with id 'nope'"})


def test_healthz_identifies_the_index(client: TestClient, tiny_engine: Engine) -> None:
    body = client.get("/healthz").json()
    assert body == {
        "status": "ok",
        "entries": 3,
        "vectors": 9,
        "model": "fake-bag-of-words@1",
        "encoder": "fake",
        "knowledge_hash": tiny_engine.knowledge.content_hash(),
        "index_built_at": body["index_built_at"],
        "index_type": "flat",
        "last_reload_error": None,
    }


def test_invisible_characters_alone_are_an_empty_question(client: TestClient) -> None:
    response = client.post("/api/ask", json={"question": "\u200b\u2060 \ufeff"})
    assert (response.status_code, response.json()) == (422, {"detail": "the question is empty"})
