"""Build time: export a local sentence-transformers folder to a cached ONNX graph (fp32, fused
when fusion is exact, or int8), validated against torch on probe texts. Needs torch and
transformers; serving (app.embedding.onnx) needs neither.

Each export sits in cache_dir/<identity>/ with a .json sidecar written last, so a killed export is
simply redone. cache_dir/identities.json remembers each model's identity for its files' stamps, so
a restart does not hash the weights again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from app.embedding.embedder import Vectors, model_identity, normalize
from app.embedding.onnx import (
    FP32_FILE,
    INPUT_NAMES,
    INT8_FILE,
    OUTPUT_NAME,
    Batch,
    Int64Array,
    ModelSpec,
    load_tokenizer,
    mean_pool,
    new_session,
    pad,
    read_sidecar,
    read_spec,
    sidecar_path,
)
from app.errors import ModelError
from app.files import write_atomic
from app.versions import library_versions

logger = logging.getLogger(__name__)

IDENTITIES_FILE = "identities.json"
EXPORT_PACKAGES = ("onnx", "onnxruntime", "torch", "transformers", "tokenizers")
OPSET = 17
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


def _is_cached(onnx_path: Path, identity: str) -> bool:
    sidecar = read_sidecar(onnx_path)
    return onnx_path.is_file() and sidecar is not None and sidecar.get("identity") == identity


def _safe_name(identity: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", identity)


def _build_cached(
    target: Path, identity: str, build: Callable[[Path], dict[str, Any]]
) -> Path:
    """Reuse `target` if its sidecar names `identity`; else build it in a temporary folder beside
    it and move it in. The sidecar is written last, so a killed build is simply redone."""
    if _is_cached(target, identity):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    sidecar_path(target).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as work:
        built = Path(work) / target.name
        details = build(built)
        os.replace(built, target)
    write_atomic(sidecar_path(target), json.dumps({
        "identity": identity,
        "file": target.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": library_versions(EXPORT_PACKAGES),
        **details,
    }, indent=2, sort_keys=True) + "\n")
    return target


# --- export ------------------------------------------------------------------------------------


def export_onnx(model_path: Path, cache_dir: Path, quantize: bool = False) -> Path:
    """The cached ONNX model for `model_path` (fp32, or int8 if `quantize`), exported if missing:
    cache_dir/<identity>/model.onnx or model-int8.onnx, each with a .json sidecar."""
    identity = model_identity(model_path, remembered=cache_dir / IDENTITIES_FILE)
    spec = read_spec(model_path)
    folder = cache_dir / _safe_name(identity)
    fp32 = _build_cached(folder / FP32_FILE, identity, lambda out: _export_fp32(spec, out))
    if not quantize:
        return fp32
    return _build_cached(folder / INT8_FILE, identity, lambda out: _quantize(spec, fp32, out))


def _probe_pooled(onnx_path: Path, spec: ModelSpec) -> Vectors:
    tokenizer, pad_id = load_tokenizer(spec)
    batch = pad(tokenizer.encode_batch(list(_PROBE_TEXTS)), pad_id)
    session = new_session(onnx_path, threads=1)
    names = {node.name for node in session.get_inputs()}
    hidden = session.run([OUTPUT_NAME], batch.feed(names))[0]
    return mean_pool(np.asarray(hidden, dtype=np.float32), batch.attention_mask)


def _min_cosine(left: Vectors, right: Vectors) -> float:
    return float((normalize(left) * normalize(right)).sum(axis=1).min())


def _export_fp32(spec: ModelSpec, out: Path) -> dict[str, Any]:
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


def _torch_export(spec: ModelSpec, out: Path) -> Vectors:
    """Exports the transformer to `out` and returns torch's pooled probe embeddings."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # one-off export

    class HiddenStates(torch.nn.Module):
        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    tokenizer, pad_id = load_tokenizer(spec)
    trace = pad(tokenizer.encode_batch(list(_TRACE_TEXTS)), pad_id)
    probe = pad(tokenizer.encode_batch(list(_PROBE_TEXTS)), pad_id)
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
    return mean_pool(expected, probe.attention_mask)


def _arrays(batch: Batch) -> tuple[Int64Array, Int64Array, Int64Array]:
    return batch.input_ids, batch.attention_mask, batch.token_type_ids


def _fuse(raw: Path, out: Path, spec: ModelSpec) -> bool:
    """onnxruntime's offline BERT fusion (Attention, EmbedLayerNorm, SkipLayerNorm, BiasGelu).
    Optional: any failure leaves the plain graph in use."""
    try:
        from onnxruntime.transformers import optimizer

        logging.getLogger("onnx_model").setLevel(logging.WARNING)  # a line per fused node kind
        fused = optimizer.optimize_model(str(raw), model_type="bert", num_heads=spec.num_heads,
                                         hidden_size=spec.hidden_size, opt_level=0)
        fused.save_model_to_file(str(out))
    except Exception:
        logger.warning("BERT fusion failed for %s", raw, exc_info=True)
        return False
    return True


def _quantize(spec: ModelSpec, fp32: Path, out: Path) -> dict[str, Any]:
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
