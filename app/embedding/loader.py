"""Which encoder serves: ONNX Runtime when it can be had (fast, no torch import), else torch."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from app.config import Settings
from app.embedding.embedder import Embedder, SentenceTransformerEmbedder
from app.errors import ModelError

if TYPE_CHECKING:
    from app.embedding.onnx import OnnxEmbedder

log = logging.getLogger("playbook.engine")


def load_embedder(settings: Settings) -> Embedder:
    """ONNX Runtime when it can be had (fast, no torch import), otherwise torch."""
    model_path = settings.resolved_model_path()
    if settings.encoder in ("auto", "onnx"):
        try:
            cache = settings.onnx_cache_dir or settings.index_dir / "onnx"
            return load_onnx_embedder(model_path, cache, threads=settings.resolved_threads(),
                                      quantize=settings.quantize)
        except (ImportError, ModelError) as exc:
            if settings.encoder == "onnx":
                raise ModelError(f"the ONNX encoder is unavailable: {exc}") from exc
            log.warning("ONNX encoder unavailable (%s); using torch", exc)
    return SentenceTransformerEmbedder(model_path, threads=settings.resolved_threads())


def load_onnx_embedder(
    model_path: Path, cache_dir: Path, threads: int = 1, quantize: bool = False
) -> OnnxEmbedder:
    """Export (once, cached) and load. Every failure is a ModelError naming the cause."""
    try:
        from app.embedding.onnx import OnnxEmbedder
        from app.embedding.onnx_export import export_onnx

        return OnnxEmbedder(export_onnx(model_path, cache_dir, quantize), model_path, threads)
    except ModelError:
        raise
    except ImportError as exc:
        raise ModelError(f"exporting {model_path} to ONNX needs torch and transformers ({exc}); "
                         f"or copy an existing export into {cache_dir}") from exc
    except Exception as exc:
        raise ModelError(f"cannot prepare the ONNX encoder for {model_path} "
                         f"(cache {cache_dir}): {type(exc).__name__}: {exc}") from exc
