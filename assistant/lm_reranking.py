"""The LM reranker over the sequential retriever: training data, training, fusion-weight fitting.

Data (leave-last-out split, training period only):
- training examples: history = a user's training sequence, target = their VALIDATION item,
  candidates = the sequential retriever's top-20 for that history (hard negatives), kept only
  when the retriever found the target naturally (no inserted positives);
- fit users (a disjoint, seeded subset) set the fusion weight w of
  serving score = LM score + w * zscore(retrieval position), by NDCG@10 on their validation items
  (the position, not the retriever's score: it is all a feedback list stores and what serving passes);
  w = inf (retriever order) is allowed, so the fused reranker never does worse than the
  retriever on those held-out users;
- test items never reach training or fitting (`assert_no_leakage`).
"""
from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

import numpy as np

from assistant.feedback_training import by_position
from assistant.metrics import ndcg_at_k, zscore
from assistant.reranker_data import assert_no_leakage, build_examples, item_texts, liked_history
from data.home import RuntimeHome
from data.splits import leave_last_out
from data.store import Dataset
from finetune.adapters import AdapterRegistry, load_adapter
from finetune.scorer import fast_dtype
from finetune.training import RerankExample, TrainConfig, train
from retrieval.sequential import MODEL_FILE, SASRecRetriever

N_CANDIDATES = 20
FIT_USERS = 1000  # at most a fifth of the users
WEIGHT_GRID = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, math.inf)
FUSION_FILE = "fusion.json"


@dataclass
class RerankContext:
    dataset: Dataset
    split: object
    ratings: dict[str, dict[str, float]]
    texts: dict[str, str]
    sequential: SASRecRetriever

    @staticmethod
    def load(home: RuntimeHome, dataset_name: str, sequential_dir: Path) -> "RerankContext":
        if not (sequential_dir / MODEL_FILE).exists():
            raise FileNotFoundError(f"no sequential retriever at {sequential_dir}; run `recsys train-retriever` first")
        dataset = Dataset(home.dataset_db(dataset_name))
        users, items, ratings, times = dataset.interaction_arrays()
        split = leave_last_out(users, items, times)
        by_user: dict[str, dict[str, float]] = {}
        for user, item, rating in zip(users, items, ratings):
            by_user.setdefault(str(user), {})[str(item)] = float(rating)
        return RerankContext(dataset, split, by_user, item_texts(dataset.items()), SASRecRetriever.load(sequential_dir))

    @cached_property
    def item_index(self) -> dict[str, int]:
        """Item id -> column of the sequential retriever's scores."""
        return {x: i for i, x in enumerate(self.sequential.item_ids)}

    def liked_texts(self, user: str, history: list[str]) -> list[str]:
        """The LM's view of a history: texts of the last liked items (see `liked_history`)."""
        ratings = [self.ratings[user].get(i, 0.0) for i in history]
        return [self.texts[i] for i in liked_history(history, ratings)]

    def candidates(self, history: list[str], k: int = N_CANDIDATES) -> list[tuple[str, float]]:
        """The sequential retriever's top-k for a history, history removed."""
        scores = self.sequential.score_all([history])[0]
        index = self.item_index
        for item in history:
            if item in index:
                scores[index[item]] = -np.inf
        top = np.argsort(-scores, kind="stable")[:k]
        return [(self.sequential.item_ids[i], float(scores[i])) for i in top]

    def histories(self, users: list[str], stage: str) -> dict[str, tuple[list[str], list[float]]]:
        out = {}
        for user in users:
            items = self.split.history(user, stage)
            out[user] = (items, [self.ratings[user].get(i, 0.0) for i in items])
        return out


def split_users(context: RerankContext, seed: int = 0) -> tuple[list[str], list[str]]:
    users = sorted(context.split.valid)
    random.Random(seed).shuffle(users)
    n_fit = min(FIT_USERS, len(users) // 5)
    return users[n_fit:], users[:n_fit]


def validation_examples(context: RerankContext, users: list[str], require_target: bool = True) -> list[RerankExample]:
    histories = context.histories(users, "valid")
    examples = build_examples(histories, {u: context.split.valid[u] for u in users}, context.candidates,
                              context.texts, k=N_CANDIDATES, require_target=require_target, users=users)
    assert_no_leakage(histories, {u: [context.split.test[u]] for u in users if u in context.split.test}, examples)
    return examples


def fused_list_rank(lm_scores: np.ndarray, example: RerankExample, weight: float) -> int:
    """The target's rank (1 = first) under LM + weight * z(retriever) (an infinite weight: the retriever order)."""
    z = zscore(example.retriever_scores)
    scores = z if math.isinf(weight) else np.asarray(lm_scores, dtype=np.float64) + weight * z
    return 1 + int((scores > scores[example.target]).sum())


def fused_list_ndcg(lm_scores: np.ndarray, example: RerankExample, weight: float, k: int = 10) -> float:
    """NDCG@k of the list's target under LM + weight * z(retriever) (an infinite weight: the retriever order)."""
    return float(ndcg_at_k(np.array([fused_list_rank(lm_scores, example, weight)]), k)[0])


def fusion_table(lm_scores: list[np.ndarray], examples: list[RerankExample]) -> dict[str, float]:
    """Mean NDCG@10 of LM + w * z(retriever) on the examples for each w of the grid ("inf": retriever order)."""
    return {"inf" if math.isinf(w) else str(w): float(np.mean([fused_list_ndcg(lm, e, w)
                                                                for lm, e in zip(lm_scores, examples)]))
            for w in WEIGHT_GRID}


def fit_fusion_weight(lm_scores: list[np.ndarray], examples: list[RerankExample],
                      allowed: Callable[[str], bool] | None = None) -> dict:
    """Choose w maximising mean NDCG@10 of LM + w * z(retriever) on the given examples, among the
    weights `allowed` accepts (the retriever order, "inf", is always allowed)."""
    table = fusion_table(lm_scores, examples)
    eligible = [w for w in table if w == "inf" or allowed is None or allowed(w)]
    best = max(eligible, key=lambda key: (table[key], key == "inf"))
    return {"weight": best, "ndcg@10_by_weight": table, "retriever_ndcg@10": table["inf"],
            "lm_alone_ndcg@10": table["0.0"], "fused_ndcg@10": table[best], "fit_lists": len(examples)}


def fusion_lift(fusion: dict) -> float:
    """What an adapter adds on its fit users: fused NDCG@10 minus the retriever's, both on the same lists."""
    return float(fusion["fused_ndcg@10"]) - float(fusion["retriever_ndcg@10"])


def beats_serving(new: dict, serving: dict) -> bool:
    """Promotion rule of `recsys train`: a larger lift over the retriever on the fit users. Lifts, not
    absolute NDCG: the serving adapter's numbers may come from an older (weaker or stronger) retriever."""
    return fusion_lift(new) > fusion_lift(serving)


def score_examples(scorer, examples: list[RerankExample], bf16: bool = True, progress: bool = True) -> list[np.ndarray]:
    from tqdm import tqdm

    return [np.asarray(scorer.rerank_scores(e.history, e.candidates, bf16=bf16), dtype=np.float64)
            for e in tqdm(examples, desc="score", unit="list", disable=not progress)]


def train_reranker(home: RuntimeHome, dataset_name: str, model_name: str, sequential_dir: Path, minutes: float,
                   max_examples: int | None, seed: int = 0, log=print) -> dict:
    started = time.perf_counter()
    model_dir = home.models / model_name
    if not (model_dir / "config.json").exists():
        raise FileNotFoundError(f"model {model_name!r} is not converted; run `recsys setup --models {model_name}`")
    context = RerankContext.load(home, dataset_name, sequential_dir)
    train_users, fit_users = split_users(context, seed)
    log(f"building training lists from {len(train_users)} users (validation targets, retriever top-{N_CANDIDATES})")
    # the retriever feature is the candidates' position, as serving and the refresh pass it
    examples = [by_position(x) for x in validation_examples(context, train_users)]
    random.Random(seed).shuffle(examples)
    fit = [by_position(x) for x in validation_examples(context, fit_users)]
    log(f"{len(examples)} training lists (target found by the retriever), {len(fit)} fit lists")
    registry = AdapterRegistry.of_home(home)
    run_dir = home.root / "runs" / f"rerank-{dataset_name}-{model_name}"
    result = train(model_dir, examples, TrainConfig(seed=seed), out_dir=run_dir, minutes=minutes,
                   max_examples=max_examples,
                   extra_summary={"dataset": dataset_name, "split": "leave-last-out, validation items as targets",
                                  "candidates": f"SASRec top-{N_CANDIDATES}, history removed",
                                  "retriever_feature": "position in the SASRec list"}, log=log)
    import torch

    folder = Path(result["adapter_dir"])
    scorer = load_adapter(folder, model_dir=model_dir, dtype=fast_dtype())
    fusion = fit_fusion_weight(score_examples(scorer, fit), fit)
    fusion["fit_users"] = "seeded disjoint subset, validation items"
    (folder / FUSION_FILE).write_text(json.dumps(fusion, indent=2))
    version = registry.publish(folder)  # the manifest covers the fusion weight too
    current = registry.serving()
    current_fusion = None
    if current and (registry.path(current) / FUSION_FILE).exists():
        current_fusion = json.loads((registry.path(current) / FUSION_FILE).read_text())
    promoted = current is None or current_fusion is None or beats_serving(fusion, current_fusion)
    current_lift = fusion_lift(current_fusion) if current_fusion else None
    if promoted:
        registry.set_serving(version)
    wall = time.perf_counter() - started
    log(f"adapter {version}: training {result['wall_time_s'] / 60:.1f} min, {result['examples_seen']} examples; "
        f"fit users NDCG@10 retriever {fusion['retriever_ndcg@10']:.4f}, LM alone {fusion['lm_alone_ndcg@10']:.4f}, "
        f"fused (w={fusion['weight']}) {fusion['fused_ndcg@10']:.4f}; "
        f"{'now serving' if promoted else f'not promoted (serving {current} adds {current_lift:+.4f})'}; "
        f"total {wall / 60:.1f} min")
    return {**result, "version": version, "fusion": fusion, "promoted": promoted, "total_wall_s": round(wall, 1)}
