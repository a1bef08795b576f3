"""Text -> unit vectors: the Embedder protocol, the torch and ONNX encoders, the ONNX export made
at build time, the embedding cache. Core."""
