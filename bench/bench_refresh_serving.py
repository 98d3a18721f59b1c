"""A 500-event refresh while serving: its wall time, and turn latency idle vs during the refresh.

Protocol (ML-1M, seed 0):
1. A private copy of the home (Chroma copied; data set and models linked read-only; the home's
   serving adapter, if any, copied into a private registry and served in every turn).
2. Feedback: `--events` events from sampled known users through `Assistant.feedback`, the API the
   UI uses. Per user: one session, a first request (as in bench_turn_latency), then the user's most
   recent ratings (>= 4 like, <= 2 dislike; up to 10 per user) as thumbs on that list, each rated
   item placed at a random slot of the shown list. This bench measures load, not accuracy: it needs
   a refresh with a full set of training lists; the temporal protocol's events carry the list the
   system actually showed, and only a rated item that was in it makes a training list.
3. Idle: `--turns` turns of multi-turn sessions (bench_turn_latency's plans), one at a time.
4. Refresh: the exact process `recsys serve`'s scheduler starts (`recsys refresh --threads 1`,
   nice 10, OMP_NUM_THREADS=1), over those events; meanwhile the same turn plans run again, one
   turn every `--pause` seconds, until it exits. Turn latency = wall time of `Assistant.reply`
   (the whole list, LM rerank included); serving uses one torch thread.
Prints idle and during-refresh p50/p95, their ratio (target p95 ratio <= 2), and the refresh's
wall time (target <= 10 min for 500 events with SmolLM2).

    .venv/bin/python bench/bench_refresh_serving.py [--json bench/results/refresh_serving.json]
"""
import _common  # offline switches first

import argparse
import json
import os
import random
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from _assistant_bench import machine, open_bench_assistant, write_result  # noqa: E402
from bench_turn_latency import sessions  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent


def private_home(runtime, version: str | None = None) -> Path:
    """The bench's temporary directory as a runtime home: data sets and models linked, the serving
    adapter (or `version`) copied in and served (so the refresh starts from it and a promotion never
    touches the real registry)."""
    from finetune.adapters import AdapterRegistry

    root = runtime.tmp
    for name in ("datasets", "models", "raw"):
        if not (root / name).exists():
            (root / name).symlink_to(getattr(runtime.home, name).resolve(), target_is_directory=True)
    source = AdapterRegistry.of_home(runtime.home)
    serving = version or source.serving()
    if serving:
        target = AdapterRegistry(root / "adapters", root / "models")
        shutil.copytree(source.path(serving), target.root / serving)
        target.set_serving(serving)
    return root


def record_events(assistant, dataset, n_events: int, seed: int) -> dict:
    rng = random.Random(seed)
    users = sorted(assistant.known_users())
    rng.shuffle(users)
    recorded = {"events": 0, "likes": 0, "dislikes": 0, "users": 0}
    for user in users:
        if recorded["events"] >= n_events:
            break
        rated = [x for x in dataset.user_history(user) if x.rating >= 4 or x.rating <= 2][-10:]
        if not rated:
            continue
        session = assistant.new_session(user)
        reply = assistant.reply(session, rng.choice(_common.FIRST_REQUESTS))
        shown = [r.item.item_id for r in reply.items]
        recorded["users"] += 1
        for x in rated[: n_events - recorded["events"]]:
            listed = [s for s in shown if s != x.item_id]
            listed.insert(rng.randrange(len(listed) + 1), x.item_id)
            session.state.last_items = tuple(listed)
            assistant.feedback(session, x.item_id, liked=x.rating >= 4)
            recorded["events"] += 1
            recorded["likes" if x.rating >= 4 else "dislikes"] += 1
    return recorded


def run_turns(assistant, plans, pause: float = 0.0, until: threading.Event | None = None) -> list[float]:
    """Wall ms of each turn of `plans` (repeated while `until` is unset; once when it is None)."""
    times = []
    while True:
        for user, texts in plans:
            session = assistant.new_session(user)
            for text in texts:
                if until is not None and until.is_set():
                    return times
                started = time.perf_counter()
                assistant.reply(session, text)
                times.append((time.perf_counter() - started) * 1000)
                if pause:
                    time.sleep(pause)
        if until is None:
            return times


def pct(values, q):
    return round(float(np.percentile(values, q)), 1)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="ml-1m")
    ap.add_argument("--events", type=int, default=500)
    ap.add_argument("--model", choices=("smollm2", "qwen"), default="smollm2")
    ap.add_argument("--pause", type=float, default=1.0, help="seconds between turns during the refresh")
    ap.add_argument("--version", help="adapter version to serve and refresh from (default: the home's serving one)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=HERE / "results" / "refresh_serving.json")
    args = ap.parse_args()

    from assistant.lm_serving import ServingReranker
    from assistant.refresh_scheduler import RefreshScheduler
    from data.store import Dataset
    from finetune.adapters import AdapterRegistry

    runtime = open_bench_assistant(args.dataset)
    try:
        root = private_home(runtime, args.version)
        assistant = runtime.assistant
        registry = AdapterRegistry(root / "adapters", root / "models")
        served = registry.serving()  # before the refresh, which may promote another
        if served:
            assistant.lm = ServingReranker(registry, background=False, log=lambda *_: None)
            assistant.lm.current()
        dataset = Dataset(runtime.home.dataset_db(args.dataset))
        recorded = record_events(assistant, dataset, args.events, args.seed)
        print(f"recorded {recorded}", flush=True)
        plans = sessions(sorted(assistant.known_users()), args.seed)
        run_turns(assistant, plans[:1])  # warm-up
        idle = run_turns(assistant, plans)
        print(f"idle: {len(idle)} turns p50 {pct(idle, 50)} ms p95 {pct(idle, 95)} ms", flush=True)

        scheduler = RefreshScheduler(assistant.store, args.dataset, every_events=args.events, every_minutes=0,
                                     model=args.model, env={**os.environ, "RECSYS_HOME": str(root)}, cwd=REPO,
                                     log=lambda line: print(line, flush=True))
        done = threading.Event()
        outcome = {}

        def refresh():
            started = time.perf_counter()
            outcome["returncode"] = scheduler.run_once()
            outcome["seconds"] = round(time.perf_counter() - started, 1)
            done.set()

        thread = threading.Thread(target=refresh)
        thread.start()
        during = run_turns(assistant, plans, args.pause, done)
        thread.join()
        state_file = root / "feedback" / "refresh_state.json"
        state = json.loads(state_file.read_text()).get(args.dataset, {}) if state_file.exists() else {}
        result = {
            "protocol": {"dataset": args.dataset, "seed": args.seed, "events": recorded,
                         "turns": "bench_turn_latency's 10 sessions x 5 turns (known and new users), "
                                  "Assistant.reply wall time, one torch thread",
                         "refresh": "recsys refresh --threads 1 under nice 10 (the serve scheduler's process), "
                                    f"model {args.model}, default budget",
                         "serving_adapter": served or "none (text + profile path)",
                         "serving_after_refresh": registry.serving(),
                         "pause_between_turns_s": args.pause},
            "machine": machine(),
            "idle_ms": {"turns": len(idle), "p50": pct(idle, 50), "p95": pct(idle, 95)},
            "during_refresh_ms": {"turns": len(during), "p50": pct(during, 50), "p95": pct(during, 95)},
            "p95_ratio": round(pct(during, 95) / pct(idle, 95), 3),
            "p50_ratio": round(pct(during, 50) / pct(idle, 50), 3),
            "refresh_seconds": outcome.get("seconds"), "refresh_returncode": outcome.get("returncode"),
            "refresh_decision": state.get("decision"), "refresh_reason": state.get("reason"),
        }
        print(json.dumps({k: result[k] for k in ("idle_ms", "during_refresh_ms", "p95_ratio", "refresh_seconds",
                                                  "refresh_decision")}, indent=1))
        write_result(args.json, result)
    finally:
        runtime.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
