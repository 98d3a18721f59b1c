"""Two processes switching one fresh database to WAL at once: the second one waits instead of failing."""
import sqlite3
import threading
import time

import pytest

from data.feedback import FeedbackStore
from data.sqlite_wal import connect_wal


def hold_write_lock(path, seconds: float) -> threading.Thread:
    """Another connection takes the write lock on a fresh (rollback-journal) database, then commits."""
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE IF NOT EXISTS other (x)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO other VALUES (1)")

    def release():
        time.sleep(seconds)
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


def test_a_plain_switch_fails_at_once_under_a_write_lock(tmp_path):
    """The SQLite behaviour the helper exists for; if it ever changes, the helper can go."""
    path = tmp_path / "plain.sqlite"
    releaser = hold_write_lock(path, seconds=0.5)
    conn = sqlite3.connect(path, timeout=5.0)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        conn.execute("PRAGMA journal_mode=WAL")
    releaser.join()


def test_connect_wal_waits_for_the_lock_and_ends_in_wal_mode(tmp_path):
    path = tmp_path / "shared.sqlite"
    releaser = hold_write_lock(path, seconds=0.5)
    started = time.monotonic()
    conn = connect_wal(path, timeout=10.0)
    waited = time.monotonic() - started
    releaser.join()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert waited >= 0.4
    assert conn.execute("SELECT COUNT(*) FROM other").fetchone()[0] == 1


def test_connect_wal_gives_up_with_a_clear_error_after_its_timeout(tmp_path):
    path = tmp_path / "stuck.sqlite"
    releaser = hold_write_lock(path, seconds=2.0)
    with pytest.raises(sqlite3.OperationalError, match="could not switch to WAL mode"):
        connect_wal(path, timeout=0.3)
    releaser.join()


def test_a_feedback_store_opens_while_another_process_holds_the_lock(tmp_path):
    path = tmp_path / "feedback.sqlite"
    releaser = hold_write_lock(path, seconds=0.5)
    store = FeedbackStore(path)
    releaser.join()
    assert store.events() == []
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
