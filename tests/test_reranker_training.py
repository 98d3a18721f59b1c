"""Reranker training: a few steps move a constructed case the right way; checkpoints resume;
training data is built from training-period interactions only (leakage guard); the
co-occurrence retriever that supplies hard negatives behaves."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import SMOLLM2_DIR as MODEL, needs_model


# ---------------------------------------------------------------- retriever + data (no model)
def test_cooccurrence_retriever_prefers_transitions_and_excludes_history():
    from retrieval.cooccurrence import CooccurrenceRetriever

    seqs = [["a", "b", "c"], ["a", "b", "d"], ["x", "a", "b", "c"], ["b", "c"], ["y", "z"]]
    r = CooccurrenceRetriever().fit(seqs)
    recs = r.recommend(["a", "b"], k=3)
    assert recs[0][0] == "c" and all(i not in ("a", "b") for i, _ in recs)
    assert [s for _, s in recs] == sorted((s for _, s in recs), reverse=True)
    assert "d" not in [i for i, _ in r.recommend(["a", "b"], k=5, exclude=["d"])]
    assert r.recommend(["unknown"], k=2)[0][1] == 0.0
    assert len(r.score_all(["a"])) == len(r.item_ids)


def _split():
    from assistant.reranker_data import user_sequences

    users = np.array(["u1"] * 6 + ["u2"] * 5, dtype=object)
    items = np.array(["a", "b", "c", "d", "e", "f", "b", "c", "d", "e", "f"], dtype=object)
    ratings = np.array([5, 5, 2, 4, 5, 5, 4, 4, 5, 5, 1], dtype=np.float32)
    return user_sequences(users, items, ratings)


def test_build_examples_and_leakage_guard():
    from assistant.reranker_data import assert_no_leakage, build_examples, liked_history
    from retrieval.cooccurrence import CooccurrenceRetriever

    seqs = _split()
    assert seqs["u1"][0] == ["a", "b", "c", "d", "e", "f"]
    assert liked_history(*seqs["u1"], n=3) == ["d", "e", "f"]
    assert liked_history(["a", "b"], [1.0, 2.0], n=3) == ["a", "b"]  # nothing liked: fall back
    held = {u: it[-2:] for u, (it, rt) in seqs.items()}            # validation + test
    train_hist = {u: (it[:-3], rt[:-3]) for u, (it, rt) in seqs.items()}
    train_tgt = {u: it[-3] for u, (it, rt) in seqs.items()}
    r = CooccurrenceRetriever().fit([h[0] for h in train_hist.values()], ["a", "b", "c", "d", "e", "f"])
    texts = {i: i.upper() for i in "abcdef"}
    ex = build_examples(train_hist, train_tgt, lambda h: r.recommend(h, 20), texts, require_target=False)
    assert {e.user_id for e in ex} == {"u1", "u2"}
    for e in ex:
        assert e.candidate_ids[e.target] == train_tgt[e.user_id]
        assert e.candidates[e.target] == train_tgt[e.user_id].upper()
        assert len(e.retriever_scores) == len(e.candidates)
    assert_no_leakage({u: (it[:-2], rt[:-2]) for u, (it, rt) in seqs.items()}, held, ex)
    # a history that contains a held-out item, or a held-out training target, is refused
    with pytest.raises(AssertionError):
        assert_no_leakage(seqs, held)
    leaky = build_examples({u: (it[:-1], rt[:-1]) for u, (it, rt) in seqs.items()},
                           {u: it[-1] for u, (it, rt) in seqs.items()},
                           lambda h: r.recommend(h, 20), texts, require_target=False)
    with pytest.raises(AssertionError):
        assert_no_leakage({}, held, leaky)
    # require_target drops users whose target the retriever did not find
    none = build_examples(train_hist, train_tgt, lambda h: [], texts)
    assert none == []


# ---------------------------------------------------------------- training (real model)
HISTORY = ["Alien (1979)", "Aliens (1986)", "The Terminator (1984)"]
CANDS = ["Predator (1987) [Action, Sci-Fi]", "Babe (1995) [Comedy]", "Sense and Sensibility (1995) [Drama]",
         "Clueless (1995) [Comedy, Romance]"]


def _examples(n):
    from finetune.training import RerankExample

    out = []
    for i in range(n):
        order = [(i + j) % len(CANDS) for j in range(len(CANDS))]  # target at varying positions
        cands = [CANDS[j] for j in order]
        out.append(RerankExample(user_id=f"u{i}", history=HISTORY, candidates=cands, target=order.index(0),
                                 retriever_scores=[0.0] * len(cands)))
    return out


@needs_model
def test_few_steps_move_scores_the_right_way_and_resume(tmp_path):
    from finetune.adapters import AdapterRegistry
    from finetune.training import TrainConfig, make_lora_scorer, train

    torch.manual_seed(0)
    cfg = TrainConfig(lr=3e-3, grad_accum=1, lora_layers=4, warmup_steps=1, learn_retriever_weight=False,
                      base_bf16=False, bf16=False, checkpoint_every_s=0.0)
    probe = make_lora_scorer(MODEL, cfg)
    probe.eval()
    with torch.no_grad():
        before = probe.score(HISTORY, CANDS)
    margin_before = float(before[0] - before[1:].max())

    reg = AdapterRegistry(tmp_path / "adapters")
    out = tmp_path / "run"
    res1 = train(MODEL, _examples(8), cfg, out, max_examples=3, registry=None, progress=False)
    assert res1["examples_seen"] == 3 and (out / "checkpoint.pt").exists()
    res = train(MODEL, _examples(8), cfg, out, max_examples=8, resume=True, registry=reg, progress=False)
    assert res["examples_seen"] == 8 and res["optimizer_steps"] == 8  # resumed, not restarted
    assert res["version"] == "v0001" and reg.versions()[0].metrics["examples_seen"] == 8
    folder = Path(res["adapter_dir"])
    for name in ("adapter/adapter_config.json", "head.safetensors", "head.json", "config.json", "data_summary.json", "metrics.json"):
        assert (folder / name).exists(), name
    assert json.loads((folder / "data_summary.json").read_text())["examples"] == 8
    assert res["wall_time_s"] > 0 and res["loss_end"] < res["loss_start"]

    trained = reg.load("v0001")
    with torch.no_grad():
        after = trained.score(HISTORY, CANDS)
    margin_after = float(after[0] - after[1:].max())
    assert margin_after > margin_before + 0.5, (margin_before, margin_after)


@needs_model
def test_a_checkpoint_of_another_run_is_not_resumed(tmp_path):
    """Other training lists (e.g. a retrained retriever's) or other settings start afresh."""
    from finetune.training import TrainConfig, train

    cfg = TrainConfig(grad_accum=1, lora_layers=2, base_bf16=False, bf16=False, checkpoint_every_s=0.0)
    out = tmp_path / "run"
    logged = []
    train(MODEL, _examples(6), cfg, out, max_examples=2, progress=False)
    other_lists = _examples(6)
    other_lists[0].candidates = list(reversed(other_lists[0].candidates))
    res = train(MODEL, other_lists, cfg, out, max_examples=3, progress=False, log=logged.append)
    assert res["examples_seen"] == 3 and res["optimizer_steps"] == 3  # not 2 old + 1 new
    assert any("starting afresh" in line for line in logged)
    other_settings = TrainConfig(grad_accum=1, lora_layers=2, base_bf16=False, bf16=False,
                                 checkpoint_every_s=0.0, lr=1e-3)
    res = train(MODEL, other_lists, other_settings, out, max_examples=4, progress=False)
    assert res["examples_seen"] == 4 and res["optimizer_steps"] == 4
    logged.clear()
    res = train(MODEL, other_lists, other_settings, out, max_examples=5, progress=False, log=logged.append)
    assert res["examples_seen"] == 5 and any("resumed" in line and "4 examples" in line for line in logged)


@needs_model
def test_residual_weight_is_learned_when_retriever_is_informative(tmp_path):
    from finetune.training import RerankExample, TrainConfig, train

    ex = [RerankExample(user_id=f"u{i}", history=HISTORY, candidates=CANDS[:3], target=i % 3,
                        retriever_scores=[1.0 if j == i % 3 else 0.0 for j in range(3)]) for i in range(6)]
    cfg = TrainConfig(lr=0.0, head_lr=0.1, grad_accum=1, lora_layers=1, warmup_steps=1, init_retriever_weight=0.0,
                      train_negatives=1)
    res = train(MODEL, ex, cfg, tmp_path / "run", max_examples=6, progress=False)
    assert res["retriever_weight"] > 0.3


@needs_model
def test_the_lists_of_a_step_in_one_forward_give_the_per_list_losses_and_gradient():
    """One optimizer step scores its `grad_accum` lists together: the losses and the LoRA gradient are
    those of the lists scored one by one (sampled negatives drawn from the same generators)."""
    import random

    from finetune.training import TrainConfig, example_loss, lists_losses, make_lora_scorer

    torch.manual_seed(0)
    scorer = make_lora_scorer(MODEL, TrainConfig(lora_layers=2, base_bf16=False, bf16=False))
    with torch.no_grad():  # a non-zero LoRA B, so that its A matrices get a gradient too
        for name, p in scorer.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    lists = _examples(3)
    lists[1].history = HISTORY[:1]  # rows of other widths
    lists[2].retriever_scores = [float(i) for i in range(len(lists[2].candidates))]

    def lora_grads():
        grads = {n: p.grad.clone() for n, p in scorer.model.named_parameters() if p.grad is not None}
        scorer.zero_grad(set_to_none=True)
        return grads

    alone = [example_loss(scorer, ex, False, 20, 2, random.Random(i)) for i, ex in enumerate(lists)]
    sum(alone).backward()
    one_by_one = lora_grads()
    together = lists_losses(scorer, lists, False, 20, 2, [random.Random(i) for i in range(len(lists))])
    together.sum().backward()
    batched = lora_grads()
    assert torch.allclose(torch.stack(alone).detach(), together.detach(), atol=1e-4)
    assert one_by_one.keys() == batched.keys() and any("lora_A" in n for n in batched)
    for name in batched:
        assert torch.allclose(one_by_one[name], batched[name], atol=1e-4, rtol=1e-3), name
    with pytest.raises(ValueError, match="random generators"):
        lists_losses(scorer, lists, False, 20, 2, [random.Random(0)])


@needs_model
def test_a_step_takes_grad_accum_lists_and_the_last_step_takes_the_rest(tmp_path):
    from finetune.training import TrainConfig, train

    cfg = TrainConfig(grad_accum=3, lora_layers=1, base_bf16=False, bf16=False, checkpoint_every_s=0.0)
    res = train(MODEL, _examples(7), cfg, tmp_path / "run", max_examples=7, progress=False)
    assert res["examples_seen"] == 7 and res["optimizer_steps"] == 3
