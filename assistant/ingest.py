"""Ingest a data set: canonical store -> item vectors in Chroma -> user profiles in Chroma."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data.datasets import build_custom, build_movielens
from data.home import RuntimeHome
from data.store import Dataset
from retrieval.embedder import Embedder
from retrieval.item_index import ItemIndex, SyncReport
from retrieval.profiles import ProfileStore, ProfileWeights, build_profile


@dataclass
class IngestReport:
    dataset: str
    items: int
    interactions: int
    users: int
    sync: SyncReport
    summary_coverage: tuple[int, int] | None
    seconds: float

    def describe(self) -> str:
        lines = [f"{self.dataset}: {self.items} items, {self.interactions} interactions, {self.users} user profiles",
                 f"vectors: {self.sync.added} added, {self.sync.updated} updated, {self.sync.removed} removed, "
                 f"{self.sync.unchanged} unchanged"]
        if self.summary_coverage:
            matched, total = self.summary_coverage
            lines.append(f"Wikipedia summaries: {matched}/{total} items ({matched / total:.1%})")
        lines.append(f"took {self.seconds:.1f} s")
        return "\n".join(lines)


def index_dataset(dataset: Dataset, client, embedder: Embedder, weights: ProfileWeights,
                  progress: bool = True) -> tuple[SyncReport, int, int]:
    items = dataset.items()
    vocabulary = sorted({s for item in items for s in item.genre_slugs})
    index = ItemIndex(client, dataset.name)
    sync = index.sync(items, embedder, vocabulary, progress=progress)
    users, item_ids, ratings, times = dataset.interaction_arrays()
    profiles = ProfileStore(client, dataset.name, weights)
    if len(users) == 0:
        return sync, 0, 0
    vectors = index.vectors([i.item_id for i in items])
    built = []
    boundaries = np.flatnonzero(users[1:] != users[:-1]) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(users)]])
    for start, end in tqdm(list(zip(starts, ends)), desc="profiles", unit="user", disable=not progress):
        stack = np.stack([vectors[i] for i in item_ids[start:end]])
        built.append(build_profile(str(users[start]), stack, ratings[start:end], times[start:end], weights))
    profiles.put(built)
    return sync, len(users), len(built)


def ingest_movielens(home: RuntimeHome, name: str, client, embedder: Embedder, weights: ProfileWeights,
                     progress: bool = True) -> IngestReport:
    started = time.perf_counter()
    coverage = build_movielens(home, name)
    dataset = Dataset(home.dataset_db(name))
    sync, interactions, users = index_dataset(dataset, client, embedder, weights, progress)
    return IngestReport(name, dataset.item_count(), interactions, users, sync, (coverage.matched, coverage.items),
                        time.perf_counter() - started)


def ingest_files(home: RuntimeHome, name: str, catalogue: Path, interactions: Path | None, client,
                 embedder: Embedder, weights: ProfileWeights, progress: bool = True) -> IngestReport:
    started = time.perf_counter()
    build_custom(home, name, catalogue, interactions)  # validates everything before writing anything
    dataset = Dataset(home.dataset_db(name))
    sync, n_interactions, users = index_dataset(dataset, client, embedder, weights, progress)
    return IngestReport(name, dataset.item_count(), n_interactions, users, sync, None,
                        time.perf_counter() - started)
