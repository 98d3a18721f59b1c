"""Load: concurrent chat sessions through `gradio_client` against `recsys serve` on loopback (issue 6, item 2).

Protocol: `recsys serve` is started as a subprocess over a PRIVATE copy of the home (Chroma
directory, the data set's database, the embedding cache and the adapters are copied into a
temporary directory; raw files and models are linked read-only), so the real feedback store and
profiles are never touched; refresh triggers are off. N sessions (default 20) each open their own
`gradio_client.Client` (one client = one browser tab = one server-side session) and start together
behind a barrier; each runs T turns (default 5) through `/recommend` (half data set users drawn at
random, half new users; a first request, then refinements that carry the session on) and after
every turn gives F thumbs (default 2, like or dislike at random) on the returned items through
`/feedback`, plus one resubmitted click per session (it must count once). Chat rejections ("not
that one") and cold-start statements are left out, so every stored event comes from `/feedback`.
Bounded: the whole run stops at --max-seconds, and each call waits at most --call-timeout.

Reported: throughput (turns/s over the measured wall time), p50/p95/max turn latency as the client
sees it (queueing included) and the server's own turn time, feedback latency, errors (exceptions,
timeouts, error replies: must be 0), and lost feedback: after the server has stopped, the event ids
in the store are compared with the ids acknowledged as new (`lost` and `unexpected` must be 0,
each stored event belongs to the session's user). The server's CPU seconds and the machine's load
average (before/after) are recorded: the machine is shared, so compare numbers from one run.

    .venv/bin/python bench/bench_load.py [--dataset ml-100k|ml-1m] [--sessions 20] [--turns 5]
        [--turn-concurrency N] [--json bench/results/load_ml-100k.json]
"""
import _common  # offline switches first

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

from data.feedback import FeedbackStore  # noqa: E402
from data.home import RuntimeHome  # noqa: E402
from data.store import Dataset  # noqa: E402
from ui.config import load_settings  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIRST = _common.FIRST_REQUESTS
REFINE = ["no romance", "older ones", "more like the second one", "something else", "from the 70s",
          "less violent", "newer ones", "a mystery from the 50s instead", "sci-fi but not horror", "with some action"]


def private_home(source: RuntimeHome, dataset: str, tmp: Path) -> RuntimeHome:
    home = RuntimeHome(tmp / "home").ensure()
    for linked in ("raw", "models"):
        target = getattr(home, linked)
        target.rmdir()
        target.symlink_to(getattr(source, linked).resolve(), target_is_directory=True)
    shutil.rmtree(home.chroma)
    shutil.copytree(source.chroma, home.chroma)
    shutil.copy2(source.dataset_db(dataset), home.dataset_db(dataset))
    if source.embedding_cache().exists():
        shutil.copy2(source.embedding_cache(), home.embedding_cache())
    if source.adapters.exists():
        shutil.rmtree(home.adapters)
        shutil.copytree(source.adapters, home.adapters)
    return home


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(home: RuntimeHome, dataset: str, turn_concurrency: int | None, log: Path):
    port = free_port()
    env = {**os.environ, "RECSYS_HOME": str(home.root), "RECSYS_DATASET": dataset,
           "RECSYS_REFRESH_EVERY_EVENTS": "0", "RECSYS_REFRESH_EVERY_MINUTES": "0"}
    for key in ("RECSYS_AUTH_USER", "RECSYS_AUTH_PASSWORD", "RECSYS_SERVER_HOST", "RECSYS_CONFIG",
                "RECSYS_CHROMA_HOST", "RECSYS_TURN_CONCURRENCY"):
        env.pop(key, None)
    if turn_concurrency:
        env["RECSYS_TURN_CONCURRENCY"] = str(turn_concurrency)
    out = log.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--port", str(port), "--dataset", dataset],
                            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"recsys serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise SystemExit(f"recsys serve did not answer within 300 s:\n{log.read_text()[-3000:]}")


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


def plans(users: list[str], sessions: int, turns: int, seed: int):
    rng = random.Random(seed)
    known = rng.sample(users, (sessions + 1) // 2)
    out = []
    for s in range(sessions):
        user = known[s // 2] if s % 2 == 0 else ""
        out.append((user, [rng.choice(FIRST)] + rng.sample(REFINE, turns - 1)))
    return out


class Session(threading.Thread):
    def __init__(self, number, url, user, texts, args, barrier, deadline):
        super().__init__(daemon=True)
        self.number, self.url, self.user, self.texts, self.args = number, url, user, texts, args
        self.barrier, self.deadline = barrier, deadline
        self.rng = random.Random(args.seed * 1000 + number)
        self.turns, self.feedback, self.errors = [], [], []
        self.acked: dict[str, str] = {}  # event_id -> user_id, for every event acknowledged as new
        self.duplicates_stored = 0
        self.skipped = 0
        self.user_id = None

    def call(self, client, *inputs, api_name):
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("run deadline passed")
        started = time.perf_counter()
        out = client.submit(*inputs, api_name=api_name).result(timeout=min(self.args.call_timeout, remaining))
        return out, (time.perf_counter() - started) * 1000

    def run(self):
        from gradio_client import Client

        try:
            client = Client(self.url, verbose=False)
        except Exception as err:  # noqa: BLE001 - every failure is counted
            self.errors.append(f"connect: {err!r}")
            self.barrier.wait()
            return
        self.barrier.wait()
        resubmitted = False
        for number, text in enumerate(self.texts):
            if time.monotonic() > self.deadline:
                self.skipped += len(self.texts) - number
                break
            try:
                out, ms = self.call(client, text, self.user_id or self.user, self.args.k, api_name="/recommend")
            except Exception as err:  # noqa: BLE001
                self.errors.append(f"turn {number}: {err!r}")
                continue
            if out.get("error"):
                self.errors.append(f"turn {number}: {out['error']}")
                continue
            self.user_id = out["user_id"]
            self.turns.append({"ms": ms, "server_ms": out["timings_ms"].get("total_ms"), "returned": out["returned"],
                               "kind": out["kind"], "timings": out["timings_ms"]})
            items = [i["item_id"] for i in out["items"]]
            for item in self.rng.sample(items, min(self.args.feedback_per_turn, len(items))):
                liked = self.rng.random() < 0.5
                try:
                    ack, ms = self.call(client, item, liked, "", api_name="/feedback")
                    if "error" in ack:
                        raise RuntimeError(ack["error"])
                    self.feedback.append(ms)
                    if ack["stored"]:
                        self.acked[ack["event_id"]] = ack["user_id"]
                    if not resubmitted:  # the same click again (a retry): acknowledged, not stored twice
                        again, ms = self.call(client, item, liked, "", api_name="/feedback")
                        self.feedback.append(ms)
                        resubmitted = True
                        if again.get("stored") or again.get("event_id") != ack["event_id"]:
                            self.duplicates_stored += 1
                except Exception as err:  # noqa: BLE001
                    self.errors.append(f"feedback {item!r}: {err!r}")


def pct(values, q):
    return round(float(np.percentile(values, q)), 1) if len(values) else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="ml-100k", choices=["ml-100k", "ml-1m"])
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--turns", type=int, default=5)
    ap.add_argument("--feedback-per-turn", type=int, default=2)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--turn-concurrency", type=int, help="RECSYS_TURN_CONCURRENCY for the server (default: the app's)")
    ap.add_argument("--max-seconds", type=float, default=600.0, help="the whole measured run stops here")
    ap.add_argument("--call-timeout", type=float, default=120.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the private home (for a look at the log)")
    args = ap.parse_args()
    if args.turns > len(REFINE) + 1:
        raise SystemExit(f"at most {len(REFINE) + 1} turns per session")
    out_path = args.json or HERE / "results" / (f"load_{args.dataset}"
                                                 + (f"_c{args.turn_concurrency}" if args.turn_concurrency else "")
                                                 + ".json")

    source = RuntimeHome(load_settings().home)
    if not source.dataset_db(args.dataset).exists() or not source.chroma.exists():
        raise SystemExit(f"{args.dataset} is not set up under {source.root}: run `recsys setup` and "
                         f"`recsys ingest --dataset {args.dataset}`")
    tmp = Path(tempfile.mkdtemp(prefix="recsys-load-"))
    proc = None
    try:
        home = private_home(source, args.dataset, tmp)
        log = home.logs / "serve.log"
        started = time.perf_counter()
        proc, url = start_server(home, args.dataset, args.turn_concurrency, log)
        startup_s = time.perf_counter() - started
        print(f"recsys serve up in {startup_s:.1f} s at {url}", flush=True)

        from gradio_client import Client

        warm = Client(url, verbose=False)  # one turn to load lazy parts; it gives no feedback
        warm.predict("a comedy", "", args.k, api_name="/recommend")

        users = sorted(Dataset(home.dataset_db(args.dataset)).user_ids())
        load_before = [round(x, 2) for x in os.getloadavg()]
        barrier = threading.Barrier(args.sessions + 1)
        deadline = time.monotonic() + args.max_seconds
        threads = [Session(n, url, user, texts, args, barrier, deadline)
                   for n, (user, texts) in enumerate(plans(users, args.sessions, args.turns, args.seed))]
        for thread in threads:
            thread.start()
        barrier.wait()
        cpu_before = cpu_seconds(proc.pid)
        client_before = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        for thread in threads:
            thread.join(timeout=max(1.0, deadline - time.monotonic() + args.call_timeout))
        wall = time.perf_counter() - t0
        cpu_used = cpu_seconds(proc.pid) - cpu_before
        client_after = resource.getrusage(resource.RUSAGE_SELF)
        client_cpu = (client_after.ru_utime + client_after.ru_stime) - (client_before.ru_utime + client_before.ru_stime)
        load_after = [round(x, 2) for x in os.getloadavg()]
        hung = sum(t.is_alive() for t in threads)
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()

    try:
        store = FeedbackStore(home.feedback_db())
        stored = {e.event_id: e.user_id for e in store.events(args.dataset)}
        store.close()
        acked = {}
        for thread in threads:
            acked.update(thread.acked)
        lost = sorted(set(acked) - set(stored))
        unexpected = sorted(set(stored) - set(acked))
        wrong_user = sorted(e for e, u in acked.items() if e in stored and stored[e] != u)
        turn_ms = [t["ms"] for th in threads for t in th.turns]
        server_ms = [t["server_ms"] for th in threads for t in th.turns if t["server_ms"] is not None]
        feedback_ms = [ms for th in threads for ms in th.feedback]
        errors = [f"session {th.number}: {e}" for th in threads for e in th.errors]
        all_turns = [t for th in threads for t in th.turns]
        stages = sorted({key for t in all_turns for key in t["timings"]})
        breakdown = {key: pct([t["timings"][key] for t in all_turns if key in t["timings"]], 50) for key in stages}
        returned = [t["returned"] for t in all_turns]
        result = {
            "protocol": {"dataset": args.dataset, "sessions": args.sessions, "turns_per_session": args.turns,
                         "feedback_per_turn": args.feedback_per_turn, "resubmitted_clicks_per_session": 1,
                         "k": args.k, "seed": args.seed, "max_seconds": args.max_seconds,
                         "turn_concurrency": args.turn_concurrency or "app default",
                         "server": "recsys serve (subprocess) on 127.0.0.1, embedded Chroma (private copy), "
                                   "template explanations, refresh off",
                         "clients": "one gradio_client.Client per session (a tab), threads in this process",
                         "session users": "even sessions: data set users drawn at random; odd: new users"},
            "startup_s": round(startup_s, 1),
            "wall_s": round(wall, 2),
            "turns": len(turn_ms),
            "turns_planned": args.sessions * args.turns,
            "turns_per_s": round(len(turn_ms) / wall, 2) if wall else None,
            "turn_latency_ms": {"p50": pct(turn_ms, 50), "p95": pct(turn_ms, 95), "max": pct(turn_ms, 100)},
            "server_turn_ms": {"p50": pct(server_ms, 50), "p95": pct(server_ms, 95)},
            "server_turn_breakdown_p50_ms": breakdown,
            "returned_items": {"mean": round(float(np.mean(returned)), 2) if returned else None,
                               "empty_replies": sum(r == 0 for r in returned),
                               "kinds": {k: sum(t["kind"] == k for t in all_turns)
                                         for k in sorted({t["kind"] for t in all_turns})}},
            "feedback_latency_ms": {"p50": pct(feedback_ms, 50), "p95": pct(feedback_ms, 95),
                                    "calls": len(feedback_ms)},
            "errors": len(errors) + hung,
            "error_samples": errors[:10],
            "skipped_turns": sum(t.skipped for t in threads),
            "hung_sessions": hung,
            "feedback_events": {"acknowledged_new": len(acked), "stored": len(stored), "lost": len(lost),
                                "unexpected": len(unexpected), "wrong_user": len(wrong_user),
                                "resubmissions_stored_twice": sum(t.duplicates_stored for t in threads)},
            "server_cpu_s": round(cpu_used, 1),
            "server_cpu_s_per_turn": round(cpu_used / len(turn_ms), 3) if turn_ms else None,
            "client_cpu_s": round(client_cpu, 1),
            "machine": {"cpus": os.cpu_count(), "loadavg_before": load_before, "loadavg_after": load_after,
                        "python": sys.version.split()[0]},
        }
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("turns", "wall_s", "turns_per_s", "turn_latency_ms", "server_turn_ms",
                                             "errors", "feedback_events")}, indent=1))
    print(f"wrote {out_path}")
    ok = (result["errors"] == 0 and not lost and not unexpected and not wrong_user
          and result["turns"] == result["turns_planned"]
          and result["feedback_events"]["resubmissions_stored_twice"] == 0)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
