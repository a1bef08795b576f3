"""ASGI middleware, one per module."""
