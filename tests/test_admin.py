"""The admin tab's data: adapter versions with metrics, feedback counts, the last refresh."""
from __future__ import annotations

import json

from data.feedback import DISLIKE, LIKE, FeedbackEvent, FeedbackStore, MessageFeedback
from data.home import RuntimeHome
from ui.admin import NO_ADAPTER, admin_snapshot


def test_no_adapter_and_no_refresh_say_so(tmp_path):
    home = RuntimeHome(tmp_path).ensure()
    snap = admin_snapshot(home, FeedbackStore(home.feedback_db()), "ml-100k")
    assert not snap.has_adapters and snap.points == []
    assert NO_ADAPTER in snap.summary and "**Last refresh:** never" in snap.summary
    assert "0 👍 likes, 0 👎 dislikes" in snap.summary


def test_versions_metrics_counts_and_refresh_time(tmp_path):
    home = RuntimeHome(tmp_path).ensure()
    for n, (ndcg, loss) in enumerate([(0.10, 2.9), (0.12, 2.5)], start=1):
        folder = home.adapters / f"v{n:04d}"
        folder.mkdir()
        (folder / "metrics.json").write_text(json.dumps({"loss_end": loss, "examples_seen": 100 * n}))
        (folder / "fusion.json").write_text(json.dumps({"fused_ndcg@10": ndcg, "weight": 0.3}))
        (folder / "config.json").write_text(json.dumps({"model_name": "smollm2"}))
    (home.adapters / "serving.json").write_text(json.dumps({"version": "v0002"}))
    store = FeedbackStore(home.feedback_db())
    for item, value in (("1", LIKE), ("2", LIKE), ("3", DISLIKE)):
        store.record(FeedbackEvent("ml-100k", "u1", "s", item, value))
    store.record(FeedbackEvent("ml-1m", "u1", "s", "9", LIKE))  # another data set: not counted
    store.record_message_feedback(MessageFeedback("ml-100k", "u1", "s", 1, "picks", DISLIKE))

    snap = admin_snapshot(home, store, "ml-100k")
    assert [row["version"] for row in snap.versions] == ["v0001", "v0002"]
    assert [row["serving"] for row in snap.versions] == [False, True]
    assert snap.versions[1]["fused_ndcg@10"] == 0.12 and snap.versions[1]["model"] == "smollm2"
    assert {(p["version"], p["metric"], p["value"]) for p in snap.points} == {
        ("v0001", "fused_ndcg@10", 0.10), ("v0002", "fused_ndcg@10", 0.12)}  # quality metrics are plotted
    assert "2 👍 likes, 1 👎 dislikes" in snap.summary and "0 👍, 1 👎" in snap.summary
    assert "adapter v0002 created" in snap.summary and "**Serving adapter:** v0002" in snap.summary

    from assistant.refresh import state_path

    state_path(home).write_text(json.dumps({"ml-100k": {"finished_at": 1709294400.0, "version": "v0002",
                                                        "decision": "promoted"}}))
    summary = admin_snapshot(home, store, "ml-100k").summary
    assert "**Last refresh:** 2024-03-01 12:00:00 UTC (refresh: v0002 promoted)" in summary
    assert "**Last refresh:** never" in admin_snapshot(RuntimeHome(tmp_path / "other").ensure(), store, "ml-1m").summary
