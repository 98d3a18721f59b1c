"""Retriever quality on ML-1M: popularity vs SASRec under the leave-last-out protocol.

    python bench/bench_retriever_quality.py [--home .recsys] [--users 1000] [--seed 0]
        [--retrain] [--budget-minutes 25] [--max-epochs 200] [--lr 3e-3] [--threads 1] [--json OUT]

Loads the SASRec checkpoint from HOME/models/sasrec-ml-1m/ (training it first when it is missing
or with --retrain; an interrupted training resumes from its resume.pt), then ranks each sampled
user's test item against ALL items minus the user's history and prints the table, the lifts with
paired-bootstrap 95% CIs, and the training record (wall time, epochs, best validation NDCG@10).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from assistant.evaluation import evaluate, format_report, model_ranker, split_dataset  # noqa: E402
from data.home import RuntimeHome  # noqa: E402
from data.splits import training_interactions  # noqa: E402
from data.store import Dataset  # noqa: E402
from retrieval.sequential import META_FILE, MODEL_FILE, SASRecConfig, SASRecRetriever, train_sasrec  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--home", type=Path, default=ROOT / ".recsys")
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--users", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--retrain", action="store_true", help="train even if a checkpoint exists")
    ap.add_argument("--budget-minutes", type=float, default=25.0)
    ap.add_argument("--max-epochs", type=int, default=200)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model-dir", type=Path, help="checkpoint folder (default HOME/models/sasrec-DATASET)")
    ap.add_argument("--json", type=Path, help="also write the result here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    torch.set_num_threads(args.threads)

    home = RuntimeHome(args.home)
    dataset = Dataset(home.dataset_db(args.dataset))
    t0 = time.perf_counter()
    split = split_dataset(dataset)
    print(f"split {args.dataset}: {len(split.users)} users, {len(split.items())} items "
          f"({time.perf_counter() - t0:.1f}s)")
    folder = args.model_dir or home.models / f"sasrec-{args.dataset}"
    if args.retrain or not (folder / MODEL_FILE).exists():
        cfg = SASRecConfig(lr=args.lr, max_epochs=args.max_epochs)
        res = train_sasrec(training_interactions(split), split.valid, split.items(), folder, cfg,
                           budget_minutes=args.budget_minutes, split=split, resume=not args.retrain)
        print(f"trained: {res.epochs_run} epochs, best val NDCG@10 {res.best_ndcg10:.4f} at epoch "
              f"{res.best_epoch}, {res.wall_s / 60:.1f} min, stopped: {res.stopped}")
    sasrec = SASRecRetriever.load(folder)
    meta = json.loads((folder / META_FILE).read_text())

    t0 = time.perf_counter()
    result = evaluate(split, model_ranker(sasrec, split.items()), item_ids=split.items(), users=args.users,
                      seed=args.seed, dataset=args.dataset)
    result["training"] = {k: meta.get(k) for k in ("total_wall_s", "epochs_run", "epoch", "best_val_ndcg10",
                                                   "stopped", "train_positions", "val_users")}
    result["training"]["config"] = sasrec.config.to_json()
    result["training"]["threads"] = "torch.set_num_threads(1) on a shared 2-core CPU"
    result["eval_seconds"] = round(time.perf_counter() - t0, 1)
    print(format_report(result))
    tr = result["training"]
    print(f"training: {tr['epochs_run']} epochs ({tr['total_wall_s'] or 0:.0f}s wall), best epoch {tr['epoch']}, "
          f"best val NDCG@10 {tr['best_val_ndcg10']:.4f}, stopped: {tr['stopped']}")
    print(json.dumps({k: v for k, v in result.items() if k != "training"} | {"training": {
        k: v for k, v in tr.items() if k != "config"}}, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
