"""Reranker orchestration: training lists never see test items, the fusion weight is fitted as
specified, AUC matches hand-computed values, and `recsys eval` writes the full protocol."""
import json
import math

import numpy as np
import pytest

from assistant.lm_reranking import RerankContext, fit_fusion_weight, split_users, validation_examples
from assistant.offline_eval import auc_with_ci, run_eval
from assistant.retriever_training import sequential_model_dir
from finetune.training import RerankExample


@pytest.fixture(scope="module")
def context(sasrec_100k):
    home, _ = sasrec_100k
    return RerankContext.load(home, "ml-100k", sequential_model_dir(home, "ml-100k"))


def test_training_lists_use_validation_targets_and_never_test_items(context):
    train_users, fit_users = split_users(context, seed=0)
    assert not set(train_users) & set(fit_users)
    examples = validation_examples(context, train_users[:150])
    assert examples
    for ex in examples:
        test_item = context.split.test[ex.user_id]
        assert ex.candidate_ids[ex.target] == context.split.valid[ex.user_id]
        assert test_item not in ex.candidate_ids or ex.candidate_ids.index(test_item) != ex.target
        history_ids = context.split.history(ex.user_id, "valid")
        assert test_item not in history_ids and context.split.valid[ex.user_id] not in history_ids
        assert len(ex.candidates) == 20 and not set(ex.candidate_ids) & set(history_ids)


def _example(retriever_scores, target):
    return RerankExample("u", ["h"], [f"c{i}" for i in range(len(retriever_scores))], target,
                         list(retriever_scores))


def test_fusion_weight_prefers_the_better_signal():
    # the retriever ranks every target first, the LM ranks it last: retriever order must win (w = inf)
    examples = [_example([5, 4, 3, 2, 1], 0) for _ in range(5)]
    lm = [np.array([0.0, 1, 2, 3, 4]) for _ in examples]
    fit = fit_fusion_weight(lm, examples)
    assert fit["weight"] == "inf" and fit["fused_ndcg@10"] == pytest.approx(1.0)
    assert fit["lm_alone_ndcg@10"] == pytest.approx(1 / math.log2(6))
    # the reverse: the LM is right and the retriever wrong, so the LM alone (w = 0) wins
    lm = [np.array([4.0, 0, 1, 2, 3]) for _ in examples]
    examples = [_example([1, 5, 4, 3, 2], 0) for _ in range(5)]
    assert fit_fusion_weight(lm, examples)["weight"] == "0.0"


def test_auc_matches_hand_computation():
    result = auc_with_ci(np.array([0.9, 0.8, 0.4]), np.array([0.5, 0.1]), n_boot=200)
    assert result["auc"] == pytest.approx(5 / 6)  # pairs won: (0.9,*)2 + (0.8,*)2 + (0.4>0.1)1 of 6
    tied = auc_with_ci(np.array([0.5]), np.array([0.5]), n_boot=10)
    assert tied["auc"] == pytest.approx(0.5)
    assert result["ci_low"] <= result["auc"] <= result["ci_high"]


@pytest.mark.slow
def test_eval_writes_protocol_stages_and_chart(sasrec_100k, tmp_path):
    home, _ = sasrec_100k
    out = tmp_path / "eval.json"
    result = run_eval(home, "ml-100k", sequential_model_dir(home, "ml-100k"), users=12, seed=3, model_name="smollm2",
                      adapter_version=None, json_path=out, include_lm=True)
    saved = json.loads(out.read_text())
    assert saved["protocol"]["split"] == "leave-last-out by timestamp"
    assert saved["protocol"]["ranked_against"] == "all items minus user history" and saved["protocol"]["users"] == 12
    assert {"popularity", "retrieval", "rerank_base", "candidate_recall"} <= set(saved["stages"])
    for stage in ("popularity", "retrieval", "rerank_base"):
        assert {"recall@10", "recall@20", "ndcg@10", "ndcg@20", "mrr@10", "coverage@10"} <= set(saved["stages"][stage])
    # a reranker only reorders the retriever's top-20: it cannot change recall@20
    assert saved["stages"]["rerank_base"]["recall@20"] == saved["stages"]["retrieval"]["recall@20"] \
        == saved["stages"]["candidate_recall"]["recall@20"]
    assert "ci_low" in saved["lifts"]["rerank_base"]["ndcg@10"]
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert result["like_dislike_auc"]["rerank_base"]["likes"] >= 1


def test_promotion_compares_lifts_over_the_retriever_not_absolute_ndcg():
    from assistant.lm_reranking import beats_serving, fusion_lift

    old_retriever = {"retriever_ndcg@10": 0.41, "fused_ndcg@10": 0.45}   # +0.04 over a weaker retriever
    new_retriever = {"retriever_ndcg@10": 0.46, "fused_ndcg@10": 0.47}   # +0.01 over a stronger one
    assert fusion_lift(old_retriever) == pytest.approx(0.04)
    assert not beats_serving(new_retriever, old_retriever)
    assert beats_serving(old_retriever, new_retriever)
    assert not beats_serving(new_retriever, new_retriever)  # a tie keeps the serving version


def test_train_command_publishes_a_verified_serving_adapter_that_eval_reranks_with(sasrec_100k, tmp_path):
    from finetune.adapters import AdapterRegistry
    from assistant.lm_reranking import FUSION_FILE, WEIGHT_GRID, train_reranker

    home, _ = sasrec_100k
    result = train_reranker(home, "ml-100k", "smollm2", sequential_model_dir(home, "ml-100k"), minutes=None,
                            max_examples=4, log=lambda *_: None)
    registry = AdapterRegistry.of_home(home)
    version = result["version"]
    assert registry.serving() == version and result["promoted"]
    assert registry.verify(version) == []
    manifest = json.loads((registry.path(version) / "manifest.json").read_text())["files"]
    assert FUSION_FILE in manifest and "adapter/adapter_model.safetensors" in manifest
    assert registry.model_dir(version) == home.models / "smollm2"
    fusion = json.loads((registry.path(version) / FUSION_FILE).read_text())
    assert fusion["weight"] in {"inf" if math.isinf(w) else str(w) for w in WEIGHT_GRID}

    saved = run_eval(home, "ml-100k", sequential_model_dir(home, "ml-100k"), users=10, seed=1, model_name=None,
                     adapter_version=None, json_path=tmp_path / "eval.json", include_lm=True)
    assert saved["adapter"]["version"] == version
    assert {"rerank_lora", "rerank_lora_alone"} <= set(saved["stages"])
    assert saved["stages"]["rerank_lora"]["recall@20"] == saved["stages"]["retrieval"]["recall@20"]
    if fusion["weight"] == "inf":  # the retriever order stands
        assert saved["stages"]["rerank_lora"]["ndcg@10"] == saved["stages"]["retrieval"]["ndcg@10"]
