"""Query encoding through ONNX Runtime and the model's own tokenizer.json: no torch at serve time.

`export_onnx` turns a local sentence-transformers folder into a cached ONNX graph once (this step
needs torch and transformers); `OnnxEmbedder` then needs only onnxruntime, tokenizers and numpy.
fp32 embeddings match the torch path (cosine ≈ 1.0), so both share `model_identity`; int8 ones are
close but not equal, which the encoder name ("onnx-int8") records.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from tokenizers import Encoding, Tokenizer

from app.embedder import Vectors, model_identity, normalize, offline_environment
from app.errors import ModelError

logger = logging.getLogger(__name__)

FP32_FILE = "model.onnx"
INT8_FILE = "model-int8.onnx"
ENCODER_NAMES = {"fp32": "onnx-fp32", "int8": "onnx-int8"}
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "last_hidden_state"
OPSET = 17
BATCH_SIZE = 32
# Dynamic int8 scales activations per tensor, i.e. over the whole batch: a text's vector would
# depend on its batch-mates (cosine down to ≈0.955 measured). One text per run keeps it fixed.
INT8_BATCH_SIZE = 1
# An export (or fusion) that is not numerically the torch model is refused (fp32) or dropped.
FP32_MIN_COSINE = 0.99999
INT8_MIN_COSINE = 0.97

_TRACE_TEXTS = ("hello world", "a")
# Different batch size and lengths from the trace inputs, with padding, so a graph that
# specialised to the traced shapes fails validation.
_PROBE_TEXTS = (
    "Customer is requesting change to shipping address and the vendor is best buy.",
    "cx says pkg was stolen",
    "refund",
    "The order arrived damaged; the customer wants a replacement shipped overnight, not a refund, "
    "and asks whether the warranty covers the second unit as well. Café, naïve, 📦.",
)

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True)
class _ModelSpec:
    """What the sentence-transformers folder says about tokenising, pooling and size."""

    transformer_dir: Path
    max_seq_length: int
    dimension: int
    num_heads: int
    hidden_size: int


@dataclass(frozen=True)
class _Batch:
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


def _read_spec(model_path: Path) -> _ModelSpec:
    dirs = _module_dirs(model_path)
    transformer_dir = dirs["Transformer"]
    config = _read_json(transformer_dir / "config.json")
    return _ModelSpec(
        transformer_dir=transformer_dir,
        max_seq_length=_max_seq_length(transformer_dir, config),
        dimension=_pooling_dimension(dirs["Pooling"]),
        num_heads=int(config.get("num_attention_heads", 0)),
        hidden_size=int(config.get("hidden_size", 0)),
    )


def _load_tokenizer(spec: _ModelSpec) -> tuple[Tokenizer, int]:
    """The shipped tokenizer.json pads every input to 128 tokens and truncates at 128, while
    sentence-transformers truncates at max_seq_length and pads to the batch's longest: padding is
    switched off here (batches are padded in `_pad`) and truncation reset."""
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


def _pad(encodings: Sequence[Encoding], pad_id: int) -> _Batch:
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
    return _Batch(ids, mask, types)


def _mean_pool(hidden: npt.NDArray[np.float32], mask: Int64Array) -> Vectors:
    """sentence-transformers' mean pooling: masked sum over tokens / count (clamped at 1e-9)."""
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    return np.asarray(summed / np.maximum(weights.sum(axis=1), 1e-9), dtype=np.float32)


def _session(onnx_path: Path, threads: int) -> ort.InferenceSession:
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

    def __init__(self, solo: Session, shared: Session, calm_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.solo = solo
        self.shared = shared
        self.calm_seconds = calm_seconds
        self._clock = clock
        self._running = 0
        self._last_overlap = float("-inf")
        self._lock = threading.Lock()

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
        offline_environment()
        identity = model_identity(model_path)
        precision = _check_sidecar(onnx_path, identity)
        spec = _read_spec(model_path)
        self._identity = identity
        self._encoder = ENCODER_NAMES[precision]
        self._batch_size = INT8_BATCH_SIZE if precision == "int8" else BATCH_SIZE
        self._dimension = spec.dimension
        self._tokenizer, self._pad_id = _load_tokenizer(spec)
        try:
            solo = _session(onnx_path, threads)
            shared = _session(onnx_path, 1) if threads > 1 else solo
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            raise ModelError(f"onnxruntime cannot load {onnx_path}: {exc}") from exc
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
        batch = _pad(encodings, self._pad_id)
        with self._sessions.session() as session:
            hidden = session.run([OUTPUT_NAME], batch.feed(self._input_names))[0]
        return _mean_pool(np.asarray(hidden, dtype=np.float32), batch.attention_mask)


def load_onnx_embedder(
    model_path: Path, cache_dir: Path, threads: int = 1, quantize: bool = False
) -> OnnxEmbedder:
    """Export (once, cached) and load. Every failure is a ModelError naming the cause."""
    try:
        return OnnxEmbedder(export_onnx(model_path, cache_dir, quantize), model_path, threads)
    except ModelError:
        raise
    except ImportError as exc:
        raise ModelError(f"exporting {model_path} to ONNX needs torch and transformers ({exc}); "
                         f"or copy an existing export into {cache_dir}") from exc
    except Exception as exc:
        raise ModelError(f"cannot prepare the ONNX encoder for {model_path} "
                         f"(cache {cache_dir}): {type(exc).__name__}: {exc}") from exc


# --- cache and sidecar -------------------------------------------------------------------------


def _sidecar_path(onnx_path: Path) -> Path:
    return onnx_path.with_name(onnx_path.name + ".json")


def _read_sidecar(onnx_path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(_sidecar_path(onnx_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _check_sidecar(onnx_path: Path, identity: str) -> str:
    """The precision of a valid export of this model, else a ModelError."""
    if not onnx_path.is_file():
        raise ModelError(f"no ONNX model at {onnx_path}; create it with export_onnx()")
    sidecar = _read_sidecar(onnx_path)
    if sidecar is None:
        raise ModelError(f"{onnx_path} has no readable {_sidecar_path(onnx_path).name}, so its "
                         "model is unknown; export it again with export_onnx()")
    if sidecar.get("identity") != identity:
        raise ModelError(f"{onnx_path} was exported from {sidecar.get('identity')!r}, "
                         f"not from {identity!r}")
    precision = sidecar.get("precision")
    if precision not in ENCODER_NAMES:
        raise ModelError(f"{_sidecar_path(onnx_path)}: unknown precision {precision!r}")
    return str(precision)


def _is_cached(onnx_path: Path, identity: str) -> bool:
    sidecar = _read_sidecar(onnx_path)
    return onnx_path.is_file() and sidecar is not None and sidecar.get("identity") == identity


def _safe_name(identity: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", identity)


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for package in ("onnx", "onnxruntime", "torch", "transformers", "tokenizers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    handle, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(data, file, indent=2, sort_keys=True)
            file.write("\n")
        os.chmod(temp, 0o644)  # mkstemp makes it owner-only; the model beside it is not
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _build_cached(
    target: Path, identity: str, build: Callable[[Path], dict[str, Any]]
) -> Path:
    """Reuse `target` if its sidecar names `identity`; else build it in a temporary folder beside
    it and move it in. The sidecar is written last, so a killed build is simply redone."""
    if _is_cached(target, identity):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    _sidecar_path(target).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as work:
        built = Path(work) / target.name
        details = build(built)
        os.replace(built, target)
    _write_json_atomic(_sidecar_path(target), {
        "identity": identity,
        "file": target.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": _versions(),
        **details,
    })
    return target


# --- export ------------------------------------------------------------------------------------


def export_onnx(model_path: Path, cache_dir: Path, quantize: bool = False) -> Path:
    """The cached ONNX model for `model_path` (fp32, or int8 if `quantize`), exported if missing:
    cache_dir/<identity>/model.onnx or model-int8.onnx, each with a .json sidecar."""
    identity = model_identity(model_path)
    spec = _read_spec(model_path)
    folder = cache_dir / _safe_name(identity)
    fp32 = _build_cached(folder / FP32_FILE, identity, lambda out: _export_fp32(spec, out))
    if not quantize:
        return fp32
    return _build_cached(folder / INT8_FILE, identity, lambda out: _quantize(spec, fp32, out))


def _probe_pooled(onnx_path: Path, spec: _ModelSpec) -> Vectors:
    tokenizer, pad_id = _load_tokenizer(spec)
    batch = _pad(tokenizer.encode_batch(list(_PROBE_TEXTS)), pad_id)
    session = _session(onnx_path, threads=1)
    names = {node.name for node in session.get_inputs()}
    hidden = session.run([OUTPUT_NAME], batch.feed(names))[0]
    return _mean_pool(np.asarray(hidden, dtype=np.float32), batch.attention_mask)


def _min_cosine(left: Vectors, right: Vectors) -> float:
    return float((normalize(left) * normalize(right)).sum(axis=1).min())


def _export_fp32(spec: _ModelSpec, out: Path) -> dict[str, Any]:
    """torch.onnx.export (TorchScript exporter: the dynamo one needs onnxscript, which is not
    installed), validated against torch, then BERT-fused if the fusion changes nothing."""
    raw = out.with_name("raw.onnx")
    expected = _torch_export(spec, raw)
    raw_cosine = _min_cosine(_probe_pooled(raw, spec), expected)
    if raw_cosine < FP32_MIN_COSINE:
        raise ModelError(f"the ONNX export of {spec.transformer_dir} disagrees with torch "
                         f"(min cosine {raw_cosine:.6f})")
    fused = out.with_name("fused.onnx")
    fused_cosine: float | None = None
    if _fuse(raw, fused, spec):
        fused_cosine = _min_cosine(_probe_pooled(fused, spec), expected)
    use_fused = fused_cosine is not None and fused_cosine >= FP32_MIN_COSINE
    if not use_fused:
        logger.warning("BERT fusion skipped for %s (min cosine %s)", spec.transformer_dir,
                       fused_cosine)
    os.replace(fused if use_fused else raw, out)
    return {
        "precision": "fp32",
        "opset": OPSET,
        "fused": use_fused,
        "max_seq_length": spec.max_seq_length,
        "min_cosine_vs_torch": fused_cosine if use_fused else raw_cosine,
    }


def _torch_export(spec: _ModelSpec, out: Path) -> Vectors:
    """Exports the transformer to `out` and returns torch's pooled probe embeddings."""
    import torch
    from transformers import AutoModel

    class HiddenStates(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    tokenizer, pad_id = _load_tokenizer(spec)
    trace = _pad(tokenizer.encode_batch(list(_TRACE_TEXTS)), pad_id)
    probe = _pad(tokenizer.encode_batch(list(_PROBE_TEXTS)), pad_id)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*INPUT_NAMES, OUTPUT_NAME)}
    # The legacy exporter warns (deprecation, tracer notes on transformers' mask code); the
    # validation against torch below is what decides whether the graph is right.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Eager attention: ONNX Runtime's BERT fusion recognises its subgraph, not SDPA's.
        model = AutoModel.from_pretrained(
            str(spec.transformer_dir), local_files_only=True, attn_implementation="eager",
            dtype=torch.float32,
        ).eval()
        wrapper = HiddenStates(model).eval()
        with torch.inference_mode():
            expected = wrapper(*(torch.from_numpy(a) for a in _arrays(probe))).numpy()
        torch.onnx.export(
            wrapper, tuple(torch.from_numpy(a) for a in _arrays(trace)), str(out),
            input_names=list(INPUT_NAMES), output_names=[OUTPUT_NAME], dynamic_axes=axes,
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    return _mean_pool(expected, probe.attention_mask)


def _arrays(batch: _Batch) -> tuple[Int64Array, Int64Array, Int64Array]:
    return batch.input_ids, batch.attention_mask, batch.token_type_ids


def _fuse(raw: Path, out: Path, spec: _ModelSpec) -> bool:
    """onnxruntime's offline BERT fusion (Attention, EmbedLayerNorm, SkipLayerNorm, BiasGelu).
    Optional: any failure leaves the plain graph in use."""
    try:
        from onnxruntime.transformers import optimizer

        fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=spec.num_heads,
                                         hidden_size=spec.hidden_size, opt_level=0)
        fused.save_model_to_file(str(out))
    except Exception:
        logger.warning("BERT fusion failed for %s", raw, exc_info=True)
        return False
    return True


def _quantize(spec: _ModelSpec, fp32: Path, out: Path) -> dict[str, Any]:
    """Dynamic int8, per-channel weights (per-tensor loses clearly more accuracy)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        fp32, out, per_channel=True, weight_type=QuantType.QInt8,
        # Shape inference cannot type the fused contrib ops' outputs: they are float.
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    cosine = _min_cosine(_probe_pooled(out, spec), _probe_pooled(fp32, spec))
    if cosine < INT8_MIN_COSINE:
        raise ModelError(f"int8 quantisation of {fp32} strays too far (min cosine {cosine:.4f})")
    return {"precision": "int8", "source": fp32.name, "per_channel": True,
            "min_cosine_vs_fp32": cosine}
