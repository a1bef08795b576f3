"""Shared fixtures: the tiny playbook with the fake embedder, and the real seed engine (the
doubles themselves are in tests/fakes.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.config import Settings
from app.engine.engine import Engine
from tests.fakes import SEED_KNOWLEDGE, TINY_OUT_OF_SCOPE, TINY_PLAYBOOK, FakeEmbedder
from tests.postgres import fresh_database, running_server


@pytest.fixture
def tiny_knowledge(tmp_path: Path) -> Path:
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "playbook.yaml").write_text(TINY_PLAYBOOK, encoding="utf-8")
    (folder / "glossary.yaml").write_text("cx: customer\nOOS: out of stock\n", encoding="utf-8")
    (folder / "out_of_scope.txt").write_text(TINY_OUT_OF_SCOPE, encoding="utf-8")
    return folder


@pytest.fixture
def tiny_settings(tmp_path: Path, tiny_knowledge: Path) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        knowledge_dir=tiny_knowledge,
        index_dir=tmp_path / "index",
        db_path=tmp_path / "feedback.sqlite3",
    )


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def tiny_engine(tiny_settings: Settings, fake_embedder: FakeEmbedder) -> Engine:
    engine = Engine(tiny_settings, fake_embedder)
    engine.load()
    return engine


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX export of the real model per test session, shared by every test that needs it."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(scope="session")
def seed_engine(tmp_path_factory: pytest.TempPathFactory, onnx_cache: Path) -> Iterator[Engine]:
    """The real model on the real seed playbook (built once per test session)."""
    index_dir = tmp_path_factory.mktemp("seed-index")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        knowledge_dir=SEED_KNOWLEDGE,
        index_dir=index_dir,
        db_path=index_dir / "feedback.sqlite3",
        onnx_cache_dir=onnx_cache,
        encoder=os.environ.get("PLAYBOOK_TEST_ENCODER", "auto"),  # type: ignore[arg-type]
    )
    yield Engine.open(settings)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server for this test session (tests/postgres.py); its admin URL."""
    with running_server() as url:
        yield url


@pytest.fixture
def postgres_url(postgres_server: str) -> str:
    """A fresh, empty database on the session's server."""
    return fresh_database(postgres_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs on both backends: an SQLite file, and a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+pysqlite:///{tmp_path / 'db' / 'feedback.sqlite3'}"
    return fresh_database(request.getfixturevalue("postgres_server"))
