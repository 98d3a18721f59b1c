"""An `Assistant` for benchmarks, isolated from the real runtime state.

The Chroma directory and the embedding cache are COPIED into a temporary directory, so feedback
(which moves profile vectors in Chroma) and new query embeddings never touch the real home, and a
temporary FeedbackStore keeps benchmark clicks out of the real one. Everything else (the data set,
the models) is read from the home, read-only. Import `_common` first (the offline switches).
"""
from __future__ import annotations

import os
import platform
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from assistant.assistant import Assistant
from assistant.recommender import Recommender
from assistant.retriever_training import SEQUENTIAL_KIND, publish_sequential_vectors, sequential_model_dir
from data.feedback import FeedbackStore
from data.home import RuntimeHome
from data.store import Dataset
from retrieval.embedder import Embedder
from retrieval.item_index import ItemIndex
from retrieval.profiles import ProfileStore
from retrieval.sequential import MODEL_FILE
from retrieval.vector_store import ChromaLocation, open_client
from ui.config import load_settings


@dataclass
class BenchRuntime:
    assistant: Assistant
    tmp: Path
    home: RuntimeHome
    dataset: str
    sequential: bool

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


def open_bench_assistant(dataset: str = "ml-1m", diversity: float | None = None, dislike_penalty: float = 0.5,
                         tmp: Path | None = None, embedder: Embedder | None = None,
                         copy_cache: bool = True, sequential_dir: Path | None = None) -> BenchRuntime:
    """A ready Assistant over a private copy of the home's Chroma directory (and embedding cache).
    `sequential_dir`: a SASRec checkpoint to serve with (its item vectors are published into the COPY);
    default: the home's, when trained."""
    settings = load_settings()
    home = RuntimeHome(settings.home)
    if not home.chroma.exists() or not home.dataset_db(dataset).exists():
        raise SystemExit(f"{dataset} is not set up under {home.root}: run `recsys setup` and "
                         f"`recsys ingest --dataset {dataset}` first")
    tmp = Path(tmp or tempfile.mkdtemp(prefix="recsys-bench-"))
    chroma = tmp / "chroma"
    if not chroma.exists():
        shutil.copytree(home.chroma, chroma)
    if embedder is None:
        cache = tmp / "cache" / "embeddings.sqlite"
        if copy_cache and not cache.exists() and home.embedding_cache().exists():
            cache.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(home.embedding_cache(), cache)
        embedder = Embedder(cache_path=cache)
    client = open_client(ChromaLocation(path=chroma))
    index = ItemIndex(client, dataset)
    if index.count() == 0:
        raise SystemExit(f"{dataset} is not ingested: run `recsys ingest --dataset {dataset}` first")
    sequential, sequential_index = None, None
    model_dir = Path(sequential_dir) if sequential_dir else sequential_model_dir(home, dataset)
    if (model_dir / MODEL_FILE).exists():
        from retrieval.sequential import SASRecRetriever

        sequential = SASRecRetriever.load(model_dir)
        sequential_index = ItemIndex(client, dataset, kind=SEQUENTIAL_KIND, space="ip")
        if sequential_dir or sequential_index.count() == 0:
            publish_sequential_vectors(Dataset(home.dataset_db(dataset)), sequential, client)
    recommender = Recommender(Dataset(home.dataset_db(dataset)), index, ProfileStore(client, dataset, settings.profile),
                              embedder, settings.fusion, settings.max_k, sequential=sequential,
                              sequential_index=sequential_index)
    assistant = Assistant(recommender, FeedbackStore(tmp / "feedback" / "events.sqlite"),
                          default_k=settings.default_k,
                          diversity=settings.diversity if diversity is None else diversity,
                          dislike_penalty=dislike_penalty)
    return BenchRuntime(assistant, tmp, home, dataset, recommender.sequential is not None)


def write_result(path: Path | None, result: dict) -> None:
    """The benchmark's JSON result (protocol included), if a path was given."""
    if path:
        import json

        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {path}")


def machine() -> dict:
    """What the numbers ran on: cores, load, and the torch threads."""
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {"cpus": os.cpu_count(), "loadavg_1_5_15": [round(x, 2) for x in load],
            "torch_threads": torch.get_num_threads(), "python": platform.python_version()}


def synthetic_rerank_list():
    """The list the LM-cost benches time: 8 history titles, 20 candidates with genres, the target 4th,
    the retriever feature by position."""
    from finetune.training import RerankExample

    history = [f"Some Film Title {n} ({1990 + n})" for n in range(8)]
    candidates = [f"Candidate Movie {n}, The ({1980 + n}) [Comedy, Drama]" for n in range(20)]
    return RerankExample("u", history, candidates, 3, [-float(n) for n in range(20)])
