"""Conversational relevance: do the films fit the request? Stage by stage, in one run.

Requests: the shared development set (../shared/eval/relevance_dev.jsonl), the project's held-out
set (bench/requests/relevance_heldout.jsonl) and fact requests whose answers are checked against
the film facts (bench/requests/fact_requests.jsonl). Every request goes through the same path as
the chat: `Assistant.reply` in a new session of a new user, k = 10.

Stages, each adding one view to the one before:
  text            the request's about-part (and a named film's text) against film text; no facts
  +collaborative  EASE from the named films
  +facts          cast, director, language, runtime, awards and critics as hard constraints
  +prior          the quality prior (the product's default)
  +reranker       the serving LoRA adapter, when one serves (else reported as absent)
  ease_reference  raw EASE from the named films (like requests only), the reference of the issue

Measures per kind: like/theme gold precision@10; plot hit@10 and reciprocal rank; fact precision
(share of returned films whose facts satisfy the request, checked from the facts, not the parser);
vague: share of returned films whose title shares a word with the request. Per stage: catalogue
coverage (distinct films returned / catalogue), popularity bias (mean popularity percentile of the
returned films, 1 = most rated) and turn latency.

    .venv/bin/python bench/relevance.py [--sets dev,heldout,facts] [--json bench/results/relevance.json]
"""
from __future__ import annotations

import _common  # noqa: F401  (path and offline switches)

import argparse
import json
import re
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from assistant.runtime import build_assistant
from data.facts import facts_of, person_key
from data.feedback import FeedbackStore
from retrieval.blend import BlendWeights
from ui.config import load_settings

REPO = Path(__file__).resolve().parent.parent
SETS = {"dev": REPO.parent / "shared" / "eval" / "relevance_dev.jsonl",
        "heldout": REPO / "bench" / "requests" / "relevance_heldout.jsonl",
        "facts": REPO / "bench" / "requests" / "fact_requests.jsonl"}
K = 10
_TITLE_WORD_SKIP = {"the", "and", "for", "with", "movie", "movies", "film", "films", "something", "what", "should",
                    "watch", "tonight", "good", "great", "any", "give", "me", "some"}


def load_requests(names: list[str]) -> list[dict]:
    out = []
    for name in names:
        path = SETS[name]
        if not path.exists():
            raise SystemExit(f"request set {name!r} missing at {path}")
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                row.setdefault("kind", "fact" if name == "facts" else "vague")
                row["set"] = name
                out.append(row)
    return out


def fact_ok(item, check: dict) -> bool:
    """The request's intent checked from the film's facts and genres, independently of the parser."""
    facts = facts_of(item)
    slugs = set(item.genre_slugs)
    if "genre" in check and check["genre"] not in slugs:
        return False
    if "years" in check and not (item.year and check["years"][0] <= item.year <= check["years"][1]):
        return False
    needs_facts = set(check) - {"genre", "years"}
    if needs_facts and facts is None:
        return False
    directors = {person_key(n) for n in facts.directors} if facts else set()
    cast = {person_key(n) for n in facts.cast} if facts else set()
    if "director" in check and not directors & {person_key(n) for n in check["director"]}:
        return False
    if "cast" in check and not all(person_key(n) in cast for n in check["cast"]):
        return False
    if "not_cast" in check and (not cast or any(person_key(n) in cast for n in check["not_cast"])):
        return False
    if "language" in check and facts.language != check["language"]:
        return False
    if "runtime_max" in check and not (facts.runtime and facts.runtime <= check["runtime_max"]):
        return False
    if "runtime_min" in check and not (facts.runtime and facts.runtime >= check["runtime_min"]):
        return False
    if check.get("oscar") and not (facts.oscars_won or 0) >= 1:
        return False
    if check.get("acclaimed") and not (facts.critics_score or 0) >= 85:
        return False
    return True


def title_word_hits(query: str, item) -> bool:
    words = {w for w in re.findall(r"[a-z]{3,}", query.lower()) if w not in _TITLE_WORD_SKIP}
    return bool(words & set(re.findall(r"[a-z]{3,}", item.title.lower())))


class Stage:
    def __init__(self, name: str, weights: BlendWeights | None, facts: bool, reranker: bool):
        self.name, self.weights, self.facts, self.reranker = name, weights, facts, reranker


STAGES = [
    Stage("text", BlendWeights(text=1.0, collaborative=0.0, reference_text=1.0, prior=0.0, vague_prior=0.0),
          facts=False, reranker=False),
    Stage("+collaborative", BlendWeights(prior=0.0, vague_prior=0.0), facts=False, reranker=False),
    Stage("+facts", BlendWeights(prior=0.0, vague_prior=0.0), facts=True, reranker=False),
    Stage("+prior", None, facts=True, reranker=False),
    Stage("+reranker", None, facts=True, reranker=True),
]


def run_stage(assistant, stage: Stage, requests: list[dict], popularity_rank: dict[str, float]) -> dict:
    recommender = assistant.recommender
    default_weights, facts_parser, lm = recommender.scorer.weights, recommender.parser.facts, assistant.lm
    recommender.scorer.weights = stage.weights or default_weights
    recommender.parser.facts = facts_parser if stage.facts else None
    assistant.lm = lm if stage.reranker else None
    per_request, latencies, returned_all = [], [], []
    try:
        for row in requests:
            session = assistant.new_session(None)
            started = time.perf_counter()
            reply = assistant.reply(session, row["q"], k=K)
            latencies.append((time.perf_counter() - started) * 1000)
            ids = [r.item.item_id for r in reply.items]
            returned_all.extend(ids)
            result = {"q": row["q"], "kind": row["kind"], "set": row["set"], "returned": len(ids), "top": ids}
            gold = set(row.get("gold") or ())
            if row["kind"] in ("like", "theme"):
                result["precision"] = sum(i in gold for i in ids[:K]) / K
            elif row["kind"] == "plot":
                rank = next((n + 1 for n, i in enumerate(ids[:K]) if i in gold), None)
                result["hit"] = float(rank is not None)
                result["rr"] = 1.0 / rank if rank else 0.0
            elif row["kind"] == "fact" and "check" in row:
                items = [r.item for r in reply.items]
                result["precision"] = (sum(fact_ok(i, row["check"]) for i in items) / len(items)) if items else None
            elif row["kind"] == "vague":
                result["title_word_share"] = (sum(title_word_hits(row["q"], r.item) for r in reply.items)
                                              / len(reply.items)) if reply.items else None
            per_request.append(result)
    finally:
        recommender.scorer.weights, recommender.parser.facts, assistant.lm = default_weights, facts_parser, lm
    return summarise(stage.name, per_request, latencies, returned_all, popularity_rank, len(recommender.items))


def summarise(name: str, per_request: list[dict], latencies: list[float], returned: list[str],
              popularity_rank: dict[str, float], catalogue: int) -> dict:
    kinds: dict[str, dict] = {}
    for kind in sorted({r["kind"] for r in per_request}):
        rows = [r for r in per_request if r["kind"] == kind]
        entry = {"requests": len(rows)}
        for metric in ("precision", "hit", "rr", "title_word_share"):
            values = [r[metric] for r in rows if r.get(metric) is not None]
            if values:
                entry[metric] = round(float(np.mean(values)), 4)
                entry[f"{metric}_n"] = len(values)
        entry["empty"] = sum(r["returned"] == 0 for r in rows)
        kinds[kind] = entry
    by_set = {}
    for set_name in sorted({r["set"] for r in per_request}):
        by_set[set_name] = {kind: round(float(np.mean([r["precision"] for r in per_request if r["set"] == set_name
                                                       and r["kind"] == kind and r.get("precision") is not None])), 4)
                            for kind in ("like", "theme", "fact")
                            if any(r["set"] == set_name and r["kind"] == kind and r.get("precision") is not None
                                   for r in per_request)}
        hits = [r["hit"] for r in per_request if r["set"] == set_name and r["kind"] == "plot"]
        if hits:
            by_set[set_name]["plot_hit"] = round(float(np.mean(hits)), 4)
    return {"stage": name, "kinds": kinds, "by_set": by_set,
            "coverage": round(len(set(returned)) / catalogue, 4),
            "popularity_percentile": round(float(np.mean([popularity_rank.get(i, 0.0) for i in returned])), 4)
            if returned else None,
            "latency_ms": {"p50": round(float(np.percentile(latencies, 50)), 1),
                           "p95": round(float(np.percentile(latencies, 95)), 1)},
            "per_request": per_request}


def ease_reference(assistant, requests: list[dict]) -> dict:
    """Raw EASE from the named films of the like requests: top 10 of all items minus the references."""
    model = assistant.recommender.collaborative
    rows = [r for r in requests if r["kind"] == "like"]
    out = []
    for row in rows:
        scores = model.scores_from(row["refs"])
        for ref in row["refs"]:
            if ref in model.position:
                scores[model.position[ref]] = -np.inf
        top = [model.item_ids[n] for n in np.argsort(-scores)[:K]]
        out.append({"q": row["q"], "set": row["set"], "precision": sum(i in set(row["gold"]) for i in top) / K})
    by_set = {s: round(float(np.mean([r["precision"] for r in out if r["set"] == s])), 4)
              for s in sorted({r["set"] for r in out})}
    return {"stage": "ease_reference", "like_precision": round(float(np.mean([r["precision"] for r in out])), 4),
            "by_set": by_set, "per_request": out}


def _gold_score(row: dict) -> float | None:
    return row.get("precision") if row["kind"] in ("like", "theme") else row.get("hit")


def paired_lift(a: list[float], b: list[float], seed: int = 0, rounds: int = 2000) -> dict:
    """Mean of a - b over the same requests, with a 95% bootstrap interval over requests."""
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.size == 0:
        return {"requests": 0}
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, diff.size, size=(rounds, diff.size))].mean(axis=1)
    return {"requests": int(diff.size), "mean": round(float(diff.mean()), 4),
            "ci95": [round(float(np.percentile(means, 2.5)), 4), round(float(np.percentile(means, 97.5)), 4)]}


def lifts(results: list[dict]) -> dict:
    by_stage = {r["stage"]: r for r in results if "per_request" in r}
    out = {}
    product, ease = by_stage.get("+prior"), by_stage.get("ease_reference")
    if product and ease:
        served = {r["q"]: r["precision"] for r in product["per_request"] if r["kind"] == "like"}
        pairs = [(served[r["q"]], r["precision"]) for r in ease["per_request"] if r["q"] in served]
        out["like: product - ease_reference"] = paired_lift(*zip(*pairs)) if pairs else {"requests": 0}
    reranked = by_stage.get("+reranker")
    if product and reranked:
        before = {r["q"]: _gold_score(r) for r in product["per_request"] if _gold_score(r) is not None}
        pairs = [(_gold_score(r), before[r["q"]]) for r in reranked["per_request"]
                 if r["q"] in before and _gold_score(r) is not None]
        out["gold requests: +reranker - +prior"] = paired_lift(*zip(*pairs)) if pairs else {"requests": 0}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", default="dev,heldout,facts")
    parser.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "relevance.json")
    args = parser.parse_args()
    requests = load_requests([s.strip() for s in args.sets.split(",") if s.strip()])
    settings = load_settings()
    assistant = build_assistant(replace(settings, refresh_every_events=0), writer=False)
    assistant.turn_log = None
    scratch = tempfile.TemporaryDirectory(prefix="relevance-")
    assistant.store = FeedbackStore(Path(scratch.name) / "events.sqlite")  # stated likes stay out of the home
    popularity = assistant.recommender.dataset.popularity()
    ranked = sorted(assistant.recommender.items, key=lambda i: popularity.get(i, 0))
    popularity_rank = {item: n / max(len(ranked) - 1, 1) for n, item in enumerate(ranked)}
    assistant.reply(assistant.new_session(None), "a comedy")  # warm-up: caches, lazy loads
    results = []
    for stage in STAGES:
        if stage.reranker and assistant.lm is None:
            results.append({"stage": stage.name, "absent": "no LoRA adapter serves in this home"})
            continue
        results.append(run_stage(assistant, stage, requests, popularity_rank))
    if assistant.recommender.collaborative is not None:
        results.append(ease_reference(assistant, requests))
    protocol = {"requests": {s: sum(r["set"] == s for r in requests) for s in SETS if any(r["set"] == s for r in requests)},
                "path": "Assistant.reply, new session of a new user per request, k=10, diversity and franchise cap as served",
                "catalogue": settings.dataset, "items": len(assistant.recommender.items),
                "gold": "hand-written partial lists: precision is a lower bound",
                "fact_precision": "share of returned films whose facts (bokeh-sampledata movies.db) satisfy the request's "
                                  "intent, checked independently of the parser; films with unknown facts count as misses"}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    paired = lifts(results)
    args.json.write_text(json.dumps({"protocol": protocol, "lifts": paired, "stages": results}, indent=1))
    print_table(results)
    for name, lift in paired.items():
        print(f"{name}: {lift}")
    print(f"\nwritten {args.json}")


def print_table(results: list[dict]) -> None:
    header = f"{'stage':<15} {'like P@10':>9} {'theme P@10':>10} {'plot hit':>8} {'fact P':>7} {'vague tw':>8} " \
             f"{'cover':>6} {'pop%':>5} {'p50 ms':>7} {'p95 ms':>7}"
    print(header)
    for r in results:
        if "absent" in r:
            print(f"{r['stage']:<15} ({r['absent']})")
            continue
        if r["stage"] == "ease_reference":
            print(f"{r['stage']:<15} {r['like_precision']:>9.3f}   (by set: {r['by_set']})")
            continue
        k = r["kinds"]

        def get(kind, metric):
            value = k.get(kind, {}).get(metric)
            return f"{value:.3f}" if value is not None else "-"
        print(f"{r['stage']:<15} {get('like', 'precision'):>9} {get('theme', 'precision'):>10} {get('plot', 'hit'):>8} "
              f"{get('fact', 'precision'):>7} {get('vague', 'title_word_share'):>8} {r['coverage']:>6.3f} "
              f"{r['popularity_percentile']:>5.2f} {r['latency_ms']['p50']:>7.1f} {r['latency_ms']['p95']:>7.1f}")
        print(f"{'':<15} by set: {r['by_set']}")


if __name__ == "__main__":
    main()
