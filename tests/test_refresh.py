"""Refresh from feedback behind an evaluation gate: poisoned feedback is rejected, serving stays put,
and a refresh killed at any point loses no feedback and leaves serving on the previous version."""
from __future__ import annotations

import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pytest

from hypothesis import given, strategies as st

from assistant.feedback_training import gate_fold
from assistant.refresh import (AsServed, Budget, Judged, RefreshConfig, RetrievalOrder, _retriever_replay_lists,
                               cross_fitted_ranks, fit_refresh_fusion, fused_ndcg, fused_rank, gate_decision,
                               interleaved, list_ranks, refresh_train_config, run_refresh, score_within)
from finetune.training import RerankExample, TrainConfig
from data.feedback import LIKE, FeedbackEvent, FeedbackStore
from data.store import Dataset
from finetune.adapters import AdapterRegistry
from tests.conftest import REPO, SMOLLM2_DIR, make_home, needs_model

FAST = RefreshConfig(max_examples=16, replay_eval_users=20, min_held_out=10, seed=0)


def _judged(candidate, serving, size=20):
    return Judged(np.array(candidate), np.array(serving), np.full(len(candidate), size))


def test_gate_rules():
    config = RefreshConfig(min_held_out=3, margin=0.01, tolerance=0.02)
    better, worse = [1, 2, 3, 2, 1, 4], [3, 6, 12, 9, 2, 15]  # ranks of the liked item
    replay = _judged([2] * 6, [2] * 6)
    assert gate_decision(_judged(better, worse), replay, config)["decision"] == "promoted"
    assert gate_decision(_judged(worse, better), replay, config)["decision"] == "rejected"
    forgets = _judged([3] * 6, [2] * 6)  # every replay target one place lower
    assert gate_decision(_judged(better, worse), forgets, config)["decision"] == "rejected"
    assert gate_decision(_judged(better[:2], worse[:2]), replay, config)["decision"] == "rejected"  # too few lists
    assert gate_decision(_judged(better, better), replay, config)["decision"] == "rejected"  # no gain
    # the liked item climbs from 20th to 11th everywhere: no NDCG@10 gain, but a real one, and AUC sees it
    climbs = gate_decision(_judged([11] * 6, [20] * 6), replay, config)
    assert climbs["held_out_ndcg@10"]["mean_diff"] == 0 and climbs["decision"] == "promoted"
    # NDCG@10 gains on average, but one list in six carries it and AUC falls: not promoted
    lucky = gate_decision(_judged([1, 20, 20, 20, 20, 20], [11] * 6), replay, config)
    assert lucky["held_out_ndcg@10"]["mean_diff"] > 0 and lucky["decision"] == "rejected"
    # the interval resamples users: the same six lists from two users are too few users to decide on
    two_users = Judged(np.array(better), np.array(worse), np.full(6, 20), ("a", "a", "a", "b", "b", "b"))
    replay_gains = _judged([1] * 6, [2] * 6)  # else a resample of replay users alone puts the pooled interval at 0
    assert gate_decision(two_users, replay_gains, replace(config, min_held_out_users=2))["decision"] == "promoted"
    refused = gate_decision(two_users, replay, config)
    assert refused["decision"] == "rejected" and "from only 2 users" in refused["reason"]
    assert gate_decision(_judged(better, worse), replay, config)["held_out_users"] == 6
    # the margin is on the low end of the pooled AUC interval
    gain = gate_decision(_judged(better, worse), replay, config)["pooled_auc"]
    assert gate_decision(_judged(better, worse), replay, replace(config, margin=gain["ci_low"]))["decision"] == "rejected"


def test_the_replay_check_is_on_auc_by_its_point_estimate_or_optionally_its_interval():
    """Replay NDCG@10 of one target moves in steps of a top-10 crossing: a replay set can lose 3.7% of it
    to two lists slipping from first to second while its AUC gains; and it can keep NDCG@10 while every
    target falls from 11th to 20th. The gate judges replay on AUC's relative change (its point estimate;
    with replay_check="interval", its 95% interval's low end), and reports NDCG@10."""
    config = RefreshConfig(min_held_out=3, margin=0.01, tolerance=0.02)
    interval = replace(config, replay_check="interval")
    held = _judged([1, 2, 3, 2, 1, 4], [3, 6, 12, 9, 2, 15])
    slips = _judged([2, 2] + [1] * 18 + [12] * 20, [1] * 20 + [15] * 20)
    for check in (config, interval):
        gate = gate_decision(held, slips, check)
        assert gate["replay_ndcg@10"]["relative_drop"] > config.tolerance  # a point check on NDCG would reject it
        assert gate["replay_auc"]["ci_low"] > 0 and gate["decision"] == "promoted"
        sinks = gate_decision(held, _judged([20] * 40, [11] * 40), check)
        assert sinks["replay_ndcg@10"]["relative_drop"] == 0.0  # invisible to NDCG@10
        assert sinks["replay_auc"]["relative_drop"] > config.tolerance and sinks["decision"] == "rejected"
        assert "replay AUC drops" in sinks["reason"] and sinks["replay_auc"]["check"] == check.replay_check
    # no change on average over a few noisy lists: the point check passes it, the interval's low end does not
    held = _judged(np.tile([1, 2, 3, 2, 1, 4], 5), np.tile([3, 6, 12, 9, 2, 15], 5))
    noisy_replay = _judged(np.tile([1, 20, 1, 20, 2, 2], 2), np.tile([20, 1, 1, 20, 2, 2], 2))
    noisy = gate_decision(held, noisy_replay, config)
    assert noisy["replay_auc"]["mean_diff"] == 0.0 and noisy["replay_auc"]["relative_drop"] == 0.0
    assert noisy["replay_auc"]["largest_relative_drop"] > config.tolerance
    assert noisy["decision"] == "promoted", noisy["reason"]
    refused = gate_decision(held, noisy_replay, interval)
    assert refused["decision"] == "rejected" and "interval's low end" in refused["reason"]
    # a small loss inside the tolerance passes the point check; one just beyond it does not
    serving = np.tile(np.arange(2, 20), 10)
    one_in_ten_lower = serving + np.tile([1] + [0] * 9, 18)
    within = gate_decision(held, _judged(one_in_ten_lower, serving), config)
    assert 0 < within["replay_auc"]["relative_drop"] < 0.02 and within["decision"] == "promoted", within["reason"]
    one_in_two_lower = serving + np.tile([1, 0], 90)
    beyond = gate_decision(held, _judged(one_in_two_lower, serving), config)
    assert beyond["replay_auc"]["relative_drop"] > 0.02 and beyond["decision"] == "rejected"


@given(st.lists(st.tuples(st.integers(1, 20), st.integers(1, 20)), min_size=1, max_size=60), st.integers(2, 20))
def test_the_gates_auc_is_the_share_of_other_candidates_below_the_target(ranks, size):
    ranks = [(min(a, size), min(b, size)) for a, b in ranks]
    judged = _judged([a for a, _ in ranks], [b for _, b in ranks], size)
    for (a, _), auc in zip(ranks, judged.auc(judged.candidate)):
        others = np.arange(1, size + 1) != a
        assert auc == pytest.approx(np.sum(np.arange(1, size + 1)[others] > a) / (size - 1))
    assert all(0.0 <= x <= 1.0 for x in judged.auc(judged.serving))


def _lists(n, seed):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        scores = [rng.random() for _ in range(10)]
        out.append(RerankExample(f"u{i}", ["A (1990)"], [f"c{j}" for j in range(10)], rng.randrange(10), scores))
    return out


def test_a_fused_list_ranks_as_the_served_scores_do():
    example = _lists(1, 0)[0]
    lm = np.random.default_rng(0).normal(size=len(example.candidates))
    for weight in ("0.0", "1.5", "inf"):
        scores = AsServed(_FixedArrayLM(lm), float(weight)).rerank_scores([], example.candidates,
                                                                         example.retriever_scores)
        rank = 1 + int((np.asarray(scores) > scores[example.target]).sum())
        assert fused_rank(lm, example, weight) == rank
        assert fused_ndcg(lm, example, weight) == pytest.approx(1 / np.log2(rank + 1) if rank <= 10 else 0.0)


def _user_in_fold(fold: int, n: int) -> str:
    return next(u for u in (f"user{m}" for m in range(n * 10, 10**6)) if gate_fold(u) == fold)


def test_each_gate_fold_is_judged_with_the_weight_the_other_fold_chose():
    """Fold 0's feedback is found by the LM, fold 1's by the retriever: fold 0 chooses to trust the LM,
    fold 1 the retrieval order, so fold 0 is judged by the retrieval order (NDCG of its low-ranked
    targets) and fold 1 by the LM (which misses its targets): the gate sees what a weight chosen on
    other users does, not what a weight chosen on the same lists does."""
    config = RefreshConfig(min_fit_feedback=5)
    lists, scores = [], []
    for n in range(24):
        fold = n % 2
        user = _user_in_fold(fold, n)
        target = 7 if fold == 0 else 0
        lists.append(RerankExample(user, ["A (1990)"], [f"c{j}" for j in range(10)], target,
                                   [-float(j) for j in range(10)]))
        scores.append(_pointing_at([lists[-1]], [7])[0])  # the LM always puts candidate 7 first
    held, replay, weights = cross_fitted_ranks(scores, lists, [], [], config)
    assert weights[1] != "inf" and weights[0] == "inf"  # chosen on fold 0 (LM right) is used for fold 1
    for example, rank in zip(lists, held):
        if gate_fold(example.user_id) == 0:  # judged with fold 1's weight: the retrieval order
            assert rank == 8
        else:  # judged with fold 0's LM-trusting weight: candidate 7 first, the target (0) second
            assert rank == 2
    assert len(replay) == 0


def test_without_an_adapter_the_gate_compares_with_the_order_that_was_served():
    """Feedback lists score their candidates by -position: a first adapter is measured against the
    list as shown (what served), not against the untuned language model."""
    shown = RerankExample("u", ["A (1990)"], [f"c{j}" for j in range(10)], 3, [-float(j) for j in range(10)])
    assert RetrievalOrder().rerank_scores([], shown.candidates, shown.retriever_scores) == shown.retriever_scores
    assert list(list_ranks(RetrievalOrder(), [shown])) == [4]  # shown fourth


class _FixedArrayLM:
    def __init__(self, lm):
        self.lm = lm

    def rerank_scores(self, history, candidates, retriever_scores=None, request="", bf16=True, retriever_weight=None):
        z = np.asarray(retriever_scores, dtype=float)
        return list(self.lm + retriever_weight * (z - z.mean()) / z.std())


class _FixedLM:
    """LM scores fixed per candidate: enough to see what AsServed adds to them."""

    def rerank_scores(self, history, candidates, retriever_scores=None, request="", bf16=True, retriever_weight=None):
        lm = np.array([float(c[1:]) for c in candidates])
        z = np.asarray(retriever_scores, dtype=float)
        z = (z - z.mean()) / z.std()
        return list(lm + retriever_weight * z)


def test_an_adapter_is_gated_as_it_serves():
    """The gate scores each version with its fusion weight: an infinite one is the retrieval order
    (what ServingReranker serves), a finite one the LM plus that weight times the retriever."""
    candidates, retriever = ["c0", "c1", "c2"], [3.0, 2.0, 1.0]
    assert AsServed(_FixedLM(), float("inf")).rerank_scores([], candidates, retriever) == retriever
    assert np.argmax(AsServed(_FixedLM(), 0.0).rerank_scores([], candidates, retriever)) == 2
    assert np.argmax(AsServed(_FixedLM(), 10.0).rerank_scores([], candidates, retriever)) == 0


def _positional(target: int, n: int = 10) -> RerankExample:
    return RerankExample("u", ["A (1990)"], [f"c{j}" for j in range(n)], target, [-float(j) for j in range(n)])


def _pointing_at(examples, picks):
    """LM scores that put a chosen candidate of each list first."""
    out = []
    for example, pick in zip(examples, picks):
        scores = np.zeros(len(example.candidates))
        scores[pick] = 1000.0  # beyond what any finite grid weight gives the retriever position
        out.append(scores)
    return out


def test_the_refresh_fusion_weight_follows_the_feedback_within_the_replay_bound():
    """Feedback targets sit low in the shown lists and the LM finds them: the fit trusts the LM. When
    the same LM wrecks the replay lists (it points away from targets the retriever ranks first), only
    the retrieval order keeps replay within the tolerance, and the fit falls back to it."""
    feedback = [_positional(7) for _ in range(30)]
    replay = [_positional(0) for _ in range(20)]
    finds_feedback = _pointing_at(feedback, [7] * 30)
    harmless = fit_refresh_fusion(finds_feedback, feedback, _pointing_at(replay, [0] * 20), replay, 0.02)
    assert harmless["weight"] != "inf" and harmless["fused_ndcg@10"] == pytest.approx(1.0)
    assert harmless["fit_users"].startswith("held-out feedback lists")
    harmful = fit_refresh_fusion(finds_feedback, feedback, _pointing_at(replay, [9] * 20), replay, 0.02)
    assert harmful["weight"] == "inf" and harmful["fused_ndcg@10"] == pytest.approx(harmful["retriever_ndcg@10"])
    assert harmful["replay_ndcg@10_by_weight"]["0.0"] < 0.98 * harmful["replay_ndcg@10_by_weight"]["inf"]
    # a 1.5% replay drop is inside the gate's 2% tolerance but not inside the half the fit may use
    replay = [_positional(0) for _ in range(100)]
    slightly = fit_refresh_fusion(finds_feedback, feedback, _pointing_at(replay, [9] * 4 + [0] * 96), replay, 0.02)
    table = slightly["replay_ndcg@10_by_weight"]
    assert 0.98 * table["inf"] < table["0.0"] < 0.99 * table["inf"] and slightly["weight"] == "inf"


def _random_lists(draw, n, size):
    lists, scores = [], []
    for _ in range(n):
        length = draw(st.integers(2, size))
        target = draw(st.integers(0, length - 1))
        lists.append(RerankExample("u", ["h"], ["c"] * length, target, [-float(r) for r in range(length)]))
        scores.append(np.array(draw(st.lists(st.floats(-5, 5), min_size=length, max_size=length))))
    return lists, scores


@given(st.data())
def test_the_refresh_fusion_weight_is_best_on_feedback_and_replay_pooled_within_the_replay_bound(data):
    from assistant.lm_reranking import fusion_table

    feedback, feedback_lm = _random_lists(data.draw, data.draw(st.integers(1, 12)), 8)
    replay, replay_lm = _random_lists(data.draw, data.draw(st.integers(0, 12)), 8)
    fusion = fit_refresh_fusion(feedback_lm, feedback, replay_lm, replay, 0.02)
    pooled = fusion_table(feedback_lm + replay_lm, feedback + replay)
    replay_table = fusion_table(replay_lm, replay) if replay else None
    allowed = [w for w in pooled if w == "inf" or replay_table is None or replay_table[w] >= 0.99 * replay_table["inf"]]
    assert fusion["weight"] in allowed
    assert fusion["fused_ndcg@10"] == pytest.approx(max(pooled[w] for w in allowed))
    assert fusion["feedback_ndcg@10_by_weight"] == fusion_table(feedback_lm, feedback)


@given(st.lists(st.integers(0, 40), min_size=1, max_size=4))
def test_interleaving_keeps_every_group_whole_in_order_and_at_its_own_rate(sizes):
    groups = [[(g, n) for n in range(size)] for g, size in enumerate(sizes)]
    merged = interleaved(groups)
    assert sorted(x for _, x in merged) == sorted(x for group in groups for x in group)
    for g, group in enumerate(groups):
        assert [x for h, x in merged if h == g] == group
    filled = [g for g, group in enumerate(groups) if group]
    for cut in range(len(merged) + 1):  # any prefix has used every group at the same rate, give or take a list
        used = {g: sum(1 for h, _ in merged[:cut] if h == g) / len(groups[g]) for g in filled}
        for g in filled:
            for h in filled:
                assert abs(used[g] - used[h]) <= 1 / len(groups[g]) + 1 / len(groups[h])


class _SlowLM:
    """An LM scoring function of several lists at a time that takes ``delay`` seconds a list."""

    def __init__(self, delay):
        self.delay, self.calls, self.lists = delay, 0, 0

    def __call__(self, examples):
        self.calls += 1
        self.lists += len(examples)
        time.sleep(self.delay * len(examples))
        return [[float(len(c)) for c in example.candidates] for example in examples]


def test_gate_scoring_stops_at_its_budget_with_both_kinds_of_lists():
    feedback, replay = _lists(60, 4), _lists(30, 5)
    lm = _SlowLM(0.02)
    (feedback_scores, replay_scores), (feedback_kept, replay_kept) = score_within(lm, [feedback, replay], 0.5)
    assert 0 < len(feedback_kept) < 60 and 0 < len(replay_kept) < 30
    assert abs(len(feedback_kept) / 60 - len(replay_kept) / 30) <= 1 / 30 + 1 / 60  # both at the same rate
    assert feedback_kept == feedback[:len(feedback_kept)] and replay_kept == replay[:len(replay_kept)]
    assert len(feedback_scores) == len(feedback_kept) and lm.lists == len(feedback_kept) + len(replay_kept)
    assert lm.calls == math.ceil(lm.lists / 4)  # four lists a forward
    assert feedback_scores[3] == [float(len(c)) for c in feedback[3].candidates]  # each result with its own list
    with pytest.raises(ValueError, match="results"):
        score_within(lambda examples: [], [feedback], None)
    (every, _), (kept, _) = score_within(_SlowLM(0.0), [feedback, replay], None)
    assert len(every) == len(kept) == 60
    nothing, _ = score_within(_SlowLM(0.0), [feedback, replay], 0.0)
    assert nothing == [[], []]
    assert gate_decision(_judged([], []), _judged([], []), RefreshConfig())["decision"] == "rejected"


def test_the_overall_budget_shortens_training_then_the_gate_never_loosens_anything():
    config = RefreshConfig(minutes=5.0, gate_minutes=3.0, budget_minutes=9.5)
    assert Budget(9.5).training_minutes(config) == pytest.approx(5.0, abs=0.01)  # 5 + 3 fits in 9.5
    assert Budget(6.0).training_minutes(config) == pytest.approx(3.0, abs=0.01)  # leaves the gate its 3
    assert Budget(1.0).training_minutes(config) == 0.25  # never nothing at all
    assert Budget(2.0).gate_seconds(config) == pytest.approx(120.0, abs=1.0)  # what is left, below gate_minutes
    assert Budget(20.0).gate_seconds(config) == pytest.approx(180.0)
    assert Budget(None).gate_seconds(replace(config, gate_minutes=None)) is None  # no limit anywhere: every list
    assert Budget(None).training_minutes(config) == 5.0
    assert Budget(3.0).training_minutes(replace(config, gate_minutes=None)) == pytest.approx(2.0, abs=0.01)


@given(layers=st.one_of(st.none(), st.integers(1, 30)), serving_layers=st.one_of(st.none(), st.integers(1, 30)),
       lr=st.floats(1e-5, 1e-2), negatives=st.one_of(st.none(), st.integers(1, 15)))
def test_a_refresh_continues_the_serving_lora_layout_or_starts_a_fresh_one_in_the_top_layers(
        tmp_path_factory, layers, serving_layers, lr, negatives):
    import json

    config = RefreshConfig(fresh_lora_layers=layers, learning_rate=lr, train_negatives=negatives, seed=3)
    fresh = refresh_train_config(None, config)
    assert fresh.lora_layers == layers and (fresh.lr, fresh.train_negatives, fresh.seed) == (lr, negatives, 3)
    serving = tmp_path_factory.mktemp("serving")
    (serving / "config.json").write_text(json.dumps({"train": TrainConfig(lora_layers=serving_layers,
                                                                          lr=0.1).to_dict()}))
    continued = refresh_train_config(serving, config)
    assert continued.lora_layers == serving_layers  # the serving adapter's layout, whatever the fresh default
    assert (continued.lr, continued.train_negatives, continued.seed) == (lr, negatives, 3)


@given(layers=st.one_of(st.integers(-1000, 0), st.booleans(), st.floats(0.5, 30.0)))
def test_a_lora_depth_below_one_layer_is_refused_where_it_is_set(layers):
    """Not silently 'every layer' (peft reads an empty layer list so) nor a failure an hour later."""
    with pytest.raises(ValueError, match="positive number of layers"):
        TrainConfig(lora_layers=layers)
    with pytest.raises(ValueError, match="fresh_lora_layers must be a positive number of layers"):
        RefreshConfig(fresh_lora_layers=layers)


@given(name=st.sampled_from(["minutes", "gate_minutes", "budget_minutes"]),
       value=st.one_of(st.floats(max_value=0.0), st.sampled_from([float("inf"), float("nan"), True, "5"])))
def test_a_budget_that_is_not_a_positive_number_of_minutes_is_refused(name, value):
    """A negative budget would otherwise read as 'no limit' and a refresh could run for hours."""
    with pytest.raises(ValueError, match=f"{name} must be a finite number of minutes above 0"):
        RefreshConfig(**{name: value})


def test_retriever_replay_lists_are_disjoint_and_found_by_the_retriever(sasrec_100k):
    """Replay lists with a sequential retriever are the lists `recsys train` trains on: the user's
    validation item at its rank in the retriever's top 20, never inserted; training and gate lists
    come from different users, and each kind holds what was asked (while users last)."""
    from assistant.lm_reranking import RerankContext
    from assistant.retriever_training import sequential_model_dir

    home, _ = sasrec_100k
    context = RerankContext.load(home, "ml-100k", sequential_model_dir(home, "ml-100k"))
    train_lists, gate_lists = _retriever_replay_lists(context, seed=0, n_train=30, n_eval=12)
    assert (len(train_lists), len(gate_lists)) == (30, 12)
    users = [[e.user_id for e in kind] for kind in (train_lists, gate_lists)]
    assert len(set().union(*map(set, users))) == 42
    for example in train_lists + gate_lists:
        assert example.candidate_ids[example.target] == context.split.valid[example.user_id]
        ranked = [item for item, _ in context.candidates(context.split.history(example.user_id, "valid"))]
        assert example.candidate_ids == ranked


@pytest.fixture
def refresh_home(ml100k, tmp_path):
    source, _, _ = ml100k
    home = make_home(tmp_path / "home")
    shutil.copy(source.dataset_db("ml-100k"), home.dataset_db("ml-100k"))
    return home


def _serve_a_small_adapter(home, smollm2_dir) -> str:
    from finetune.training import RerankExample, TrainConfig, train

    examples = [RerankExample("1", ["Fargo (1996) [Crime, Drama, Thriller]"], ["Heat (1995) [Action]",
                "Babe (1995) [Children's, Comedy]"], 0, [1.0, 0.0])] * 4
    registry = AdapterRegistry(home.adapters)
    result = train(smollm2_dir, examples, TrainConfig(), out_dir=home.root / "runs" / "seed", max_examples=4,
                   registry=registry, progress=False)
    registry.set_serving(result["version"])
    return result["version"]


def _poison(home, n_users=50, per_user=2, seed=0) -> int:
    """Random likes: each on a random item inside a random 'shown' list of 10 items."""
    rng = random.Random(seed)
    dataset = Dataset(home.dataset_db("ml-100k"))
    items = [i.item_id for i in dataset.items()]
    users = sorted(dataset.user_ids())[:n_users]
    store = FeedbackStore(home.feedback_db())
    for user in users:
        for _ in range(per_user):
            shown = rng.sample(items, 10)
            store.record(FeedbackEvent("ml-100k", user, "poison", rng.choice(shown), LIKE,
                                       {"query": "anything", "shown": shown, "position": 1}))
    return store.count()


def _the_gate_lists_on_record_give_the_gate_numbers(folder, gate):
    """Each fold's lists judged again from the record, with the weight the other fold chose: the gate's means."""
    import json

    from assistant.refresh import GATE_LISTS_FILE

    rows = json.loads((folder / GATE_LISTS_FILE).read_text())
    weights = gate["cross_fitting"]["fold_weights"]
    for kind, key, count in (("held_out", "held_out_ndcg@10", "held_out_lists"),
                             ("replay", "replay_ndcg@10", "replay_lists")):
        kept = [r for r in rows if r["kind"] == kind]
        assert len(kept) == gate[count]
        if not kept:
            continue
        again = [fused_rank(np.array(r["lm"]), RerankExample(r["user"], [], ["c"] * len(r["lm"]), r["target"],
                                                             r["retriever"]), weights[str(r["fold"])]) for r in kept]
        recorded = gate[key]
        assert Judged.ndcg(np.array([r["serving_rank"] for r in kept])).mean() == pytest.approx(recorded["serving"])
        assert Judged.ndcg(np.array(again)).mean() == pytest.approx(recorded["candidate"], abs=1e-3)  # 4 decimals


@needs_model
def test_poisoned_feedback_is_rejected_and_serving_is_unchanged(refresh_home, smollm2_dir, recommender_100k):
    serving = _serve_a_small_adapter(refresh_home, smollm2_dir)
    events = _poison(refresh_home)
    # asked for another model, the refresh still continues the serving adapter on its own base model;
    # given the served retrieval, the gate checks forgetting on lists as served
    result = run_refresh(refresh_home, "ml-100k", replace(FAST, model="qwen"), log=lambda *_: None,
                         served_retrieval=lambda: recommender_100k)
    registry = AdapterRegistry(refresh_home.adapters)
    assert result["decision"] == "rejected", result["gate"]
    assert "gate: served top 20" in result["gate"]["replay"] and result["gate"]["lists_offered"]["replay"] > 0
    assert registry.versions()[-1].config["model_name"] == "smollm2"
    assert registry.serving() == serving
    kept = registry.versions()[-1]
    assert kept.version == result["version"] and kept.metrics["gate"]["decision"] == "rejected"
    assert registry.verify(kept.version) == []  # kept intact, with its numbers, for the record
    _the_gate_lists_on_record_give_the_gate_numbers(registry.path(kept.version), result["gate"])
    assert FeedbackStore(refresh_home.feedback_db()).count() == events
    again = run_refresh(refresh_home, "ml-100k", FAST, log=lambda *_: None)
    assert again["decision"] == "skipped"  # the cursor moved: no new events, no new version
    assert again["refresh_seconds"] >= 0


@needs_model
def test_kill_9_during_refresh_loses_no_feedback_and_keeps_serving(refresh_home, smollm2_dir):
    serving = _serve_a_small_adapter(refresh_home, smollm2_dir)
    events = _poison(refresh_home, n_users=40)
    env = {**os.environ, "RECSYS_HOME": str(refresh_home.root), "RECSYS_DATASET": "ml-100k", "OMP_NUM_THREADS": "1"}
    for delay in (random.Random(1).uniform(4, 12), random.Random(2).uniform(12, 25)):
        proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "refresh", "--max-examples", "16", "--threads", "1"],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        registry = AdapterRegistry(refresh_home.adapters)
        assert FeedbackStore(refresh_home.feedback_db()).count() == events
        assert registry.serving() in {serving, *[v.version for v in registry.versions()]}
        assert all(registry.verify(v.version) == [] for v in registry.versions())  # no half-published version
        if proc.returncode == -signal.SIGKILL:
            assert registry.serving() == serving


@needs_model
def test_the_gate_scores_lists_together_as_serving_scores_each_alone():
    """The gate scores four lists a forward; each list's scores are those serving gives it alone (in fp32,
    where the two paths agree up to float noise)."""
    from finetune.scorer import build_scorer

    scorer = build_scorer(SMOLLM2_DIR)
    examples = _lists(3, 7)
    titles = ["Heat (1995) [Action, Crime]", "Babe (1995) [Comedy]", "Fargo (1996) [Crime, Drama, Thriller]"]
    for n, example in enumerate(examples):
        example.history = titles[:n + 1]
        example.candidates = [f"{title} {j}" for j, title in enumerate(titles * 3)][:6 + n]
        example.retriever_scores = example.retriever_scores[:len(example.candidates)]
        example.target = min(example.target, len(example.candidates) - 1)
    examples[1].request = "something funny"
    together = AsServed(scorer, 0.7, bf16=False).rerank_scores_many(examples)
    for example, scores in zip(examples, together):
        alone = scorer.rerank_scores(example.history, example.candidates, example.retriever_scores,
                                     example.request, bf16=False, retriever_weight=0.7)
        assert np.allclose(scores, alone, atol=1e-3), np.abs(np.subtract(scores, alone)).max()
    assert [list(x) for x in RetrievalOrder().rerank_scores_many(examples)] == [x.retriever_scores for x in examples]
