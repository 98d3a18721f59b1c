"""The immediate effect of feedback, before any retraining (issue 5, item 2), through the same
`Assistant` API the UI uses (`new_session`, `reply`, `feedback`).

Protocol: ML-1M, N known users drawn at random (seed 0), each with a first request from a fixed
list of requests that constrain no genre ("something good to watch tonight", "films from the 80s",
...), k=10. Every arm runs on its OWN copy of the home's Chroma directory (feedback moves profile
vectors in Chroma) with a temporary FeedbackStore; the real home is never written.

(a)+(c) arm "one dislike, one like" (served dislike_penalty): first list L1 of a fresh session;
  a dislike of X = L1[0] and a like of Y = L1[1]; then 5 probe turns in the same session and the
  same 5 probe turns in a fresh session (the first request again, "something else", X's genre,
  X's decade, "more like" L1[2]). Violations = probe lists holding X (or Y): must be 0. Power
  check: the same 5 probes in a fresh session BEFORE the feedback, counting how often X and Y
  appear there (without feedback they can come back). (c) also checks that Y joins the user's
  history (`Assistant.history`) and that the profile vector moves towards Y (cosine before/after).
(b) arms "three dislikes in one genre", run twice: with the served dislike_penalty and with
  dislike_penalty=0 (the profile update alone; the three items are excluded either way):
  G = the most frequent genre of L1 (ties: alphabetical); dislike the first three items of L1 in
  G; then (i) the next turn of the same session ("something else") and (ii) the first request
  again in a fresh session. Share of G = items in G / items in the list. Compared with L1's
  share and with a CONTROL without feedback (the same two turns, run before any feedback: a
  "something else" turn after L1 in a second session, where L1, the three items included, is
  already excluded as shown; and L1 itself for the fresh session), plus for (ii) an
  "exclusion only" control: a fresh session in which the three items count as shown (excluded,
  no feedback, no profile change). A further arm with a large penalty (2.0) shows the
  sensitivity to the penalty.

    .venv/bin/python bench/bench_feedback_effect.py [--users 50] [--json bench/results/feedback_effect.json]
"""
import _common  # noqa: F401  (offline switches first)

import argparse
import random
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

from _assistant_bench import machine, open_bench_assistant, write_result  # noqa: E402

HERE = Path(__file__).resolve().parent
FIRST = ["something good to watch tonight", "a great movie from the 90s", "surprise me with a good film",
         "a classic film", "films from the 80s", "a movie with a great story", "something from the 70s",
         "a highly rated film", "a fun pick for movie night", "a memorable film from before 1990"]
GENRE_WORD = {"action": "action", "adventure": "adventure", "animation": "animated", "children": "kids",
              "comedy": "comedy", "crime": "crime", "documentary": "documentary", "drama": "drama",
              "fantasy": "fantasy", "film_noir": "film noir", "horror": "horror", "musical": "musical",
              "mystery": "mystery", "romance": "romance", "sci_fi": "sci-fi", "thriller": "thriller", "war": "war",
              "western": "western"}


def ids(reply) -> list[str]:
    return [r.item.item_id for r in reply.items]


def share(reply, genre: str) -> float | None:
    return float(np.mean([genre in r.item.genre_slugs for r in reply.items])) if reply.items else None


def main_genre(reply) -> str:
    counts = Counter(s for r in reply.items for s in r.item.genre_slugs)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def probes(first: str, reply, items) -> list[str]:
    x = reply.items[0].item
    decade = (x.year // 10 * 10) % 100 if x.year else 90
    return [first, "something else", f"{GENRE_WORD.get(x.genre_slugs[0], 'drama')} movies" if x.genre_slugs
            else "drama movies", f"films from the {decade:02d}s", f"more like {reply.items[2].item.title}"]


def arm_one_dislike_one_like(users: list[str], embedder, sequential_dir=None) -> dict:
    runtime = open_bench_assistant(embedder=embedder, sequential_dir=sequential_dir)
    a = runtime.assistant
    violations = {"disliked_same_session": 0, "disliked_fresh_session": 0, "liked_same_session": 0,
                  "liked_fresh_session": 0}
    control = {"disliked": 0, "liked": 0}
    turns = {"same_session": 0, "fresh_session": 0, "control": 0}
    history_ok, profile_moves, examples = 0, [], []
    try:
        for n, user in enumerate(users):
            first = FIRST[n % len(FIRST)]
            session = a.new_session(user)
            l1 = a.reply(session, first)
            if len(l1.items) < 3:
                continue
            x, y = l1.items[0].item.item_id, l1.items[1].item.item_id
            texts = probes(first, l1, a.recommender.items)
            probe = a.new_session(user)  # power check: without feedback, do X and Y come back?
            for text in texts:
                got = ids(a.reply(probe, text))
                control["disliked"] += x in got
                control["liked"] += y in got
                turns["control"] += 1
            before = a.recommender.profiles.get(user).query_vector()
            a.feedback(session, x, liked=False)
            a.feedback(session, y, liked=True)
            vy = a.recommender.item_vectors([y])[y]
            after = a.recommender.profiles.get(user).query_vector()
            profile_moves.append(float(after @ vy) - float(before @ vy))
            history_ok += y in {h.item_id for h in a.history(session)}
            fresh = a.new_session(user)
            for name, sess in (("same_session", session), ("fresh_session", fresh)):
                for text in texts:
                    got = ids(a.reply(sess, text))
                    turns[name] += 1
                    violations[f"disliked_{name}"] += x in got
                    violations[f"liked_{name}"] += y in got
            if len(examples) < 3:
                examples.append({"user": user, "first": first, "disliked": l1.items[0].item.label,
                                 "liked": l1.items[1].item.label, "probes": texts})
    finally:
        runtime.cleanup()
    return {"users": len(profile_moves), "violations": violations, "probe_turns": turns,
            "control_returns_without_feedback": control,
            "liked_item_in_history": history_ok,
            "profile_cosine_to_liked_item": {"mean_change": round(float(np.mean(profile_moves)), 4),
                                             "users_moved_towards": int(sum(m > 0 for m in profile_moves))},
            "examples": examples}


def arm_genre_dislikes(users: list[str], embedder, penalty: float | None, sequential_dir=None) -> dict:
    runtime = open_bench_assistant(embedder=embedder, sequential_dir=sequential_dir,
                                   **({} if penalty is None else {"dislike_penalty": penalty}))
    a = runtime.assistant
    rows = []
    try:
        for n, user in enumerate(users):
            first = FIRST[n % len(FIRST)]
            # control first: nothing it does writes feedback or moves the profile
            control_session = a.new_session(user)
            l1_control = a.reply(control_session, first)
            next_control = a.reply(control_session, "something else")
            session = a.new_session(user)
            l1 = a.reply(session, first)
            if not l1.items:
                continue
            genre = main_genre(l1)
            in_genre = [r.item.item_id for r in l1.items if genre in r.item.genre_slugs][:3]
            if len(in_genre) < 3:
                continue
            # exclusion alone: a fresh session that has "already shown" the three items (no feedback at all)
            excluded_only = a.new_session(user)
            excluded_only.shown.extend(in_genre)
            fresh_excluded = a.reply(excluded_only, first)
            for item_id in in_genre:
                a.feedback(session, item_id, liked=False)
            next_turn = a.reply(session, "something else")
            fresh = a.reply(a.new_session(user), first)
            rows.append({"user": user, "first": first, "genre": genre, "same_l1": ids(l1) == ids(l1_control),
                         "l1": share(l1, genre), "next_control": share(next_control, genre),
                         "next_after": share(next_turn, genre), "fresh_control": share(l1, genre),
                         "fresh_after": share(fresh, genre), "fresh_exclusion_only": share(fresh_excluded, genre),
                         "disliked_returned": sum(i in ids(next_turn) + ids(fresh) for i in in_genre)})
    finally:
        penalty_used = a.dislike_penalty
        runtime.cleanup()

    def mean(key):
        values = [r[key] for r in rows if r[key] is not None]
        return round(float(np.mean(values)), 4) if values else None

    out = {"dislike_penalty": penalty_used, "users": len(rows),
           "genres": dict(Counter(r["genre"] for r in rows).most_common()),
           "share_l1": mean("l1"),
           "next_turn": {"control": mean("next_control"), "after_dislikes": mean("next_after")},
           "fresh_session_same_request": {"control": mean("fresh_control"),
                                          "exclusion_only": mean("fresh_exclusion_only"),
                                          "after_dislikes": mean("fresh_after")},
           "disliked_items_returned": int(sum(r["disliked_returned"] for r in rows)),
           "first_list_identical_in_control": int(sum(r["same_l1"] for r in rows)),
           "per_user": [{k: v for k, v in r.items() if k != "first"} for r in rows]}
    for key in ("next_turn", "fresh_session_same_request"):
        c, d = out[key]["control"], out[key]["after_dislikes"]
        out[key]["relative_drop_vs_control"] = round(1 - d / c, 4) if c else None
        out[key]["relative_drop_vs_first_list"] = round(1 - d / out["share_l1"], 4) if out["share_l1"] else None
        diffs = [r[f"{'next' if key == 'next_turn' else 'fresh'}_control"] - r[f"{'next' if key == 'next_turn' else 'fresh'}_after"]
                 for r in rows if r[f"{'next' if key == 'next_turn' else 'fresh'}_after"] is not None
                 and r[f"{'next' if key == 'next_turn' else 'fresh'}_control"] is not None]
        out[key]["users_with_lower_share"] = int(sum(d > 0 for d in diffs))
        out[key]["users_with_higher_share"] = int(sum(d < 0 for d in diffs))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--extra-penalties", type=lambda v: [float(x) for x in v.split(",") if x], default=[2.0],
                    help="further dislike_penalty arms for (b), a sensitivity check (default 2.0; '' for none)")
    ap.add_argument("--sequential-dir", type=Path, default=None,
                    help="serve with this SASRec checkpoint (hybrid retrieval), published into each Chroma copy")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "feedback_effect.json")
    args = ap.parse_args()
    started = time.perf_counter()
    base = open_bench_assistant(copy_cache=False, sequential_dir=args.sequential_dir)  # owns the shared embedder
    try:
        users = random.Random(args.seed).sample(sorted(base.assistant.known_users()), args.users)
        embedder = base.assistant.recommender.embedder
        served_penalty = base.assistant.dislike_penalty
        sequential = base.sequential
        seq = args.sequential_dir
        one = arm_one_dislike_one_like(users, embedder, seq)
        genre_served = arm_genre_dislikes(users, embedder, None, seq)
        genre_no_penalty = arm_genre_dislikes(users, embedder, 0.0, seq)
        genre_extra = {str(p): arm_genre_dislikes(users, embedder, p, seq) for p in args.extra_penalties}
    finally:
        base.cleanup()
    result = {
        "protocol": {"dataset": "ml-1m", "users": args.users, "seed": args.seed, "k": 10,
                     "api": "Assistant.new_session / reply / feedback (the UI's path)",
                     "isolation": "each arm on its own copy of the home's Chroma dir, temporary FeedbackStore",
                     "served_dislike_penalty": served_penalty, "first_requests": FIRST,
                     "sequential_retriever": sequential,
                     "sequential_checkpoint": str(args.sequential_dir) if args.sequential_dir else None,
                     "b_genre": "G = most frequent genre of the first list; dislike its first three items in G",
                     "b_control": "same turns without any feedback"},
        "a_c_one_dislike_one_like": one,
        "b_three_dislikes_in_genre": {"served_penalty": genre_served, "penalty_0_profile_only": genre_no_penalty,
                                      **{f"penalty_{p}": arm for p, arm in genre_extra.items()}},
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(),
    }
    print(f"feedback effect: ML-1M, {args.users} known users (seed {args.seed}), k=10, through Assistant.reply/feedback, "
          f"each arm on its own Chroma copy, temporary feedback store, sequential retriever: {sequential}")
    v, t, c = one["violations"], one["probe_turns"], one["control_returns_without_feedback"]
    print(f"(a) dislike X = first item: X returned in {v['disliked_same_session']}/{t['same_session']} same-session and "
          f"{v['disliked_fresh_session']}/{t['fresh_session']} fresh-session probe turns (must be 0); without the "
          f"dislike X came back in {c['disliked']}/{t['control']} probe turns of a fresh session")
    print(f"(c) like Y = second item: Y returned in {v['liked_same_session']}/{t['same_session']} + "
          f"{v['liked_fresh_session']}/{t['fresh_session']} probe turns (must be 0; {c['liked']}/{t['control']} without "
          f"the like); Y in history for {one['liked_item_in_history']}/{one['users']} users; profile cosine to Y "
          f"{one['profile_cosine_to_liked_item']['mean_change']:+.4f} on average, towards Y for "
          f"{one['profile_cosine_to_liked_item']['users_moved_towards']}/{one['users']}")
    for label, arm in (("served dislike_penalty", genre_served), ("dislike_penalty=0 (profile only)", genre_no_penalty),
                       *(("diagnostic dislike_penalty", arm) for arm in genre_extra.values())):
        print(f"(b) three dislikes in genre G, {label} = {arm['dislike_penalty']}: {arm['users']} users, share of G in "
              f"the first list {arm['share_l1']}")
        for key, name in (("next_turn", "next turn ('something else')"),
                          ("fresh_session_same_request", "fresh session, same request")):
            s = arm[key]
            extra = f", exclusion of the 3 items alone {s['exclusion_only']}" if "exclusion_only" in s else ""
            print(f"    {name}: control {s['control']}{extra} -> after dislikes {s['after_dislikes']} "
                  f"(relative drop {s['relative_drop_vs_control']:+.1%} vs control, "
                  f"{s['relative_drop_vs_first_list']:+.1%} vs first list; lower for {s['users_with_lower_share']}, "
                  f"higher for {s['users_with_higher_share']} users)")
        print(f"    disliked items returned: {arm['disliked_items_returned']}; genres: {arm['genres']}")
    print(f"machine: {result['machine']}; {result['seconds']} s")
    write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
