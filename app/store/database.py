"""The store's database: embedded SQLite by default, or a PostgreSQL server that several replicas
share (PLAYBOOK_DATABASE_URL). SQLAlchemy Core connections, the same SQL on both, and Alembic
migrations run when a store first opens (once, even with several processes starting at once).
"""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

# The newest migration under app/store/migrations/versions: a store already there skips
# loading Alembic at all (tests check the two agree).
SCHEMA_REVISION = "0002"
MIGRATIONS = Path(__file__).parent / "migrations"
_ADVISORY_LOCK = 0x706C6179  # PostgreSQL: one migration at a time across replicas


def sqlite_url(path: Path) -> str:
    return f"sqlite+pysqlite:///{path}"


def create_engine(url: str, busy_timeout: float = 5.0) -> Engine:
    """An engine whose connections suit the store: on SQLite, WAL, foreign keys, overwritten
    deletes (purged customer text), and `BEGIN IMMEDIATE` for a write transaction."""
    if not url.startswith("sqlite"):
        with _migrating:  # one pool per server and process, however many stores open it
            if url not in _servers:
                _servers[url] = sa.create_engine(url, pool_pre_ping=True, pool_size=5,
                                                 max_overflow=10)
            return _servers[url]
    # A connection per operation (no pool): one opened before the file was deleted or replaced
    # would go on writing into the unlinked file.
    engine = sa.create_engine(url, connect_args={"timeout": busy_timeout},
                              poolclass=sa.pool.NullPool)

    @event.listens_for(engine, "connect")
    def _sqlite_settings(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # transactions are begun below, explicitly
        for pragma in ("journal_mode = WAL", "foreign_keys = ON", "secure_delete = ON",
                       "synchronous = NORMAL"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    @event.listens_for(engine, "begin")
    def _sqlite_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get("playbook_write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


_servers: dict[str, Engine] = {}
_migrating = threading.Lock()


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def transaction(engine: Engine, write: bool) -> Iterator[Connection]:
    """One transaction; a write one holds SQLite's write lock from its start, so a read
    followed by a write inside it sees no other writer in between."""
    with engine.connect() as connection:
        connection = connection.execution_options(playbook_write=write)
        with connection.begin():
            yield connection


_migrated: set[str] = set()


def migrate(engine: Engine) -> None:
    """Bring the database to SCHEMA_REVISION (a no-op read when it is there already)."""
    key = str(engine.url)
    if key in _migrated:
        return
    with _migrating:
        if _current_revision(engine) != SCHEMA_REVISION:
            with _exclusive(engine) as connection:
                _upgrade(connection)
        _migrated.add(key)


def forget_migration(engine: Engine) -> None:
    """After the database file was deleted or replaced: check again on the next open."""
    _migrated.discard(str(engine.url))


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        if not sa.inspect(connection).has_table("alembic_version"):
            return None
        return connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


@contextmanager
def _exclusive(engine: Engine) -> Iterator[Connection]:
    if is_sqlite(engine):
        database = engine.url.database or ""
        Path(database).parent.mkdir(parents=True, exist_ok=True)
        with open(f"{database}.migrate-lock", "a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            with engine.connect() as connection:
                yield connection
        return
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": _ADVISORY_LOCK})
        try:
            connection.commit()
            yield connection
        finally:
            connection.execute(sa.text("SELECT pg_advisory_unlock(:key)"),
                               {"key": _ADVISORY_LOCK})
            connection.commit()


def _upgrade(connection: Connection) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    connection.commit()
