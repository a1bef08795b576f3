"""Query encoding through ONNX Runtime and the model's own tokenizer.json: no torch at serve time.

`app.embedding.onnx_export` turns a local sentence-transformers folder into a cached ONNX graph
once (that step needs torch and transformers); `OnnxEmbedder` needs only onnxruntime, tokenizers
and numpy.
fp32 embeddings match the torch path (cosine ≈ 1.0), so both share `model_identity`; int8 ones are
close but not equal, which the encoder name ("onnx-int8") records.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from app.embedding.embedder import Vectors, model_identity, normalize
from app.errors import ModelError

logger = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
ENCODER_NAMES = {"fp32": "onnx-fp32", "int8": "onnx-int8"}
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
BATCH_SIZE = 32
# Dynamic int8 scales activations per tensor, i.e. over the whole batch: a text's vector would
# depend on its batch-mates (cosine down to ≈0.955 measured). One text per run keeps it fixed.
INT8_BATCH_SIZE = 1

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ModelSpec:
    """What the sentence-transformers folder says about tokenising, pooling and size."""

    transformer_dir: Path
    max_seq_length: int
    dimension: int
    num_heads: int
    hidden_size: int


@dataclass(frozen=True)
class Batch:
    input_ids: Int64Array
    attention_mask: Int64Array
    token_type_ids: Int64Array

    def feed(self, names: set[str]) -> dict[str, Int64Array]:
        arrays = {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }
        return {name: array for name, array in arrays.items() if name in names}


# --- reading the model folder ------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"the model folder lacks {path}") from exc
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc


def _module_dirs(model_path: Path) -> dict[str, Path]:
    """Module kind ("Transformer", "Pooling", "Normalize") to its folder, from modules.json."""
    dirs: dict[str, Path] = {}
    for module in _read_json(model_path / "modules.json"):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        if kind not in ("Transformer", "Pooling", "Normalize"):
            raise ModelError(f"{model_path}: module {kind!r} is not supported by the ONNX encoder "
                             "(only Transformer, mean Pooling and Normalize)")
        dirs[kind] = model_path / str(module.get("path", ""))
    if "Transformer" not in dirs or "Pooling" not in dirs:
        raise ModelError(f"{model_path}/modules.json needs a Transformer and a Pooling module")
    return dirs


def _pooling_dimension(pooling_dir: Path) -> int:
    config = _read_json(pooling_dir / "config.json")
    modes = {key for key, value in config.items() if key.startswith("pooling_mode_") and value}
    mode = config.get("pooling_mode")
    if not (modes == {"pooling_mode_mean_tokens"} or (not modes and mode == "mean")):
        raise ModelError(f"{pooling_dir}: only mean pooling is supported, found {config}")
    dimension = config.get("word_embedding_dimension", config.get("embedding_dimension"))
    if not isinstance(dimension, int):
        raise ModelError(f"{pooling_dir}/config.json does not state the embedding size")
    return dimension


def _max_seq_length(transformer_dir: Path, config: dict[str, Any]) -> int:
    """As sentence-transformers decides it: sentence_bert_config.json, else the model's limit."""
    st_config = transformer_dir / "sentence_bert_config.json"
    if st_config.exists():
        length = _read_json(st_config).get("max_seq_length")
        if isinstance(length, int):
            return length
    limits = [int(config.get("max_position_embeddings", 512))]
    tokenizer_config = transformer_dir / "tokenizer_config.json"
    if tokenizer_config.exists():
        model_max = _read_json(tokenizer_config).get("model_max_length")
        if isinstance(model_max, int):
            limits.append(model_max)
    return min(limits)


def read_spec(model_path: Path) -> ModelSpec:
    dirs = _module_dirs(model_path)
    transformer_dir = dirs["Transformer"]
    config = _read_json(transformer_dir / "config.json")
    return ModelSpec(
        transformer_dir=transformer_dir,
        max_seq_length=_max_seq_length(transformer_dir, config),
        dimension=_pooling_dimension(dirs["Pooling"]),
        num_heads=int(config.get("num_attention_heads", 0)),
        hidden_size=int(config.get("hidden_size", 0)),
    )


def load_tokenizer(spec: ModelSpec) -> tuple[Tokenizer, int]:
    """The shipped tokenizer.json pads every input to 128 tokens and truncates at 128, while
    sentence-transformers truncates at max_seq_length and pads to the batch's longest: padding is
    switched off here (batches are padded in `pad`) and truncation reset."""
    path = spec.transformer_dir / "tokenizer.json"
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises plain Exception for unreadable files
        raise ModelError(f"cannot load the tokenizer {path}: {exc}") from exc
    padding = tokenizer.padding or {}
    pad_id = padding.get("pad_id", tokenizer.token_to_id("[PAD]") or 0)
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=spec.max_seq_length)
    return tokenizer, int(pad_id)


# --- tensors and pooling -----------------------------------------------------------------------


def pad(encodings: Sequence[Encoding], pad_id: int) -> Batch:
    """Right-pad to the longest in the batch (the fused attention kernel assumes right padding)."""
    width = max(len(encoding.ids) for encoding in encodings)
    shape = (len(encodings), width)
    ids = np.full(shape, pad_id, dtype=np.int64)
    mask = np.zeros(shape, dtype=np.int64)
    types = np.zeros(shape, dtype=np.int64)
    for row, encoding in enumerate(encodings):
        length = len(encoding.ids)
        ids[row, :length] = encoding.ids
        mask[row, :length] = encoding.attention_mask
        types[row, :length] = encoding.type_ids
    return Batch(ids, mask, types)


def mean_pool(hidden: npt.NDArray[np.float32], mask: Int64Array) -> Vectors:
    """sentence-transformers' mean pooling: masked sum over tokens / count (clamped at 1e-9)."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    return np.asarray(summed / np.maximum(weights.sum(axis=1), 1e-9), dtype=np.float32)


def new_session(onnx_path: Path, threads: int) -> ort.InferenceSession:
    # onnxruntime 1.32 reports usage events (seen here: a DNS lookup of Microsoft's telemetry
    # host seconds after start); nothing may leave this machine at run time.
    ort.disable_telemetry_events()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


Session = TypeVar("Session")


class SessionPool(Generic[Session]):
    """A query that runs alone gets `solo` (all its threads: lowest latency); under concurrent
    load every query gets `shared` (one thread each), so queries split the cores instead of
    oversubscribing them. ONNX Runtime releases the GIL, so `shared` runs in parallel.

    "Under load" lasts `calm_seconds` past the last overlap: a lone query in a busy stretch would
    run its two threads beside the next arrivals' and slow them all (measured with 4 clients:
    ~20 % fewer requests served than one thread each)."""

    def __init__(self, solo: Session, shared: Session | Callable[[], Session],
                 calm_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        """`shared` may be a factory: it is then made on the first overlap (a second ONNX
        session costs ~0.35 s of start-up and memory a lone agent never needs)."""
        self.solo = solo
        self._shared = shared
        self.calm_seconds = calm_seconds
        self._clock = clock
        self._running = 0
        self._last_overlap = float("-inf")
        self._lock = threading.Lock()

    @property
    def shared(self) -> Session:
        """Called with the lock held."""
        if callable(self._shared):
            self._shared = self._shared()
        return self._shared

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._lock:
            now = self._clock()
            if self._running:
                self._last_overlap = now
            calm = now - self._last_overlap >= self.calm_seconds
            chosen = self.solo if calm else self.shared
            self._running += 1
        try:
            yield chosen
        finally:
            with self._lock:
                self._running -= 1


# --- the embedder ------------------------------------------------------------------------------


class OnnxEmbedder:
    """Encodes with an ONNX graph made by `export_onnx`. `encode` may be called from several
    threads at once: sessions are thread-safe and the tokenizer is only read after set-up
    (reconfiguring it per call is what makes shared `tokenizers` objects fail across threads)."""

    def __init__(self, onnx_path: Path, model_path: Path, threads: int = 1) -> None:
        identity = model_identity(model_path)
        precision = check_sidecar(onnx_path, identity)
        spec = read_spec(model_path)
        self._identity = identity
        self._encoder = ENCODER_NAMES[precision]
        self._batch_size = INT8_BATCH_SIZE if precision == "int8" else BATCH_SIZE
        self._dimension = spec.dimension
        self._tokenizer, self._pad_id = load_tokenizer(spec)
        try:
            solo = new_session(onnx_path, threads)
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            raise ModelError(f"onnxruntime cannot load {onnx_path}: {exc}") from exc
        shared: Any = (lambda: new_session(onnx_path, 1)) if threads > 1 else solo
        self._sessions = SessionPool(solo, shared)
        self._input_names = {node.name for node in solo.get_inputs()}

    @property
    def identity(self) -> str:
        return self._identity

    @property
    def encoder(self) -> str:
        return self._encoder

    @property
    def dimension(self) -> int:
        return self._dimension

    def encode(self, texts: Sequence[str]) -> Vectors:
        if len(texts) == 0:
            return np.zeros((0, self._dimension), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        # Length-sorted batches keep padding (wasted compute) small; results do not depend on it.
        order = sorted(range(len(encodings)), key=lambda index: len(encodings[index].ids))
        vectors = np.empty((len(encodings), self._dimension), dtype=np.float32)
        for start in range(0, len(order), self._batch_size):
            rows = order[start : start + self._batch_size]
            vectors[rows] = self._pooled([encodings[row] for row in rows])
        return normalize(vectors)

    def _pooled(self, encodings: Sequence[Encoding]) -> Vectors:
        batch = pad(encodings, self._pad_id)
        with self._sessions.session() as session:
            hidden = session.run([OUTPUT_NAME], batch.feed(self._input_names))[0]
        return mean_pool(np.asarray(hidden, dtype=np.float32), batch.attention_mask)


# --- the sidecar beside each export: which model, which precision ------------------------


def sidecar_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".json")


def read_sidecar(onnx_path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(sidecar_path(onnx_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def check_sidecar(onnx_path: Path, identity: str) -> str:
    """The precision of a valid export of this model, else a ModelError."""
    if not onnx_path.is_file():
        raise ModelError(f"no ONNX model at {onnx_path}; create it with export_onnx()")
    sidecar = read_sidecar(onnx_path)
    if sidecar is None:
        raise ModelError(f"{onnx_path} has no readable {sidecar_path(onnx_path).name}, so its "
                         "model is unknown; export it again with export_onnx()")
    if sidecar.get("identity") != identity:
        raise ModelError(f"{onnx_path} was exported from {sidecar.get('identity')!r}, "
                         f"not from {identity!r}")
    precision = sidecar.get("precision")
    if precision not in ENCODER_NAMES:
        raise ModelError(f"{sidecar_path(onnx_path)}: unknown precision {precision!r}")
    return str(precision)
