"""The serving reranker inside turns: used when an adapter serves, hot-swapped on promotion without
dropping a request, and a refresh scheduler that triggers on new events."""
from __future__ import annotations

import threading
import time

import pytest

from assistant.assistant import Assistant
from assistant.lm_serving import ServingReranker
from assistant.refresh_scheduler import RefreshScheduler
from data.feedback import LIKE, FeedbackEvent, FeedbackStore
from finetune.adapters import AdapterRegistry
from tests.conftest import needs_model


def _tiny_adapter(registry, smollm2_dir, out, seed):
    from finetune.training import RerankExample, TrainConfig, train

    examples = [RerankExample("1", ["Fargo (1996) [Crime, Drama, Thriller]"],
                              ["Heat (1995) [Action]", "Babe (1995) [Children's, Comedy]"], 0, [1.0, 0.0])] * 2
    return train(smollm2_dir, examples, TrainConfig(seed=seed), out_dir=out, max_examples=2, registry=registry,
                 progress=False)["version"]


@needs_model
def test_promotion_is_hot_reloaded_while_turns_keep_being_answered(recommender_100k, smollm2_dir, tmp_path):
    registry = AdapterRegistry(tmp_path / "adapters")
    first = _tiny_adapter(registry, smollm2_dir, tmp_path / "run1", 0)
    registry.set_serving(first)
    lm = ServingReranker(registry, background=False, log=lambda *_: None)
    assistant = Assistant(recommender_100k, FeedbackStore(tmp_path / "events.sqlite"))
    assistant.lm = lm
    session = assistant.new_session("10")
    reply = assistant.reply(session, "a crime thriller", k=5)
    assert lm.version() == first and len(reply.items) == 5
    assert all("Crime" in r.item.genres or "Thriller" in r.item.genres for r in reply.items)
    # the user's next turn reuses their prefix's KV cache (serving only: that scorer is never trained)
    kept = dict(lm.current().scorer._prefix_cache)
    assistant.reply(session, "something else", k=5)
    assert kept and all(lm.current().scorer._prefix_cache[key] is cache for key, cache in kept.items())

    second = _tiny_adapter(registry, smollm2_dir, tmp_path / "run2", 1)
    lm.background = True
    registry.set_serving(second)
    errors, answered = [], []

    def chat():
        s = assistant.new_session("11")
        for text in ("a western", "something else", "no romance", "a comedy", "something else"):
            try:
                answered.append(len(assistant.reply(s, text, k=5).items))
            except Exception as err:  # pragma: no cover - the assertion below reports it
                errors.append(err)

    worker = threading.Thread(target=chat)
    worker.start()
    deadline = time.time() + 120
    while lm.version() != second and time.time() < deadline:
        assistant.reply(assistant.new_session("12"), "a drama", k=3)
        time.sleep(0.2)
    worker.join()
    assert lm.version() == second
    assert not errors and len(answered) == 5 and all(n > 0 for n in answered)
    assert assistant.feedback(session, reply.items[0].item.item_id, liked=True).stored
    assert assistant.store.events()[-1].adapter_version == second


@needs_model
def test_a_version_that_fails_to_load_keeps_the_old_one(smollm2_dir, tmp_path):
    registry = AdapterRegistry(tmp_path / "adapters")
    first = _tiny_adapter(registry, smollm2_dir, tmp_path / "run1", 0)
    registry.set_serving(first)
    lm = ServingReranker(registry, background=False, log=lambda *_: None)
    assert lm.current().version == first
    second = _tiny_adapter(registry, smollm2_dir, tmp_path / "run2", 1)
    registry.set_serving(second)
    (registry.path(second) / "head.safetensors").write_bytes(b"garbage")  # corrupted after promotion
    assert lm.current().version == first and second in lm.failed
    assert lm.scores(["Fargo (1996)"], ["Heat (1995)", "Babe (1995)"], [1.0, 0.0]) is not None



@needs_model
def test_a_pinned_version_serves_whatever_the_pointer_says(smollm2_dir, tmp_path):
    """Evaluating a rejected version: pinned, it serves; the pointer and other rerankers stay put."""
    registry = AdapterRegistry(tmp_path / "adapters")
    first = _tiny_adapter(registry, smollm2_dir, tmp_path / "run1", 0)
    registry.set_serving(first)
    second = _tiny_adapter(registry, smollm2_dir, tmp_path / "run2", 1)
    pinned = ServingReranker(registry, background=False, log=lambda *_: None, pinned=second)
    served = ServingReranker(registry, background=False, log=lambda *_: None)
    assert pinned.current().version == second and served.current().version == first
    assert registry.serving() == first

def test_scheduler_triggers_on_event_count(tmp_path):
    store = FeedbackStore(tmp_path / "events.sqlite")
    scheduler = RefreshScheduler(store, "ml-100k", every_events=3, every_minutes=0, poll_seconds=3600)
    assert not scheduler.due()
    for n in range(3):
        assert not scheduler.due()
        store.record(FeedbackEvent("ml-100k", "1", "s", f"{n + 1}", LIKE))
    assert scheduler.due()
    assert scheduler.command()[-6:] == ["--dataset", "ml-100k", "--model", "smollm2", "--threads", "1"]
    with pytest.raises(ValueError):
        RefreshScheduler(store, "ml-100k", every_events=0, every_minutes=0)


def test_scheduler_stops_and_joins(tmp_path):
    """The stop flag must not shadow Thread._stop (join() and fork() call it)."""
    scheduler = RefreshScheduler(FeedbackStore(tmp_path / "events.sqlite"), "ml-100k", every_events=1,
                                 every_minutes=0, poll_seconds=0.05)
    scheduler.start()
    scheduler.stop()
    scheduler.join(timeout=5)
    assert not scheduler.is_alive()
