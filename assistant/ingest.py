"""Ingest a data set: canonical store -> item vectors in Chroma -> user profiles in Chroma."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from data.datasets import build_custom, build_movielens
from data.home import RuntimeHome
from data.store import Dataset
from retrieval.collaborative import CollaborativeModel, build_collaborative, interactions_fingerprint
from retrieval.embedder import Embedder
from retrieval.item_index import ItemIndex, SyncReport
from retrieval.passages import PassageIndex
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
    facts: str | None = None  # the film facts join coverage, described
    collaborative: str | None = None  # what the collaborative space was built from, or why it was kept
    trained: tuple[str, ...] = ()  # what the committed trained artifacts did on this install

    def describe(self) -> str:
        lines = [f"{self.dataset}: {self.items} items, {self.interactions} interactions, {self.users} user profiles",
                 f"vectors: {self.sync.added} added, {self.sync.updated} updated, {self.sync.removed} removed, "
                 f"{self.sync.unchanged} unchanged"]
        if self.summary_coverage:
            matched, total = self.summary_coverage
            lines.append(f"Wikipedia summaries: {matched}/{total} items ({matched / total:.1%})")
        if self.facts:
            lines.append(self.facts)
        if self.collaborative:
            lines.append(self.collaborative)
        lines.extend(self.trained)
        lines.append(f"took {self.seconds:.1f} s")
        return "\n".join(lines)


def index_dataset(dataset: Dataset, client, embedder: Embedder, weights: ProfileWeights,
                  progress: bool = True) -> tuple[SyncReport, int, int]:
    items = dataset.items()
    vocabulary = sorted({s for item in items for s in item.genre_slugs})
    index = ItemIndex(client, dataset.name)
    sync = index.sync(items, embedder, vocabulary, progress=progress)
    PassageIndex(client, dataset.name).sync(items, embedder, progress=progress)
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


COLLABORATIVE_KIND = "cf_items"


def collaborative_index(client, dataset: str) -> ItemIndex:
    return ItemIndex(client, dataset, kind=COLLABORATIVE_KIND, space="ip")


def build_collaborative_space(home: RuntimeHome, dataset: Dataset, client, progress: bool = True) -> str:
    """The EASE model and its item vectors in Chroma; rebuilt only when the interactions changed.
    Returns a line for the ingest report."""
    items = dataset.items()
    users, item_ids, ratings, _ = dataset.interaction_arrays()
    directory = home.collaborative_model(dataset.name)
    index = collaborative_index(client, dataset.name)
    if len(users) == 0:
        return "collaborative space: no interactions; requests are served from text and facts"
    fingerprint = interactions_fingerprint(users, item_ids, ratings)
    try:
        model = CollaborativeModel.load(directory)
        reused = model.meta.get("fingerprint") == fingerprint and model.item_ids == [i.item_id for i in items]
    except (FileNotFoundError, ValueError):
        reused = False
    if not reused:
        explicit = len(set(np.unique(ratings).tolist())) > 1
        with tqdm(total=1, desc="collaborative space (EASE)", disable=not progress) as bar:
            model = build_collaborative([i.item_id for i in items], users, item_ids, ratings,
                                        like_threshold=4.0 if explicit else None)
            model.meta["fingerprint"] = fingerprint
            model.save(directory)
            bar.update()
    if not reused or index.count() != len(items):
        vocabulary = sorted({s for item in items for s in item.genre_slugs})
        index.put_vectors(items, np.asarray(model.vectors), vocabulary)
    state = "unchanged, kept" if reused else f"built in {model.meta['seconds']:.1f} s"
    return (f"collaborative space: EASE on {model.meta['likes']:,} likes of {model.meta['users']:,} users, "
            f"{len(items):,} item vectors in Chroma ({state})")


def install_trained(home: RuntimeHome, dataset: Dataset, client) -> tuple[str, ...]:
    """Serve the committed sequential retriever and reranker adapter of this data set (data/trained/),
    unless this home already has its own. Returns lines for the ingest report."""
    from data.trained import committed, install_folder
    from assistant.retriever_training import publish_sequential_vectors, sequential_model_dir

    artifacts = committed(dataset.name)
    lines = []
    sasrec = artifacts.get("sasrec")
    if sasrec is not None:
        vocabulary = set(json.loads((sasrec.folder / "vocab.json").read_text()))
        if not vocabulary <= {i.item_id for i in dataset.items()}:
            lines.append("committed sequential retriever skipped: its items are not this catalogue's")
        elif install_folder(sasrec.folder, sequential_model_dir(home, dataset.name)):
            from retrieval.sequential import SASRecRetriever

            published = publish_sequential_vectors(dataset, SASRecRetriever.load(sequential_model_dir(
                home, dataset.name)), client)
            lines.append(f"sequential retriever: the committed SASRec ({published} item vectors in Chroma; "
                         f"{_metrics_line(sasrec.metrics)})")
    reranker = artifacts.get("reranker")
    if reranker is not None:
        from finetune.adapters import AdapterRegistry

        registry = AdapterRegistry.of_home(home)
        model = json.loads((reranker.folder / "config.json").read_text()).get("model_name")
        if registry.versions():
            pass  # this home has adapters of its own: they stand
        elif not (home.models / str(model) / "config.json").exists():
            lines.append(f"committed reranker adapter skipped: its base model {model!r} is not set up "
                         f"(`recsys setup --models {model}`)")
        else:
            version = registry.publish(reranker.folder)
            registry.set_serving(version)
            lines.append(f"reranker: the committed LoRA adapter serves as {version} ({_metrics_line(reranker.metrics)})")
    return tuple(lines)


def _metrics_line(metrics: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in metrics.items() if not isinstance(v, (dict, list))) or "no metrics"


def ingest_movielens(home: RuntimeHome, name: str, client, embedder: Embedder, weights: ProfileWeights,
                     progress: bool = True) -> IngestReport:
    started = time.perf_counter()
    coverage, facts = build_movielens(home, name)
    dataset = Dataset(home.dataset_db(name))
    sync, interactions, users = index_dataset(dataset, client, embedder, weights, progress)
    collaborative = build_collaborative_space(home, dataset, client, progress)
    trained = install_trained(home, dataset, client)
    return IngestReport(name, dataset.item_count(), interactions, users, sync, (coverage.matched, coverage.items),
                        time.perf_counter() - started, facts.describe(), collaborative, trained)


def ingest_files(home: RuntimeHome, name: str, catalogue: Path, interactions: Path | None, client,
                 embedder: Embedder, weights: ProfileWeights, progress: bool = True) -> IngestReport:
    started = time.perf_counter()
    build_custom(home, name, catalogue, interactions)  # validates everything before writing anything
    dataset = Dataset(home.dataset_db(name))
    sync, n_interactions, users = index_dataset(dataset, client, embedder, weights, progress)
    collaborative = build_collaborative_space(home, dataset, client, progress)
    return IngestReport(name, dataset.item_count(), n_interactions, users, sync, None,
                        time.perf_counter() - started, None, collaborative)
