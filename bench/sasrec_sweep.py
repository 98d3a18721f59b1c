"""SASRec settings compared on one data set, on the protocol of `recsys eval --protocol loo`.

Each configuration trains with early stopping on validation NDCG@10 (every user's validation
item); its best checkpoint is then scored on every user's test item, ranked against all items
minus the user's history (leave-last-out by timestamp). Configurations run in parallel processes
on one device: a lent GPU, or the CPU for a smoke run. The point is to choose the CPU training
settings of `recsys train-retriever` from whole learning curves, which a CPU cannot afford.

  # here, from the runtime home: the interaction columns of a data set (no text, no model)
  python bench/sasrec_sweep.py --export bench/sweep/ml-1m.npz --dataset ml-1m
  # anywhere with torch: train and score each configuration
  python bench/sasrec_sweep.py --data bench/sweep/ml-1m.npz --device cuda --out DIR --minutes 6
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from assistant.metrics import ndcg_at_k, recall_at_k  # noqa: E402
from data.splits import PROTOCOL, leave_last_out, training_interactions  # noqa: E402
from retrieval.sequential import SASRecConfig, SASRecRetriever, target_ranks, train_sasrec  # noqa: E402

# the settings the sweep varies from (SASRec/CE as published for ML-1M; the defaults before this sweep)
BASE = SASRecConfig(hidden=64, sliding_windows=False, patience=20, val_users=100_000, max_epochs=400)
CONFIGS = {
    "default": {},
    "lr2e-3": {"lr": 2e-3},
    "lr3e-3": {"lr": 3e-3},
    "dropout0.3": {"dropout": 0.3},
    "hidden128": {"hidden": 128},
    "blocks3": {"blocks": 3},
    "sliding": {"sliding_windows": True},
    "lr2e-3_hidden128": {"lr": 2e-3, "hidden": 128},
    "hidden128_sliding": {"hidden": 128, "sliding_windows": True},
    "hidden128_blocks3": {"hidden": 128, "blocks": 3},
    "hidden256": {"hidden": 256},
}


def export(home_dir: Path, dataset: str, path: Path) -> None:
    from data.home import RuntimeHome
    from data.store import Dataset

    users, items, _ratings, times = Dataset(RuntimeHome(home_dir).dataset_db(dataset)).interaction_arrays()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, users=users.astype(str), items=items.astype(str), times=times)
    print(f"{len(users):,} interactions of {dataset} -> {path} ({path.stat().st_size / 1e6:.1f} MB)")


def test_metrics(retriever: SASRecRetriever, split, users: list[str]) -> dict:
    """NDCG@10, HR@10 and recall@20 of each user's test item, input = training + validation items."""
    ranks = target_ranks(retriever, [split.history(u, "test") for u in users], [split.test[u] for u in users])
    if not users:
        return {"ndcg@10": 0.0, "hr@10": 0.0, "recall@20": 0.0}
    return {"ndcg@10": float(ndcg_at_k(ranks, 10).mean()), "hr@10": float(recall_at_k(ranks, 10).mean()),
            "recall@20": float(recall_at_k(ranks, 20).mean())}


def run_one(name: str, overrides: dict, data: Path, device: str, out: Path, minutes: float, max_epochs: int) -> dict:
    import torch

    torch.set_num_threads(1 if device != "cpu" else 2)
    columns = np.load(data)
    split = leave_last_out(columns["users"], columns["items"], columns["times"])
    cfg = replace(BASE, **overrides)
    started = time.monotonic()
    result = train_sasrec(training_interactions(split), split.valid, split.items(), out / name, cfg=cfg,
                          budget_minutes=minutes, max_epochs=min(max_epochs, cfg.max_epochs), resume=False,
                          progress=False, split=split, device=device)
    report = {"config": name, "overrides": overrides, "settings": cfg.to_json(), "device": device,
              "best_validation_ndcg@10": round(result.best_ndcg10, 4), "best_epoch": result.best_epoch,
              "epochs_run": result.epochs_run, "stopped": result.stopped, "wall_s": round(time.monotonic() - started, 1),
              "validation_curve": [round(h.get("val_ndcg10", float("nan")), 4) for h in result.history],
              "test_all_users": {k: round(v, 4) for k, v in
                                 test_metrics(result.retriever, split, split.evaluable_users).items()}}
    (out / f"{name}.json").write_text(json.dumps(report, indent=1))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--export", type=Path, help="write the data set's interaction columns to this .npz")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--home", type=Path, default=Path(".recsys"))
    parser.add_argument("--data", type=Path, help="the .npz written by --export")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("bench/sweep/out"))
    parser.add_argument("--only", default="", help="comma-separated configuration names (default: all)")
    parser.add_argument("--minutes", type=float, default=6.0, help="training budget per configuration")
    parser.add_argument("--max-epochs", type=int, default=400)
    parser.add_argument("--workers", type=int, default=len(CONFIGS))
    args = parser.parse_args()
    if args.export:
        export(args.home, args.dataset, args.export)
        return
    if not args.data:
        parser.error("give --export PATH or --data PATH")
    names = [n for n in args.only.split(",") if n] or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        parser.error(f"unknown configurations {unknown}; known: {sorted(CONFIGS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(n, CONFIGS[n], args.data, args.device, args.out, args.minutes, args.max_epochs) for n in names]
    with mp.get_context("spawn").Pool(min(args.workers, len(jobs))) as pool:
        reports = pool.starmap(run_one, jobs)
    summary = {"protocol": {"split": PROTOCOL, "data": args.data.name, "validation": "every user's validation item",
                            "test": "every evaluable user's test item, input = training + validation items, "
                                    "ranked against all items minus the user's history"},
               "runs": reports}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"{'config':<20}{'epochs':>8}{'best':>6}{'val':>8}{'test N@10':>11}{'HR@10':>8}{'R@20':>8}{'wall s':>8}")
    for r in sorted(reports, key=lambda r: -r["test_all_users"]["ndcg@10"]):
        t = r["test_all_users"]
        print(f"{r['config']:<20}{r['epochs_run']:>8}{r['best_epoch']:>6}{r['best_validation_ndcg@10']:>8.4f}"
              f"{t['ndcg@10']:>11.4f}{t['hr@10']:>8.4f}{t['recall@20']:>8.4f}{r['wall_s']:>8.0f}")


if __name__ == "__main__":
    main()
