"""A data set on disk: one SQLite file holding the catalogue and its interactions.

A data set is always written whole to a temporary file and renamed into place, so a reader
never sees a half-written catalogue and a failed import leaves the previous one untouched.
"""
from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Iterable

from data.catalogue import Interaction, Item

_SCHEMA = """
CREATE TABLE items (item_id TEXT PRIMARY KEY, title TEXT NOT NULL, year INTEGER, genres TEXT NOT NULL,
                    description TEXT NOT NULL, extra TEXT NOT NULL);
CREATE TABLE interactions (user_id TEXT NOT NULL, item_id TEXT NOT NULL REFERENCES items(item_id),
                           rating REAL NOT NULL, timestamp INTEGER NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class UnknownDataset(LookupError):
    pass


def write_dataset(path: Path, items: Iterable[Item], interactions: Iterable[Interaction],
                  meta: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    tmp.unlink(missing_ok=True)
    conn = sqlite3.connect(tmp)
    try:
        conn.executescript(_SCHEMA)
        conn.executemany("INSERT INTO items VALUES (?,?,?,?,?,?)",
                         ((i.item_id, i.title, i.year, json.dumps(list(i.genres)), i.description,
                           json.dumps(i.extra)) for i in items))
        conn.executemany("INSERT INTO interactions VALUES (?,?,?,?)",
                         ((x.user_id, x.item_id, x.rating, x.timestamp) for x in interactions))
        conn.execute("CREATE INDEX interactions_user ON interactions(user_id, timestamp)")
        conn.executemany("INSERT INTO meta VALUES (?,?)", ((k, json.dumps(v)) for k, v in (meta or {}).items()))
        conn.commit()
    finally:
        conn.close()
    os.replace(tmp, path)


class Dataset:
    """Read access to one stored data set."""

    def __init__(self, path: Path):
        if not path.exists():
            raise UnknownDataset(f"no ingested data set at {path}; run `recsys ingest` first")
        self.path = path
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)

    def close(self) -> None:
        self._conn.close()

    @property
    def name(self) -> str:
        return self.path.stem

    def meta(self) -> dict:
        return {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM meta")}

    def items(self) -> list[Item]:
        rows = self._conn.execute("SELECT item_id, title, year, genres, description, extra FROM items")
        return [Item.from_row(*row) for row in rows]

    def item_count(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]

    def interaction_arrays(self):
        """All interactions as numpy columns (user_id, item_id, rating, timestamp), in time order per user."""
        import numpy as np

        rows = self._conn.execute(
            "SELECT user_id, item_id, rating, timestamp FROM interactions ORDER BY user_id, timestamp, rowid"
        ).fetchall()
        if not rows:
            return (np.array([], dtype=object),) * 2 + (np.array([], dtype=np.float32), np.array([], dtype=np.int64))
        users, items, ratings, times = zip(*rows)
        return (np.array(users, dtype=object), np.array(items, dtype=object),
                np.array(ratings, dtype=np.float32), np.array(times, dtype=np.int64))

    def user_history(self, user_id: str) -> list[Interaction]:
        rows = self._conn.execute("SELECT user_id, item_id, rating, timestamp FROM interactions "
                                  "WHERE user_id = ? ORDER BY timestamp, rowid", (user_id,))
        return [Interaction(*row) for row in rows]

    def popularity(self) -> dict[str, int]:
        return dict(self._conn.execute("SELECT item_id, COUNT(*) FROM interactions GROUP BY item_id"))

    def user_ids(self) -> list[str]:
        return [r[0] for r in self._conn.execute("SELECT DISTINCT user_id FROM interactions")]


def delete_user(path: Path, user_id: str) -> int:
    """Remove one user's interactions from a stored data set in place (privacy erasure); returns the count.
    The deletion is one transaction, and VACUUM rewrites the file so the rows are not left in free pages."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA secure_delete=ON")
        with conn:
            removed = conn.execute("DELETE FROM interactions WHERE user_id = ?", (user_id,)).rowcount
        conn.execute("VACUUM")
    finally:
        conn.close()
    return removed
