"""User profile vectors: rating- and recency-weighted sums of item vectors, kept in Chroma.

A profile is stored unnormalised (the weighted sum S at reference time T) so one new event
updates it exactly, with no rebuild:  S' = S * decay(t - T) + w(rating) * v(item),  T' = t.
Queries use S / |S|.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from retrieval.vector_store import collection_name

SECONDS_PER_DAY = 86_400.0
# `record_event` is a read-modify-write of one Chroma record: two threads updating the same user at
# once (two tabs, a thumb during a chat turn) would lose one update. One lock per process makes the
# update atomic among this process's threads (each update is a few ms). Two app processes sharing a
# Chroma server can still interleave; the feedback store, not the profile, is the record of truth.
_UPDATE_LOCK = threading.Lock()


@dataclass(frozen=True)
class ProfileWeights:
    neutral_rating: float = 3.0  # ratings above pull the profile towards an item, below push it away
    rating_scale: float = 2.0
    half_life_days: float = 180.0

    def rating_weight(self, rating: float) -> float:
        return (rating - self.neutral_rating) / self.rating_scale

    def decay(self, seconds: float) -> float:
        return math.exp(-math.log(2.0) * max(seconds, 0.0) / (self.half_life_days * SECONDS_PER_DAY))


@dataclass
class Profile:
    user_id: str
    vector: np.ndarray  # unnormalised weighted sum at ref_time
    ref_time: int
    events: int

    def query_vector(self) -> np.ndarray | None:
        norm = float(np.linalg.norm(self.vector))
        return None if norm < 1e-9 else self.vector / norm


def build_profile(user_id: str, vectors: np.ndarray, ratings, timestamps, weights: ProfileWeights) -> Profile:
    timestamps = np.asarray(timestamps, dtype=np.int64)
    ref = int(timestamps.max()) if len(timestamps) else 0
    coeff = np.array([weights.rating_weight(r) * weights.decay(ref - t) for r, t in zip(ratings, timestamps)],
                     dtype=np.float64)
    total = (coeff[:, None] * vectors.astype(np.float64)).sum(axis=0) if len(coeff) else np.zeros(vectors.shape[1])
    return Profile(user_id, total.astype(np.float32), ref, len(coeff))


def apply_event(profile: Profile, vector: np.ndarray, rating: float, timestamp: int,
                weights: ProfileWeights) -> Profile:
    w = weights.rating_weight(rating)
    if timestamp >= profile.ref_time:
        total = profile.vector.astype(np.float64) * weights.decay(timestamp - profile.ref_time) + w * vector
        ref = timestamp
    else:
        total = profile.vector.astype(np.float64) + w * weights.decay(profile.ref_time - timestamp) * vector
        ref = profile.ref_time
    return Profile(profile.user_id, total.astype(np.float32), ref, profile.events + 1)


class ProfileStore:
    """Profiles in a Chroma collection (l2 space, so stored vectors keep their magnitude)."""

    def __init__(self, client, dataset: str, weights: ProfileWeights):
        self.weights = weights
        self.collection = client.get_or_create_collection(
            collection_name("profiles", dataset), embedding_function=None, configuration={"hnsw": {"space": "l2"}})

    def count(self) -> int:
        return self.collection.count()

    def get(self, user_id: str) -> Profile | None:
        got = self.collection.get(ids=[user_id], include=["embeddings", "metadatas"])
        if not got["ids"]:
            return None
        meta = got["metadatas"][0]
        return Profile(user_id, np.asarray(got["embeddings"][0], dtype=np.float32), int(meta["ref_time"]),
                       int(meta["events"]))

    def delete(self, user_id: str) -> bool:
        """Remove one user's profile; True if there was one."""
        if not self.collection.get(ids=[user_id], include=[])["ids"]:
            return False
        self.collection.delete(ids=[user_id])
        return True

    def put(self, profiles: list[Profile]) -> None:
        for start in range(0, len(profiles), 5000):
            chunk = profiles[start:start + 5000]
            self.collection.upsert(ids=[p.user_id for p in chunk], embeddings=np.stack([p.vector for p in chunk]),
                                   metadatas=[{"ref_time": p.ref_time, "events": p.events} for p in chunk])

    def record_event(self, user_id: str, vector: np.ndarray, rating: float, timestamp: int,
                     on_profile_clock: bool = False) -> Profile:
        """One new event, applied in place: O(dimension), no rebuild. `on_profile_clock`: the event counts
        as the newest one at the profile's own reference time (a live event must not age a history that
        the data set dates years back); `timestamp` is then used only for a new profile."""
        with _UPDATE_LOCK:
            current = self.get(user_id) or Profile(user_id, np.zeros_like(vector, dtype=np.float32), timestamp, 0)
            if on_profile_clock:
                timestamp = current.ref_time
            updated = apply_event(current, vector, rating, timestamp, self.weights)
            self.put([updated])
        return updated
