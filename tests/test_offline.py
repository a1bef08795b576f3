"""No network at run time: with every non-loopback connection blocked, the model loads, the index
builds and requests are answered."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import pytest_socket
from fastapi.testclient import TestClient

from app.config import Settings
from app.engine.engine import Engine
from app.web.app import create_app
from tests.fakes import SEED_KNOWLEDGE


@pytest.fixture
def loopback_only() -> Iterator[None]:
    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1", "localhost"], allow_unix_socket=True)
    yield
    pytest_socket._remove_restrictions()


def test_the_blocker_really_blocks(loopback_only: None) -> None:
    with (pytest.warns(UserWarning, match="203.0.113.7"),
          pytest.raises(pytest_socket.SocketConnectBlockedError)):
        socket.create_connection(("203.0.113.7", 443), timeout=1)


@pytest.mark.model
def test_model_load_build_and_answers_need_no_network(
    loopback_only: None, tmp_path: Path, onnx_cache: Path, seed_engine: Engine
) -> None:
    # seed_engine made sure the ONNX export exists; exporting is a build-time step with torch.
    knowledge = tmp_path / "knowledge"
    shutil.copytree(SEED_KNOWLEDGE, knowledge)
    settings = Settings(_env_file=None, knowledge_dir=knowledge,  # type: ignore[call-arg]
                        index_dir=tmp_path / "index", onnx_cache_dir=onnx_cache)
    engine = Engine.open(settings)
    client = TestClient(create_app(settings, engine))
    response = client.post("/api/ask", json={"question": "cx wants to change address, vendor is BB"})
    assert response.status_code == 200
    assert response.json()["macro"] == "#SD - Too Late - Can't Change Shipping Address (RP)"
    assert engine.health()["encoder"] == "onnx-fp32"
