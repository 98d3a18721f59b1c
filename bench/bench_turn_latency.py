"""Turn latency to the first card: `Assistant.reply` on ML-1M (issue 4, item 6: p50 <= 1.5 s).

Protocol: 10 sessions x 5 turns = 50 measured turns, seed 0: 5 sessions of known ML-1M users
(drawn at random) and 5 of new users (the first turn of some is a cold start, "I loved Heat and
Ronin"); each session is a first request followed by refinements (decade, negation, "older ones",
"more like the second one", "not that one", "something else", a new topic). Embedded Chroma (a
private copy of the home's directory), template explanations (no LM writer), k=10, the served
diversity weight, one torch thread. The wall time of each `reply` call is the latency to the first
card (the whole list is ready when it returns); `timings_ms` gives the breakdown: interpret = the
dialogue layer and parse (wall - turn_ms), session = history/feedback lookups (turn_ms - total_ms),
embed, retrieve, rerank (MMR + dislike penalty), explain. Three warm-up turns are not counted. The
query embedding cache starts EMPTY (item vectors come from Chroma), so each distinct query text is
encoded once, on its first turn (`encoded_queries`); a repeated text hits the cache, as in serving.
No adapter serves in these runs (no LM reranker inside the turn). --sequential-dir serves with a
SASRec checkpoint (hybrid text + sequential candidates), its vectors published into the Chroma copy.

    .venv/bin/python bench/bench_turn_latency.py [--json bench/results/turn_latency.json]
"""
import _common  # offline switches first

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from _assistant_bench import machine, open_bench_assistant, write_result  # noqa: E402

HERE = Path(__file__).resolve().parent
FIRST = _common.FIRST_REQUESTS
REFINE = ["no romance", "older ones", "more like the second one", "not that one", "something else",
          "from the 70s", "less violent", "newer ones", "a mystery from the 50s instead", "sci-fi but not horror"]
COLD = ["I loved Heat and Ronin", "I really liked Toy Story and Babe", "my favourites are Alien and The Terminator"]


def sessions(known_users: list[str], seed: int = 0, n_sessions: int = 10, turns: int = 5):
    rng = random.Random(seed)
    users = rng.sample(known_users, n_sessions // 2)
    plans = []
    for s in range(n_sessions):
        user = users[s // 2] if s % 2 == 0 else None
        first = rng.choice(COLD) if user is None and s % 4 == 1 else rng.choice(FIRST)
        plans.append((user, [first] + rng.sample(REFINE, turns - 1)))
    return plans


def pct(values, q):
    return round(float(np.percentile(values, q)), 1) if values else None


def throwaway_reranker(runtime, model: str):
    """A served LoRA reranker of `model` in a private registry, trained on 2 examples (latency only)."""
    from assistant.lm_serving import ServingReranker
    from finetune.adapters import AdapterRegistry
    from finetune.training import RerankExample, TrainConfig, train

    registry = AdapterRegistry(runtime.tmp / "adapters")
    example = RerankExample("x", ["Fargo (1996) [Crime, Drama, Thriller]"],
                            ["Heat (1995) [Action, Crime, Thriller]", "Babe (1995) [Children's, Comedy, Drama]"], 0,
                            [1.0, 0.0])
    result = train(runtime.home.models / model, [example, example], TrainConfig(), out_dir=runtime.tmp / "run",
                   max_examples=2, registry=registry, progress=False)
    registry.set_serving(result["version"])
    return ServingReranker(registry, background=False, log=lambda *_: None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sequential-dir", type=Path, default=None,
                    help="serve with this SASRec checkpoint (hybrid text + sequential retrieval for known users)")
    ap.add_argument("--reranker", choices=["smollm2", "qwen"],
                    help="put a LoRA reranker of this model in every turn (a 2-example throwaway adapter: the "
                         "latency does not depend on how well it is trained)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.json is None:
        args.json = HERE / "results" / (f"turn_latency_{args.reranker}.json" if args.reranker else "turn_latency.json")

    load_before = machine()
    runtime = open_bench_assistant(args.dataset, copy_cache=False,  # every new query text is really encoded
                                   sequential_dir=args.sequential_dir)
    assistant = runtime.assistant
    if args.reranker:
        assistant.lm = throwaway_reranker(runtime, args.reranker)
    rows = []
    try:
        warm = assistant.new_session(None)
        for text in ("a comedy", "older ones", "no romance"):
            assistant.reply(warm, text)
        encoded_before = assistant.recommender.embedder.encoded_count
        plans = sessions(sorted(assistant.known_users()), args.seed)
        for number, (user, texts) in enumerate(plans):
            session = assistant.new_session(user)
            for turn, text in enumerate(texts):
                started = time.perf_counter()
                reply = assistant.reply(session, text)
                wall = (time.perf_counter() - started) * 1000
                t = reply.timings_ms
                row = {"session": number, "turn": turn, "user": "known" if user else "new", "text": text,
                       "kind": reply.kind, "items": len(reply.items), "wall_ms": round(wall, 1)}
                if "turn_ms" in t:
                    row.update({"interpret_ms": round(wall - t["turn_ms"], 1),
                                "session_ms": round(t["turn_ms"] - t["total_ms"], 1),
                                **{k: t.get(k) for k in ("embed_ms", "retrieve_ms", "rerank_ms", "explain_ms",
                                                         "total_ms")}})
                rows.append(row)
        encoded = assistant.recommender.embedder.encoded_count - encoded_before
        diversity, sequential = assistant.diversity, runtime.sequential
    finally:
        runtime.cleanup()
    card_rows = [r for r in rows if r["items"]]

    def summary(subset):
        w = [r["wall_ms"] for r in subset]
        return {"turns": len(w), "p50_ms": pct(w, 50), "p95_ms": pct(w, 95), "mean_ms": round(float(np.mean(w)), 1)
                if w else None}

    breakdown = {k: {"p50": pct([r[k] for r in card_rows if r.get(k) is not None], 50),
                     "p95": pct([r[k] for r in card_rows if r.get(k) is not None], 95),
                     "mean": round(float(np.mean([r[k] for r in card_rows if r.get(k) is not None])), 1)}
                 for k in ("interpret_ms", "session_ms", "embed_ms", "retrieve_ms", "rerank_ms", "explain_ms")}
    result = {
        "protocol": {"dataset": args.dataset, "sessions": len(plans), "turns_measured": len(rows), "seed": args.seed,
                     "path": "Assistant.reply (template explanations, no LM writer), k=10, embedded Chroma "
                             "(private copy), 3 warm-up turns not counted",
                     "diversity": diversity, "sequential_retriever": sequential, "torch_threads": 1,
                     "lm_reranker": (f"{args.reranker} LoRA over the top 20, bf16 (runs when the user has a "
                                     f"history: known users, and new users after stating likes)")
                     if args.reranker else None,
                     "sequential_checkpoint": str(args.sequential_dir) if args.sequential_dir else
                     ("the home's" if sequential else None),
                     "latency": "wall time of reply(): the whole card list is ready when it returns"},
        "all_turns": summary(rows),
        "known_users": summary([r for r in rows if r["user"] == "known"]),
        "new_users": summary([r for r in rows if r["user"] == "new"]),
        "first_turns": summary([r for r in rows if r["turn"] == 0]),
        "refinements": summary([r for r in rows if r["turn"] > 0]),
        "breakdown_ms": breakdown,
        "kinds": {k: sum(r["kind"] == k for r in rows) for k in sorted({r["kind"] for r in rows})},
        "encoded_queries": encoded,
        "target_p50_ms": 1500,
        "machine_before": load_before,
        "machine_after": machine(),
        "turns": rows,
    }
    p = result["protocol"]
    print(f"turn latency to the first card: {p['dataset']}, {p['turns_measured']} turns in {p['sessions']} sessions "
          f"(5 known users, 5 new), seed {p['seed']}, {p['path']}, MMR {p['diversity']}, sequential retriever: "
          f"{p['sequential_retriever']}, 1 torch thread")
    for name in ("all_turns", "known_users", "new_users", "first_turns", "refinements"):
        s = result[name]
        print(f"  {name:<12} n={s['turns']:>3}  p50 {s['p50_ms']:>7} ms  p95 {s['p95_ms']:>7} ms  mean {s['mean_ms']:>7} ms")
    print("  breakdown (turns with cards): " + ", ".join(f"{k} p50 {v['p50']} / p95 {v['p95']}"
                                                          for k, v in breakdown.items()))
    print(f"  reply kinds: {result['kinds']}; query texts encoded: {encoded}; target p50 <= 1500 ms: "
          f"{'met' if result['all_turns']['p50_ms'] <= 1500 else 'NOT met'}")
    print(f"  machine before: {load_before}\n  machine after:  {result['machine_after']}")
    slow = sorted(rows, key=lambda r: -r["wall_ms"])[:3]
    print("  slowest: " + "; ".join(f"{r['text']!r} ({r['user']}, turn {r['turn']}) {r['wall_ms']} ms" for r in slow))
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
