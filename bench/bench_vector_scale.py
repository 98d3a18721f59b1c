"""Retrieval latency and recall in the Chroma SERVER at 100k and 1M synthetic items (issue 6, item 6).

Protocol: a `chroma run` server on loopback (its own temporary directory) and one HttpClient in
this process. Items are synthetic 384-d unit vectors, clustered like sentence embeddings (2,000
random cluster centres; an item is its centre plus Gaussian noise of the same norm, cosine ~0.7 to
its centre, ~0.5 to a sibling), with metadata laid out like the real items (retrieval.filters:
`title`, `year`, one boolean per genre of an 18-genre vocabulary; a cluster has a typical decade
and a main genre, so filters correlate with the vectors as they do in MovieLens). One collection,
cosine space, Chroma's default HNSW settings (the project's ItemIndex configuration), batches of
5,000 `add`s from one client thread; the collection grows to each size in turn (100k, then on to
1M) and is measured there. The insert is bounded by --insert-budget-s: when the budget runs out
the run measures at the size reached, and reports the insert rate and the time 1M would take.

At each size, Q queries (default 100; a random cluster centre plus noise, like a request near some
films) are sent one at a time, after 3 warm-up queries, for three top-10 searches (each bounded
by --query-budget-s, at least 10 measured queries; recall counts every query sent): unfiltered;
a broad filter (comedy, 1990-1999: "a funny 90s comedy", ~10% of items); a narrow one (horror,
1980-1989: ~1%). Reported: p50/p95 latency of the HTTP query as the app sees it, recall@10 against
exact search (numpy brute force over the same vectors and the same filter, cosine), the exact
search's own time for comparison, the first (cold) query, the server's RSS and disk size. Every
number comes from one run on a shared 2-core machine (load average recorded).

    .venv/bin/python bench/bench_vector_scale.py [--sizes 100000 1000000] [--insert-budget-s 1800]
"""
import _common  # noqa: F401  (offline switches first)

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from retrieval.filters import Constraints, to_where  # noqa: E402
from retrieval.vector_store import ChromaLocation, VectorStoreUnavailable, open_client  # noqa: E402

HERE = Path(__file__).resolve().parent
DIM = 384
CLUSTERS = 2000
BATCH = 5000
GENRES = ["action", "adventure", "animation", "childrens", "comedy", "crime", "documentary", "drama", "fantasy",
          "film-noir", "horror", "musical", "mystery", "romance", "sci-fi", "thriller", "war", "western"]
# ML-1M genre shares (roughly): how often a genre is drawn besides a cluster's main genre
GENRE_SHARE = np.array([.13, .08, .03, .07, .31, .05, .03, .41, .02, .01, .09, .03, .03, .12, .07, .13, .04, .02])
FILTERS = {"filtered_broad": Constraints(genres_all=frozenset({"comedy"}), year_min=1990, year_max=1999),
           "filtered_narrow": Constraints(genres_all=frozenset({"horror"}), year_min=1980, year_max=1989)}


class Synthetic:
    """Deterministic clustered items: batch b is always the same, whatever was generated before."""

    def __init__(self, seed: int):
        rng = np.random.default_rng(seed)
        centres = rng.standard_normal((CLUSTERS, DIM)).astype(np.float32)
        self.centres = centres / np.linalg.norm(centres, axis=1, keepdims=True)
        self.decade = rng.choice(np.arange(1920, 2000, 10), CLUSTERS,
                                 p=np.array([1, 2, 3, 4, 5, 6, 9, 20], dtype=float) / 50)
        self.main = rng.choice(len(GENRES), CLUSTERS, p=GENRE_SHARE / GENRE_SHARE.sum())
        self.seed = seed

    def batch(self, index: int, size: int):
        rng = np.random.default_rng([self.seed, index])
        cluster = rng.integers(0, CLUSTERS, size)
        noise = rng.standard_normal((size, DIM)).astype(np.float32) / np.sqrt(DIM)
        vectors = self.centres[cluster] + noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        years = np.clip(self.decade[cluster] + rng.integers(0, 10, size) + rng.normal(0, 4, size).astype(int),
                        1919, 2000)
        genres = rng.random((size, len(GENRES))) < GENRE_SHARE * 0.6
        genres[np.arange(size), self.main[cluster]] |= rng.random(size) < 0.7
        return vectors, years.astype(np.int64), genres

    def queries(self, count: int):
        rng = np.random.default_rng([self.seed, 10**6])
        cluster = rng.integers(0, CLUSTERS, count)
        q = self.centres[cluster] + rng.standard_normal((count, DIM)).astype(np.float32) / np.sqrt(DIM)
        return q / np.linalg.norm(q, axis=1, keepdims=True)


def mask_for(constraints: Constraints, years: np.ndarray, genres: np.ndarray) -> np.ndarray:
    mask = np.ones(len(years), dtype=bool)
    for slug in constraints.genres_all:
        mask &= genres[:, GENRES.index(slug)]
    if constraints.year_min is not None:
        mask &= years >= constraints.year_min
    if constraints.year_max is not None:
        mask &= years <= constraints.year_max
    return mask


def start_server(path: Path, log: Path):
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "ANONYMIZED_TELEMETRY": "False"}
    proc = subprocess.Popen([chroma, "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.time() + 120
    while True:
        try:
            return proc, open_client(ChromaLocation(host="127.0.0.1", port=port))
        except VectorStoreUnavailable:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise SystemExit(f"chroma run did not come up:\n{log.read_text()[-2000:]}")
            time.sleep(0.5)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def disk_mb(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


def pct(values, q):
    return round(float(np.percentile(values, q)), 2) if len(values) else None


def measure(collection, matrix, years, genres, queries, budget_s: float, warmup: int = 3) -> dict:
    vocabulary = sorted(GENRES)
    out = {}
    started = time.perf_counter()
    collection.query(query_embeddings=queries[:1], n_results=10, include=["distances"])
    out["first_query_ms"] = round((time.perf_counter() - started) * 1000, 1)
    exact_started = time.perf_counter()
    scores = matrix @ queries.T  # (n, Q): exact cosine (unit vectors)
    exact_all_s = time.perf_counter() - exact_started
    for name, constraints in [("unfiltered", None), *FILTERS.items()]:
        where = to_where(constraints, vocabulary) if constraints is not None else None
        mask = mask_for(constraints, years, genres) if constraints is not None else None
        latencies, recalls = [], []
        type_started = time.perf_counter()
        for n, q in enumerate(queries):
            if n >= warmup + 10 and time.perf_counter() - type_started > budget_s:
                break  # bounded: at least 10 measured queries, then as many as the budget allows
            started = time.perf_counter()
            got = collection.query(query_embeddings=q[None, :], n_results=10, where=where, include=["distances"])
            ms = (time.perf_counter() - started) * 1000
            column = scores[:, n] if mask is None else np.where(mask, scores[:, n], -np.inf)
            top = np.argpartition(-column, 10)[:10]
            exact = {str(i) for i in top if np.isfinite(column[i])}
            if n >= warmup:
                latencies.append(ms)
            recalls.append(len(exact & set(got["ids"][0])) / max(1, len(exact)))
        started = time.perf_counter()
        for q in queries[:10]:  # the exact search's own time, one query at a time, filter included
            s = matrix @ q
            if mask is not None:
                s = np.where(mask, s, -np.inf)
            np.argpartition(-s, 10)[:10]
        out[name] = {"p50_ms": pct(latencies, 50), "p95_ms": pct(latencies, 95), "queries": len(latencies),
                     "recall@10": round(float(np.mean(recalls)), 4), "recall@10_min": round(float(np.min(recalls)), 2),
                     "exact_numpy_ms_per_query": round((time.perf_counter() - started) * 100, 1),
                     "selectivity": round(float(mask.mean()), 4) if mask is not None else 1.0,
                     "where": where}
    out["exact_all_queries_matmul_s"] = round(exact_all_s, 2)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--insert-budget-s", type=float, default=1800.0, help="the whole insert stops here")
    ap.add_argument("--query-budget-s", type=float, default=180.0,
                    help="per size and search type: stop after this (at least 10 measured queries)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=HERE / "results" / "vector_scale.json")
    args = ap.parse_args()
    sizes = sorted(args.sizes)

    tmp = Path(tempfile.mkdtemp(prefix="recsys-vscale-"))
    data = Synthetic(args.seed)
    queries = data.queries(args.queries)
    target = sizes[-1]
    matrix = np.empty((target, DIM), dtype=np.float32)
    years = np.empty(target, dtype=np.int64)
    genres = np.empty((target, len(GENRES)), dtype=bool)
    result = {"protocol": {"dim": DIM, "clusters": CLUSTERS, "batch": BATCH, "queries": args.queries,
                           "k": 10, "space": "cosine", "hnsw": "chroma defaults", "seed": args.seed,
                           "insert_budget_s": args.insert_budget_s,
                           "query_budget_s": args.query_budget_s, "warmup_queries": 3, "client": "chromadb.HttpClient, one thread",
                           "server": "chroma run on 127.0.0.1 (chromadb 1.5.9)",
                           "metadata": "title, year, 18 genre booleans (retrieval.filters layout)"},
              "machine": {"cpus": os.cpu_count(), "loadavg_start": [round(x, 2) for x in os.getloadavg()]},
              "sizes": []}
    proc, client = start_server(tmp / "db", tmp / "chroma.log")
    try:
        collection = client.get_or_create_collection("synthetic_items", embedding_function=None,
                                                     configuration={"hnsw": {"space": "cosine"}})
        inserted, insert_s, budget_hit = 0, 0.0, False
        insert_started = time.perf_counter()
        for size in sizes:
            stage_started, stage_from = time.perf_counter(), inserted
            while inserted < size:
                if time.perf_counter() - insert_started > args.insert_budget_s:
                    budget_hit = True
                    break
                count = min(BATCH, size - inserted)
                vectors, ys, gs = data.batch(inserted // BATCH, count)
                matrix[inserted:inserted + count], years[inserted:inserted + count] = vectors, ys
                genres[inserted:inserted + count] = gs
                metadatas = [{"title": f"Synthetic film {inserted + n}", "year": int(ys[n]),
                              **{f"g_{g}": bool(gs[n, j]) for j, g in enumerate(GENRES)}} for n in range(count)]
                started = time.perf_counter()
                collection.add(ids=[str(inserted + n) for n in range(count)], embeddings=vectors, metadatas=metadatas)
                insert_s += time.perf_counter() - started
                inserted += count
                if inserted % 50_000 == 0:
                    print(f"{inserted:,} inserted, {inserted / insert_s:.0f}/s (add calls), "
                          f"{time.perf_counter() - insert_started:.0f} s", flush=True)
            stage_s = time.perf_counter() - stage_started
            entry = {"target": size, "items": inserted, "reached": inserted >= size,
                     "stage_insert_s": round(stage_s, 1),
                     "stage_insert_rate_per_s": round((inserted - stage_from) / stage_s, 1) if stage_s else None,
                     "cumulative_add_rate_per_s": round(inserted / insert_s, 1) if insert_s else None,
                     "count_in_server": collection.count()}
            if not entry["reached"]:
                rate = entry["stage_insert_rate_per_s"] or entry["cumulative_add_rate_per_s"]
                entry["extrapolated_s_to_target"] = round((time.perf_counter() - insert_started)
                                                          + (size - inserted) / rate, 0) if rate else None
            print(f"measuring at {inserted:,} items", flush=True)
            entry.update(measure(collection, matrix[:inserted], years[:inserted], genres[:inserted], queries,
                                 args.query_budget_s))
            entry["server_rss_mb"] = rss_mb(proc.pid)
            entry["server_disk_mb"] = disk_mb(tmp / "db")
            entry["loadavg"] = [round(x, 2) for x in os.getloadavg()]
            result["sizes"].append(entry)
            print(json.dumps({k: entry[k] for k in entry if k not in ("where",)}, default=str), flush=True)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2) + "\n")  # after each size: a partial run still counts
            if budget_hit:
                break
        result["insert_total_s"] = round(time.perf_counter() - insert_started, 1)
        result["insert_budget_hit"] = budget_hit
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    result["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
