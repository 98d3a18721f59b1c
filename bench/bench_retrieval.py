"""Retrieval latency over 200 ML-1M requests, embedded Chroma vs a `chroma run` server, plus
recall@20 of the approximate (HNSW + filter) path against exact search on the same requests.

Latency is the whole `Recommender.recommend` turn (parse, embed, fuse, filtered query,
explanations) and the retrieval step alone. Requests: 200 generated from genre/decade/negation
templates, half with a user id (profile fusion + seen-item exclusion), seed 0.
"""
import _common  # noqa: F401

import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant.ingest import index_dataset
from assistant.recommender import Recommender
from data.home import RuntimeHome
from data.store import Dataset
from retrieval.embedder import Embedder
from retrieval.item_index import ItemIndex
from retrieval.profiles import ProfileStore
from retrieval.vector_store import ChromaLocation, VectorStoreUnavailable, open_client
from ui.config import load_settings

GENRES = ["horror", "comedy", "drama", "sci-fi", "romance", "western", "thriller", "animated", "war", "crime",
          "musical", "adventure"]
DECADES = ["", " from the 50s", " from the 70s", " from the 80s", " from the 90s", " before 1970", " 1995 to 1998"]


def requests(users: list[str], n: int = 200, seed: int = 0) -> list[tuple[str, str | None]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = f"a {rng.choice(GENRES)} movie{rng.choice(DECADES)}"
        if rng.random() < 0.3:
            text += f", no {rng.choice(GENRES)}"
        out.append((text, rng.choice(users) if i % 2 else None))
    return out


def measure(recommender: Recommender, reqs) -> dict:
    totals, retrieves, recalls = [], [], []
    for text, user in reqs:
        reply = recommender.recommend(text, user_id=user, k=20)
        totals.append(reply.timings_ms["total_ms"])
        retrieves.append(reply.timings_ms["retrieve_ms"])
    for text, user in reqs:  # recall of the served path against exact search, same vectors and filters
        request = recommender.parser.parse(text)
        vector = recommender.embedder.encode_one(request.text)
        excluded = {x.item_id for x in recommender.history(user)} if user else set()
        approx = recommender.retriever.retrieve(vector, request.constraints, excluded, 20).candidates
        exact = recommender.retriever.exact(vector, request.constraints, excluded, 20).candidates
        if exact:
            recalls.append(len({c.item_id for c in approx} & {c.item_id for c in exact}) / len(exact))
    return {"total_p50": np.percentile(totals, 50), "total_p95": np.percentile(totals, 95),
            "retrieve_p50": np.percentile(retrieves, 50), "retrieve_p95": np.percentile(retrieves, 95),
            "recall@20": float(np.mean(recalls))}


def main() -> int:
    settings = load_settings()
    home = RuntimeHome(settings.home)
    dataset = Dataset(home.dataset_db("ml-1m"))
    embedder = Embedder(cache_path=home.embedding_cache())
    embedded = open_client(ChromaLocation(path=home.chroma))
    if ItemIndex(embedded, "ml-1m").count() == 0:
        print("ML-1M is not ingested: run `recsys ingest --dataset ml-1m` first", file=sys.stderr)
        return 2
    rec_embedded = Recommender(dataset, ItemIndex(embedded, "ml-1m"),
                               ProfileStore(embedded, "ml-1m", settings.profile), embedder, settings.fusion)
    reqs = requests(dataset.user_ids())
    for text, user in reqs[:10]:
        rec_embedded.recommend(text, user_id=user, k=20)  # warm-up
    tmp = Path(tempfile.mkdtemp())
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
    server = subprocess.Popen([chroma, "run", "--path", str(tmp / "db"), "--host", "127.0.0.1", "--port", "8765"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(120):
            try:
                remote = open_client(ChromaLocation(host="127.0.0.1", port=8765))
                break
            except VectorStoreUnavailable:
                time.sleep(0.5)
        index_dataset(dataset, remote, embedder, settings.profile, progress=False)
        rec_server = Recommender(dataset, ItemIndex(remote, "ml-1m"), ProfileStore(remote, "ml-1m", settings.profile),
                                 embedder, settings.fusion)
        for text, user in reqs[:10]:
            rec_server.recommend(text, user_id=user, k=20)
        results = {"embedded": measure(rec_embedded, reqs), "server": measure(rec_server, reqs)}
    finally:
        server.terminate()
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"ML-1M, {len(reqs)} requests (half with a user), k=20, seed 0")
    print(f"{'mode':10} {'turn p50':>9} {'turn p95':>9} {'retrieve p50':>13} {'retrieve p95':>13} {'recall@20 vs exact':>19}")
    for mode, r in results.items():
        print(f"{mode:10} {r['total_p50']:8.1f}ms {r['total_p95']:8.1f}ms {r['retrieve_p50']:12.1f}ms "
              f"{r['retrieve_p95']:12.1f}ms {r['recall@20']:19.3f}")
    print(f"server/embedded turn p50 ratio: {results['server']['total_p50'] / results['embedded']['total_p50']:.2f}")
    print("target: embedded turn p50 <= 30 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
