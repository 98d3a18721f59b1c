"""`recsys eval --protocol temporal`: does the product get better as people use it?

Protocol (global temporal split; nothing from after a cut-off reaches what is built before it):
- T0, T1 are the 80th and 90th percentiles of all timestamps; T2 is the last one.
- The system at T0 is built from interactions up to T0 only: a data set holding them, item vectors
  and user profiles in a private Chroma, and no adapter.
- Test users: sampled (seeded) among users with >= 5 interactions up to T0 and at least one
  like (rating >= 4) in (T1, T2]. Targets: their likes in (T1, T2]. Every configuration ranks the
  whole catalogue minus what it knows the user has seen, with the user's profile as the query
  (no text request), top 10; NDCG@10 and Recall@10 (hits / min(10, targets)).
- The stream (T0, T1] is replayed through `Assistant.feedback`, the API the UI uses: rating >= 4 is
  a like, <= 2 a dislike (3s are not feedback). By default it is the stream of every user the T0
  system knows (>= 5 interactions up to T0, the test users' rule), as a product learns from all its
  users, not only from those it is later tested on; `feedback_from="test users"` replays only the
  test users' events (the protocol before stop 24). Users who first appear after T0 are not replayed:
  the T0 system holds no profile to show them a list from. Before each event the user is
  shown what the system would show them at that moment (its top 20, every earlier event applied),
  and the event carries that list. A rated item that was in it is a thumb on a shown list (the
  refresh's training lists); one that was not only extends the history, as a like stated in chat
  does. (Inserting every rated item into a list, as this protocol once did, let an adapter learn
  'the item the retriever did not rank' instead of the user's taste.)
Configurations:
- stale: the T0 system, nothing learned after T0;
- immediate: the feedback applied to histories, exclusions and profiles; no adapter;
- refreshed: immediate, then `recsys refresh` on the replayed events (from no adapter: a fresh
  LoRA, gated against the retrieval order); its adapter reranks the top 20 if the gate promoted it.
  With `refresh_every` N, a refresh also runs after every N events of the replay, as the scheduler in
  `recsys serve` does: each trains on every list so far, starting from the adapter that serves, and is
  gated against it; the configuration is served by whatever serves after the last one. The lists
  shown during the replay stay the retrieval top 20 in retrieval order (an adapter reranks the same
  20 items; scoring each of ~17,000 lists with the LM would take hours on this CPU);
- retrained: the retrieval state rebuilt from scratch on every interaction up to T1 (3s and other
  users' events included), with the refreshed configuration's reranker.
`rejected_candidate`: when the (last) gate rejected the refreshed adapter, that adapter on the same test users
as it would have served, and its forgetting on the same pre-T0 sample (whether the gate was right);
null otherwise.
`forgetting`: relative NDCG@10 drop, refreshed vs stale, on a pre-T0 sample (each user's last like
before T0 held out, ranked from their earlier history, the profile vector rebuilt from it: the
stored one holds the held-out like). The sample is the test users plus other T0 users (>= 5
interactions before T0; seeded) up to `forgetting_users` (0, the default: every such user): one
held-out like per user hits the top 10 for about 7% of users, so even ML-1M's ~3,900 eligible users
leave a relative drop uncertain by about +-7% (1,000 users, the sample up to stop 32: +-14%);
`forgetting_detail.first_1000_users` is the forgetting on the sample's first 1,000 users, the
measure up to stop 32, for comparison. The
refresh's gate checks forgetting on the same kind of lists (served_replay) of data set users who left
no feedback; those users, and those whose lists the refresh trained on as replay (their target is
often the same last like), are kept out of the sample.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from assistant.assistant import Assistant
from assistant.ingest import index_dataset
from assistant.lm_serving import ServingReranker
from assistant.metrics import paired_bootstrap_ci
from assistant.recommender import Recommender
from assistant.refresh import GATE_LISTS_FILE, RefreshConfig, run_refresh
from assistant.served_replay import profile_of, split_at_last_like
from assistant.retriever_training import (SEQUENTIAL_KIND, publish_sequential_vectors, sequential_model_dir,
                                          train_retriever)
from assistant.request_parser import Request
from data.catalogue import Interaction
from data.feedback import FeedbackStore
from data.home import RuntimeHome
from data.store import Dataset, write_dataset
from finetune.adapters import AdapterRegistry
from retrieval.candidates import FusionWeights
from retrieval.embedder import Embedder
from retrieval.filters import Constraints
from retrieval.item_index import ItemIndex
from retrieval.profiles import Profile, ProfileStore, ProfileWeights
from retrieval.sequential import SASRecConfig, SASRecRetriever
from retrieval.vector_store import ChromaLocation, open_client

K = 10
POOL = 20
FORGETTING_USERS = 0  # the pre-T0 sample (test users first); 0: every eligible T0 user
FORMER_FORGETTING_USERS = 1000  # the sample's size up to stop 32, still reported for comparison
LIKE, DISLIKE = 4.0, 2.0
FEEDBACK_USERS = {"known users": "every user with >= 5 interactions up to T0 (the test users among them)",
                  "test users": "the test users"}  # whose stream (T0, T1] is replayed
FEEDBACK_FROM = tuple(FEEDBACK_USERS)


def _metrics(ranked: list[str], targets: set[str]) -> tuple[float, float]:
    gains = [1.0 / math.log2(rank + 2) for rank, item in enumerate(ranked[:K]) if item in targets]
    ideal = sum(1.0 / math.log2(rank + 2) for rank in range(min(K, len(targets))))
    hits = sum(1 for item in ranked[:K] if item in targets)
    return (sum(gains) / ideal if ideal else 0.0), hits / min(K, len(targets))


def _paired_ndcg(a: list[tuple[float, float]], b: list[tuple[float, float]], seed: int) -> dict:
    """NDCG@10 of a minus b on the same users, with its 95% paired bootstrap interval over users."""
    return _rounded(paired_bootstrap_ci([m[0] for m in a], [m[0] for m in b], seed=seed))


def _rounded(ci: dict) -> dict:
    return {key: round(value, 4) if math.isfinite(value) else None for key, value in ci.items()}


def _forgetting_interval(refreshed: list[tuple[float, float]], stale: list[tuple[float, float]], seed: int) -> dict:
    """Refreshed minus stale NDCG@10 on the pre-T0 sample, with its paired bootstrap interval, and the
    interval of the forgetting it implies (relative drop, floored at 0 as the point value is)."""
    if not stale:
        return {}
    ci = paired_bootstrap_ci([m[0] for m in refreshed], [m[0] for m in stale], seed=seed)
    paired = _rounded(ci)
    base = float(np.mean([m[0] for m in stale]))
    if not base:
        return {"paired_ndcg@10": paired}
    return {"paired_ndcg@10": paired,
            "forgetting_ci": [round(max(0.0, -ci["ci_high"] / base), 4), round(max(0.0, -ci["ci_low"] / base), 4)]}


def _relative_drop(stale: list[tuple[float, float]], other: list[tuple[float, float]]) -> float:
    """How much lower other's mean NDCG@10 is than stale's on the same users, relative to stale's
    (0 when it is not lower, or when stale has nothing to lose)."""
    base = float(np.mean([m[0] for m in stale])) if stale else 0.0
    ndcg = float(np.mean([m[0] for m in other])) if other else 0.0
    return max(0.0, (base - ndcg) / base) if base else 0.0


def _summary(values: list[tuple[float, float]]) -> dict:
    arr = np.array(values, dtype=np.float64)
    return {"ndcg@10": round(float(arr[:, 0].mean()), 4), "recall@10": round(float(arr[:, 1].mean()), 4),
            "users": len(values)}


class _World:
    """One state of the system: a data set cut at a time, its vectors and profiles in a private Chroma."""

    def __init__(self, root: Path, name: str, items, interactions, embedder: Embedder, home_models: Path,
                 sequential_minutes: float = 0.0, sequential_cache: Path | None = None, log=print):
        self.home = RuntimeHome(root).ensure()
        # a sequential model is trained per world, inside it (a shared models folder let a world resume
        # another run's SASRec and left it in the real home)
        self.home.share_language_models(home_models)
        write_dataset(self.home.dataset_db(name), items, interactions, meta={"source": "temporal protocol"})
        self.dataset = Dataset(self.home.dataset_db(name))
        self.client = open_client(ChromaLocation(path=self.home.chroma))
        index_dataset(self.dataset, self.client, embedder, ProfileWeights(), progress=False)
        sequential, sequential_index = None, None
        self.sequential_report = None
        if sequential_minutes > 0:  # a SASRec trained on this world's interactions only
            self.sequential_report, sequential = self._sequential_retriever(name, interactions, sequential_minutes,
                                                                            sequential_cache, log)
            sequential_index = ItemIndex(self.client, name, kind=SEQUENTIAL_KIND, space="ip")
        self.recommender = Recommender(self.dataset, ItemIndex(self.client, name),
                                       ProfileStore(self.client, name, ProfileWeights()), embedder, FusionWeights(),
                                       sequential=sequential, sequential_index=sequential_index)
        self.assistant = Assistant(self.recommender, FeedbackStore(self.home.feedback_db()), diversity=0.0,
                                   dislike_penalty=0.0)

    def _sequential_retriever(self, name: str, interactions, minutes: float, cache: Path | None, log
                              ) -> tuple[dict, SASRecRetriever]:
        """Train this world's SASRec, or reuse the one an earlier run trained on exactly the same
        interactions with the same budget (a world's interactions do not depend on the seed or the
        test users), and publish its item vectors into this world's Chroma."""
        target = sequential_model_dir(self.home, name)
        kept = None
        if cache is not None:
            fingerprint = hashlib.sha256(json.dumps([asdict(SASRecConfig()), minutes, name]).encode())
            for x in interactions:
                fingerprint.update(f"{x.user_id}\t{x.item_id}\t{x.rating}\t{x.timestamp}\n".encode())
            kept = cache / f"{name}-{fingerprint.hexdigest()[:16]}"
        if kept is not None and (kept / "report.json").exists():
            shutil.copytree(kept / "model", target, dirs_exist_ok=True)
            retriever = SASRecRetriever.load(target)
            published = publish_sequential_vectors(self.dataset, retriever, self.client)
            report = {**json.loads((kept / "report.json").read_text()), "item_vectors_in_chroma": published,
                      "reused": "trained by an earlier run of this protocol on the same interactions and budget"}
            log(f"{name}: reusing the SASRec trained on the same interactions by an earlier run ({kept})")
            return report, retriever
        report = train_retriever(self.home, name, self.client, minutes=minutes, max_epochs=None, log=log)
        if kept is not None:
            partial = kept.with_name(kept.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(target, partial / "model")
            (partial / "report.json").write_text(json.dumps(report, indent=2))
            shutil.rmtree(kept, ignore_errors=True)
            os.replace(partial, kept)
        return report, SASRecRetriever.load(target)

    def rank(self, user: str, history: list[Interaction], exclude: set[str], n: int = K,
             profile: Profile | None = None) -> list[str]:
        request = Request(text="", constraints=Constraints())
        result = self.recommender.recommend_request(request, history, user, n, exclude=exclude, profile=profile)
        return [r.item.item_id for r in result.items]


def _lm_rank(assistant: Assistant, ranked: list[str], history: list[Interaction]) -> list[str]:
    items = assistant.recommender.items
    chosen = [(items[i], float(len(ranked) - n)) for n, i in enumerate(ranked)]
    return [item.item_id for item, _ in assistant.lm_order(Request("", Constraints()), chosen, history)][:K]


def feedback_stream(rows: list[Interaction], t0: int, t1: int, chosen: list[str], count_before: dict[str, int],
                    feedback_from: str) -> list[Interaction]:
    """The likes and dislikes in (t0, t1] of the test users, or of every user with >= 5 interactions up
    to t0 (`feedback_from` "known users"), in time order."""
    if feedback_from not in FEEDBACK_FROM:
        raise ValueError(f"feedback_from must be one of {', '.join(FEEDBACK_FROM)}; got {feedback_from!r}")
    feeders = set(chosen) if feedback_from == "test users" else {u for u, n in count_before.items() if n >= 5}
    stream = [x for x in rows if t0 < x.timestamp <= t1 and x.user_id in feeders
              and (x.rating >= LIKE or x.rating <= DISLIKE)]
    return sorted(stream, key=lambda x: (x.timestamp, x.user_id))


def _keep_gate_lists(registry: AdapterRegistry, refreshes: list[dict], json_path: Path) -> None:
    """Copy every refresh's gate lists beside the result: the last refresh's as `<stem>_gate_lists.json`,
    an earlier one's as `<stem>_gate_lists_<n>.json` (n counts the refreshes from 1)."""
    for n, refresh in enumerate(refreshes, start=1):
        kept = registry.path(refresh["version"]) / GATE_LISTS_FILE if refresh.get("version") else None
        if kept is None or not kept.exists():
            continue
        suffix = "" if n == len(refreshes) else f"_{n}"
        json_path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(kept, json_path.with_name(f"{json_path.stem}_gate_lists{suffix}.json"))


def _refresh_summary(refresh: dict) -> dict:
    """One refresh of the protocol, as the result reports it: when it ran, what it decided and why."""
    gate = refresh.get("gate") or {}
    return {"after_events": refresh["after_events"], "version": refresh.get("version"),
            "decision": refresh.get("decision"), "serving_after": refresh.get("serving"),
            "compared_with": gate.get("compared_with"), "reason": gate.get("reason"),
            "new_events": refresh.get("new_events"), "training": refresh.get("training"),
            "held_out_lists": gate.get("held_out_lists"), "held_out_users": gate.get("held_out_users"),
            "replay_lists": gate.get("replay_lists"), "gate_seconds": gate.get("gate_seconds"),
            "refresh_seconds": refresh["refresh_seconds"]}


def _pre_t0_sample(chosen: list[str], history_t0: dict[str, list[Interaction]], count_before: dict[str, int],
                   dataset: Dataset, skip: set[str], size: int, seed: int) -> dict[str, tuple]:
    """user -> (history before their last like before T0, that like, the items after it): the test users
    first, then seeded T0 users with >= 5 interactions before T0, none in `skip`, up to `size` users
    (0: all of them)."""
    size = size or len(count_before)
    sample = {}
    for user in (u for u in chosen if u not in skip):
        split = split_at_last_like(history_t0[user])
        if split is not None and len(sample) < size:
            sample[user] = split
    tested = set(chosen)
    others = sorted(u for u, n in count_before.items() if n >= 5 and u not in tested and u not in skip)
    random.Random(seed + 7).shuffle(others)
    for user in others:
        if len(sample) >= size:
            break
        split = split_at_last_like(dataset.user_history(user))
        if split is not None:
            sample[user] = split
    return sample


def run_temporal(home: RuntimeHome, dataset_name: str, users: int, seed: int, json_path: Path | None,
                 refresh_minutes: float = RefreshConfig.minutes, model: str = "smollm2", sequential_minutes: float = 0.0,
                 refresh_threads: int = 1, refresh_lora_layers: int | None = RefreshConfig.fresh_lora_layers,
                 reuse_retrievers: bool = True, forgetting_users: int = FORGETTING_USERS,
                 feedback_from: str = FEEDBACK_FROM[0], refresh_every: int = 0,
                 refresh_budget_minutes: float | None = RefreshConfig.budget_minutes, progress: bool = True,
                 log=print) -> dict:
    started = time.perf_counter()
    if refresh_every < 0:
        raise ValueError(f"refresh_every is a number of events (0: one refresh after the stream); got {refresh_every}")
    if forgetting_users < 0:
        raise ValueError(f"forgetting_users is a number of users (0: every eligible T0 user); got {forgetting_users}")
    # built first, so that a bad setting fails before an hour of world building, not after it
    refresh_config = RefreshConfig(model=model, minutes=refresh_minutes, threads=refresh_threads,
                                   fresh_lora_layers=refresh_lora_layers, budget_minutes=refresh_budget_minutes,
                                   seed=seed)
    source = Dataset(home.dataset_db(dataset_name))
    items = source.items()
    u, i, r, t = source.interaction_arrays()
    t0, t1 = (int(x) for x in np.quantile(t, [0.8, 0.9]))
    t2 = int(t.max())
    rows = [Interaction(str(a), str(b), float(c), int(d)) for a, b, c, d in zip(u, i, r, t)]
    before = [x for x in rows if x.timestamp <= t0]
    count_before: dict[str, int] = {}
    for x in before:
        count_before[x.user_id] = count_before.get(x.user_id, 0) + 1
    targets: dict[str, set[str]] = {}
    for x in rows:
        if t1 < x.timestamp and x.rating >= LIKE and count_before.get(x.user_id, 0) >= 5:
            targets.setdefault(x.user_id, set()).add(x.item_id)
    chosen = sorted(targets)
    random.Random(seed).shuffle(chosen)
    chosen = sorted(chosen[:users])
    stream = feedback_stream(rows, t0, t1, chosen, count_before, feedback_from)
    stream_users = sorted({x.user_id for x in stream})
    test_feeders = len(set(stream_users) & set(chosen))
    log(f"temporal split of {dataset_name}: T0={time.strftime('%Y-%m-%d', time.gmtime(t0))}, "
        f"T1={time.strftime('%Y-%m-%d', time.gmtime(t1))}, T2={time.strftime('%Y-%m-%d', time.gmtime(t2))}; "
        f"{len(chosen)} test users, {len(stream)} feedback events in (T0, T1] from {len(stream_users)} users "
        f"({test_feeders} of them test users; feedback from {feedback_from})")

    work = home.root / "eval" / f"temporal-work-{seed}"
    shutil.rmtree(work, ignore_errors=True)
    embedder = Embedder(cache_path=home.embedding_cache())
    name = f"{dataset_name}-t0"
    sequential_cache = home.root / "eval" / "temporal-sasrec" if reuse_retrievers else None
    world = _World(work / "t0", name, items, before, embedder, home.models, sequential_minutes, sequential_cache, log)
    history_t0 = {user: world.dataset.user_history(user) for user in chosen}

    stale = [_metrics(world.rank(user, history_t0[user], set(), K), targets[user]) for user in chosen]
    log(f"stale: {_summary(stale)}")

    replay_started = time.perf_counter()
    sessions = {user: world.assistant.new_session(user) for user in sorted(set(chosen) | set(stream_users))}

    def immediate_rank(user: str, n: int) -> list[str]:
        session = sessions[user]
        _, disliked = world.assistant.feedback_state(user)
        return world.rank(user, world.assistant.history(session), disliked, n)

    refreshes: list[dict] = []

    def refresh_now(after_events: int) -> None:
        outcome = run_refresh(world.home, name, refresh_config, log=log, served_retrieval=lambda: world.recommender)
        refreshes.append({"after_events": after_events, **outcome})
        log(f"refresh after {after_events} events: {outcome.get('version')} {outcome.get('decision')}; serving "
            f"{outcome.get('serving') or 'no adapter'}")

    on_shown = {"like": 0, "dislike": 0}
    bar = tqdm(stream, desc="replaying (T0, T1]", unit="event", mininterval=5, disable=not progress)
    for n, x in enumerate(bar, start=1):
        session = sessions[x.user_id]
        session.state.last_items = tuple(immediate_rank(x.user_id, POOL))
        if x.item_id in session.state.last_items:
            on_shown["like" if x.rating >= LIKE else "dislike"] += 1
        world.assistant.feedback(session, x.item_id, liked=x.rating >= LIKE)
        if refresh_every and n % refresh_every == 0 and n < len(stream):  # the scheduler's "every N events"
            refresh_now(n)
    replay_s = time.perf_counter() - replay_started - sum(r["refresh_seconds"] for r in refreshes)
    log(f"replayed {len(stream)} events through Assistant.feedback in {replay_s:.1f} s; the rated item was in the "
        f"list shown at that moment for {on_shown['like']} likes and {on_shown['dislike']} dislikes")

    immediate, immediate_pools = [], {}
    for user in chosen:
        pool = immediate_rank(user, POOL)
        immediate_pools[user] = pool
        immediate.append(_metrics(pool, targets[user]))
    log(f"immediate: {_summary(immediate)}")

    refresh_now(len(stream))
    refresh = refreshes[-1]
    registry = AdapterRegistry.of_home(world.home)
    if json_path is not None:  # the world is removed at the end
        _keep_gate_lists(registry, refreshes, json_path)
    lm = ServingReranker(registry, background=False, log=log) if registry.serving() else None
    world.assistant.lm = lm

    def with_lm(pool: list[str], history: list[Interaction]) -> list[str]:
        return _lm_rank(world.assistant, pool, history) if world.assistant.lm is not None else pool[:K]

    def on_test_users() -> list[tuple[float, float]]:
        """The immediate pools reranked by the world's current reranker."""
        return [_metrics(with_lm(immediate_pools[user], world.assistant.history(sessions[user])), targets[user])
                for user in chosen]

    refreshed = on_test_users()
    log(f"refreshed: {_summary(refreshed)} (adapter {refresh.get('version')}: {refresh.get('decision')})")
    rejected_candidate = None
    if refresh.get("decision") == "rejected" and refresh.get("version"):
        # was the gate right? the rejected adapter on the same test users, as it would have served
        world.assistant.lm = ServingReranker(registry, background=False, log=log, pinned=refresh["version"])
        rejected_candidate = _summary(on_test_users())
        world.assistant.lm = lm
        log(f"the rejected adapter, had it been promoted: {rejected_candidate}")

    up_to_t1 = [x for x in rows if x.timestamp <= t1]
    rebuilt = _World(work / "t1", f"{dataset_name}-t1", items, up_to_t1, embedder, home.models, sequential_minutes,
                     sequential_cache, log)
    retrained = []
    for user in chosen:
        history = rebuilt.dataset.user_history(user)
        pool = rebuilt.rank(user, history, set(), POOL)
        retrained.append(_metrics(with_lm(pool, history), targets[user]))
    log(f"retrained: {_summary(retrained)}")
    paired = {"immediate_vs_stale": _paired_ndcg(immediate, stale, seed),
              "refreshed_vs_immediate": _paired_ndcg(refreshed, immediate, seed),
              "refreshed_vs_stale": _paired_ndcg(refreshed, stale, seed)}
    gain = paired["refreshed_vs_immediate"]
    log(f"refreshed - immediate NDCG@10: {gain['mean_diff']:+.4f} [{gain['ci_low']:+.4f}, {gain['ci_high']:+.4f}] "
        "(paired bootstrap over users)")

    replay_users = {user for r in refreshes for user in r.get("replay_users", ())}
    held_out_likes = _pre_t0_sample(chosen, history_t0, count_before, world.dataset, replay_users,
                                    forgetting_users, seed)
    stale_pre, refreshed_pre, pre_pools = [], [], []
    for user, (earlier, held_out, exclude) in tqdm(held_out_likes.items(), desc="forgetting sample (pre-T0)",
                                                   unit="user", mininterval=10, disable=not progress):
        target = {held_out}
        # the stored profile holds the held-out like: rank from a profile of the earlier history alone
        pool = world.rank(user, earlier, exclude, POOL, profile=profile_of(world.recommender, user, earlier))
        stale_pre.append(_metrics(pool, target))
        refreshed_pre.append(_metrics(with_lm(pool, earlier), target))
        pre_pools.append((pool, earlier, target))
    stale_pre_ndcg = float(np.mean([m[0] for m in stale_pre])) if stale_pre else 0.0
    refreshed_pre_ndcg = float(np.mean([m[0] for m in refreshed_pre])) if refreshed_pre else 0.0
    forgetting = _relative_drop(stale_pre, refreshed_pre)
    former = FORMER_FORGETTING_USERS
    first_1000 = ({"users": former, "forgetting": round(_relative_drop(stale_pre[:former], refreshed_pre[:former]), 4)}
                  if len(stale_pre) > former else None)
    if rejected_candidate is not None:  # and would it have forgotten?
        world.assistant.lm = ServingReranker(registry, background=False, log=log, pinned=refresh["version"])
        rejected_pre = [_metrics(with_lm(pool, earlier), target) for pool, earlier, target in
                        tqdm(pre_pools, desc="forgetting sample, the rejected adapter", unit="user", mininterval=10,
                             disable=not progress)]
        world.assistant.lm = lm
        rejected_candidate["forgetting"] = round(_relative_drop(stale_pre, rejected_pre), 4)
        log(f"the rejected adapter's forgetting: {rejected_candidate['forgetting']}")

    result = {
        "protocol": {
            "name": "temporal", "dataset": dataset_name, "seed": seed, "users": len(chosen),
            "T0": t0, "T1": t1, "T2": t2, "split": "global timestamp quantiles 0.8 / 0.9 / max",
            "targets": "likes (rating >= 4) in (T1, T2]", "candidates": "all items minus known history",
            "ranking": "profile vector as the query (no text request), top 10; LM reranks the top 20",
            "feedback": (f"(T0, T1] of {FEEDBACK_USERS[feedback_from]} through Assistant.feedback: >= 4 like, "
                         "<= 2 dislike; each event carries the list the system showed at that moment (its top 20, "
                         "earlier events applied); a rated item outside it only extends the history"),
            "feedback_from": feedback_from, "feedback_users": len(stream_users), "feedback_test_users": test_feeders,
            "feedback_events": len(stream), "feedback_on_shown_list": on_shown,
            "refreshes": (f"every {refresh_every} events during the replay and once after it, each continuing "
                          "the adapter that serves, gated against it" if refresh_every else
                          "once, after the whole stream"),
            "refresh_lora": f"top {refresh_lora_layers} layers" if refresh_lora_layers else "every layer",
            "refresh_config": asdict(refresh_config),
            "forgetting_sample": (f"{len(held_out_likes)} users ({len(set(chosen) & set(held_out_likes))} "
                                  "test users, the others T0 users; none whose replay list the refresh trained or "
                                  "gated on), last like before T0"),
            "sequential_retriever": (f"SASRec trained on each world's interactions only ({sequential_minutes:g} min "
                                     "budget each), fused with the profile; its user state reads the history, "
                                     "feedback included" if sequential_minutes > 0
                                     else "not used (profile only)"),
            "sequential_training": {"t0": world.sequential_report, "t1": rebuilt.sequential_report}},
        "stale": _summary(stale), "immediate": _summary(immediate), "refreshed": _summary(refreshed),
        "retrained": _summary(retrained),
        "rejected_candidate": rejected_candidate,
        "paired_ndcg@10": {"protocol": "same test users, mean difference, 95% paired bootstrap over users (2,000 "
                                       "resamples)", **paired},
        "per_user_ndcg@10": {"users": chosen, **{name: [round(m[0], 4) for m in values] for name, values in
                                                 (("stale", stale), ("immediate", immediate),
                                                  ("refreshed", refreshed), ("retrained", retrained))}},
        "forgetting": round(forgetting, 4),
        "forgetting_detail": {"stale_ndcg@10": round(stale_pre_ndcg, 4), "refreshed_ndcg@10": round(refreshed_pre_ndcg, 4),
                              **_forgetting_interval(refreshed_pre, stale_pre, seed),
                              "first_1000_users": first_1000},
        "refresh_seconds": max(r["refresh_seconds"] for r in refreshes),
        "refresh": {k: v for k, v in refresh.items() if k not in ("gate", "replay_users")},
        "gate": refresh.get("gate"),
        "refreshes": [_refresh_summary(r) for r in refreshes],
        "replay_seconds": round(replay_s, 1), "wall_seconds": round(time.perf_counter() - started, 1),
    }
    for key in [k for k in ("immediate", "refreshed", "retrained", "rejected_candidate") if result[k]]:
        result[key]["vs_stale"] = round(result[key]["ndcg@10"] / result["stale"]["ndcg@10"], 4) \
            if result["stale"]["ndcg@10"] else None
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result, indent=2, default=str))
    shutil.rmtree(work, ignore_errors=True)
    return result
