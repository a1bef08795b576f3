"""The self-describing vector index: its on-disk format with verified loading, and the build
that writes it. Core."""
