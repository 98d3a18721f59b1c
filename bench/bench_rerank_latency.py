"""Latency of the LM reranker scoring 20 candidates for one user, per serving mode, in one run.

Protocol: ML-1M leave-last-out, `--users` sampled users (seed 0); each list is the user's test
history (the LM sees the last 8 liked titles) and the SASRec retriever's top 20 for it, rendered
as the reranker renders them. One user at a time (batch of 20 candidates sharing the user's KV
prefix), two warm-up lists not counted, `--threads` torch threads. Modes (the same tokens in every
mode, the adapter's prompt):
  fp32            base model, fp32 weights and compute
  bf16            base model, fp32 weights, bf16 autocast
  bf16_weights    base model, bf16 weights, bf16 autocast   <- what serving loads
  lora_bf16       adapter unmerged (peft), bf16 weights, bf16 autocast   <- serving
  merged_bf16     adapter merged into bf16 weights, bf16 autocast
  int8            adapter merged, int8 dynamic quantisation of every Linear, fp32 activations
Prints p50/p95 seconds per mode and each mode's p50 as a ratio of fp32's (measured in this run).

    .venv/bin/python bench/bench_rerank_latency.py --model smollm2 [--version v0001] \
        [--json bench/results/rerank_latency_smollm2.json]
"""
import _common  # noqa: F401  (offline switches first)

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from _assistant_bench import machine, write_result

REPO = Path(__file__).resolve().parent.parent


def real_lists(home, dataset: str, users: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    from assistant.evaluation import sample_users
    from assistant.lm_reranking import N_CANDIDATES, RerankContext
    from assistant.retriever_training import sequential_model_dir

    context = RerankContext.load(home, dataset, sequential_model_dir(home, dataset))
    out = []
    for user in sample_users(context.split, users, seed):
        history = context.split.history(user, "test")
        candidates = [item for item, _ in context.candidates(history, N_CANDIDATES)]
        out.append((context.liked_texts(user, history), [context.texts[c] for c in candidates]))
    return out


def timed(scorer, lists, bf16: bool, warmup: int = 2) -> dict:
    times = []
    with torch.no_grad():
        for i, (history, candidates) in enumerate(lists):
            start = time.perf_counter()
            scorer.score(history, candidates, bf16=bf16)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    t = np.array(times)
    return {"p50_s": round(float(np.percentile(t, 50)), 4), "p95_s": round(float(np.percentile(t, 95)), 4),
            "lists": len(times)}


def latest_version(registry, model: str) -> str:
    versions = [v.version for v in registry.versions() if v.config.get("model_name") == model]
    if not versions:
        raise SystemExit(f"no {model} adapter in {registry.root}; run `recsys train --model {model}` first")
    return versions[-1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", default=str(REPO / ".recsys"))
    p.add_argument("--dataset", default="ml-1m")
    p.add_argument("--model", choices=("smollm2", "qwen"), default="smollm2")
    p.add_argument("--version", default=None, help="adapter version (default: the latest of --model)")
    p.add_argument("--users", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--modes", default="fp32,bf16,bf16_weights,lora_bf16,merged_bf16,int8")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from data.home import RuntimeHome
    from finetune.adapters import AdapterRegistry, read_head
    from finetune.scorer import build_scorer, prompt_from_dict

    home = RuntimeHome(Path(args.home))
    registry = AdapterRegistry.of_home(home)
    version = args.version or latest_version(registry, args.model)
    model_dir = registry.model_dir(version)
    prompt = prompt_from_dict(read_head(registry.path(version))["prompt"])
    lists = real_lists(home, args.dataset, args.users + 2)
    modes = args.modes.split(",")
    base = build_scorer(model_dir, prompt=prompt)
    prefixes, suffixes = zip(*(base.encode(h, c) for h, c in lists))
    result = {"protocol": {"dataset": args.dataset, "split": "leave-last-out, test histories",
                           "lists": f"{args.users} sampled users (seed 0), SASRec top-20, last 8 liked titles",
                           "measure": "wall time of scoring 20 candidates for one user (shared-prefix KV cache)"},
              "model": args.model, "adapter_version": version, "machine": machine(),
              "mean_prefix_tokens": round(float(np.mean([len(x) for x in prefixes])), 1),
              "mean_candidate_tokens": round(float(np.mean([np.mean([len(s) for s in x]) for x in suffixes])), 1),
              "modes": {}}
    runs = {
        "fp32": lambda: (base, False),
        "bf16": lambda: (base, True),
        "bf16_weights": lambda: (build_scorer(model_dir, prompt=prompt, dtype=torch.bfloat16), True),
        "lora_bf16": lambda: (registry.load(version, dtype=torch.bfloat16), True),
        "merged_bf16": lambda: (registry.load(version, merge=True, dtype=torch.bfloat16), True),
        "int8": lambda: (quantized(registry.load(version, merge=True)), False),
    }
    for mode in modes:
        scorer, bf16 = runs[mode]()
        result["modes"][mode] = timed(scorer, lists, bf16)
        print(f"{mode:14} p50 {result['modes'][mode]['p50_s']:.3f} s  p95 {result['modes'][mode]['p95_s']:.3f} s",
              flush=True)
    if "fp32" in result["modes"]:
        ref = result["modes"]["fp32"]["p50_s"]
        result["p50_ratio_to_fp32"] = {m: round(v["p50_s"] / ref, 3) for m, v in result["modes"].items()}
        print("p50 / fp32 p50:", result["p50_ratio_to_fp32"])
    write_result(args.json, result)


def quantized(scorer):
    from torch.ao.quantization import quantize_dynamic

    # the score head was read from lm_head at load; lm_head itself never runs
    scorer.model = quantize_dynamic(scorer.model, {torch.nn.Linear}, dtype=torch.qint8)
    return scorer


if __name__ == "__main__":
    main()
