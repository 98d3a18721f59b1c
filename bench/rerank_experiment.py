"""ML-1M experiment for the LoRA reranker: prepare lists, train, evaluate (NDCG@10 within top-20).

Protocol (leave-last-out by timestamp, per user, over ALL ML-1M interactions):
  test target = last item, validation = second-to-last, training period = the rest.
  Training examples: target = the LAST training-period item, history = the items before it,
    candidates = top-20 of a co-occurrence retriever fitted on those histories only (so the target's
    transition is not in the retriever's counts), kept only when the retriever found the target.
  Evaluation: history = all but the last item, candidates = top-20 of a co-occurrence retriever
    fitted on all-but-last sequences (test items never seen), users sampled (seed) among those whose
    test item is in the top-20; NDCG@10 of the target's rank among the 20. Fusion weights are fitted
    on a separate, disjoint set of validation users under the same protocol.

    python bench/rerank_experiment.py prepare --out .recsys/experiments/rerank1
    python bench/rerank_experiment.py train   --out .recsys/experiments/rerank1 --minutes 25
    python bench/rerank_experiment.py eval    --out .recsys/experiments/rerank1 --test-users 300 --val-users 200
      (or --stage base / --stage lora in two processes, then --stage report)
"""
from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def ndcg10(rank: int) -> float:
    return 1.0 / np.log2(rank + 2) if rank < 10 else 0.0


def ranks_from_scores(scores: np.ndarray, target: int) -> int:
    # rank of the target (0 = best); ties counted pessimistically-neutral (by stable order)
    s = np.asarray(scores, dtype=np.float64)
    return int((s > s[target]).sum())


def prepare(args):
    from assistant.reranker_data import assert_no_leakage, build_examples, item_texts, user_sequences
    from data.home import RuntimeHome
    from data.store import Dataset
    from retrieval.cooccurrence import CooccurrenceRetriever

    home = RuntimeHome(Path(args.home))
    ds = Dataset(home.dataset_db("ml-1m"))
    items = ds.items()
    texts = item_texts(items)
    hist_texts = item_texts(items, with_genres=False)
    seqs = user_sequences(*ds.interaction_arrays())
    all_items = sorted(texts)
    seqs = {u: s for u, s in seqs.items() if len(s[0]) >= 5}
    # training period = all but the last 2; training target = last training-period item
    train_hist = {u: (it[:-3], rt[:-3]) for u, (it, rt) in seqs.items()}
    train_tgt = {u: it[-3] for u, (it, rt) in seqs.items()}
    held = {u: it[-2:] for u, (it, rt) in seqs.items()}
    t = time.time()
    r_train = CooccurrenceRetriever().fit([h[0] for h in train_hist.values()], all_items)
    train_ex = build_examples(train_hist, train_tgt, lambda h: r_train.recommend(h, 20), texts, hist_texts)
    assert_no_leakage({u: (it[:-2], rt[:-2]) for u, (it, rt) in seqs.items()}, held, train_ex)
    print(f"train examples {len(train_ex)} of {len(seqs)} users (target found in top-20), {time.time() - t:.1f}s")
    # evaluation lists
    eval_hist = {u: (it[:-1], rt[:-1]) for u, (it, rt) in seqs.items()}
    eval_tgt = {u: it[-1] for u, (it, rt) in seqs.items()}
    r_eval = CooccurrenceRetriever().fit([h[0] for h in eval_hist.values()], all_items)
    rng = np.random.default_rng(args.seed)
    users = list(seqs)
    rng.shuffle(users)
    lists = build_examples(eval_hist, eval_tgt, lambda h: r_eval.recommend(h, 20), texts, hist_texts,
                           users=users[: args.pool])
    recall = len(lists) / args.pool
    print(f"eval pool: {len(lists)} of {args.pool} sampled users have the test item in the top-20 "
          f"(recall@20 {recall:.3f})")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "data.pkl", "wb") as f:
        pickle.dump({"train": train_ex, "eval": lists, "recall20": recall, "pool": args.pool, "seed": args.seed}, f)


def train_cmd(args):
    import torch

    from finetune.adapters import AdapterRegistry
    from finetune.training import TrainConfig, train

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    d = pickle.load(open(out / "data.pkl", "rb"))
    from finetune.scorer import PromptConfig

    cfg = TrainConfig(lr=args.lr, grad_accum=args.grad_accum, head=args.head, head_lr=args.head_lr,
                      target_modules=tuple(args.modules.split(",")), lora_layers=args.lora_layers or None,
                      train_negatives=args.negatives, prompt=PromptConfig(answer_turn=args.answer_turn))
    reg = AdapterRegistry(Path(args.home) / "adapters") if args.publish else None
    res = train(args.model, d["train"], cfg, out / f"run-{args.name}", minutes=args.minutes,
                max_examples=args.max_examples, resume=True, registry=reg,
                extra_summary={"dataset": "ml-1m", "split": "leave-last-out; target = last training-period item",
                               "retriever": "cooccurrence top-20, fitted on pre-target histories"},
                log=print)
    print(json.dumps(res, indent=2))


def _score_lists(scorer, lists, bf16=True):
    import torch
    from tqdm.auto import tqdm

    out = []
    with torch.no_grad():
        for ex in tqdm(lists, desc="score", unit="user"):
            out.append(scorer.score(ex.history, ex.candidates, ex.request, bf16=bf16).float().numpy())
    return out


def _z(x):
    x = np.asarray(x, dtype=np.float64)
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


def _ndcgs(score_lists, lists):
    return np.array([ndcg10(ranks_from_scores(s, ex.target)) for s, ex in zip(score_lists, lists)])


def _boot(diff, rng, n=2000):
    idx = rng.integers(0, len(diff), size=(n, len(diff)))
    m = diff[idx].mean(1)
    return [float(np.percentile(m, 2.5)), float(np.percentile(m, 97.5))]


def _dump(path, obj):
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(obj, f)
    os.replace(tmp, path)


def eval_cmd(args):
    import torch

    from finetune.adapters import load_adapter
    from finetune.scorer import build_scorer

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    d = pickle.load(open(out / "data.pkl", "rb"))
    lists = d["eval"]
    test, val = lists[: args.test_users], lists[args.test_users: args.test_users + args.val_users]
    rng = np.random.default_rng(0)
    res = {"protocol": {"dataset": "ml-1m", "split": "leave-last-out by timestamp (test = last item)",
                        "candidates": "co-occurrence retriever top-20 (history excluded)",
                        "users": "sampled (seed %d) among users whose test item is in the top-20" % d["seed"],
                        "retriever_recall@20_on_sample": d["recall20"], "test_users": len(test),
                        "val_users_for_fusion_weight": len(val), "metric": "NDCG@10 among the 20 candidates"},
           "ndcg@10": {}, "lift_vs_retriever": {}}
    retr = [np.array(ex.retriever_scores) for ex in test]
    retr_n = _ndcgs([-np.arange(len(ex.candidates), dtype=float) for ex in test], test)  # retriever order
    res["ndcg@10"]["retriever"] = float(retr_n.mean())
    res["ndcg@10"]["random (expected)"] = float(np.mean([np.mean([ndcg10(r) for r in range(len(ex.candidates))])
                                                         for ex in test]))
    adapter = Path(args.adapter) if args.adapter else out / f"run-{args.name}" / "adapter"
    base_cache = out / "scores-base.pkl"
    lora_cache = out / f"scores-lora-{args.name}.pkl"
    scores = {}
    if args.stage in ("base", "all") and not base_cache.exists():
        _dump(base_cache, _score_lists(build_scorer(args.model, dtype=torch.bfloat16), test))
    if args.stage in ("lora", "all") and not lora_cache.exists():
        t = time.time()
        scorer = load_adapter(adapter, dtype=torch.bfloat16)  # bf16 weights, as in training
        lo = {"test": _score_lists(scorer, test), "val": _score_lists(scorer, val),
              "w_learned": float(scorer.retriever_weight.detach())}
        lo["s_per_user"] = (time.time() - t) / max(len(test) + len(val), 1)
        _dump(lora_cache, lo)
    if args.stage in ("base", "lora"):
        return
    if base_cache.exists():
        scores["base"] = pickle.load(open(base_cache, "rb"))
    key = "lora"
    scores[key] = pickle.load(open(lora_cache, "rb"))
    if "base" in scores:
        b = _ndcgs(scores["base"], test)
        res["ndcg@10"]["base model (no adapter)"] = float(b.mean())
    lo = scores[key]
    lora_n = _ndcgs(lo["test"], test)
    res["ndcg@10"]["LoRA scorer alone"] = float(lora_n.mean())
    wl = lo["w_learned"]
    learned = [s + wl * _z(ex.retriever_scores) for s, ex in zip(lo["test"], test)]
    learned_n = _ndcgs(learned, test)
    res["ndcg@10"][f"LoRA + learned residual weight (w={wl:.2f})"] = float(learned_n.mean())
    grid = [0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 50]
    val_scores = {w: float(_ndcgs([_z(s) + w * _z(ex.retriever_scores) for s, ex in zip(lo["val"], val)], val).mean())
                  for w in grid}
    wbest = max(grid, key=lambda w: val_scores[w])
    fused_n = _ndcgs([_z(s) + wbest * _z(ex.retriever_scores) for s, ex in zip(lo["test"], test)], test)
    res["ndcg@10"][f"LoRA fused with retriever (z-scores, w={wbest} fitted on val users)"] = float(fused_n.mean())
    res["fusion_val_ndcg_by_w"] = val_scores
    for name, arr in (("LoRA alone", lora_n), ("LoRA learned residual", learned_n), ("LoRA fused (val w)", fused_n)):
        diff = arr - retr_n
        res["lift_vs_retriever"][name] = {"mean": float(diff.mean()), "ci95": _boot(diff, rng)}
    if "base" in scores:
        diff = _ndcgs(scores["base"], test) - retr_n
        res["lift_vs_retriever"]["base alone"] = {"mean": float(diff.mean()), "ci95": _boot(diff, rng)}
        diff = lora_n - _ndcgs(scores["base"], test)
        res["lora_alone_vs_base"] = {"mean": float(diff.mean()), "ci95": _boot(diff, rng)}
        diff = lora_n - res["ndcg@10"]["random (expected)"]
        res["lora_alone_vs_random_expected"] = {"mean": float(diff.mean()), "ci95": _boot(diff, rng)}
    res["spearman_lora_vs_retriever_mean"] = float(np.mean([
        np.corrcoef(np.argsort(np.argsort(s)), np.argsort(np.argsort(r)))[0, 1] for s, r in zip(lo["test"], retr)]))
    res["eval_seconds_per_user"] = lo["s_per_user"]
    res["adapter"] = str(adapter)
    mpath = adapter / "metrics.json"
    if mpath.exists():
        res["training"] = json.loads(mpath.read_text())
    print(json.dumps(res, indent=2))
    (out / f"eval-{args.name}.json").write_text(json.dumps(res, indent=2))


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["prepare", "train", "eval"])
    p.add_argument("--home", default=".recsys")
    p.add_argument("--out", default=".recsys/experiments/rerank1")
    p.add_argument("--model", default=".recsys/models/smollm2")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--pool", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--name", default="main")
    p.add_argument("--minutes", type=float, default=25)
    p.add_argument("--max-examples", type=int, default=None)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--grad-accum", type=int, default=2)
    p.add_argument("--head", default="yesno")
    p.add_argument("--head-lr", type=float, default=2e-2)
    p.add_argument("--modules", default="q_proj,k_proj,v_proj,o_proj")
    p.add_argument("--publish", action="store_true")
    p.add_argument("--lora-layers", type=int, default=12)
    p.add_argument("--negatives", type=int, default=None)
    p.add_argument("--answer-turn", action="store_true", help="end the prompt with the assistant-turn start")
    p.add_argument("--adapter", default=None)
    p.add_argument("--test-users", type=int, default=300)
    p.add_argument("--val-users", type=int, default=200)
    p.add_argument("--stage", choices=["base", "lora", "report", "all"], default="all",
                   help="base/lora: only compute and cache that scorer's scores; report: combine cached scores")
    args = p.parse_args(argv)
    {"prepare": prepare, "train": train_cmd, "eval": eval_cmd}[args.cmd](args)


if __name__ == "__main__":
    main()
