"""bf16 against fp32 for the LM reranker on THIS CPU: scoring 20 candidates and one LoRA training step.

bf16 weights + bf16 autocast are ~1.8x faster than fp32 on a CPU with native bf16 (AVX512-BF16),
and several times SLOWER on one without it (AVX2 only), where oneDNN's bf16 path is absent and
matrix products run an emulated kernel. The product picks bf16 only where
`finetune.scorer.native_bf16()` says the CPU has it; this bench measures both modes in one run,
alternating, so the ratio holds whatever the machine's load.

    .venv/bin/python bench/bench_cpu_dtype.py [--lists 6] [--steps 2] [--threads 2] [--json PATH]
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
    parser.add_argument("--lists", type=int, default=6, help="scoring calls per mode")
    parser.add_argument("--steps", type=int, default=2, help="training steps per mode")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from finetune.scorer import native_bf16
    from finetune.training import TrainConfig, example_loss, make_lora_scorer

    model_dir = REPO / ".recsys" / "models" / "smollm2"
    example = synthetic_rerank_list()
    modes = {}
    for name, bf16 in (("fp32", False), ("bf16", True)):
        config = TrainConfig(bf16=bf16, base_bf16=bf16)
        scorer = make_lora_scorer(model_dir, config)
        if bf16:  # forced, whatever native_bf16 says: the bench measures what the product avoids
            scorer.model.to(torch.bfloat16)
        modes[name] = (scorer, config)
    score_s = {name: [] for name in modes}
    step_s = {name: [] for name in modes}

    def autocast(bf16: bool):
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    for i in range(args.lists + 1):
        for name in (list(modes) if i % 2 == 0 else list(modes)[::-1]):
            scorer, config = modes[name]
            with torch.no_grad(), autocast(config.bf16):
                start = time.perf_counter()
                scorer.rerank_scores(example.history, example.candidates, bf16=False)
                if i:  # the first call of each mode warms up
                    score_s[name].append(time.perf_counter() - start)
    for i in range(args.steps):
        for name in (list(modes) if i % 2 == 0 else list(modes)[::-1]):
            scorer, config = modes[name]
            with autocast(config.bf16):
                start = time.perf_counter()
                loss = example_loss(scorer, example, False, 20, 7, random.Random(i))
                loss.backward()
                step_s[name].append(time.perf_counter() - start)
            scorer.model.zero_grad(set_to_none=True)
    result = {
        "protocol": "SmolLM2 + fresh LoRA, 8 history titles, 20 candidates packed (~390 tokens) for scoring, "
                    "8 of them for a training step; both modes alternate in one run",
        "native_bf16": native_bf16(), "machine": machine(),
        "score_p50_s": {name: round(float(np.median(v)), 3) for name, v in score_s.items()},
        "train_step_p50_s": {name: round(float(np.median(v)), 3) for name, v in step_s.items()},
    }
    result["bf16_over_fp32"] = {
        "score": round(result["score_p50_s"]["bf16"] / result["score_p50_s"]["fp32"], 2),
        "train_step": round(result["train_step_p50_s"]["bf16"] / result["train_step_p50_s"]["fp32"], 2)}
    print(f"native bf16: {result['native_bf16']}; scoring p50 fp32 {result['score_p50_s']['fp32']} s, bf16 "
          f"{result['score_p50_s']['bf16']} s ({result['bf16_over_fp32']['score']}x); training step p50 fp32 "
          f"{result['train_step_p50_s']['fp32']} s, bf16 {result['train_step_p50_s']['bf16']} s "
          f"({result['bf16_over_fp32']['train_step']}x)")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
