"""Final-list diversity: maximal marginal relevance over item vectors, and how diverse a list is."""
from __future__ import annotations

import re

import numpy as np


def minmax(values) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    span = x.max() - x.min() if len(x) else 0.0
    return (x - x.min()) / span if span > 1e-12 else np.ones_like(x)


def mmr_order(relevance, vectors: np.ndarray, weight: float, k: int) -> list[int]:
    """Greedy MMR: each next pick maximises (1 - weight) * relevance - weight * (max cosine similarity to
    the picks so far). `relevance` is rescaled to [0, 1]; weight 0 keeps the relevance order."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"diversity weight must be in [0, 1], got {weight}")
    relevance = minmax(relevance)
    n = len(relevance)
    if n == 0:
        return []
    if weight == 0.0:
        return list(np.argsort(-relevance, kind="stable")[:k])
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = unit @ unit.T
    chosen: list[int] = []
    max_sim = np.full(n, -np.inf)
    available = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        penalty = np.where(np.isfinite(max_sim), max_sim, 0.0)
        score = np.where(available, (1.0 - weight) * relevance - weight * penalty, -np.inf)
        pick = int(np.argmax(score))
        chosen.append(pick)
        available[pick] = False
        max_sim = np.maximum(max_sim, sims[pick])
    return chosen


def intra_list_diversity(vectors: np.ndarray) -> float:
    """Mean pairwise cosine distance (1 - cos) within one list; 0 for fewer than two items."""
    if len(vectors) < 2:
        return 0.0
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    sims = unit @ unit.T
    n = len(vectors)
    return float((n * n - sims.sum()) / (n * (n - 1)))


_SEQUEL_MARK = r"(?:[0-9]+|ii|iii|iv|v|vi|vii|viii|ix|x|xi|xii)"


def franchise_key(title: str) -> str:
    """A title's franchise stem, for spotting sequels: lower case, no leading article, the part before
    ':' or ' - ', no trailing sequel number ("Star Trek VI: The Undiscovered Country", "Star Trek:
    Generations" -> "star trek"; "Friday the 13th Part VII: The New Blood" -> "friday the 13th")."""
    t = re.sub(r"\s*\(.*?\)\s*$", "", title.lower())
    t = re.sub(r"^(?:the|a|an)\s+", "", t)
    t = re.split(r":| - ", t)[0]
    t = re.sub(r"[²³]", "", t)
    t = re.sub(rf"\s+(?:part\s+|episode\s+)?{_SEQUEL_MARK}(?:-d)?$", "", t.strip())
    return re.sub(r"[^a-z0-9& ]", "", t).strip()


def cap_per_group(order: list[int], keys: list[str], cap: int | None, k: int) -> list[int]:
    """The first k of `order` (indices into `keys`) with at most `cap` items of one key; keys shorter
    than 3 characters are never capped. None: no cap. Use after `mmr_order(..., k=len(pool))` to keep
    a list from being five sequels of one film."""
    if cap is None:
        return list(order[:k])
    counts: dict[str, int] = {}
    out = []
    for i in order:
        key = keys[i]
        if len(key) >= 3 and counts.get(key, 0) >= cap:
            continue
        counts[key] = counts.get(key, 0) + 1
        out.append(i)
        if len(out) == k:
            break
    if len(out) < k:  # the pool is mostly one franchise: fill up rather than return a short list
        out += [i for i in order if i not in out][: k - len(out)]
    return out
