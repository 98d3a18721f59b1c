"""`recsys train-retriever`: train the sequential retriever on the training period of the
leave-last-out split and publish its item vectors into Chroma beside the text vectors."""
from __future__ import annotations

import time

from data.home import RuntimeHome
from data.splits import leave_last_out, training_interactions
from data.store import Dataset
from retrieval.item_index import ItemIndex
from retrieval.sequential import SASRecConfig, SASRecRetriever, train_sasrec

SEQUENTIAL_KIND = "seq_items"


def sequential_model_dir(home: RuntimeHome, dataset: str):
    return home.models / f"sasrec-{dataset}"


def publish_sequential_vectors(dataset: Dataset, retriever: SASRecRetriever, client) -> int:
    items = {i.item_id: i for i in dataset.items()}
    vocabulary = sorted({s for i in items.values() for s in i.genre_slugs})
    ids, vectors = retriever.item_vectors()
    keep = [n for n, item_id in enumerate(ids) if item_id in items]
    index = ItemIndex(client, dataset.name, kind=SEQUENTIAL_KIND, space="ip")
    index.put_vectors([items[ids[n]] for n in keep], vectors[keep], vocabulary)
    return len(keep)


def train_retriever(home: RuntimeHome, dataset_name: str, client, minutes: float, max_epochs: int | None,
                    learning_rate: float | None = None, log=print) -> dict:
    started = time.perf_counter()
    dataset = Dataset(home.dataset_db(dataset_name))
    users, items, _ratings, times = dataset.interaction_arrays()
    if len(users) == 0:
        raise ValueError(f"data set {dataset_name!r} has no interactions to train on")
    split = leave_last_out(users, items, times)
    config = SASRecConfig()
    if learning_rate is not None:
        config.lr = learning_rate
    result = train_sasrec(training_interactions(split), split.valid, sorted(set(items.tolist())),
                          sequential_model_dir(home, dataset_name), cfg=config, budget_minutes=minutes,
                          max_epochs=max_epochs, split=split)
    published = publish_sequential_vectors(dataset, result.retriever, client)
    wall = time.perf_counter() - started
    report = {"dataset": dataset_name, "split": "leave-last-out by timestamp (training period only)",
              "best_validation_ndcg@10": round(result.best_ndcg10, 4), "best_epoch": result.best_epoch,
              "epochs_run": result.epochs_run, "stopped": result.stopped, "train_wall_s": round(result.wall_s, 1),
              "total_wall_s": round(wall, 1), "item_vectors_in_chroma": published}
    log(f"trained SASRec on {dataset_name}: validation NDCG@10 {result.best_ndcg10:.4f} (epoch {result.best_epoch}, "
        f"{result.epochs_run} epochs run, {result.stopped}); training wall time {result.wall_s / 60:.1f} min; "
        f"{published} item vectors in Chroma")
    return report
