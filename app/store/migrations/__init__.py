"""Alembic migrations of the store, for SQLite and PostgreSQL alike (run by app.store.database
when a store opens; `alembic` itself is not needed to use them)."""
