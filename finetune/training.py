"""LoRA training of the pointwise reranker with a listwise softmax loss over retrieved candidates.

One example = one user context + K candidates (the target and the retriever's hard negatives).
Logits of the list are `LM score + w * zscore(retriever score)`, with `w` a learned scalar, so the
LM learns a residual on top of the retriever; loss = softmax cross-entropy on the target. Each
list is one row (its user prefix, then its candidates, each seeing only the prefix and itself) and
the `grad_accum` lists of one optimizer step run in one forward, under bf16 autocast. Training is
time/example bounded, shows a tqdm bar, checkpoints atomically (adapter + head + optimizer + step +
example cursor) and resumes from the last checkpoint. The finished
adapter is written as a folder (adapter weights, head, config, data summary, metrics, wall time)
and, when a registry is given, published there as a new version.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from finetune.lora_layers import check_lora_layers
from finetune.scorer import (PromptConfig, RerankScorer, fast_dtype, load_base, prompt_from_dict, write_json_atomic,
                             zscore)

CHECKPOINT = "checkpoint.pt"


@dataclass
class RerankExample:
    """A training / evaluation list for one user. Texts are already rendered ('Title (year) [genres]')."""
    user_id: str
    history: list[str]               # oldest first
    candidates: list[str]
    target: int                      # index of the positive in `candidates`
    retriever_scores: list[float] = field(default_factory=list)
    request: str = ""
    candidate_ids: list[str] = field(default_factory=list)


@dataclass
class TrainConfig:
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    head: str = "yesno"                 # "yesno" (Yes-No logit) or "linear" (trainable head, same init)
    lr: float = 1.5e-3                  # LoRA learning rate
    head_lr: float = 2e-2               # for the linear head and the residual retriever weight
    weight_decay: float = 0.0
    warmup_steps: int = 10
    grad_accum: int = 2                 # examples per optimizer step
    bf16: bool = True                   # bf16 autocast, where the CPU has it natively
    learn_retriever_weight: bool = True
    init_retriever_weight: float = 1.0
    max_candidates: int = 20
    train_negatives: int | None = None   # None: all negatives of the list; n: a random n per example
    lora_layers: int | None = None       # None: LoRA in every layer; n: only the top n layers
    base_bf16: bool = True               # frozen base weights in bf16 where the CPU has it natively (~20% faster)
    checkpoint_every_s: float = 120.0
    seed: int = 0
    prompt: PromptConfig = field(default_factory=PromptConfig)

    def __post_init__(self):
        check_lora_layers(self.lora_layers, "lora_layers")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["target_modules"] = list(self.target_modules)
        return d

    @staticmethod
    def from_dict(d: dict) -> "TrainConfig":
        d = dict(d)
        prompt = prompt_from_dict(d.pop("prompt")) if "prompt" in d else PromptConfig()
        if "target_modules" in d:
            d["target_modules"] = tuple(d["target_modules"])
        known = {k: v for k, v in d.items() if k in TrainConfig.__dataclass_fields__}
        return TrainConfig(prompt=prompt, **known)


def make_lora_scorer(model_dir: Path | str, config: TrainConfig) -> RerankScorer:
    from peft import LoraConfig, get_peft_model

    base, tok = load_base(model_dir, dtype=fast_dtype() if config.base_bf16 else torch.float32)
    extra = {}
    if config.lora_layers:
        n_layers = base.config.num_hidden_layers
        extra["layers_to_transform"] = list(range(max(0, n_layers - config.lora_layers), n_layers))
    lcfg = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.target_modules), bias="none", task_type="CAUSAL_LM", **extra)
    model = get_peft_model(base, lcfg)
    scorer = RerankScorer(model, tok, config.prompt, head=config.head)
    with torch.no_grad():
        scorer.retriever_weight.fill_(config.init_retriever_weight)
    scorer.retriever_weight.requires_grad_(config.learn_retriever_weight)
    return scorer


def load_adapter_weights(scorer: RerankScorer, folder: Path) -> None:
    """Copy a saved adapter's LoRA weights and head into a scorer built with the same LoRA config."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from finetune.adapters import read_head

    state = load_file(str(folder / "adapter" / "adapter_model.safetensors"))
    result = set_peft_model_state_dict(scorer.model, state)
    unexpected = getattr(result, "unexpected_keys", None) or []
    if unexpected:
        raise ValueError(f"{folder}: adapter does not fit this LoRA config ({len(unexpected)} unexpected keys)")
    scorer.load_head_state(read_head(folder))


def example_loss(scorer: RerankScorer, ex: RerankExample, bf16: bool, max_candidates: int = 20,
                 negatives: int | None = None, rng: random.Random | None = None) -> torch.Tensor:
    """Softmax CE of the target over its list; the retriever feature is z-scored over the FULL list."""
    return lists_losses(scorer, [ex], bf16, max_candidates, negatives, [rng or random.Random()])[0]


def lists_losses(scorer: RerankScorer, examples: Sequence[RerankExample], bf16: bool, max_candidates: int = 20,
                 negatives: int | None = None, rngs: Sequence[random.Random] | None = None) -> torch.Tensor:
    """`example_loss` of each list, (n,), all lists scored in one forward (`RerankScorer.score_lists`).
    `rngs[i]` draws list i's sampled negatives."""
    rngs = list(rngs) if rngs is not None else [random.Random() for _ in examples]
    if len(rngs) != len(examples):
        raise ValueError(f"{len(examples)} lists but {len(rngs)} random generators")
    encoded, kept, sizes = [], [], []
    for ex, rng in zip(examples, rngs):
        k = min(len(ex.candidates), max_candidates)
        if not 0 <= ex.target < k:
            raise ValueError(f"example for {ex.user_id}: target index {ex.target} not among {k} candidates")
        keep = list(range(k))
        if negatives is not None and negatives < k - 1:
            negs = [i for i in keep if i != ex.target]
            keep = sorted([ex.target] + rng.sample(negs, negatives))
        encoded.append(scorer.encode(ex.history, [ex.candidates[i] for i in keep], ex.request))
        kept.append(keep)
        sizes.append(k)
    losses = []
    for ex, keep, k, logits in zip(examples, kept, sizes, scorer.score_lists(encoded, bf16=bf16)):
        if ex.retriever_scores:
            r = zscore(torch.tensor(ex.retriever_scores[:k], dtype=torch.float32))[keep]
            logits = logits + scorer.retriever_weight * r
        losses.append(F.cross_entropy(logits.unsqueeze(0), torch.tensor([keep.index(ex.target)])))
    return torch.stack(losses)


def data_summary(examples: Sequence[RerankExample]) -> dict:
    users = sorted({e.user_id for e in examples})
    h = hashlib.sha256("\n".join(users).encode()).hexdigest()[:16]
    return {"examples": len(examples), "users": len(users), "users_sha256_16": h,
            "mean_candidates": float(sum(len(e.candidates) for e in examples) / max(len(examples), 1)),
            "mean_history": float(sum(len(e.history) for e in examples) / max(len(examples), 1)),
            "with_request": sum(1 for e in examples if e.request)}


def _trainable(scorer: RerankScorer):
    lora = [p for n, p in scorer.model.named_parameters() if p.requires_grad]
    extra = [p for p in (scorer.head_vec, scorer.head_bias, scorer.retriever_weight)
             if isinstance(p, torch.nn.Parameter) and p.requires_grad]
    return lora, extra


def _lora_state(scorer: RerankScorer) -> dict:
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(scorer.model).items()}


def _save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def save_adapter_folder(scorer: RerankScorer, folder: Path, config: TrainConfig, model_dir: Path | str,
                        summary: dict, metrics: dict) -> Path:
    """Write adapter weights + head + config + data summary + metrics into `folder` (atomically)."""
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    scorer.model.save_pretrained(str(tmp / "adapter"))
    from finetune.adapters import write_head

    write_head(tmp, scorer.head_state())
    (tmp / "config.json").write_text(json.dumps({"model_dir": str(model_dir), "model_name": Path(model_dir).name,
                                                 "train": config.to_dict()}, indent=2))
    (tmp / "data_summary.json").write_text(json.dumps(summary, indent=2))
    (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, default=float))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def run_fingerprint(config: TrainConfig, examples: Sequence[RerankExample], model_dir: Path | str,
                    init_from: Path | str | None) -> str:
    """What a checkpoint must match to be resumed: settings, model, starting adapter, training lists."""
    digest = hashlib.sha256()
    digest.update(json.dumps([config.to_dict(), Path(model_dir).name, str(init_from or "")], sort_keys=True,
                             default=str).encode())
    for ex in examples:
        digest.update(json.dumps([ex.user_id, ex.history, ex.candidates, ex.target, ex.request,
                                  [round(float(x), 5) for x in ex.retriever_scores]]).encode())
    return digest.hexdigest()


def train(model_dir: Path | str, examples: Sequence[RerankExample], config: TrainConfig | None = None,
          out_dir: Path | str = "rerank-run", minutes: float | None = None, max_examples: int | None = None,
          resume: bool = True, registry=None, extra_summary: dict | None = None, progress: bool = True,
          log: Callable[[str], None] | None = None, init_from: Path | str | None = None) -> dict:
    """Train a LoRA reranker; returns the metrics dict (and 'version'/'adapter_dir').

    `examples` must be built from training-period interactions only. Stops after `max_examples`
    examples seen (default: one pass) or `minutes` of wall time in this call, whichever first.
    With `resume`, continues from `out_dir/checkpoint.pt` (weights, optimizer, step, cursor).
    If `registry` (an AdapterRegistry) is given the adapter is published there as a new version.
    `init_from` (an adapter folder, e.g. the serving version) starts from its LoRA weights and head
    instead of a fresh adapter: the refresh path.
    """
    from tqdm.auto import tqdm

    config = config or TrainConfig()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not examples:
        raise ValueError("no training examples")
    examples = list(examples)
    max_examples = len(examples) if max_examples is None else int(max_examples)
    torch.manual_seed(config.seed)
    scorer = make_lora_scorer(model_dir, config)
    if init_from is not None:
        load_adapter_weights(scorer, Path(init_from))
    scorer.model.train()
    lora, extra = _trainable(scorer)
    groups = [{"params": lora, "lr": config.lr, "weight_decay": config.weight_decay}]
    if extra:
        groups.append({"params": extra, "lr": config.head_lr, "weight_decay": 0.0})
    opt = torch.optim.AdamW(groups)
    base_lrs = [g["lr"] for g in opt.param_groups]
    order = list(range(len(examples)))
    random.Random(config.seed).shuffle(order)

    state = {"step": 0, "seen": 0, "losses": [], "wall_s": 0.0}
    ckpt = out_dir / CHECKPOINT
    fingerprint = run_fingerprint(config, examples, model_dir, init_from)
    saved = torch.load(ckpt, weights_only=True) if resume and ckpt.exists() else None
    if saved is not None and saved.get("fingerprint") != fingerprint:
        if log:
            log(f"{ckpt} belongs to another run (other training lists, settings, model or starting adapter): "
                "starting afresh")
        saved = None
    if saved is not None:
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(scorer.model, saved["lora"])
        scorer.load_head_state(saved["head"])
        opt.load_state_dict(saved["optimizer"])
        state = saved["state"]
        if log:
            log(f"resumed from {ckpt}: {state['seen']} examples, step {state['step']}")

    start = time.time()
    last_ckpt = start
    wall_before = state["wall_s"]

    def checkpoint():
        state["wall_s"] = wall_before + (time.time() - start)
        _save_checkpoint(ckpt, {"lora": _lora_state(scorer), "head": scorer.head_state(),
                                "optimizer": opt.state_dict(), "state": state, "config": config.to_dict(),
                                "fingerprint": fingerprint})

    bar = tqdm(total=max_examples, initial=min(state["seen"], max_examples), disable=not progress,
               desc="rerank-lora", unit="ex")
    opt.zero_grad(set_to_none=True)
    while state["seen"] < max_examples:
        if minutes is not None and time.time() - start > minutes * 60:
            break
        # one optimizer step = the next `grad_accum` lists, scored in one forward
        cursors = range(state["seen"], min(state["seen"] + config.grad_accum, max_examples))
        group = [examples[order[c % len(examples)]] for c in cursors]
        rngs = [random.Random(config.seed * 1_000_003 + c) for c in cursors]
        losses = lists_losses(scorer, group, config.bf16, config.max_candidates, config.train_negatives, rngs)
        (losses.sum() / config.grad_accum).backward()
        state["seen"] += len(group)
        state["losses"].extend(float(x) for x in losses.detach())
        if len(group) == config.grad_accum:
            warm = min(1.0, (state["step"] + 1) / max(config.warmup_steps, 1))
            for g, lr in zip(opt.param_groups, base_lrs):
                g["lr"] = lr * warm
        torch.nn.utils.clip_grad_norm_(lora + extra, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        state["step"] += 1
        recent = state["losses"][-50:]
        bar.update(len(group))
        bar.set_postfix(loss=f"{sum(recent) / len(recent):.3f}", w=f"{float(scorer.retriever_weight.detach()):.2f}")
        if time.time() - last_ckpt > config.checkpoint_every_s:
            checkpoint()
            last_ckpt = time.time()
    bar.close()
    checkpoint()

    losses = state["losses"]
    n = max(1, min(50, len(losses) // 4 or 1))
    wall = state["wall_s"]
    metrics = {"examples_seen": state["seen"], "optimizer_steps": state["step"], "wall_time_s": round(wall, 1),
               "examples_per_s": round(state["seen"] / wall, 3) if wall > 0 else None,
               "loss_start": float(sum(losses[:n]) / n) if losses else None,
               "loss_end": float(sum(losses[-n:]) / n) if losses else None,
               "loss_uniform": math.log(min(config.max_candidates, 1 + config.train_negatives)
                                        if config.train_negatives else config.max_candidates),
               "loss_window": n, "retriever_weight": float(scorer.retriever_weight.detach()),
               "threads": torch.get_num_threads()}
    summary = data_summary(examples)
    summary.update(extra_summary or {})
    final = save_adapter_folder(scorer, out_dir / "adapter", config, model_dir, summary, metrics)
    result = dict(metrics, adapter_dir=str(final))
    if registry is not None:
        result["version"] = registry.publish(final)
    write_json_atomic(out_dir / "result.json", result)
    return result
