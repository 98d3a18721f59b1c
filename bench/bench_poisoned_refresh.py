"""The gate at product scale on poisoned feedback: random likes, the real refresh, its decision.

Protocol (ML-1M, seed 0):
1. A private copy of the home (Chroma, data set and embedding cache copied; models linked), no
   adapter served, an empty feedback store. `--sequential DIR`: a SASRec checkpoint (for instance a
   temporal world's, cached under `.recsys/eval/temporal-sasrec/`) served in that copy, its item vectors
   published into the copied Chroma, so training replays retriever lists and the gate's replay lists
   are hybrid ones, as in the temporal protocol.
2. Poison: `--users` known users drawn by the seed, each with `--likes` thumbs-up; every like is on a
   random item of a random 'shown' list of 20 catalogue items (the list stored with it, as the UI does).
   That is about as many feedback lists as the temporal protocol's stream gives a refresh (~2,000).
3. `recsys refresh --threads T` on that home, default budgets and gate (the process the serve
   scheduler starts, without nice). Prints the gate's decision with its held-out and replay numbers,
   and with `--json PATH` keeps the gate's scored lists beside it (`<stem>_gate_lists.json`).
The issue's claim is the decision (poison rejected, nothing served). The replay numbers say what a
rule judging on the gate's replay lists would have seen from a candidate that learned nothing from feedback.

    .venv/bin/python bench/bench_poisoned_refresh.py [--users 500] [--likes 4] [--sequential DIR] [--json PATH]
"""
import _common  # noqa: F401  (offline switches first)

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _assistant_bench import machine, write_result
from assistant.refresh import GATE_LISTS_FILE
from data.feedback import LIKE, FeedbackEvent, FeedbackStore
from finetune.adapters import AdapterRegistry
from data.home import RuntimeHome
from data.store import Dataset
from ui.config import load_settings

SHOWN = 20


def private_home(home: RuntimeHome, dataset: str, tmp: Path, sequential: Path | None) -> RuntimeHome:
    copy = RuntimeHome(tmp / "home")
    copy.root.mkdir(parents=True)
    shutil.copytree(home.chroma, copy.chroma)
    copy.dataset_db(dataset).parent.mkdir(parents=True)
    shutil.copy2(home.dataset_db(dataset), copy.dataset_db(dataset))
    if home.embedding_cache().exists():
        copy.embedding_cache().parent.mkdir(parents=True)
        shutil.copy2(home.embedding_cache(), copy.embedding_cache())
    copy.models.mkdir()
    for model in home.models.iterdir():
        if model.name != f"sasrec-{dataset}":
            os.symlink(model, copy.models / model.name)
    if sequential is not None:
        from assistant.retriever_training import publish_sequential_vectors, sequential_model_dir
        from retrieval.sequential import SASRecRetriever
        from retrieval.vector_store import ChromaLocation, open_client

        shutil.copytree(sequential, sequential_model_dir(copy, dataset))
        retriever = SASRecRetriever.load(sequential_model_dir(copy, dataset))
        published = publish_sequential_vectors(Dataset(copy.dataset_db(dataset)), retriever,
                                               open_client(ChromaLocation(path=copy.chroma)))
        print(f"serving SASRec from {sequential}: {published} item vectors published")
    return copy


def poison(home: RuntimeHome, dataset: str, n_users: int, likes: int, seed: int) -> dict:
    rng = random.Random(seed)
    data = Dataset(home.dataset_db(dataset))
    items = sorted(i.item_id for i in data.items())
    users = rng.sample(sorted(data.user_ids()), n_users)
    store = FeedbackStore(home.feedback_db())
    for user in users:
        for n in range(likes):
            shown = rng.sample(items, SHOWN)
            position = rng.randrange(SHOWN)
            store.record(FeedbackEvent(dataset, user, f"poison-{n}", shown[position], LIKE,
                                       {"query": "anything", "shown": shown, "position": position}))
    return {"users": n_users, "likes": store.count(dataset, LIKE), "shown_list": SHOWN}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--likes", type=int, default=4, help="random likes per user")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sequential", type=Path, help="a SASRec checkpoint directory to serve in the copy")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    home = RuntimeHome(load_settings().home)
    if not home.dataset_db(args.dataset).exists() or not home.chroma.exists():
        raise SystemExit(f"{args.dataset} is not set up under {home.root}: run `recsys setup` and "
                         f"`recsys ingest --dataset {args.dataset}` first")
    with tempfile.TemporaryDirectory(prefix="recsys-poison-") as tmp:
        copy = private_home(home, args.dataset, Path(tmp), args.sequential)
        events = poison(copy, args.dataset, args.users, args.likes, args.seed)
        print(f"poisoned: {events}")
        env = dict(os.environ, RECSYS_HOME=str(copy.root))
        done = subprocess.run([sys.executable, "-m", "ui.cli", "refresh", "--dataset", args.dataset,
                               "--threads", str(args.threads), "--seed", str(args.seed), "--json"],
                              env=env, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parent.parent)
        if done.returncode != 0:  # its log went to stderr, above
            raise SystemExit(f"refresh failed with exit {done.returncode}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        kept = AdapterRegistry.of_home(copy).root / str(result.get("version")) / GATE_LISTS_FILE
        if args.json and kept.exists():  # so that bench/gate_rules.py can replay any rule on them
            args.json.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(kept, args.json.with_name(f"{args.json.stem}_gate_lists.json"))
    gate = result.get("gate", {})
    out = {"protocol": {"dataset": args.dataset, "seed": args.seed, "poison": events,
                        "refresh": f"recsys refresh --threads {args.threads}, default budgets and gate, no adapter served",
                        "sequential_retriever": str(args.sequential) if args.sequential else None},
           "machine": machine(), "decision": result.get("decision"), "reason": gate.get("reason"),
           "serving_after": result.get("serving"), "refresh_seconds": result.get("refresh_seconds"),
           "training": result.get("training"),
           "gate": {k: gate.get(k) for k in ("held_out_lists", "held_out_users", "replay_lists", "held_out_ndcg@10",
                                            "held_out_auc", "replay_ndcg@10", "replay_auc", "candidate_fusion_weight")}}
    print(json.dumps({k: v for k, v in out.items() if k != "machine"}, indent=1, default=str))
    if args.json:
        write_result(args.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
