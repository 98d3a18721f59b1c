"""Latency of the LM reranker scoring 20 candidates for one user, per serving mode, in one run.

Protocol: ML-1M leave-last-out, `--users` sampled users (seed 0); each list is the user's test
history (the LM sees the last 8 liked titles) and the SASRec retriever's top 20 for it, rendered
as the reranker renders them (the adapter's prompt). One user at a time, `--threads` torch threads.
Every mode is loaded first; then each list is scored once by every mode in turn (the order of the
modes rotates from list to list), so slow spells of a shared machine hit all modes alike. The
first two lists are warm-up and not counted. Modes (the same tokens in every mode):
  fp32            base model, fp32 weights and compute
  bf16            base model, fp32 weights, bf16 autocast
  bf16_weights    base model, bf16 weights, bf16 autocast
  lora_bf16       adapter unmerged (peft), bf16 weights, bf16 autocast
  merged_bf16     adapter merged into bf16 weights, bf16 autocast   <- what serving loads
  merged_padded   merged_bf16 with the previous batching: the 20 candidates as a right-padded
                  batch of 20 rows over a repeated prefix cache (serving packs them in one row)
  int8            adapter merged, int8 dynamic quantisation of every Linear, fp32 activations
  merged_fp32     adapter merged, fp32 weights and compute: the exact reference of the adapter modes
  merged_warm     merged_bf16 for the same user's next turn: the prefix's KV cache is kept between
                  calls (serving keeps 64 users'), primed by one untimed pass over the lists
Prints p50/p95 seconds per mode, each mode's p50 as a ratio of fp32's (measured in this run), and
how faithful each mode is: the per-list Spearman correlation of its 20 LM scores with those of its
exact fp32 reference (fp32 for the base-model modes, merged_fp32 for the adapter modes).

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


def timed_interleaved(scorers: dict, lists, warmup: int = 2) -> dict:
    """{mode: {p50_s, p95_s, lists, spearman_vs_reference}}: every list scored by every mode, mode order
    rotating per list; each mode's scores are compared per list with its fp32 reference when measured."""
    modes = list(scorers)
    times = {m: [] for m in modes}
    scores = {m: [] for m in modes}
    with torch.no_grad():
        for i, (history, candidates) in enumerate(lists):
            for mode in modes[i % len(modes):] + modes[: i % len(modes)]:
                score, bf16 = scorers[mode]
                start = time.perf_counter()
                scores[mode].append(np.asarray(score(history, candidates, bf16), dtype=np.float64))
                if i >= warmup:
                    times[mode].append(time.perf_counter() - start)
    out = {m: {"p50_s": round(float(np.percentile(t, 50)), 4), "p95_s": round(float(np.percentile(t, 95)), 4),
               "lists": len(t)} for m, t in times.items()}
    for m in modes:
        ref = reference_mode(m)
        if ref in scores and ref != m:
            rho = [spearman(a, b) for a, b in zip(scores[m], scores[ref])]
            out[m]["spearman_vs_reference"] = {"reference": ref, "mean": round(float(np.mean(rho)), 4),
                                               "min": round(float(np.min(rho)), 4)}
    return out


def reference_mode(mode: str) -> str:
    """The exact fp32 computation a mode approximates: the base model's, or the merged adapter's."""
    return "fp32" if mode in ("fp32", "bf16", "bf16_weights") else "merged_fp32"


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def padded_score(scorer):
    """The previous batching, kept here as the reference: K right-padded rows over a repeated prefix cache."""
    from finetune.scorer import autocast_context

    def score(history, candidates, bf16):
        prefix, suffixes = scorer.encode(history, candidates)
        k, dec = len(suffixes), scorer.decoder()
        lengths = torch.tensor([len(s) for s in suffixes])
        width = int(lengths.max())
        ids = torch.zeros((k, width), dtype=torch.long)
        mask = torch.zeros((k, width), dtype=torch.long)
        for r, s in enumerate(suffixes):
            ids[r, : len(s)] = torch.tensor(s)
            mask[r, : len(s)] = 1
        p = len(prefix)
        with autocast_context(bf16):
            cache = dec(input_ids=torch.tensor([prefix]), use_cache=True).past_key_values
            cache.batch_repeat_interleave(k)
            attn = torch.cat([torch.ones((k, p), dtype=torch.long), mask], dim=1)
            pos = (p + torch.arange(width)).unsqueeze(0).expand(k, width)
            h = dec(input_ids=ids, attention_mask=attn, position_ids=pos, past_key_values=cache).last_hidden_state
        return scorer._head(h[torch.arange(k), lengths - 1])
    return score


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
    p.add_argument("--modes", default="fp32,bf16,bf16_weights,lora_bf16,merged_fp32,merged_bf16,merged_warm,merged_padded,int8")
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
                           "measure": "wall time of scoring 20 candidates for one user (shared-prefix KV cache), "
                                      "modes interleaved list by list",
                           "threads": args.threads, "prompt": prompt.to_dict()},
              "model": args.model, "adapter_version": version, "machine": machine(),
              "mean_prefix_tokens": round(float(np.mean([len(x) for x in prefixes])), 1),
              "mean_candidate_tokens": round(float(np.mean([np.mean([len(s) for s in x]) for x in suffixes])), 1)}
    builders = {
        "fp32": lambda: (base, False),
        "bf16": lambda: (base, True),
        "bf16_weights": lambda: (build_scorer(model_dir, prompt=prompt, dtype=torch.bfloat16), True),
        "lora_bf16": lambda: (registry.load(version, dtype=torch.bfloat16), True),
        "merged_bf16": lambda: (registry.load(version, merge=True, dtype=torch.bfloat16), True),
        "merged_padded": lambda: (registry.load(version, merge=True, dtype=torch.bfloat16), True),
        "merged_fp32": lambda: (registry.load(version, merge=True), False),
        "merged_warm": lambda: (warm(registry.load(version, merge=True, dtype=torch.bfloat16), lists), True),
        "int8": lambda: (quantized(registry.load(version, merge=True)), False),
    }
    scorers = {}
    for mode in modes:
        scorer, bf16 = builders[mode]()
        score = padded_score(scorer) if mode == "merged_padded" else (
            lambda h, c, b, s=scorer: s.score(h, c, bf16=b).float())
        scorers[mode] = (score, bf16)
    result["modes"] = timed_interleaved(scorers, lists)
    for mode, m in result["modes"].items():
        rho = m.get("spearman_vs_reference")
        print(f"{mode:14} p50 {m['p50_s']:.3f} s  p95 {m['p95_s']:.3f} s"
              + (f"  Spearman vs {rho['reference']}: mean {rho['mean']:.4f}, min {rho['min']:.4f}" if rho else ""),
              flush=True)
    if "fp32" in result["modes"]:
        ref = result["modes"]["fp32"]["p50_s"]
        result["p50_ratio_to_fp32"] = {m: round(v["p50_s"] / ref, 3) for m, v in result["modes"].items()}
        print("p50 / fp32 p50:", result["p50_ratio_to_fp32"])
    write_result(args.json, result)


def warm(scorer, lists):
    scorer.reuse_prefixes = len(lists)
    with torch.no_grad():
        for history, candidates in lists:
            scorer.score(history, candidates, bf16=True)
    return scorer


def quantized(scorer):
    from torch.ao.quantization import quantize_dynamic

    # the score head was read from lm_head at load; lm_head itself never runs
    scorer.model = quantize_dynamic(scorer.model, {torch.nn.Linear}, dtype=torch.qint8)
    return scorer


if __name__ == "__main__":
    main()
