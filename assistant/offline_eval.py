"""`recsys eval`: the offline protocol of assistant.evaluation with every stage in one run.

Stages on the same sampled users: popularity, retrieval (the sequential retriever),
rerank_base (the LM without adapter, Yes-No score alone), rerank_lora_alone (the adapter's LM
score alone), rerank_lora (the serving score: LM + fitted w x z(retrieval position)), plus
candidate_recall@20. Also the held-out like/dislike AUC of the LM scores: each sampled user's
TEST item, rated >= 4 (like) against <= 2 (dislike), scored from the training history, pooled
over users (TALLRec's measure), with a bootstrap CI.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm

from assistant.evaluation import evaluate, model_ranker, sample_users
from assistant.feedback_training import position_scores
from assistant.lm_reranking import FUSION_FILE, RerankContext
from assistant.lm_serving import weight_value
from assistant.metrics import zscore
from data.home import RuntimeHome


def lm_reranker(context: RerankContext, user_by_history: dict[tuple, str], scorer, weight: float | None,
                label: str, cache: dict | None = None, target_scores: dict | None = None):
    """A Reranker for assistant.evaluation: (histories, candidate ids) -> scores. Stages sharing a
    scorer share `cache`, so the LM runs once per user for 'alone' and 'fused'. The user's test item
    is scored in the same batch (a candidate's score does not depend on the others, see
    finetune.scorer), only to fill `target_scores` for the like/dislike AUC: it never enters a ranking."""
    cache = {} if cache is None else cache

    def rerank(histories, candidates):
        out = np.zeros((len(histories), len(candidates[0]) if candidates else 0))
        for row, (history, cands) in enumerate(tqdm(list(zip(histories, candidates)), desc=label, unit="user")):
            user = user_by_history[tuple(history)]
            texts = context.liked_texts(user, history)
            key = (tuple(history), tuple(cands))
            if key not in cache:
                target = context.split.test.get(user)
                extra = [target] if target is not None and target not in cands else []
                scores = np.asarray(scorer.rerank_scores(texts, [context.texts[c] for c in list(cands) + extra],
                                                         bf16=True))
                cache[key] = scores[: len(cands)]
                if target is not None and target_scores is not None:
                    target_scores[user] = float(scores[-1] if extra else scores[list(cands).index(target)])
            lm = cache[key]
            if weight is None:
                out[row] = lm
            else:
                retr = context.sequential.score_all([history])[0][[context.item_index[c] for c in cands]]
                # candidates come best first (metrics.top_k), so their position is their index
                position = np.asarray(position_scores(len(cands)))
                out[row] = zscore(retr) if math.isinf(weight) else lm + weight * zscore(position)
        return out

    return rerank


def auc_with_ci(pos: np.ndarray, neg: np.ndarray, n_boot: int = 1000, seed: int = 0) -> dict:
    def auc(p, n):
        if len(p) == 0 or len(n) == 0:
            return float("nan")
        allv = np.concatenate([p, n])
        ranks = np.argsort(np.argsort(allv, kind="stable"), kind="stable").astype(np.float64) + 1
        # average ranks for ties
        for value in np.unique(allv):
            mask = allv == value
            if mask.sum() > 1:
                ranks[mask] = ranks[mask].mean()
        return float((ranks[: len(p)].sum() - len(p) * (len(p) + 1) / 2) / (len(p) * len(n)))

    rng = np.random.default_rng(seed)
    boots = [auc(rng.choice(pos, len(pos)), rng.choice(neg, len(neg))) for _ in range(n_boot)]
    return {"auc": auc(pos, neg), "ci_low": float(np.percentile(boots, 2.5)),
            "ci_high": float(np.percentile(boots, 97.5)), "likes": int(len(pos)), "dislikes": int(len(neg))}


def like_dislike_auc(context: RerankContext, target_scores: dict[str, float]) -> dict:
    """AUC of the LM's scores of the users' test items: rated >= 4 (like) against <= 2 (dislike)."""
    pos, neg = [], []
    for user, score in target_scores.items():
        rating = context.ratings[user].get(context.split.test[user])
        if rating is not None and rating >= 4:
            pos.append(score)
        elif rating is not None and rating <= 2:
            neg.append(score)
    return auc_with_ci(np.array(pos), np.array(neg))


def chart(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(result["stages"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, metric in zip(axes, ("ndcg@10", "recall@10")):
        values = [result["stages"][s][metric] for s in stages]
        lows, highs = [], []
        for s in stages:
            lift = result["lifts"].get(s, {}).get(metric)
            base = result["stages"]["retrieval"][metric]
            if lift:
                lows.append(max(0.0, result["stages"][s][metric] - (base + lift["ci_low"])))
                highs.append(max(0.0, (base + lift["ci_high"]) - result["stages"][s][metric]))
            else:
                lows.append(0.0)
                highs.append(0.0)
        ax.bar(stages, values, yerr=[lows, highs], capsize=4, color="#4C72B0")
        ax.set_title(f"{metric} (bars: 95% CI of the paired lift vs retrieval)")
        ax.tick_params(axis="x", rotation=30)
    p = result["protocol"]
    fig.suptitle(f"{p['dataset']}, {p['split']}, ranked against {p['ranked_against']}, {p['users']} users, seed {p['seed']}",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_eval(home: RuntimeHome, dataset_name: str, sequential_dir: Path, users: int, seed: int,
             model_name: str | None, adapter_version: str | None, json_path: Path | None,
             include_lm: bool = True, include_base: bool = True) -> dict:
    from finetune.adapters import AdapterRegistry
    from finetune.scorer import build_scorer, fast_dtype

    context = RerankContext.load(home, dataset_name, sequential_dir)
    chosen = sample_users(context.split, users, seed)
    user_by_history = {tuple(context.split.history(u, "test")): u for u in chosen}
    rerankers = {}
    extra = {}
    target_scores: dict[str, dict[str, float]] = {}
    if include_lm:
        registry = AdapterRegistry.of_home(home)
        version = adapter_version or registry.serving() or (registry.versions()[-1].version if registry.versions() else None)
        lora = registry.load(version, dtype=fast_dtype()) if version else None
        model_dir = registry.model_dir(version) if version else home.models / (model_name or "smollm2")
        base = build_scorer(model_dir, dtype=fast_dtype()) if include_base or lora is None else None
        if base is not None:
            target_scores["rerank_base"] = {}
            rerankers["rerank_base"] = lm_reranker(context, user_by_history, base, None, "rerank_base",
                                                   target_scores=target_scores["rerank_base"])
        if lora is not None:
            fusion = json.loads((registry.path(version) / FUSION_FILE).read_text())
            weight = weight_value(fusion["weight"])
            shared: dict = {}
            target_scores["rerank_lora"] = {}
            rerankers["rerank_lora_alone"] = lm_reranker(context, user_by_history, lora, None, "rerank_lora_alone",
                                                         shared, target_scores["rerank_lora"])
            rerankers["rerank_lora"] = lm_reranker(context, user_by_history, lora, weight, "rerank_lora", shared)
            extra["adapter"] = {"version": version, "fusion_weight": fusion["weight"], "model_dir": str(model_dir)}
    result = evaluate(context.split, model_ranker(context.sequential, context.sequential.item_ids),
                      item_ids=context.sequential.item_ids, rerankers=rerankers, users=users, seed=seed,
                      dataset=dataset_name)
    result["stages"]["candidate_recall"] = {"recall@20": result["candidates"]["candidate_recall@20"]}
    if target_scores:
        extra["like_dislike_auc"] = {name: like_dislike_auc(context, scores) for name, scores in target_scores.items()}
    result["protocol"]["retrieval"] = "SASRec (full-softmax CE), trained on the training period"
    result["protocol"]["rerank_scores"] = ("rerank_base / rerank_lora_alone: LM Yes-No score alone; rerank_lora: "
                                           "LM + w x zscore(retrieval position), as served, w fitted on disjoint users' validation items")
    result["protocol"]["auc"] = "test items rated >=4 vs <=2 of the sampled users, LM score alone, pooled"
    result.update(extra)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2))
        plot_stages = {k: v for k, v in result["stages"].items() if k != "candidate_recall"}
        chart({**result, "stages": plot_stages}, json_path.with_suffix(".png"))
    return result
