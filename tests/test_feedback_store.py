"""The durable feedback store: acknowledged means committed, idempotent on event_id, append-only."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sqlite3

import pytest
from hypothesis import given, settings, strategies as st

from data.feedback import DISLIKE, LIKE, FeedbackEvent, FeedbackStore, InvalidFeedback


def event(**overrides) -> FeedbackEvent:
    base = dict(dataset="ml-100k", user_id="100k_1", session_id="s1", item_id="100k_50", value=LIKE,
                context={"query": "space opera", "shown": ["100k_50", "100k_181"], "position": 1})
    base.update(overrides)
    return FeedbackEvent(**base)


def test_an_event_round_trips_with_its_context(tmp_path):
    store = FeedbackStore(tmp_path / "events.sqlite")
    stored = event(rating=4.5, comment="great", adapter_version="v0003")
    assert store.record(stored) is True
    [back] = store.events("ml-100k", "100k_1")
    assert back == stored
    assert back.context["shown"] == ["100k_50", "100k_181"]


def test_a_double_click_counts_once(tmp_path):
    store = FeedbackStore(tmp_path / "events.sqlite")
    first = event()
    assert store.record(first) is True
    assert store.record(first) is False
    assert store.record(event(event_id=first.event_id, value=DISLIKE)) is False  # same id: the first one stands
    assert store.count() == 1 and store.events()[0].value == LIKE


def test_events_are_append_only(tmp_path):
    path = tmp_path / "events.sqlite"
    FeedbackStore(path).record(event())
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE events SET value = 'dislike'")


@pytest.mark.parametrize("bad", [dict(value="meh"), dict(user_id=""), dict(item_id="   "), dict(rating=7.0),
                                 dict(comment="x" * 5000), dict(session_id="s" * 500)])
def test_bad_events_are_refused_and_nothing_is_stored(tmp_path, bad):
    store = FeedbackStore(tmp_path / "events.sqlite")
    with pytest.raises(InvalidFeedback):
        store.record(event(**bad))
    assert store.count() == 0


def test_export_writes_every_event_as_one_json_line(tmp_path):
    store = FeedbackStore(tmp_path / "events.sqlite")
    for n in range(5):
        store.record(event(item_id=f"100k_{n}", value=LIKE if n % 2 else DISLIKE))
    assert store.export_jsonl(tmp_path / "out.jsonl") == 5
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["item_id"] for r in rows] == [f"100k_{n}" for n in range(5)]
    assert {r["value"] for r in rows} == {LIKE, DISLIKE}


def _write_forever(path, ready):
    store = FeedbackStore(path)
    n = 0
    while True:
        store.record(event(event_id=f"e{n}", item_id=f"100k_{n % 50}"))
        n += 1
        if n == 20:
            ready.set()


def test_kill_9_mid_stream_loses_no_acknowledged_event_and_leaves_the_store_usable(tmp_path):
    path = tmp_path / "events.sqlite"
    FeedbackStore(path)
    ready = multiprocessing.Event()
    writer = multiprocessing.get_context("fork").Process(target=_write_forever, args=(path, ready))
    writer.start()
    assert ready.wait(30)
    os.kill(writer.pid, signal.SIGKILL)
    writer.join()
    store = FeedbackStore(path)
    ids = [e.event_id for e in store.events()]
    assert len(ids) >= 20 and ids == [f"e{n}" for n in range(len(ids))]  # a prefix: nothing lost, no gaps
    assert store.record(event(event_id="after-crash")) is True


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([LIKE, DISLIKE])), max_size=30))
def test_count_equals_distinct_event_ids(tmp_path_factory, clicks):
    store = FeedbackStore(tmp_path_factory.mktemp("fb") / "events.sqlite")
    for event_id, value in clicks:
        store.record(event(event_id=event_id, value=value))
    assert store.count() == len({e for e, _ in clicks})


def test_message_feedback_is_stored_apart_idempotent_and_forgotten(tmp_path):
    from data.feedback import MessageFeedback

    store = FeedbackStore(tmp_path / "events.sqlite")
    thumb = MessageFeedback("ml-100k", "100k_1", "s1", 1, "Here are 5 picks.", DISLIKE, {"items": ["100k_50"]})
    assert store.record_message_feedback(thumb) is True
    assert store.record_message_feedback(thumb) is False  # the same click twice counts once
    assert store.message_events("ml-100k", "100k_1") == [thumb]
    assert store.message_count(value=DISLIKE) == 1 and store.count() == 0  # never an item event
    with pytest.raises(InvalidFeedback):
        store.record_message_feedback(MessageFeedback("ml-100k", "100k_1", "s1", -1, "x", LIKE))
    store.forget_user("ml-100k", "100k_1")
    assert store.message_events() == []
