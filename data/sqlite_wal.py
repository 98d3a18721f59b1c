"""Open a SQLite file in WAL mode, safely when several processes open it at the same moment."""
from __future__ import annotations

import sqlite3
import time
from pathlib import Path

_RETRY_PAUSE_SECONDS = 0.05


def connect_wal(path: Path, timeout: float = 30.0, **connect_kwargs) -> sqlite3.Connection:
    """A connection whose database is in WAL mode.

    SQLite answers "database is locked" at once, without waiting out the busy timeout, when the
    journal-mode switch meets another connection's write lock (two servers starting on one fresh
    home do exactly that), so the switch is retried here until `timeout` has passed.
    """
    conn = sqlite3.connect(path, timeout=timeout, **connect_kwargs)
    deadline = time.monotonic() + timeout
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                conn.close()
                raise
            if time.monotonic() >= deadline:
                conn.close()
                raise sqlite3.OperationalError(
                    f"{path}: could not switch to WAL mode, another process held the database locked "
                    f"for {timeout:.0f} s") from error
            time.sleep(_RETRY_PAUSE_SECONDS)
            continue
        if str(mode).lower() != "wal":
            conn.close()
            raise sqlite3.OperationalError(f"{path}: SQLite refused WAL mode (journal mode stays {mode!r})")
        return conn
