"""What one refresh training list costs on THIS CPU, for the knobs that decide how much of the mix a refresh sees.

The refresh has ~5 min to train. This bench times training (forward + backward) per list of SmolLM2
with a fresh LoRA for: the old path (the user prefix run once, its KV cache shared by the candidates,
one list per pass), and the training path (each list one row, prefix then candidates, `n` lists of one
optimizer step in one padded forward) with n = 1, 2 (the default `grad_accum`), 4; LoRA in the top N
layers (backward stops below them) or in every layer; 7 or 3 sampled negatives. The configurations
alternate in one run, so the ratios hold whatever the machine's load.

    .venv/bin/python bench/bench_refresh_step.py [--steps 6] [--top-layers 10] [--threads 2] [--json PATH]
"""
from __future__ import annotations

import _common  # noqa: F401  (offline switches first)

import argparse
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from _assistant_bench import machine, synthetic_rerank_list, write_result

REPO = Path(__file__).resolve().parent.parent


def kv_cache_loss(scorer, example, bf16: bool, negatives: int, rng: random.Random) -> torch.Tensor:
    """The training loss as it was computed before lists were batched: one KV-cache pass per list."""
    from finetune.scorer import zscore

    negs = [i for i in range(20) if i != example.target]
    keep = sorted([example.target] + rng.sample(negs, negatives))
    prefix, suffixes = scorer.encode(example.history, [example.candidates[i] for i in keep])
    logits = scorer.score_ids(prefix, suffixes, bf16=bf16)
    logits = logits + scorer.retriever_weight * zscore(torch.tensor(example.retriever_scores[:20]))[keep]
    return F.cross_entropy(logits.unsqueeze(0), torch.tensor([keep.index(example.target)]))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed rounds per configuration (4 lists each)")
    parser.add_argument("--top-layers", type=int, default=10, help="LoRA only in this many top layers")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from finetune.scorer import native_bf16
    from finetune.training import TrainConfig, lists_losses, make_lora_scorer

    model_dir = REPO / ".recsys" / "models" / "smollm2"
    base = synthetic_rerank_list()
    lists = []
    for n in range(4):  # four lists of slightly different widths, as a real step has
        example = synthetic_rerank_list()
        example.history = base.history[n:]
        lists.append(example)
    bf16 = native_bf16()
    scorers = {layers: make_lora_scorer(model_dir, TrainConfig(bf16=bf16, base_bf16=bf16, lora_layers=layers))
               for layers in (None, args.top_layers)}
    top = args.top_layers
    configs = [("kv-cache", top, 7, 1), ("rows", top, 7, 1), ("rows", top, 7, 2), ("rows", top, 7, 4),
               ("rows", top, 3, 2), ("kv-cache", None, 7, 1), ("rows", None, 7, 2)]
    name = {c: f"{c[0]},lists_per_forward={c[3]},lora_layers={c[1] or 'all'},negatives={c[2]}" for c in configs}
    per_list_s = {c: [] for c in configs}
    for i in range(args.steps + 1):
        for config in (configs if i % 2 == 0 else configs[::-1]):
            path, layers, negatives, per_forward = config
            scorer = scorers[layers]
            start = time.perf_counter()
            for first in range(0, len(lists), per_forward):
                group = lists[first:first + per_forward]
                rngs = [random.Random(i * 10 + first + j) for j in range(len(group))]
                if path == "kv-cache":
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                        loss = kv_cache_loss(scorer, group[0], bf16, negatives, rngs[0])
                else:
                    loss = lists_losses(scorer, group, bf16, 20, negatives, rngs).sum()
                loss.backward()
            if i:  # the first round warms up
                per_list_s[config].append((time.perf_counter() - start) / len(lists))
            scorer.model.zero_grad(set_to_none=True)
    p50 = {name[c]: round(float(np.median(v)), 3) for c, v in per_list_s.items()}
    reference = p50[name[configs[0]]]
    result = {
        "protocol": f"SmolLM2-135M + fresh LoRA (r=8, q/k/v/o), 5-8 history titles, target + 7 or 3 sampled negatives "
                    f"of 20 candidates, forward + backward; seconds per list over {args.steps} timed rounds of 4 lists "
                    f"per configuration, alternating in one run; bf16={bf16}; threads={args.threads}",
        "native_bf16": bf16, "machine": machine(),
        "train_per_list_p50_s": p50,
        "over_kv_cache_one_list": {k: round(v / reference, 2) for k, v in p50.items()},
        "lists_in_270_s": {k: int(270 / v) for k, v in p50.items()},
    }
    for key, value in p50.items():
        print(f"{key:62s} p50 {value:.3f} s/list  {result['over_kv_cache_one_list'][key]:.2f}x the KV-cache path  "
              f"~{result['lists_in_270_s'][key]} lists in 270 s")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
