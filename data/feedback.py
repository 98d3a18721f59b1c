"""The durable feedback store: every thumbs up/down, append-only, in SQLite (WAL mode).

`record` returns only after the event's transaction has committed, so an acknowledged event
survives a crash of the process. Events are idempotent on `event_id`: a double click, or a
client retrying after a timeout, stores the event once. Nothing here updates or deletes an
event except `forget_user`, the privacy erasure.
"""
from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from data.sqlite_wal import connect_wal

LIKE = "like"
DISLIKE = "dislike"
VALUES = (LIKE, DISLIKE)
MAX_COMMENT_CHARS = 2000
MAX_ID_CHARS = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    dataset TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    item_id TEXT NOT NULL,
    value TEXT NOT NULL CHECK (value IN ('like', 'dislike')),
    rating REAL,
    comment TEXT,
    context TEXT NOT NULL,
    adapter_version TEXT,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_user ON events(dataset, user_id, seq);
CREATE TRIGGER IF NOT EXISTS events_append_only BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'feedback events are append-only'); END;
CREATE TABLE IF NOT EXISTS message_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    dataset TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    message_index INTEGER NOT NULL,
    message TEXT NOT NULL,
    value TEXT NOT NULL CHECK (value IN ('like', 'dislike')),
    context TEXT NOT NULL,
    timestamp REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS message_events_user ON message_events(dataset, user_id, seq);
CREATE TRIGGER IF NOT EXISTS message_events_append_only BEFORE UPDATE ON message_events
BEGIN SELECT RAISE(ABORT, 'feedback events are append-only'); END;
"""
MAX_MESSAGE_CHARS = 4000


class InvalidFeedback(ValueError):
    pass


@dataclass(frozen=True)
class FeedbackEvent:
    dataset: str
    user_id: str
    session_id: str
    item_id: str
    value: str  # LIKE or DISLIKE
    context: dict = field(default_factory=dict)  # query, shown list, position
    rating: float | None = None
    comment: str | None = None
    adapter_version: str | None = None
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: float = field(default_factory=time.time)

    @property
    def liked(self) -> bool:
        return self.value == LIKE

    def validate(self) -> None:
        for name in ("dataset", "user_id", "session_id", "item_id", "event_id"):
            text = getattr(self, name)
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_ID_CHARS:
                raise InvalidFeedback(f"{name} must be a non-empty string of at most {MAX_ID_CHARS} characters")
        if self.value not in VALUES:
            raise InvalidFeedback(f"value must be one of {VALUES}, got {self.value!r}")
        if self.rating is not None and not (isinstance(self.rating, (int, float)) and 0.0 <= self.rating <= 5.0):
            raise InvalidFeedback(f"rating must be a number from 0 to 5, got {self.rating!r}")
        if self.comment is not None and len(self.comment) > MAX_COMMENT_CHARS:
            raise InvalidFeedback(f"comment is longer than {MAX_COMMENT_CHARS} characters")

    def to_json(self) -> dict:
        return {"event_id": self.event_id, "dataset": self.dataset, "user_id": self.user_id,
                "session_id": self.session_id, "item_id": self.item_id, "value": self.value,
                "rating": self.rating, "comment": self.comment, "context": self.context,
                "adapter_version": self.adapter_version, "timestamp": self.timestamp}


@dataclass(frozen=True)
class MessageFeedback:
    """A thumbs up/down on a whole assistant message (the reply as a whole, not one item in it)."""
    dataset: str
    user_id: str
    session_id: str
    message_index: int  # position of the message in that session's chat
    message: str  # the message text as shown (truncated to MAX_MESSAGE_CHARS)
    value: str  # LIKE or DISLIKE
    context: dict = field(default_factory=dict)  # query, item ids the message listed
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: float = field(default_factory=time.time)

    def validate(self) -> None:
        for name in ("dataset", "user_id", "session_id", "event_id"):
            text = getattr(self, name)
            if not isinstance(text, str) or not text.strip() or len(text) > MAX_ID_CHARS:
                raise InvalidFeedback(f"{name} must be a non-empty string of at most {MAX_ID_CHARS} characters")
        if self.value not in VALUES:
            raise InvalidFeedback(f"value must be one of {VALUES}, got {self.value!r}")
        if not isinstance(self.message_index, int) or self.message_index < 0:
            raise InvalidFeedback(f"message_index must be a whole number >= 0, got {self.message_index!r}")


_MESSAGE_COLUMNS = "event_id, dataset, user_id, session_id, message_index, message, value, context, timestamp"


def _row_to_event(row) -> FeedbackEvent:
    (event_id, dataset, user_id, session_id, item_id, value, rating, comment, context, adapter_version,
     timestamp) = row
    return FeedbackEvent(dataset, user_id, session_id, item_id, value, json.loads(context), rating, comment,
                         adapter_version, event_id, timestamp)


_COLUMNS = ("event_id, dataset, user_id, session_id, item_id, value, rating, comment, context, "
            "adapter_version, timestamp")


def _where(**equals) -> tuple[str, list]:
    """' AND '-joined equality clauses for the given non-None column values ('1' when none)."""
    clauses, args = ["1"], []
    for column, value in equals.items():
        if value is not None:
            clauses.append(f"{column} = ?")
            args.append(value)
    return " AND ".join(clauses), args


class FeedbackStore:
    """Thread-safe: one connection per thread, SQLite serialises the writers (WAL, busy timeout)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connect() as conn:
            conn.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_wal(self.path, timeout=30.0, isolation_level=None)
            conn.execute("PRAGMA synchronous=FULL")  # an acknowledged event survives power loss too
            self._local.conn = conn
        return conn

    def record(self, event: FeedbackEvent) -> bool:
        """Store one event durably. True if it is new, False if this event_id was stored before."""
        event.validate()
        conn = self._connect()
        cursor = conn.execute(
            f"INSERT OR IGNORE INTO events ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (event.event_id, event.dataset, event.user_id, event.session_id, event.item_id, event.value,
             event.rating, event.comment, json.dumps(event.context, ensure_ascii=False, default=str),
             event.adapter_version, event.timestamp))
        return cursor.rowcount == 1

    def events(self, dataset: str | None = None, user_id: str | None = None,
               after_seq: int = 0) -> list[FeedbackEvent]:
        where, args = _where(dataset=dataset, user_id=user_id)
        rows = self._connect().execute(f"SELECT {_COLUMNS} FROM events WHERE {where} AND seq > ? ORDER BY seq",
                                       args + [after_seq])
        return [_row_to_event(row) for row in rows]

    def record_message_feedback(self, event: MessageFeedback) -> bool:
        """Store one message-level thumb durably (a separate table: it names no item, so it never
        enters a user's history or exclusions). True if new, False if this event_id was stored before."""
        event.validate()
        cursor = self._connect().execute(
            f"INSERT OR IGNORE INTO message_events ({_MESSAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
            (event.event_id, event.dataset, event.user_id, event.session_id, event.message_index,
             event.message[:MAX_MESSAGE_CHARS], event.value,
             json.dumps(event.context, ensure_ascii=False, default=str), event.timestamp))
        return cursor.rowcount == 1

    def message_events(self, dataset: str | None = None, user_id: str | None = None) -> list[MessageFeedback]:
        where, args = _where(dataset=dataset, user_id=user_id)
        rows = self._connect().execute(f"SELECT {_MESSAGE_COLUMNS} FROM message_events WHERE {where} ORDER BY seq",
                                       args)
        return [MessageFeedback(d, u, s, i, m, v, json.loads(c), e, t) for e, d, u, s, i, m, v, c, t in rows]

    def message_count(self, dataset: str | None = None, value: str | None = None) -> int:
        where, args = _where(dataset=dataset, value=value)
        return self._connect().execute(f"SELECT COUNT(*) FROM message_events WHERE {where}", args).fetchone()[0]

    def count(self, dataset: str | None = None, value: str | None = None) -> int:
        where, args = _where(dataset=dataset, value=value)
        return self._connect().execute(f"SELECT COUNT(*) FROM events WHERE {where}", args).fetchone()[0]

    def last_seq(self) -> int:
        return self._connect().execute("SELECT COALESCE(MAX(seq), 0) FROM events").fetchone()[0]

    def user_ids(self, dataset: str) -> list[str]:
        return [r[0] for r in self._connect().execute(
            "SELECT DISTINCT user_id FROM events WHERE dataset = ? ORDER BY user_id", (dataset,))]

    def export_jsonl(self, path: Path) -> int:
        """Write every event, one JSON object per line, atomically. Returns the number written."""
        path = Path(path)
        tmp = path.with_name(path.name + ".partial")
        written = 0
        with tmp.open("w", encoding="utf-8") as out:
            for row in self._connect().execute(f"SELECT {_COLUMNS} FROM events ORDER BY seq"):
                out.write(json.dumps(_row_to_event(row).to_json(), ensure_ascii=False) + "\n")
                written += 1
        tmp.replace(path)
        return written

    def forget_user(self, dataset: str, user_id: str) -> int:
        """Erase every event of one user (privacy). Returns the number removed."""
        conn = self._connect()
        conn.execute("PRAGMA secure_delete=ON")  # overwrite the freed pages: nothing readable is left behind
        removed = conn.execute("DELETE FROM events WHERE dataset = ? AND user_id = ?", (dataset, user_id)).rowcount
        conn.execute("DELETE FROM message_events WHERE dataset = ? AND user_id = ?", (dataset, user_id))
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return removed

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
