"""Top-k ranking metrics for one relevant item per user, and a paired bootstrap. Pure numpy.

Every per-user function takes ``ranks``: the 1-based rank of the user's relevant item in the
list that was scored (``np.inf`` or any value > k, or 0/negative, when it was not ranked at all,
e.g. a reranker whose candidates missed the item). They return one value per user, so that two
stages can be compared user by user (:func:`paired_bootstrap_ci`).
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np


def zscore(values) -> np.ndarray:
    """Per-list standardisation; a constant list maps to zeros."""
    x = np.asarray(values, dtype=np.float64)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


def _ranks(ranks) -> np.ndarray:
    r = np.asarray(ranks, dtype=np.float64)
    return np.where(r >= 1, r, np.inf)  # 0 / negative / nan -> not ranked


def recall_at_k(ranks, k: int) -> np.ndarray:
    """1 if the relevant item is in the top k, else 0 (equals HR@k with one relevant item)."""
    return (_ranks(ranks) <= k).astype(np.float64)


def ndcg_at_k(ranks, k: int) -> np.ndarray:
    """1 / log2(rank + 1) if rank <= k, else 0 (ideal DCG is 1 with one relevant item)."""
    r = _ranks(ranks)
    out = np.zeros_like(r)
    hit = r <= k
    out[hit] = 1.0 / np.log2(r[hit] + 1.0)
    return out


def mrr_at_k(ranks, k: int) -> np.ndarray:
    """1 / rank if rank <= k, else 0."""
    r = _ranks(ranks)
    out = np.zeros_like(r)
    hit = r <= k
    out[hit] = 1.0 / r[hit]
    return out


def catalogue_coverage(top_lists: Iterable[Sequence], catalogue_size: int, k: int | None = None) -> float:
    """Share of the catalogue that appears in at least one user's top-k list."""
    if catalogue_size <= 0:
        raise ValueError("catalogue_size must be positive")
    seen: set = set()
    for row in top_lists:
        seen.update(list(row)[:k] if k is not None else row)
    return len(seen) / catalogue_size


def rank_of(scores: np.ndarray, target: np.ndarray, exclude: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """1-based rank of column ``target[u]`` in each row of ``scores`` (n_users, n_items).

    Ties count against the target (pessimistic: rank = 1 + #items scoring >= it, itself
    excluded), so a constant scorer gets the worst rank, not the best. Columns in ``exclude[u]``
    (e.g. the user's history) are removed from row u before ranking; an excluded or
    non-finite target gets rank inf.
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    target = np.asarray(target, dtype=np.int64)
    n = scores.shape[0]
    if exclude is not None:
        for u, cols in enumerate(exclude):
            if len(cols):
                scores[u, np.asarray(cols, dtype=np.int64)] = -np.inf
    t = scores[np.arange(n), target]
    ge = (scores >= t[:, None]).sum(axis=1)  # includes the target itself
    ranks = ge.astype(np.float64)
    ranks[~np.isfinite(t)] = np.inf
    return ranks


def top_k(scores: np.ndarray, k: int, exclude: Sequence[Sequence[int]] | None = None) -> np.ndarray:
    """Column indices of the k best scores per row (best first), after removing ``exclude[u]``.

    Equal scores are ordered by column index (stable), so lists are reproducible.
    """
    scores = np.array(scores, dtype=np.float64, copy=True)
    if exclude is not None:
        for u, cols in enumerate(exclude):
            if len(cols):
                scores[u, np.asarray(cols, dtype=np.int64)] = -np.inf
    k = min(k, scores.shape[1])
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def paired_bootstrap_ci(a, b, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05, groups=None) -> dict:
    """Paired bootstrap of mean(a - b) over users: resample users with replacement.

    With ``groups`` (one label per element, e.g. the user of each list), whole groups are resampled
    and each draw's mean is over all the elements of the drawn groups: elements of one group are not
    independent, and resampling them one by one would give too narrow an interval.

    Returns ``{"mean_diff", "ci_low", "ci_high", "rel_lift"}`` where the CI is the
    (alpha/2, 1-alpha/2) percentile interval and ``rel_lift = mean(a)/mean(b) - 1`` (nan when
    mean(b) is 0). Seeded, so the same inputs give the same interval.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError("a and b must be 1-D arrays of the same length (one value per user)")
    n = len(a)
    if n == 0:
        raise ValueError("need at least one user")
    diff = a - b
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    if groups is not None and len(groups) != n:
        raise ValueError("groups must hold one label per element")
    labels = np.arange(n) if groups is None else np.asarray([str(g) for g in groups])
    _, group_of = np.unique(labels, return_inverse=True)
    sums = np.bincount(group_of, weights=diff)
    counts = np.bincount(group_of).astype(np.float64)
    n_groups = len(sums)
    for start in range(0, n_boot, 256):  # bounded memory
        stop = min(n_boot, start + 256)
        drawn = rng.integers(0, n_groups, size=(stop - start, n_groups))
        means[start:stop] = sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    mb = b.mean()
    return {"mean_diff": float(diff.mean()), "ci_low": float(lo), "ci_high": float(hi),
            "rel_lift": float(a.mean() / mb - 1.0) if mb != 0 else float("nan")}
