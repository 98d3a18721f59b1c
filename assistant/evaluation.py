"""The offline evaluation protocol: leave-last-out by timestamp, ranked against all items.

Protocol (every result carries it under ``"protocol"``):

- split: per user, interactions ordered by timestamp (ties: stored order); last = test,
  second-to-last = validation, the rest = training (``data.splits.leave_last_out``);
- users: ``users`` sampled without replacement (seeded) among users with a test target;
- input history at test time: training sequence + validation item;
- ranking: the test item against ALL items (every item with an interaction in the data set)
  minus the user's history (training + validation items); ties count against the test item.

Stages:

- *full rankers* (``Ranker``: ``histories -> scores (n_users, n_items)``, columns in
  ``item_ids`` order) rank the whole catalogue: ``popularity`` and ``retrieval`` (SASRec);
- *rerankers* (``Reranker``: ``(histories, candidates) -> scores (n_users, n_candidates)``)
  reorder the retriever's top-``n_candidates`` list (history removed); a test item outside the
  candidates is a miss, so a reranker's recall@n_candidates equals the retriever's
  ``candidate_recall@n_candidates``.

Each stage reports recall@10/20, ndcg@10/20, mrr@10 and coverage@10; ``lifts`` gives each
stage's paired-bootstrap 95% CI of the per-user difference against ``retrieval``.
"""
from __future__ import annotations

import time
from typing import Callable, Mapping, Sequence

import numpy as np

from assistant.metrics import (catalogue_coverage, mrr_at_k, ndcg_at_k, paired_bootstrap_ci, rank_of,
                               recall_at_k, top_k)
from data.splits import PROTOCOL, LeaveLastOutSplit, leave_last_out

Ranker = Callable[[list[list[str]]], np.ndarray]
Reranker = Callable[[list[list[str]], list[list[str]]], np.ndarray]

RETRIEVAL = "retrieval"
METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr@10")
LIFT_METRICS = ("ndcg@10", "recall@10", "mrr@10", "ndcg@20", "recall@20")


def split_dataset(dataset) -> LeaveLastOutSplit:
    """Leave-last-out split of a ``data.store.Dataset`` (or anything with ``interaction_arrays``)."""
    users, items, _ratings, times = dataset.interaction_arrays()
    return leave_last_out(users, items, times)


def sample_users(split: LeaveLastOutSplit, n: int, seed: int) -> list[str]:
    """``n`` users (sorted) drawn without replacement from users with validation and test targets."""
    pool = split.evaluable_users
    if n >= len(pool):
        return list(pool)
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(np.array(pool, dtype=object), size=n, replace=False).tolist())


def popularity_ranker(split: LeaveLastOutSplit, item_ids: Sequence[str]) -> Ranker:
    """Scores = interaction counts over every user's training + validation items (what is known
    before any test item)."""
    index = {x: i for i, x in enumerate(item_ids)}
    counts = np.zeros(len(item_ids), dtype=np.float64)
    for u, seq in split.train.items():
        for x in seq:
            if x in index:
                counts[index[x]] += 1
    for x in split.valid.values():
        if x in index:
            counts[index[x]] += 1

    def rank(histories: list[list[str]]) -> np.ndarray:
        return np.tile(counts, (len(histories), 1))

    return rank


def model_ranker(model, item_ids: Sequence[str]) -> Ranker:
    """Adapt anything with ``score_all(histories)`` and ``item_ids`` (e.g. ``SASRecRetriever``) to
    the columns ``item_ids``; items the model does not know score -inf."""
    model_ids = list(model.item_ids)
    pos = {x: i for i, x in enumerate(model_ids)}
    cols = np.array([pos.get(x, -1) for x in item_ids])
    same = model_ids == list(item_ids)

    def rank(histories: list[list[str]]) -> np.ndarray:
        s = np.asarray(model.score_all(histories), dtype=np.float64)
        if same:
            return s
        out = np.full((s.shape[0], len(cols)), -np.inf)
        ok = cols >= 0
        out[:, ok] = s[:, cols[ok]]
        return out

    return rank


def _per_user_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    return {"recall@10": recall_at_k(ranks, 10), "recall@20": recall_at_k(ranks, 20),
            "ndcg@10": ndcg_at_k(ranks, 10), "ndcg@20": ndcg_at_k(ranks, 20), "mrr@10": mrr_at_k(ranks, 10)}


def evaluate(split: LeaveLastOutSplit, retriever: Ranker, *, item_ids: Sequence[str] | None = None,
             baselines: Mapping[str, Ranker] | None = None, rerankers: Mapping[str, Reranker] | None = None,
             users: int = 1000, seed: int = 0, dataset: str = "", n_candidates: int = 20,
             n_boot: int = 2000, include_popularity: bool = True, per_user: bool = False) -> dict:
    """Run the protocol (module docstring) and return
    ``{"protocol": {...}, "stages": {name: {metric: value}}, "candidates": {...}, "lifts": {...}}``.

    ``retriever`` is the ``retrieval`` stage (it also supplies reranker candidates);
    ``baselines`` are further full rankers (``popularity`` is added unless
    ``include_popularity`` is false); ``rerankers`` reorder its top-``n_candidates``.
    ``per_user`` adds the per-user metric arrays under ``"per_user"``.
    """
    item_ids = list(item_ids) if item_ids is not None else split.items()
    index = {x: i for i, x in enumerate(item_ids)}
    chosen = sample_users(split, users, seed)
    histories = [split.history(u, "test") for u in chosen]
    targets = np.array([index.get(split.test[u], -1) for u in chosen])
    exclude = [[index[x] for x in h if x in index] for h in histories]
    n_items = len(item_ids)

    full: dict[str, Ranker] = {}
    if include_popularity:
        full["popularity"] = popularity_ranker(split, item_ids)
    full.update(baselines or {})
    full[RETRIEVAL] = retriever

    stages: dict[str, dict] = {}
    per: dict[str, dict[str, np.ndarray]] = {}
    candidates_idx = None
    for name, ranker in full.items():
        t0 = time.perf_counter()
        scores = np.asarray(ranker(histories), dtype=np.float64)
        if scores.shape != (len(chosen), n_items):
            raise ValueError(f"stage {name!r} returned scores of shape {scores.shape}, "
                             f"expected {(len(chosen), n_items)}")
        seconds = time.perf_counter() - t0
        safe_t = np.where(targets >= 0, targets, 0)
        ranks = rank_of(scores, safe_t, exclude)
        ranks[targets < 0] = np.inf
        tops = top_k(scores, max(10, n_candidates), exclude)
        per[name] = _per_user_metrics(ranks)
        stages[name] = {m: float(v.mean()) for m, v in per[name].items()}
        stages[name]["coverage@10"] = catalogue_coverage(tops[:, :10], n_items)
        stages[name]["seconds"] = round(seconds, 3)
        if name == RETRIEVAL:
            candidates_idx = tops[:, :n_candidates]

    cand_hit = (candidates_idx == targets[:, None]).any(axis=1)
    candidates = {"source": RETRIEVAL, "n": n_candidates,
                  f"candidate_recall@{n_candidates}": float(cand_hit.mean())}

    cand_ids = [[item_ids[j] for j in row] for row in candidates_idx]
    for name, rerank in (rerankers or {}).items():
        t0 = time.perf_counter()
        scores = np.asarray(rerank(histories, cand_ids), dtype=np.float64)
        seconds = time.perf_counter() - t0
        if scores.shape != candidates_idx.shape:
            raise ValueError(f"reranker {name!r} returned scores of shape {scores.shape}, "
                             f"expected {candidates_idx.shape}")
        pos = np.argmax(candidates_idx == targets[:, None], axis=1)
        ranks = rank_of(scores, pos)
        ranks[~cand_hit] = np.inf
        order = np.argsort(-scores, axis=1, kind="stable")
        reranked = np.take_along_axis(candidates_idx, order, axis=1)
        per[name] = _per_user_metrics(ranks)
        stages[name] = {m: float(v.mean()) for m, v in per[name].items()}
        stages[name]["coverage@10"] = catalogue_coverage(reranked[:, :10], n_items)
        stages[name]["seconds"] = round(seconds, 3)

    lifts = {}
    for name in stages:
        if name == RETRIEVAL:
            continue
        lifts[name] = {"vs": RETRIEVAL, **{m: paired_bootstrap_ci(per[name][m], per[RETRIEVAL][m],
                                                                  n_boot=n_boot, seed=seed)
                                           for m in LIFT_METRICS}}

    result = {
        "protocol": {"dataset": dataset, "split": PROTOCOL, "ranked_against": "all items minus user history",
                     "history_at_test": "training + validation items", "users": len(chosen), "seed": seed,
                     "n_items": n_items, "ties": "pessimistic (count against the test item)",
                     "candidates": f"retrieval top-{n_candidates} (history removed) for rerankers",
                     "bootstrap": f"paired, {n_boot} resamples of users, 95% percentile CI, seed {seed}"},
        "stages": stages,
        "candidates": candidates,
        "lifts": lifts,
    }
    if per_user:
        result["per_user"] = {name: {m: v.tolist() for m, v in d.items()} for name, d in per.items()}
        result["users"] = chosen
    return result


def format_report(result: dict) -> str:
    """A plain-text table of a result from :func:`evaluate`."""
    p = result["protocol"]
    lines = [f"dataset={p['dataset']} split={p['split']} ranked_against={p['ranked_against']} "
             f"users={p['users']} seed={p['seed']} n_items={p['n_items']}"]
    cols = list(METRICS) + ["coverage@10"]
    lines.append(f"{'stage':<14}" + "".join(f"{c:>12}" for c in cols))
    for name, m in result["stages"].items():
        lines.append(f"{name:<14}" + "".join(f"{m[c]:>12.4f}" for c in cols))
    c = result["candidates"]
    key = f"candidate_recall@{c['n']}"
    lines.append(f"{key} ({c['source']}): {c[key]:.4f}")
    for name, d in result["lifts"].items():
        l = d["ndcg@10"]
        lines.append(f"lift {name} vs {d['vs']} ndcg@10: {l['mean_diff']:+.4f} "
                     f"[{l['ci_low']:+.4f}, {l['ci_high']:+.4f}] ({l['rel_lift']:+.1%})")
    return "\n".join(lines)
