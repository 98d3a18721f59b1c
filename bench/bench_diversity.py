"""What MMR diversity buys and costs (issue 4, item 3): intra-list diversity, near-duplicates
(sequels), and NDCG@10 / Recall@10 on the leave-last-out protocol of `recsys eval`.

Protocol (offline part): ML-1M, leave-last-out by timestamp (assistant.evaluation: last item =
test, history at test time = training + validation items), N users sampled with seed 0 among users
with a test target (the same users as `recsys eval --users N --seed 0`), ranked against all items
minus the user's history. The retrieval stage scores all items; its top-`pool` (30, the pool the
Assistant hands to its MMR step: max(3k, 30)) is reordered by `assistant.diversity.mmr_order` with
relevance = the retriever's scores and item vectors = the MiniLM text vectors (what the Assistant
uses), and the first 10 are the list. Weight 0 = the retriever's own top-10. Retrievers:

- `sasrec`: the sequential retriever of `recsys eval` (a SASRec checkpoint: the home's
  models/sasrec-ml-1m, or --sequential-dir);
- `profile`: what ML-1M serves without a trained SASRec: the user's profile vector
  (retrieval.profiles.build_profile over the MiniLM vectors of the history, rating- and
  recency-weighted) against all item vectors; built from the training + validation history only.

Variants: MMR weights 0, 0.1, 0.15, 0.3, 0.5 (asked for), 0.7 and 0.9 (to find the knee), and a
franchise cap (at most 2 items of one title stem, walking MMR's order over the pool) at weights 0 and
0.15. Per variant: NDCG@10, Recall@10 (relative change vs weight 0, and a paired-bootstrap 95% CI of
the NDCG@10 difference), intra-list diversity (ILD: mean pairwise cosine distance of MiniLM vectors),
near-duplicates (share of lists with >= 3 / >= 2 items of one title stem: "Star Trek II: ..." and
"Star Trek: Generations" -> "star trek"; assistant.diversity.franchise_key), catalogue coverage@10.

Served part: 20 "more like <first film of a franchise>" requests of a new user (the text path), k=10,
at each variant: plain weights through `Assistant.reply`; the capped variants through
`Recommender.recommend_request` with the Assistant's MMR step followed by the cap.

With a SASRec checkpoint trained for the bench (not published to the home), the reported run was:
    .venv/bin/python bench/bench_diversity.py --sequential-dir /tmp/sasrec-ml-1m-bench
    .venv/bin/python bench/bench_diversity.py [--users 1000] [--json bench/results/diversity.json]
"""
import _common  # noqa: F401  (offline switches first)

import argparse
import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from _assistant_bench import machine, open_bench_assistant, write_result  # noqa: E402
from assistant.diversity import cap_per_group, franchise_key, intra_list_diversity, mmr_order  # noqa: E402
from assistant.evaluation import sample_users, split_dataset  # noqa: E402
from assistant.metrics import catalogue_coverage, paired_bootstrap_ci, top_k  # noqa: E402
from assistant.retriever_training import sequential_model_dir  # noqa: E402
from retrieval.profiles import ProfileWeights, build_profile  # noqa: E402
from retrieval.sequential import MODEL_FILE  # noqa: E402

HERE = Path(__file__).resolve().parent
FRANCHISES = ["Star Wars", "Star Trek: The Motion Picture", "Friday the 13th", "A Nightmare on Elm Street",
              "Police Academy", "Halloween", "Die Hard", "Rocky", "The Karate Kid", "Batman", "Alien",
              "The Godfather", "Back to the Future", "Raiders of the Lost Ark", "Home Alone", "Jaws", "Superman",
              "Lethal Weapon", "Toy Story", "Scream"]
title_stem = franchise_key


def same_stem_max(titles: list[str]) -> int:
    return largest_group([title_stem(t) for t in titles])


def largest_group(stems: list[str]) -> int:
    return max(Counter(s for s in stems if len(s) >= 3).values(), default=0)


def cap_per_stem(order: list[int], titles: list[str], cap: int | None, k: int = 10) -> list[int]:
    """The first k of `order` keeping at most `cap` items of one title stem (None: no cap)."""
    return cap_per_group(order, [title_stem(t) for t in titles], cap, k)


def variants(weights: list[float], caps: list[int]) -> list[tuple[str, float, int | None]]:
    out = [(str(w), w, None) for w in weights]
    return out + [(f"{w}+cap{c}", w, c) for c in caps for w in (0.0, 0.15)]


def ndcg_recall(lists: list[list[int]], targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ndcg, hit = np.zeros(len(lists)), np.zeros(len(lists))
    for n, (row, t) in enumerate(zip(lists, targets)):
        if t in row[:10]:
            pos = row.index(t)
            ndcg[n], hit[n] = 1.0 / np.log2(pos + 2), 1.0
    return ndcg, hit


def offline(name: str, scores: np.ndarray, exclude, targets, weights, caps, pool, text_matrix, titles, n_items,
            seed) -> dict:
    tops = top_k(scores, pool, exclude)
    stems = [title_stem(t) for t in titles]
    base_ndcg = None
    out = {}
    for label, w, cap in variants(weights, caps):
        lists = []
        for u, row in enumerate(tops):
            order = mmr_order(scores[u, row], text_matrix[row], w, 10 if cap is None else len(row))
            lists.append(cap_per_group([int(row[i]) for i in order], stems, cap, 10))
        ndcg, hit = ndcg_recall(lists, targets)
        ild = [intra_list_diversity(text_matrix[row]) for row in lists]
        dup = [largest_group([stems[i] for i in row]) for row in lists]
        if base_ndcg is None:
            base_ndcg, base_hit = ndcg, hit
        ci = paired_bootstrap_ci(ndcg, base_ndcg, n_boot=2000, seed=seed)
        out[label] = {"weight": w, "stem_cap": cap, "ndcg@10": round(float(ndcg.mean()), 5), "recall@10": round(float(hit.mean()), 5),
                       "ndcg@10_rel_vs_0": round(float(ndcg.mean() / base_ndcg.mean() - 1), 4)
                       if base_ndcg.mean() else None,
                       "recall@10_rel_vs_0": round(float(hit.mean() / base_hit.mean() - 1), 4)
                       if base_hit.mean() else None,
                       "ndcg@10_diff_ci95": [round(ci["ci_low"], 5), round(ci["ci_high"], 5)],
                       "ild": round(float(np.mean(ild)), 4),
                       "lists_with_3plus_same_stem": round(float(np.mean([d >= 3 for d in dup])), 4),
                       "lists_with_2plus_same_stem": round(float(np.mean([d >= 2 for d in dup])), 4),
                       "coverage@10": round(catalogue_coverage(np.array(lists), n_items), 4)}
    return out


def served(assistant, weights, caps) -> dict:
    """The franchise requests through the served path. Plain weights run `Assistant.reply` itself; the
    stem-cap variants run the same request through `Recommender.recommend_request` with the Assistant's
    MMR step (same pool, same relevance rescaling) followed by the cap, since the Assistant has no cap."""
    from assistant.dialogue import ConversationState, interpret

    rec = assistant.recommender
    out = {}
    original = assistant.diversity

    def capped_rerank(weight: float, cap: int):
        def rerank(request, chosen, k):
            if len(chosen) <= 1:
                return chosen
            vectors = rec.item_vectors([item.item_id for item, _ in chosen])
            matrix = np.stack([vectors[item.item_id] for item, _ in chosen])
            order = mmr_order(np.array([score for _, score in chosen]), matrix, weight, len(chosen))
            keep = cap_per_stem(order, [item.title for item, _ in chosen], cap, k)
            return [chosen[n] for n in keep]
        return rerank

    try:
        for label, w, cap in variants(weights, caps):
            dups, ilds, examples = [], [], {}
            for seed_title in FRANCHISES:
                text = f"more like {seed_title}"
                if cap is None:
                    assistant.diversity = w
                    items = [r.item for r in assistant.reply(assistant.new_session(None), text).items]
                else:
                    request = interpret(text, ConversationState(), rec.parser).request
                    items = [r.item for r in rec.recommend_request(request, [], None, 10, exclude=set(),
                                                                   rerank=capped_rerank(w, cap), pool=30).items]
                dups.append(same_stem_max([i.title for i in items]))
                vectors = rec.item_vectors([i.item_id for i in items])
                ilds.append(intra_list_diversity(np.stack([vectors[i.item_id] for i in items])) if items else 0.0)
                if seed_title in ("Friday the 13th", "Star Trek: The Motion Picture"):
                    examples[seed_title] = [i.label for i in items]
            out[label] = {"weight": w, "stem_cap": cap, "requests": len(FRANCHISES),
                          "ild": round(float(np.mean(ilds)), 4),
                          "lists_with_3plus_same_stem": round(float(np.mean([d >= 3 for d in dups])), 4),
                          "lists_with_2plus_same_stem": round(float(np.mean([d >= 2 for d in dups])), 4),
                          "mean_largest_same_stem_group": round(float(np.mean(dups)), 2), "examples": examples}
    finally:
        assistant.diversity = original
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--weights", default="0,0.1,0.15,0.3,0.5,0.7,0.9")
    ap.add_argument("--caps", default="2", help="title-stem caps tried after MMR at weights 0 and 0.15")
    ap.add_argument("--pool", type=int, default=30)
    ap.add_argument("--retrievers", default="sasrec,profile")
    ap.add_argument("--sequential-dir", type=Path, default=None,
                    help="a SASRec checkpoint (default: the home's models/sasrec-ml-1m)")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "diversity.json")
    args = ap.parse_args()
    weights = [float(w) for w in args.weights.split(",")]
    caps = [int(c) for c in args.caps.split(",") if c]
    started = time.perf_counter()
    runtime = open_bench_assistant(copy_cache=False)
    try:
        assistant = runtime.assistant
        rec = assistant.recommender
        split = split_dataset(rec.dataset)
        item_ids = split.items()
        index = {x: i for i, x in enumerate(item_ids)}
        vec_ids, vecs = rec.index.all_vectors()
        by_id = dict(zip(vec_ids, vecs))
        missing = [i for i in item_ids if i not in by_id]
        if missing:
            raise SystemExit(f"{len(missing)} items have no text vector, e.g. {missing[:3]}")
        text_matrix = np.stack([by_id[i] for i in item_ids]).astype(np.float64)
        text_matrix /= np.linalg.norm(text_matrix, axis=1, keepdims=True)
        titles = [rec.items[i].title if i in rec.items else i for i in item_ids]
        users = sample_users(split, args.users, args.seed)
        histories = [split.history(u, "test") for u in users]
        targets = np.array([index.get(split.test[u], -1) for u in users])
        exclude = [[index[x] for x in h if x in index] for h in histories]
        results, retriever_notes = {}, {}
        for name in args.retrievers.split(","):
            if name == "sasrec":
                folder = args.sequential_dir or sequential_model_dir(runtime.home, "ml-1m")
                if not (folder / MODEL_FILE).exists():
                    print(f"skipping sasrec: no checkpoint in {folder} (run `recsys train-retriever` or pass "
                          f"--sequential-dir)")
                    continue
                from retrieval.sequential import SASRecRetriever

                model = SASRecRetriever.load(folder)
                pos = {x: i for i, x in enumerate(model.item_ids)}
                raw = model.score_all(histories)
                scores = np.full((len(users), len(item_ids)), -np.inf)
                cols = np.array([pos.get(x, -1) for x in item_ids])
                scores[:, cols >= 0] = raw[:, cols[cols >= 0]]
                meta = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").exists() else {}
                retriever_notes[name] = {"checkpoint": str(folder), "best_val_ndcg10": meta.get("best_val_ndcg10"),
                                         "epochs": meta.get("epoch") or meta.get("epochs_run")}
            elif name == "profile":
                weights_p = ProfileWeights()
                arrays = rec.dataset.interaction_arrays()
                known = {(u, i): (r, t) for u, i, r, t in zip(*arrays)}
                profiles = []
                for u, h in zip(users, histories):
                    rt = np.array([known[(u, i)] for i in h], dtype=np.float64)
                    p = build_profile(u, text_matrix[[index[i] for i in h]], rt[:, 0], rt[:, 1].astype(np.int64),
                                      weights_p).query_vector()
                    profiles.append(np.zeros(text_matrix.shape[1]) if p is None else p)
                scores = np.stack(profiles) @ text_matrix.T
                retriever_notes[name] = {"profile": "build_profile(MiniLM vectors of training+validation history), "
                                                    "default ProfileWeights"}
            else:
                raise SystemExit(f"unknown retriever {name!r}")
            results[name] = offline(name, scores, exclude, targets, weights, caps, args.pool, text_matrix, titles,
                                    len(item_ids), args.seed)
        served_results = served(assistant, weights, caps)
    finally:
        runtime.cleanup()
    result = {
        "protocol": {"dataset": "ml-1m", "split": "leave-last-out by timestamp (assistant.evaluation)",
                     "users": len(users), "seed": args.seed, "ranked_against": "all items minus user history",
                     "n_items": len(item_ids), "pool": args.pool, "list": "MMR(pool) -> top-10",
                     "mmr": "assistant.diversity.mmr_order, relevance = retriever scores, vectors = MiniLM text",
                     "ild": "mean pairwise cosine distance of MiniLM item vectors",
                     "near_duplicates": "lists with >= 3 (>= 2) items sharing a title stem",
                     "served": "20 'more like <franchise film>' requests, new user, Assistant.reply k=10",
                     "weights": weights, "stem_caps": caps,
                     "stem_cap": "after MMR, at most `cap` items of one title stem (walk MMR's order over the pool)"},
        "retrievers": retriever_notes,
        "offline": results,
        "served_franchise_requests": served_results,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
    }
    print(f"diversity: ML-1M leave-last-out, {len(users)} users (seed {args.seed}), ranked against all items minus "
          f"history; retrieval top-{args.pool} -> MMR -> top-10; MiniLM vectors for MMR and ILD")
    for name, per_w in results.items():
        print(f"retriever {name}: {retriever_notes.get(name)}")
        print(f"  {'variant':>9} {'NDCG@10':>8} {'rel':>7} {'95% CI diff':>20} {'R@10':>7} {'rel':>7} {'ILD':>6} "
              f"{'>=3 stem':>8} {'>=2 stem':>8} {'cov@10':>7}")
        for w, m in per_w.items():
            ci = m["ndcg@10_diff_ci95"]
            print(f"  {w:>9} {m['ndcg@10']:>8.4f} {m['ndcg@10_rel_vs_0']:>+7.1%} {f'[{ci[0]:+.4f}, {ci[1]:+.4f}]':>20} "
                  f"{m['recall@10']:>7.4f} {m['recall@10_rel_vs_0']:>+7.1%} {m['ild']:>6.3f} "
                  f"{m['lists_with_3plus_same_stem']:>8.3f} {m['lists_with_2plus_same_stem']:>8.3f} "
                  f"{m['coverage@10']:>7.3f}")
    print("served path, 20 'more like <franchise film>' requests (new user):")
    for w, m in served_results.items():
        print(f"  {w:>9}: ILD {m['ild']:.3f}, lists with >=3 same stem {m['lists_with_3plus_same_stem']:.2f}, "
              f">=2 {m['lists_with_2plus_same_stem']:.2f}, largest same-stem group {m['mean_largest_same_stem_group']}")
        for seed_title, labels in m["examples"].items():
            print(f"      {seed_title}: {labels}")
    print(f"machine: {result['machine']}; {result['seconds']} s")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
