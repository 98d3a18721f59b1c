"""Ingest throughput against the raw encoder on the same ML-1M item texts, in one run.

ratio = (items/s through the full ingest: embed with cache writes + Chroma upsert with metadata)
        / (items/s of SentenceTransformer.encode alone). Target >= 0.9. Rounds are interleaved
and the median of each side is used, so drift on a noisy machine hits both equally.
"""
import _common  # noqa: F401

import statistics
import sys
import tempfile
import time
from pathlib import Path

from data.home import RuntimeHome
from data.store import Dataset
from retrieval.embedder import Embedder
from retrieval.item_index import ItemIndex
from retrieval.vector_store import ChromaLocation, open_client
from ui.config import load_settings

ROUNDS = 3


def main() -> int:
    home = RuntimeHome(load_settings().home)
    items = Dataset(home.dataset_db("ml-1m")).items()
    texts = [i.text for i in items]
    vocabulary = sorted({s for i in items for s in i.genre_slugs})
    raw_times, ingest_times = [], []
    for round_ in range(ROUNDS):
        with tempfile.TemporaryDirectory() as tmp:
            embedder = Embedder(cache_path=Path(tmp) / "cache.sqlite")
            embedder.encode_raw(texts[:64])  # warm-up, both sides share it
            started = time.perf_counter()
            embedder.encode_raw(texts)
            raw_times.append(time.perf_counter() - started)
            index = ItemIndex(open_client(ChromaLocation(path=Path(tmp) / "chroma")), f"bench{round_}")
            started = time.perf_counter()
            report = index.sync(items, embedder, vocabulary)
            ingest_times.append(time.perf_counter() - started)
            assert report.added == len(items)
        print(f"round {round_}: raw {raw_times[-1]:.2f} s, ingest {ingest_times[-1]:.2f} s", file=sys.stderr)
    raw, ingest = statistics.median(raw_times), statistics.median(ingest_times)
    print(f"ML-1M item texts: {len(texts)}, mean {sum(map(len, texts)) / len(texts):.0f} chars; {ROUNDS} interleaved rounds")
    print(f"raw encoder:  {len(texts) / raw:7.1f} items/s (median {raw:.2f} s)")
    print(f"full ingest:  {len(texts) / ingest:7.1f} items/s (median {ingest:.2f} s; embed + cache + Chroma upsert)")
    print(f"throughput ratio ingest/raw: {raw / ingest:.3f}  (target >= 0.9)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
