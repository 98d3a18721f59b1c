"""What one refresh training list costs on THIS CPU, for the knobs that could make one pass cover the mix.

The refresh trains on ~270 feedback + ~270 replay lists but, in its ~4.2 min of training, sees only
~100 of them (~2.3-2.7 s per list, fp32 on an AVX2 CPU). This bench times one training step (forward
+ backward of one list) of SmolLM2 with a fresh LoRA for: LoRA in every layer or only the top N
layers (backward stops below them), and 7 or 3 sampled negatives. The configurations alternate in
one run, so the ratios hold whatever the machine's load.

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

from _assistant_bench import machine, synthetic_rerank_list, write_result

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per configuration")
    parser.add_argument("--top-layers", type=int, default=10, help="LoRA only in this many top layers")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from finetune.scorer import native_bf16
    from finetune.training import TrainConfig, example_loss, make_lora_scorer

    model_dir = REPO / ".recsys" / "models" / "smollm2"
    example = synthetic_rerank_list()
    bf16 = native_bf16()
    scorers = {layers: make_lora_scorer(model_dir, TrainConfig(bf16=bf16, base_bf16=bf16, lora_layers=layers))
               for layers in (None, args.top_layers)}
    configs = [(layers, negatives) for layers in scorers for negatives in (7, 3)]
    name = {c: f"lora_layers={c[0] or 'all'},negatives={c[1]}" for c in configs}
    step_s = {c: [] for c in configs}
    for i in range(args.steps + 1):
        for config in (configs if i % 2 == 0 else configs[::-1]):
            scorer = scorers[config[0]]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                start = time.perf_counter()
                loss = example_loss(scorer, example, bf16, 20, config[1], random.Random(i))
                loss.backward()
                if i:  # the first round warms up
                    step_s[config].append(time.perf_counter() - start)
            scorer.model.zero_grad(set_to_none=True)
    p50 = {name[c]: round(float(np.median(v)), 3) for c, v in step_s.items()}
    reference = p50[name[(None, 7)]]
    result = {
        "protocol": f"SmolLM2-135M + fresh LoRA (r=8, q/k/v/o), 8 history titles, target + 7 or 3 sampled negatives "
                    f"of 20 candidates, one forward + backward per list; {args.steps} timed steps per configuration, "
                    f"alternating in one run; bf16={bf16}",
        "native_bf16": bf16, "machine": machine(),
        "train_step_p50_s": p50,
        "over_refresh_default": {k: round(v / reference, 2) for k, v in p50.items()},
        "lists_in_250_s": {k: int(250 / v) for k, v in p50.items()},
    }
    for key, value in p50.items():
        print(f"{key:32s} p50 {value:.3f} s/list  {result['over_refresh_default'][key]:.2f}x the refresh default  "
              f"~{result['lists_in_250_s'][key]} lists in 250 s")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
