"""The collaborative item space: what the ratings say about which films go together.

EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): with X the users x items matrix of likes
(rating >= the like threshold), B = I - P diag(1/diag P), P = (X'X + lambda I)^-1, and a row of B
scores every item given one liked item. One dense inverse: seconds for a few thousand items.

Alongside it are kept the item-item co-like counts (evidence: "of 1,234 people who loved Heat,
41% also loved Ronin"), per-item rating statistics (the quality prior), and low-rank item vectors
from the eigendecomposition of X'X (PureSVD item factors), published to Chroma for filtered search
and used for item similarity (diversity, the dislike push).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data.fetch import sha256_of

DEFAULT_LAMBDA = 500.0
LIKE_THRESHOLD = 4.0
VECTOR_DIMENSION = 64
FORMAT_VERSION = 1
_FILES = ("weights.npy", "colikes.npy", "vectors.npy", "stats.npy")


@dataclass(frozen=True)
class CollaborativeStats:
    item: str
    raters: int
    likers: int
    mean_rating: float | None


class CollaborativeModel:
    def __init__(self, item_ids: list[str], weights: np.ndarray, colikes: np.ndarray, vectors: np.ndarray,
                 stats: np.ndarray, meta: dict):
        self.item_ids = list(item_ids)
        self.position = {item: n for n, item in enumerate(self.item_ids)}
        self.weights = weights  # EASE B, items x items, zero diagonal
        self.colikes = colikes  # co-like counts, items x items; the diagonal holds each item's likers
        self.vectors = vectors  # unit item vectors, items x VECTOR_DIMENSION
        self.stats = stats  # items x 3: raters, likers, rating sum
        self.meta = meta

    def __contains__(self, item_id: str) -> bool:
        return item_id in self.position

    # ---- scoring -----------------------------------------------------------------------------
    def scores_from(self, item_ids: list[str], weights: list[float] | None = None) -> np.ndarray | None:
        """EASE scores of every item given the items a person likes (optionally weighted, a negative
        weight for a dislike); None when none of them is known to the ratings. Each liked item's row is
        scaled to unit norm so that one famous film does not drown the others of a short list."""
        rows, factors = [], []
        for n, item in enumerate(item_ids):
            if item in self.position:
                rows.append(self.position[item])
                factors.append(1.0 if weights is None else float(weights[n]))
        if not rows:
            return None
        block = self.weights[rows].astype(np.float64)
        norms = np.linalg.norm(block, axis=1, keepdims=True)
        block = block / np.maximum(norms, 1e-12)
        return (np.asarray(factors)[:, None] * block).sum(axis=0)

    def item_vectors(self, item_ids: list[str]) -> dict[str, np.ndarray]:
        return {i: self.vectors[self.position[i]] for i in item_ids if i in self.position}

    def co_liked(self, reference: str, item: str) -> tuple[int, int] | None:
        """(people who liked `reference`, of them who also liked `item`); None if either is unknown."""
        if reference not in self.position or item not in self.position:
            return None
        a, b = self.position[reference], self.position[item]
        return int(self.colikes[a, a]), int(self.colikes[a, b])

    def item_stats(self, item_id: str) -> CollaborativeStats | None:
        if item_id not in self.position:
            return None
        raters, likers, total = self.stats[self.position[item_id]]
        return CollaborativeStats(item_id, int(raters), int(likers), float(total / raters) if raters else None)

    # ---- persistence -------------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        """Written to a temporary folder, then swapped in: a reader never sees a half-written model."""
        directory = Path(directory)
        tmp = directory.with_name(directory.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, array in zip(_FILES, (self.weights, self.colikes, self.vectors, self.stats)):
            np.save(tmp / name, array)
        manifest = {**self.meta, "format": FORMAT_VERSION, "items": self.item_ids,
                    "sha256": {name: sha256_of(tmp / name) for name in _FILES}}
        (tmp / "model.json").write_text(json.dumps(manifest))
        old = directory.with_name(directory.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def load(directory: Path) -> "CollaborativeModel":
        directory = Path(directory)
        manifest_path = directory / "model.json"
        if not manifest_path.exists():
            raise FileNotFoundError(f"no collaborative model at {directory}; run `recsys ingest`")
        meta = json.loads(manifest_path.read_text())
        if meta.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory} holds collaborative model format {meta.get('format')}, "
                             f"expected {FORMAT_VERSION}; run `recsys ingest` again")
        arrays = [np.load(directory / name, mmap_mode="r") for name in _FILES]
        items = meta.pop("items")
        return CollaborativeModel(items, *arrays, meta=meta)


def interactions_fingerprint(users: np.ndarray, items: np.ndarray, ratings: np.ndarray) -> str:
    """A digest of the interactions a model is built from: equal digests, equal models."""
    digest = hashlib.sha256()
    for column in (users, items):
        digest.update("\x1f".join(map(str, column)).encode())
    digest.update(np.asarray(ratings, dtype=np.float32).tobytes())
    return digest.hexdigest()


def build_collaborative(item_ids: list[str], users: np.ndarray, items: np.ndarray, ratings: np.ndarray,
                        lam: float = DEFAULT_LAMBDA, like_threshold: float | None = LIKE_THRESHOLD,
                        dimension: int = VECTOR_DIMENSION) -> CollaborativeModel:
    """EASE, co-like counts, rating statistics and item vectors from interaction columns.
    `like_threshold=None` counts every interaction as a like (implicit data, no ratings)."""
    started = time.perf_counter()
    position = {item: n for n, item in enumerate(item_ids)}
    user_position: dict[str, int] = {}
    n_items = len(item_ids)
    stats = np.zeros((n_items, 3), dtype=np.float64)
    rows, cols = [], []
    for user, item, rating in zip(users, items, ratings):
        column = position.get(item)
        if column is None:
            continue
        stats[column, 0] += 1
        stats[column, 2] += rating
        if like_threshold is None or rating >= like_threshold:
            stats[column, 1] += 1
            rows.append(user_position.setdefault(user, len(user_position)))
            cols.append(column)
    likes = np.zeros((max(len(user_position), 1), n_items), dtype=np.float32)
    if rows:
        likes[np.asarray(rows), np.asarray(cols)] = 1.0
    gram = likes.T @ likes  # co-like counts
    colikes = gram.astype(np.int32)
    regularised = gram.astype(np.float64)
    regularised[np.diag_indices(n_items)] += lam
    inverse = np.linalg.inv(regularised)
    weights = -inverse / np.diag(inverse)[None, :]
    weights[np.diag_indices(n_items)] = 0.0
    dimension = max(1, min(dimension, n_items))
    values, vectors = np.linalg.eigh(gram.astype(np.float64))
    top = np.argsort(values)[::-1][:dimension]
    factors = vectors[:, top] * np.sqrt(np.clip(values[top], 0.0, None))[None, :]
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    factors = np.where(norms > 1e-12, factors / np.maximum(norms, 1e-12), 0.0)
    meta = {"model": "EASE", "lambda": lam, "like_threshold": like_threshold, "users": len(user_position),
            "likes": len(rows), "dimension": dimension, "seconds": round(time.perf_counter() - started, 2)}
    return CollaborativeModel(item_ids, weights.astype(np.float32), colikes, factors.astype(np.float32),
                              stats, meta)
