import math

import numpy as np
import pytest

from assistant.metrics import (catalogue_coverage, mrr_at_k, ndcg_at_k, paired_bootstrap_ci, rank_of,
                               recall_at_k, top_k)


def test_per_user_metrics_match_hand_computed_values():
    ranks = [1, 2, 3, 10, 11, np.inf, 0]  # 0 = not ranked
    assert recall_at_k(ranks, 10).tolist() == [1, 1, 1, 1, 0, 0, 0]
    assert recall_at_k(ranks, 1).tolist() == [1, 0, 0, 0, 0, 0, 0]
    expected_ndcg = [1.0, 1 / math.log2(3), 0.5, 1 / math.log2(11), 0, 0, 0]
    np.testing.assert_allclose(ndcg_at_k(ranks, 10), expected_ndcg)
    np.testing.assert_allclose(mrr_at_k(ranks, 10), [1.0, 0.5, 1 / 3, 0.1, 0, 0, 0])
    assert ndcg_at_k([11], 20)[0] == pytest.approx(1 / math.log2(12))
    assert mrr_at_k([11], 10)[0] == 0


def test_rank_of_excludes_history_and_counts_ties_against_target():
    scores = np.array([[0.9, 0.8, 0.7, 0.1],
                       [0.5, 0.5, 0.5, 0.5]])
    # user 0: target column 2; item 0 is history -> rank 2
    assert rank_of(scores, [2, 1], exclude=[[0], []]).tolist() == [2.0, 4.0]
    # an excluded target is never ranked
    assert rank_of(scores, [0, 1], exclude=[[0], []])[0] == np.inf


def test_top_k_and_coverage():
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [1.0, 0.0, 0.0, 0.5]])
    tops = top_k(scores, 2, exclude=[[3], []])
    assert tops.tolist() == [[1, 2], [0, 3]]
    assert catalogue_coverage(tops, 4) == pytest.approx(4 / 4)
    assert catalogue_coverage([[1, 2], [1, 0]], 10, k=1) == pytest.approx(1 / 10)


def test_paired_bootstrap_constructed_cases():
    rng = np.random.default_rng(1)
    b = rng.random(500)
    # a constant shift of +0.1 for every user: CI collapses onto 0.1
    res = paired_bootstrap_ci(b + 0.1, b, n_boot=500, seed=0)
    assert res["mean_diff"] == pytest.approx(0.1)
    assert res["ci_low"] == pytest.approx(0.1) and res["ci_high"] == pytest.approx(0.1)
    # hits on 60% vs 50% of users, disjointly paired: CI of the difference covers +0.1 and excludes 0
    a = np.r_[np.ones(300), np.zeros(200)]
    c = np.r_[np.zeros(50), np.ones(250), np.zeros(200)]
    res = paired_bootstrap_ci(a, c, n_boot=2000, seed=3)
    assert res["mean_diff"] == pytest.approx(0.1)
    assert 0 < res["ci_low"] < 0.1 < res["ci_high"]
    # analytic: per-user diff is 1 on 10% of users, so SE = sqrt(.1*.9/500) ~ .0134 -> half-width ~.026
    assert res["ci_high"] - res["ci_low"] == pytest.approx(2 * 1.96 * math.sqrt(0.09 / 500), rel=0.15)
    assert res["rel_lift"] == pytest.approx(0.6 / 0.5 - 1)
    # seeded: reproducible; no difference: CI straddles 0
    assert paired_bootstrap_ci(a, c, n_boot=2000, seed=3) == res
    same = paired_bootstrap_ci(b, b[::-1], n_boot=1000, seed=0)
    assert same["ci_low"] < 0 < same["ci_high"]
    with pytest.raises(ValueError):
        paired_bootstrap_ci([1, 2], [1, 2, 3])


# ---- the evaluation protocol (assistant/evaluation.py) on a synthetic split


def _split():
    from data.splits import leave_last_out

    rng = np.random.default_rng(0)
    users, items, times = [], [], []
    for u in range(40):
        seq = rng.choice(60, size=8, replace=False)
        for t, i in enumerate(seq):
            users.append(f"u{u}")
            items.append(f"i{i:02d}")
            times.append(t)
    return leave_last_out(users, items, times)


def test_evaluation_protocol_with_plugged_reranker():
    from assistant.evaluation import evaluate

    split = _split()
    item_ids = split.items()
    index = {x: i for i, x in enumerate(item_ids)}

    def history_first(histories):
        # puts the user's history on top: the protocol must remove it before ranking
        s = np.zeros((len(histories), len(item_ids)))
        for r, h in enumerate(histories):
            s[r, [index[x] for x in h]] = 100.0
            s[r] += np.linspace(1, 0, len(item_ids))  # then a fixed item order
        return s

    target_of = {tuple(split.history(u, "test")): split.test[u] for u in split.evaluable_users}

    def oracle(histories, candidates):
        return np.array([[1.0 if c == target_of[tuple(h)] else 0.0 for c in cands]
                         for h, cands in zip(histories, candidates)])

    res = evaluate(split, history_first, item_ids=item_ids, rerankers={"oracle": oracle}, users=30, seed=1,
                   dataset="toy", n_boot=200, per_user=True)
    assert res["protocol"]["users"] == 30 and res["protocol"]["ranked_against"] == "all items minus user history"
    assert set(res["stages"]) == {"popularity", "retrieval", "oracle"}
    # retrieval ranks: fixed item order with history removed, computed by hand
    expected = []
    for u in res["users"]:
        hist = set(split.history(u, "test"))
        remaining = [x for x in item_ids if x not in hist]
        expected.append(remaining.index(split.test[u]) + 1)
    expected = np.array(expected)
    assert res["stages"]["retrieval"]["recall@10"] == pytest.approx(np.mean(expected <= 10))
    assert res["stages"]["retrieval"]["ndcg@10"] == pytest.approx(ndcg_at_k(expected, 10).mean())
    cand = res["candidates"]["candidate_recall@20"]
    assert cand == pytest.approx(np.mean(expected <= 20))
    # the oracle reranker puts every candidate hit first, and cannot recover misses
    assert res["stages"]["oracle"]["recall@10"] == pytest.approx(cand)
    assert res["stages"]["oracle"]["ndcg@10"] == pytest.approx(cand)
    assert res["stages"]["oracle"]["recall@20"] == pytest.approx(cand)
    lift = res["lifts"]["oracle"]["ndcg@10"]
    assert lift["ci_low"] <= lift["mean_diff"] <= lift["ci_high"] and lift["mean_diff"] >= 0
    assert res["lifts"]["oracle"]["vs"] == "retrieval"
    # same seed, same users and numbers
    again = evaluate(split, history_first, item_ids=item_ids, rerankers={"oracle": oracle}, users=30, seed=1,
                     dataset="toy", n_boot=200, per_user=True)
    strip = lambda st: {k: {m: v for m, v in d.items() if m != "seconds"} for k, d in st.items()}  # noqa: E731
    assert again["users"] == res["users"] and strip(again["stages"]) == strip(res["stages"])


def test_a_grouped_bootstrap_resamples_whole_groups():
    # 10 users with 30 identical lists each: the lists carry 10 users' worth of evidence, not 300
    diffs = np.repeat(np.r_[np.ones(6), -np.ones(4)] * 0.1, 30)
    users = np.repeat(np.arange(10), 30)
    by_list = paired_bootstrap_ci(diffs, np.zeros_like(diffs), seed=0)
    by_user = paired_bootstrap_ci(diffs, np.zeros_like(diffs), seed=0, groups=users)
    once_per_user = paired_bootstrap_ci(diffs[::30], np.zeros(10), seed=0)
    assert by_user["mean_diff"] == pytest.approx(by_list["mean_diff"]) == pytest.approx(0.02)
    assert by_list["ci_low"] > 0 > by_user["ci_low"]  # one list at a time, the interval wrongly clears zero
    assert by_user["ci_high"] - by_user["ci_low"] == pytest.approx(once_per_user["ci_high"] - once_per_user["ci_low"],
                                                                   rel=0.15)
    # one group per element is the plain bootstrap
    plain = paired_bootstrap_ci(diffs[::30], np.zeros(10), seed=4)
    grouped = paired_bootstrap_ci(diffs[::30], np.zeros(10), seed=4, groups=list("abcdefghij"))
    assert grouped["ci_high"] - grouped["ci_low"] == pytest.approx(plain["ci_high"] - plain["ci_low"], rel=0.2)
    with pytest.raises(ValueError, match="one label per element"):
        paired_bootstrap_ci([1.0, 2.0], [1.0, 1.0], groups=["u"])
