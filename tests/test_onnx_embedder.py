"""The ONNX Runtime query encoder against the sentence-transformers (torch) reference."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from app.config import default_model_path
from app.embedding.embedder import SentenceTransformerEmbedder, Vectors, model_identity
from app.embedding.loader import load_onnx_embedder
from app.embedding.onnx import OnnxEmbedder, SessionPool
from app.embedding.onnx_export import export_onnx
from app.errors import ModelError
from tests.fakes import PROJECT_ROOT

pytestmark = pytest.mark.model

LONG_TEXT = " ".join(
    f"Ticket note {n}: the customer called again about order {1000 + n}, which shows delivered "
    "but never arrived; the courier photo shows another porch." for n in range(14)
)
QUESTIONS = [
    "Customer is requesting change to shipping address and the vendor is best buy.",
    "cx says pkg was stolen",
    "How do I issue a partial refund when one item in the order arrived damaged?",
    "refund",
    "Can the customer cancel after the order has shipped?",
    "promo code SAVE20 not working at checkout!!!",
    "Cliente dice que el paquete llegó roto 📦😡 — café, naïve, Straße, İstanbul",
    "顧客は注文をキャンセルしたい",
    "order #A-10293 charged twice $49.99 + $49.99",
    "",
    LONG_TEXT,
]


@pytest.fixture(scope="module")
def model_path() -> Path:
    return default_model_path()


@pytest.fixture(scope="module")
def cache_dir(onnx_cache: Path) -> Path:
    return onnx_cache


@pytest.fixture(scope="module")
def torch_embedder(model_path: Path) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(model_path)


@pytest.fixture(scope="module")
def fp32(model_path: Path, cache_dir: Path) -> OnnxEmbedder:
    return load_onnx_embedder(model_path, cache_dir)


@pytest.fixture(scope="module")
def int8(model_path: Path, cache_dir: Path) -> OnnxEmbedder:
    return load_onnx_embedder(model_path, cache_dir, quantize=True)


@pytest.fixture(scope="module")
def reference(torch_embedder: SentenceTransformerEmbedder) -> Vectors:
    return torch_embedder.encode(QUESTIONS)


def cosines(left: Vectors, right: Vectors) -> Vectors:
    return np.asarray((left * right).sum(axis=1), dtype=np.float32)


def test_long_text_really_exceeds_the_token_limit() -> None:
    assert len(LONG_TEXT.split()) >= 300


@pytest.mark.parametrize("index", range(len(QUESTIONS)))
def test_fp32_matches_torch(fp32: OnnxEmbedder, reference: Vectors, index: int) -> None:
    vector = fp32.encode([QUESTIONS[index]])
    assert cosines(vector, reference[index : index + 1])[0] >= 0.9999


def test_vectors_are_unit_float32(fp32: OnnxEmbedder) -> None:
    vectors = fp32.encode(QUESTIONS)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(QUESTIONS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_empty_matrix(fp32: OnnxEmbedder) -> None:
    assert fp32.encode([]).shape == (0, 384)


def test_batch_equals_one_by_one(fp32: OnnxEmbedder) -> None:
    batch = fp32.encode(QUESTIONS)
    single = np.vstack([fp32.encode([text]) for text in QUESTIONS])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_text_beyond_the_limit_is_truncated(fp32: OnnxEmbedder) -> None:
    extended = fp32.encode([LONG_TEXT + " Completely different closing words about the weather."])
    np.testing.assert_allclose(extended, fp32.encode([LONG_TEXT]), atol=1e-6)


def test_identity_shared_with_torch(
    fp32: OnnxEmbedder, torch_embedder: SentenceTransformerEmbedder, model_path: Path
) -> None:
    assert fp32.identity == torch_embedder.identity == model_identity(model_path)
    assert fp32.encoder == "onnx-fp32"
    assert fp32.dimension == torch_embedder.dimension == 384


def test_int8_is_named_and_close(
    int8: OnnxEmbedder, reference: Vectors, model_path: Path
) -> None:
    assert int8.encoder == "onnx-int8"
    assert int8.identity == model_identity(model_path)
    # Real questions only: near-empty or greeting-like inputs ("", "ok thanks") measured 0.95-0.97.
    real = [i for i, text in enumerate(QUESTIONS) if text]
    assert cosines(int8.encode([QUESTIONS[i] for i in real]), reference[real]).min() >= 0.98


def test_int8_vector_does_not_depend_on_the_batch(int8: OnnxEmbedder) -> None:
    single = np.vstack([int8.encode([text]) for text in QUESTIONS])
    np.testing.assert_allclose(int8.encode(QUESTIONS), single, atol=1e-6)


def test_second_load_reuses_the_cache(
    fp32: OnnxEmbedder, int8: OnnxEmbedder, model_path: Path, cache_dir: Path
) -> None:
    paths = [export_onnx(model_path, cache_dir), export_onnx(model_path, cache_dir, quantize=True)]
    before = {path: path.stat().st_mtime_ns for path in paths}
    again = load_onnx_embedder(model_path, cache_dir, quantize=True)
    assert {path: path.stat().st_mtime_ns for path in paths} == before
    assert [path.name for path in paths] == ["model.onnx", "model-int8.onnx"]
    assert again.encoder == "onnx-int8"
    sidecar = json.loads(paths[0].with_name("model.onnx.json").read_text(encoding="utf-8"))
    assert sidecar["identity"] == model_identity(model_path)
    assert {"onnx", "onnxruntime", "torch"} <= sidecar["versions"].keys()
    assert not [p for p in paths[0].parent.iterdir() if p.name.startswith(".")]


def test_missing_model_folder_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no local model"):
        load_onnx_embedder(tmp_path / "no-such-model", tmp_path / "cache")


def test_export_from_another_model_is_refused(
    fp32: OnnxEmbedder, model_path: Path, cache_dir: Path, tmp_path: Path
) -> None:
    impostor = tmp_path / "impostor"
    shutil.copytree(model_path, impostor, ignore=shutil.ignore_patterns("*.safetensors"))
    with pytest.raises(ModelError, match="was exported from"):
        OnnxEmbedder(export_onnx(model_path, cache_dir), impostor)


def test_concurrent_encode_matches_sequential(fp32: OnnxEmbedder) -> None:
    expected = [fp32.encode([text]) for text in QUESTIONS]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda i: fp32.encode([QUESTIONS[i % len(QUESTIONS)]]),
                                range(8 * len(QUESTIONS))))
    for i, vector in enumerate(results):
        np.testing.assert_allclose(vector, expected[i % len(QUESTIONS)], atol=1e-6)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_lone_query_runs_solo_and_overlapping_ones_share_until_a_calm_second() -> None:
    clock = FakeClock()
    pool = SessionPool(solo="solo", shared="shared", calm_seconds=1.0, clock=clock)
    with pool.session() as first, pool.session() as second, pool.session() as third:
        assert (first, second, third) == ("solo", "shared", "shared")
    clock.now += 0.5
    with pool.session() as alone_but_busy_stretch:
        assert alone_but_busy_stretch == "shared"
    clock.now += 0.5
    with pool.session() as alone_after_a_calm_second:
        assert alone_after_a_calm_second == "solo"


def test_a_session_is_released_when_its_run_fails() -> None:
    pool = SessionPool(solo="solo", shared="shared", clock=FakeClock())
    with pytest.raises(RuntimeError), pool.session():
        raise RuntimeError("onnxruntime failed")
    with pool.session() as session:
        assert session == "solo"


def test_two_thread_and_one_thread_sessions_give_the_same_vectors(
    model_path: Path, cache_dir: Path
) -> None:
    """Under load a query runs on the one-thread session: it must rank as a lone query does."""
    two = OnnxEmbedder(export_onnx(model_path, cache_dir), model_path, threads=2)
    one = OnnxEmbedder(export_onnx(model_path, cache_dir), model_path, threads=1)
    lone = two.encode(QUESTIONS)
    cosines = (lone * one.encode(QUESTIONS)).sum(axis=1)
    assert cosines.min() >= 0.99999
    with ThreadPoolExecutor(max_workers=4) as pool:
        crowded = list(pool.map(lambda text: two.encode([text])[0], QUESTIONS * 4))
    assert min(float(v @ lone[i % len(QUESTIONS)]) for i, v in enumerate(crowded)) >= 0.99999


def test_serving_does_not_import_torch(fp32: OnnxEmbedder, model_path: Path,
                                       cache_dir: Path) -> None:
    onnx_path = export_onnx(model_path, cache_dir)
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from app.embedding.onnx import OnnxEmbedder
        embedder = OnnxEmbedder(Path({str(onnx_path)!r}), Path({str(model_path)!r}))
        assert embedder.encode(["cx says pkg was stolen"]).shape == (1, 384)
        heavy = sorted({{"torch", "transformers", "sentence_transformers"}} & set(sys.modules))
        assert not heavy, heavy
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
