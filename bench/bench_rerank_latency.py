"""Latency of scoring 20 candidates for one user (shared-prefix KV cache), per serving mode.

Modes: fp32; bf16 autocast (fp32 weights); bf16 autocast with bf16-stored weights; LoRA adapter
unmerged (bf16 autocast); LoRA merged into the weights (bf16 autocast; and with bf16 weights);
int8 dynamic quantisation of the (merged) Linear layers (fp32 activations).
Histories/candidates come from the prepared ML-1M evaluation lists when present, otherwise from
the catalogue-like constants below. Prints a JSON object with p50/p95 seconds per mode.

    python bench/bench_rerank_latency.py --model .recsys/models/smollm2 \
        --adapter .recsys/experiments/rerank1/run-main/adapter --threads 2 --runs 30
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
import torch  # noqa: E402

FALLBACK_HISTORY = ["Fargo (1996)", "Alien (1979)", "Heat (1995)", "The Matrix (1999)", "Toy Story (1995)",
                    "Se7en (1995)", "Casablanca (1942)", "Babe (1995)"]
FALLBACK_CANDS = [f"Some Movie Title Number {i} (19{60 + i}) [Drama, Comedy, Romance]" for i in range(20)]


def _lists(path: Path | None, n: int):
    if path and path.exists():
        d = pickle.load(open(path, "rb"))
        return [(ex.history, ex.candidates[:20]) for ex in d["eval"][:n]]
    return [(FALLBACK_HISTORY, FALLBACK_CANDS)] * n


def _time(scorer, lists, bf16, warmup=2):
    times = []
    with torch.no_grad():
        for i, (h, c) in enumerate(lists):
            t = time.perf_counter()
            scorer.score(h, c, bf16=bf16)
            if i >= warmup:
                times.append(time.perf_counter() - t)
    t = np.array(times)
    return {"p50_s": round(float(np.percentile(t, 50)), 4), "p95_s": round(float(np.percentile(t, 95)), 4),
            "runs": len(times)}


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=".recsys/models/smollm2")
    p.add_argument("--adapter", default=None, help="adapter folder (from training / the registry)")
    p.add_argument("--lists", default=".recsys/experiments/rerank1/data.pkl")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--modes", default="fp32,bf16,bf16_weights,lora_bf16,merged_bf16,merged_bf16_weights,int8")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    from finetune.adapters import load_adapter
    from finetune.scorer import build_scorer

    lists = _lists(Path(args.lists), args.runs + 2)
    modes = args.modes.split(",")
    res = {"model": args.model, "adapter": args.adapter, "threads": args.threads, "candidates": 20,
           "mean_prefix_tokens": None, "mean_candidate_tokens": None, "modes": {}}
    prompt = None
    if args.adapter:  # base modes use the adapter's prompt, so every mode scores the same tokens
        from finetune.scorer import prompt_from_dict

        prompt = prompt_from_dict(json.loads((Path(args.adapter) / "head.json").read_text())["prompt"])
    base = build_scorer(args.model, prompt=prompt)
    pre, suf = zip(*(base.encode(h, c) for h, c in lists))
    res["mean_prefix_tokens"] = float(np.mean([len(x) for x in pre]))
    res["mean_candidate_tokens"] = float(np.mean([np.mean([len(s) for s in x]) for x in suf]))
    if "fp32" in modes:
        res["modes"]["fp32"] = _time(base, lists, False)
    if "bf16" in modes:
        res["modes"]["bf16"] = _time(base, lists, True)
    if "bf16_weights" in modes:
        res["modes"]["bf16_weights"] = _time(build_scorer(args.model, prompt=prompt, dtype=torch.bfloat16), lists, True)
    if args.adapter:
        if "lora_bf16" in modes:
            res["modes"]["lora_bf16"] = _time(load_adapter(args.adapter), lists, True)
        merged = load_adapter(args.adapter, merge=True)
        if "merged_bf16" in modes:
            res["modes"]["merged_bf16"] = _time(merged, lists, True)
        if "merged_bf16_weights" in modes:
            res["modes"]["merged_bf16_weights"] = _time(load_adapter(args.adapter, merge=True, dtype=torch.bfloat16),
                                                        lists, True)
    else:
        merged = base
    if "int8" in modes:
        from torch.ao.quantization import quantize_dynamic

        # the score head vector was already read from lm_head; lm_head itself is never run
        merged.model = quantize_dynamic(merged.model, {torch.nn.Linear}, dtype=torch.qint8)
        res["modes"]["int8_dynamic" + ("_merged" if args.adapter else "")] = _time(merged, lists, False)
    print(json.dumps(res, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
