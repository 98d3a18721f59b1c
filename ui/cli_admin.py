"""Operator commands of `recsys`: forget a user, manage adapter versions, export feedback."""
from __future__ import annotations

import json
from pathlib import Path

from assistant.refresh_config import REPLAY_CHECKS, RefreshConfig
from ui.cli_types import non_negative_float, non_negative_int, positive_float


def cmd_forget(settings, args) -> int:
    from assistant.forget import forget_user
    from assistant.runtime import chroma_location
    from data.feedback import FeedbackStore
    from data.home import RuntimeHome
    from retrieval.profiles import ProfileStore
    from retrieval.vector_store import open_client

    home = RuntimeHome(settings.home)
    dataset = args.dataset or settings.dataset
    client = open_client(chroma_location(settings))
    report = forget_user(home, dataset, args.user, FeedbackStore(home.feedback_db()),
                         ProfileStore(client, dataset, settings.profile))
    print(report.describe())
    return 0


def cmd_adapters(settings, args) -> int:
    from data.home import RuntimeHome
    from finetune.adapters import AdapterRegistry

    home = RuntimeHome(settings.home)
    registry = AdapterRegistry.of_home(home)
    if args.action == "list":
        serving = registry.serving()
        versions = registry.versions()
        if not versions:
            print(f"no adapter versions in {registry.root}; `recsys train` makes one")
        for v in versions:
            problems = registry.verify(v.version)
            fused = _fusion(v.path).get("fused_ndcg@10")
            gate = v.metrics.get("gate", {})
            print(f"{'*' if v.version == serving else ' '} {v.version}  {v.config.get('model_name', '?'):8}  "
                  f"examples {v.metrics.get('examples_seen', '?')}  loss {v.metrics.get('loss_end', float('nan')):.3f}  "
                  f"fused NDCG@10 {fused if fused is not None else '-'}  "
                  f"{'gate ' + gate.get('decision', '') if gate else ''}  {'CORRUPT: ' + problems[0] if problems else ''}")
        return 0
    if args.action == "promote":
        if not args.version:
            raise SystemExit("recsys adapters promote: give a version, e.g. v0003")
        registry.set_serving(args.version)
        print(f"serving {args.version}")
        return 0
    if args.action == "rollback":
        print(f"serving {registry.rollback()}")
        return 0
    raise SystemExit(f"recsys adapters: unknown action {args.action!r}")


def _fusion(path: Path) -> dict:
    f = path / "fusion.json"
    return json.loads(f.read_text()) if f.exists() else {}


def cmd_feedback(settings, args) -> int:
    from data.feedback import FeedbackStore
    from data.home import RuntimeHome

    store = FeedbackStore(RuntimeHome(settings.home).feedback_db())
    if args.action == "export":
        if not args.path:
            raise SystemExit("recsys feedback export: give the output path, e.g. events.jsonl")
        print(f"wrote {store.export_jsonl(Path(args.path))} events to {args.path}")
    else:
        print(f"{store.count()} events: {store.count(value='like')} likes, {store.count(value='dislike')} dislikes")
    return 0


def register(sub) -> None:
    forget = sub.add_parser("forget", help="erase everything held about one user")
    forget.add_argument("--user", required=True, help="the user id")
    forget.add_argument("--dataset", help="data set (default: RECSYS_DATASET or ml-1m)")
    forget.set_defaults(func=cmd_forget)
    adapters = sub.add_parser("adapters", help="adapter versions: list, promote VERSION, rollback")
    adapters.add_argument("action", choices=["list", "promote", "rollback"])
    adapters.add_argument("version", nargs="?")
    adapters.set_defaults(func=cmd_adapters)
    feedback = sub.add_parser("feedback", help="feedback events: stats, export PATH (JSONL)")
    feedback.add_argument("action", choices=["stats", "export"])
    feedback.add_argument("path", nargs="?")
    feedback.set_defaults(func=cmd_feedback)
    register_refresh(sub)


def _served_retrieval(settings, dataset: str):
    """The retrieval the assistant serves, so the gate checks forgetting on the lists it shows; None
    when the data set is not ingested (the gate then replays retriever lists)."""
    from dataclasses import replace

    from assistant.runtime import NotIngested, build_recommender

    try:
        return build_recommender(replace(settings, dataset=dataset))
    except NotIngested as exc:
        print(f"refresh: {exc}; the gate's replay lists are retriever lists, not served ones")
        return None


def refresh_config(args) -> RefreshConfig:
    """The parsed `recsys refresh` options (0 meaning "no limit" or "every layer") as a RefreshConfig."""
    return RefreshConfig(model=args.model, minutes=args.minutes, max_examples=args.max_examples,
                         min_new_events=args.min_events, margin=args.margin, tolerance=args.tolerance,
                         replay_check=args.replay_check,
                         threads=args.threads, seed=args.seed,
                         fresh_lora_layers=args.lora_layers if args.lora_layers > 0 else None,
                         gate_minutes=args.gate_minutes if args.gate_minutes > 0 else None,
                         budget_minutes=args.budget_minutes if args.budget_minutes > 0 else None)


def cmd_refresh(settings, args) -> int:
    from assistant.refresh import run_refresh
    from data.home import RuntimeHome

    config = refresh_config(args)
    dataset = args.dataset or settings.dataset
    result = run_refresh(RuntimeHome(settings.home), dataset, config,
                         served_retrieval=lambda: _served_retrieval(settings, dataset))
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "replay_users"}, default=str))
    return 0


def register_refresh(sub) -> None:
    refresh = sub.add_parser("refresh", help="train a new adapter version on new feedback; promote it only if it wins")
    refresh.add_argument("--dataset", help="data set (default: RECSYS_DATASET or ml-1m)")
    refresh.add_argument("--model", choices=["smollm2", "qwen"], default=RefreshConfig.model)
    refresh.add_argument("--minutes", type=positive_float, default=RefreshConfig.minutes,
                         help=f"training budget (default {RefreshConfig.minutes:g}; less if --budget-minutes would leave the "
                              f"gate too little)")
    refresh.add_argument("--gate-minutes", type=non_negative_float, default=RefreshConfig.gate_minutes,
                         help=f"scoring budget of the gate, which also chooses the fusion weight (default "
                              f"{RefreshConfig.gate_minutes:g}; 0: every list the overall budget allows)")
    refresh.add_argument("--budget-minutes", type=non_negative_float, default=RefreshConfig.budget_minutes,
                         help=f"the whole refresh, setup to decision (default {RefreshConfig.budget_minutes:g}; 0: no "
                              f"overall limit)")
    refresh.add_argument("--max-examples", type=int, help="training lists to see (default: one pass)")
    refresh.add_argument("--min-events", type=int, default=RefreshConfig.min_new_events,
                         help="do nothing below this many new events")
    refresh.add_argument("--margin", type=float, default=RefreshConfig.margin,
                         help="AUC gain the low end of the pooled (held-out feedback + replay) 95%% interval must exceed")
    refresh.add_argument("--tolerance", type=float, default=RefreshConfig.tolerance,
                         help=f"largest relative replay AUC drop the gate allows (default {RefreshConfig.tolerance:g})")
    refresh.add_argument("--replay-check", choices=REPLAY_CHECKS, default=RefreshConfig.replay_check,
                         help="judge the replay AUC drop by its point estimate (default) or by the low end of its 95%% "
                              "interval (non-inferiority: at a few hundred replay lists it passes only a replay gain)")
    refresh.add_argument("--threads", type=int, help="torch threads (leave a core to serving)")
    refresh.add_argument("--lora-layers", type=non_negative_int, default=RefreshConfig.fresh_lora_layers,
                         help=f"with no serving adapter yet, LoRA in the top n layers only (default "
                              f"{RefreshConfig.fresh_lora_layers}, about half the step cost of all layers; 0: every layer); "
                              f"a serving adapter's layers are kept")
    refresh.add_argument("--seed", type=int, default=RefreshConfig.seed)
    refresh.add_argument("--json", action="store_true")
    refresh.set_defaults(func=cmd_refresh)
