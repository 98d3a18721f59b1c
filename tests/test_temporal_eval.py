"""Metrics of the temporal protocol against hand-computed values."""
from __future__ import annotations

import math

import pytest

from hypothesis import given, strategies as st

from assistant.temporal_eval import _forgetting_interval, _metrics, _pre_t0_sample, _relative_drop, feedback_stream
from data.catalogue import Interaction


@pytest.mark.parametrize("ranked,targets,ndcg,recall", [
    (["a", "b", "c"], {"b"}, 1 / math.log2(3), 1.0),
    (["a", "b", "c"], {"a", "z"}, 1 / (1 + 1 / math.log2(3)), 0.5),
    (["a", "b"], {"z"}, 0.0, 0.0),
    ([str(n) for n in range(20)], {str(n) for n in range(10, 20)}, 0.0, 0.0),  # hits below the top 10 count 0
    ([str(n) for n in range(10)], {str(n) for n in range(15)}, 1.0, 1.0),  # recall over min(10, targets)
])
def test_ndcg_and_recall_at_10(ranked, targets, ndcg, recall):
    got_ndcg, got_recall = _metrics(ranked, targets)
    assert got_ndcg == pytest.approx(ndcg) and got_recall == pytest.approx(recall)



class _Histories:
    def __init__(self, histories):
        self.histories = histories

    def user_history(self, user):
        return self.histories[user]


def _history(user: str, ratings: list[float]) -> list[Interaction]:
    return [Interaction(user, f"i{n}", r, n) for n, r in enumerate(ratings)]


@given(ratings=st.dictionaries(st.sampled_from([f"u{n}" for n in range(40)]),
                               st.lists(st.sampled_from([1.0, 3.0, 4.0, 5.0]), min_size=0, max_size=14), min_size=1),
       n_chosen=st.integers(0, 10), n_skip=st.integers(0, 10), size=st.integers(0, 40), seed=st.integers(0, 3))
def test_the_forgetting_sample_takes_test_users_first_and_never_a_replay_user(ratings, n_chosen, n_skip,
                                                                                   size, seed):
    histories = {u: _history(u, r) for u, r in ratings.items()}
    users = sorted(histories)
    chosen, skip = users[:n_chosen], set(users[n_chosen // 2:n_chosen // 2 + n_skip])  # test users among them
    count_before = {u: len(h) for u, h in histories.items()}
    sample = _pre_t0_sample(chosen, {u: histories[u] for u in chosen}, count_before, _Histories(histories),
                            skip, size, seed)
    size = size or len(users)  # 0: every eligible user
    assert len(sample) <= size and not (set(sample) & skip)
    eligible_tested = [u for u in chosen if u not in skip and sum(x.rating >= 4 for x in histories[u]) >= 6]
    assert list(sample)[:len(eligible_tested)] == eligible_tested[:size]  # the test users come first
    for user, (earlier, held_out, after) in sample.items():
        likes = [x for x in histories[user] if x.rating >= 4]
        assert held_out == likes[-1].item_id and len(earlier) >= 5 and count_before[user] >= 5
        assert all(x.rating < 4 for x in histories[user][len(earlier) + 1:])  # held out: the last like
    others = [u for u in users if u not in chosen and u not in skip and count_before[u] >= 5
              and sum(x.rating >= 4 for x in histories[u]) >= 6]
    assert len(sample) == min(size, len(eligible_tested) + len(others))  # filled up to its size when it can be


@given(events=st.lists(st.tuples(st.sampled_from([f"u{n}" for n in range(8)]), st.sampled_from(["a", "b", "c"]),
                                st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0]), st.integers(0, 30)), max_size=60),
       before=st.dictionaries(st.sampled_from([f"u{n}" for n in range(8)]), st.integers(0, 9)),
       chosen=st.lists(st.sampled_from([f"u{n}" for n in range(8)]), unique=True, max_size=4),
       feedback_from=st.sampled_from(["known users", "test users"]))
def test_the_feedback_stream_is_the_window_s_likes_and_dislikes_of_the_chosen_feeders(events, before, chosen,
                                                                                     feedback_from):
    rows = [Interaction(u, i, r, t) for u, i, r, t in events]
    stream = feedback_stream(rows, 10, 20, chosen, before, feedback_from)
    feeders = set(chosen) if feedback_from == "test users" else {u for u, n in before.items() if n >= 5}
    expected = [x for x in rows if 10 < x.timestamp <= 20 and x.rating != 3.0 and x.user_id in feeders]
    assert sorted(stream, key=repr) == sorted(expected, key=repr)  # nothing lost, nothing added
    assert [(x.timestamp, x.user_id) for x in stream] == sorted((x.timestamp, x.user_id) for x in stream)


def test_an_unknown_feedback_source_is_refused():
    with pytest.raises(ValueError, match="feedback_from must be one of known users, test users"):
        feedback_stream([], 0, 1, [], {}, "everyone")


@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=1, max_size=60))
def test_the_forgetting_interval_brackets_the_forgetting(pairs):
    stale = [(s, 0.0) for s, _ in pairs]
    refreshed = [(r, 0.0) for _, r in pairs]
    detail = _forgetting_interval(refreshed, stale, seed=0)
    base = sum(s for s, _ in pairs) / len(pairs)
    if not base:
        assert "forgetting_ci" not in detail
        return
    forgetting = round(max(0.0, (base - sum(r for _, r in pairs) / len(pairs)) / base), 4)
    low, high = detail["forgetting_ci"]
    assert 0.0 <= low <= high and low - 1e-4 <= forgetting <= high + 1e-4  # 1e-4: both are rounded to 4 places


def test_temporal_protocol_end_to_end_with_a_sequential_retriever(ml100k, tmp_path):
    """The whole protocol on ML-100K with a SASRec per world: every configuration is reported on the
    same users, the stream goes through the feedback store, and the T0 world never saw a later event."""
    import json

    from assistant.temporal_eval import run_temporal
    from data.home import RuntimeHome

    source, _, _ = ml100k
    home = RuntimeHome(tmp_path / "home").ensure()
    for name in ("datasets", "models", "cache"):
        getattr(home, name).rmdir()
        getattr(home, name).symlink_to(getattr(source, name).resolve(), target_is_directory=True)
    out = tmp_path / "temporal.json"
    result = run_temporal(home, "ml-100k", users=15, seed=0, json_path=out, refresh_minutes=0.1,
                          sequential_minutes=0.2, refresh_lora_layers=4, forgetting_users=40, refresh_every=600,
                          progress=False, log=lambda *_: None)
    saved = json.loads(out.read_text())
    assert saved["protocol"]["users"] == 15 and saved["protocol"]["feedback_events"] > 0
    protocol = saved["protocol"]  # every user the T0 system knows gives feedback, not only the test users
    assert protocol["feedback_from"] == "known users" and protocol["feedback_users"] > protocol["feedback_test_users"]
    assert saved["protocol"]["refresh_lora"] == "top 4 layers"
    assert saved["protocol"]["refresh_config"]["fresh_lora_layers"] == 4  # the settings the refresh ran with
    assert saved["protocol"]["forgetting_sample"].startswith("40 users (")  # ML-100K has many more T0 users
    assert "replay_users" not in saved["refresh"]
    if result["refresh"].get("version"):  # the gate's scored lists are kept beside the result
        gated = json.loads((tmp_path / "temporal_gate_lists.json").read_text())
        assert len(gated) == saved["gate"]["held_out_lists"] + saved["gate"]["replay_lists"]
        first = json.loads((tmp_path / "temporal_gate_lists_1.json").read_text())
        assert len(first) == saved["refreshes"][0]["held_out_lists"] + saved["refreshes"][0]["replay_lists"]
    for key in ("stale", "immediate", "refreshed", "retrained"):
        assert saved[key]["users"] == 15 and 0.0 <= saved[key]["ndcg@10"] <= 1.0
        assert 0.0 <= saved[key]["recall@10"] <= 1.0
    assert 0.0 <= saved["forgetting"] <= 1.0 and saved["refresh_seconds"] > 0
    detail = saved["forgetting_detail"]  # the forgetting comes with its paired interval over the pre-T0 users
    assert detail["paired_ndcg@10"]["mean_diff"] == pytest.approx(
        detail["refreshed_ndcg@10"] - detail["stale_ndcg@10"], abs=2e-4)
    if detail["stale_ndcg@10"] > 0:
        low, high = detail["forgetting_ci"]
        assert 0.0 <= low <= saved["forgetting"] <= high
    else:  # nothing to forget: no relative drop, no interval of one
        assert saved["forgetting"] == 0.0 and "forgetting_ci" not in detail
    training = saved["protocol"]["sequential_training"]
    assert training["t0"]["epochs_run"] >= 1 and training["t1"]["epochs_run"] >= 1
    assert (training["t0"]["dataset"], training["t1"]["dataset"]) == ("ml-100k-t0", "ml-100k-t1")
    assert saved["protocol"]["T0"] < saved["protocol"]["T1"] < saved["protocol"]["T2"]
    assert result["refresh"]["decision"] in {"promoted", "rejected", "skipped"}
    if result["refresh"]["decision"] == "rejected":  # the gate's call is checked on the test users
        assert saved["rejected_candidate"]["users"] == 15
    else:
        assert saved["rejected_candidate"] is None
    per_user = saved["per_user_ndcg@10"]
    assert per_user["users"] == sorted(per_user["users"]) and len(per_user["users"]) == 15
    for key in ("stale", "immediate", "refreshed", "retrained"):  # the per-user values are the reported means
        assert len(per_user[key]) == 15 and sum(per_user[key]) / 15 == pytest.approx(saved[key]["ndcg@10"], abs=1e-3)
    for name, (a, b) in {"immediate_vs_stale": ("immediate", "stale"), "refreshed_vs_immediate": ("refreshed", "immediate"),
                         "refreshed_vs_stale": ("refreshed", "stale")}.items():
        paired = saved["paired_ndcg@10"][name]
        assert paired["mean_diff"] == pytest.approx(saved[a]["ndcg@10"] - saved[b]["ndcg@10"], abs=2e-3)
        assert paired["ci_low"] <= paired["mean_diff"] <= paired["ci_high"]
    if result["refresh"]["decision"] != "promoted":  # no adapter serves: refreshed is immediate, user by user
        assert per_user["refreshed"] == per_user["immediate"]
        assert saved["paired_ndcg@10"]["refreshed_vs_immediate"]["ci_high"] == 0.0
    shown = saved["protocol"]["feedback_on_shown_list"]
    assert 0 <= shown["like"] + shown["dislike"] <= saved["protocol"]["feedback_events"]
    events = saved["protocol"]["feedback_events"]  # ML-100K's stream holds ~1,050: one refresh at 600, one at the end
    refreshes = saved["refreshes"]
    assert 600 < events < 1200 and [r["after_events"] for r in refreshes] == [600, events]
    assert saved["protocol"]["refreshes"].startswith("every 600 events")
    assert saved["refresh"]["version"] == refreshes[-1]["version"] and saved["refresh_seconds"] == max(
        r["refresh_seconds"] for r in refreshes)
    assert all(r["version"] for r in refreshes)  # 600 events leave lists to train on
    assert sum(r["new_events"] for r in refreshes) == events  # each refresh takes the events since the one before
    assert refreshes[0]["compared_with"].startswith("retrieval order")  # no adapter served at T0
    first_serving = refreshes[0]["serving_after"]  # the next refresh is gated against what serves after the first
    assert first_serving == (refreshes[0]["version"] if refreshes[0]["decision"] == "promoted" else None)
    assert refreshes[1]["compared_with"] == first_serving or (
        first_serving is None and refreshes[1]["compared_with"].startswith("retrieval order"))
    assert (tmp_path / "temporal_gate_lists_1.json").exists() and (tmp_path / "temporal_gate_lists.json").exists()
    if saved.get("gate"):
        assert saved["gate"]["replay"].startswith("training: sequential retriever")  # each world has its SASRec
    # each world trained its SASRec inside its own (removed) folder: none reached the shared models
    assert not [p.name for p in source.models.iterdir() if p.name.startswith("sasrec-ml-100k-t")]


def test_a_world_reuses_only_the_sasrec_trained_on_the_same_interactions(ml100k, embedder, tmp_path):
    """A second world on the same interactions reuses the first one's SASRec (same scores, no
    training); a world missing one interaction trains its own."""
    import numpy as np

    from assistant.retriever_training import sequential_model_dir
    from assistant.temporal_eval import _World
    from data.store import Dataset
    from retrieval.sequential import SASRecRetriever

    source, _, _ = ml100k
    dataset = Dataset(source.dataset_db("ml-100k"))
    rows = sorted((x for user in sorted(dataset.user_ids())[:300] for x in dataset.user_history(user)),
                  key=lambda x: (x.timestamp, x.user_id, x.item_id))
    cache = tmp_path / "sasrec-cache"

    def world(folder: str, interactions):
        return _World(tmp_path / folder, "ml-100k-t0", dataset.items(), interactions, embedder, source.models,
                      sequential_minutes=0.05, sequential_cache=cache, log=lambda *_: None)

    first, second, other = world("a", rows), world("b", rows), world("c", rows[:-1])
    assert "reused" not in first.sequential_report and "reused" in second.sequential_report
    assert "reused" not in other.sequential_report
    history = [[x.item_id for x in rows[:20]]]
    scores = [SASRecRetriever.load(sequential_model_dir(w.home, "ml-100k-t0")).score_all(history)[0]
              for w in (first, second)]
    np.testing.assert_array_equal(scores[0], scores[1])
    assert second.sequential_report["item_vectors_in_chroma"] == first.sequential_report["item_vectors_in_chroma"]
    assert len(list(cache.iterdir())) == 2 and not list(cache.glob("*.partial"))


@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0)), min_size=1, max_size=60))
def test_forgetting_is_the_relative_drop_and_never_a_gain(pairs):
    stale = [(s, 0.0) for s, _ in pairs]
    other = [(o, 0.0) for _, o in pairs]
    base, after = sum(s for s, _ in pairs) / len(pairs), sum(o for _, o in pairs) / len(pairs)
    drop = _relative_drop(stale, other)
    assert 0.0 <= drop <= 1.0
    if base and after < base:
        assert drop == pytest.approx((base - after) / base)
    else:  # no loss, or nothing to lose
        assert drop == 0.0
    assert _relative_drop(stale, stale) == 0.0
