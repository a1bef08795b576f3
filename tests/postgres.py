"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` package (`make postgres`)
started on a free loopback port in a temporary folder, one fresh database per test. Set
PLAYBOOK_TEST_DATABASE_URL to use a server of your own instead."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

ADMIN_URL_ENV = "PLAYBOOK_TEST_DATABASE_URL"


def server_binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _as_postgres(command: list[str]) -> list[str]:
    # initdb refuses to run as root; the package creates the `postgres` user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server() -> Iterator[str]:
    """Start a server in a temporary folder; yields the URL of its `postgres` database."""
    if url := os.environ.get(ADMIN_URL_ENV):
        yield url
        return
    binaries = server_binaries()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed: run `make postgres` (Debian's "
                           f"postgresql package) or set {ADMIN_URL_ENV}")
    # Not under pytest's temporary folders: they are private to the user running the tests.
    folder = Path(tempfile.mkdtemp(prefix="playbook-postgres-"))
    data = folder / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run(_as_postgres([str(binaries / "initdb"), "-D", str(data), "-A", "trust",
                                 "-U", "postgres", "--no-sync", "-E", "UTF8"]),
                   check=True, capture_output=True)
    port = _free_port()
    options = (f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
    subprocess.run(_as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-o", options,
                                 "-l", str(data / "server.log"), "-w", "start"]),
                   check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(binaries / "pg_ctl"), "-D", str(data), "-m",
                                     "immediate", "stop"]), capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def fresh_database(admin_url: str) -> str:
    """A new empty database on the server; its URL."""
    name = f"test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return str(sa.engine.make_url(admin_url).set(database=name).render_as_string(
        hide_password=False))
