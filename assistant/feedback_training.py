"""Reranker lists from feedback events (for refresh) and replay lists from the data set.

A thumbs-up on an item that was shown in a list makes one list: the liked item is the target, the
other items shown with it are the negatives (except those the user liked too), and the user's
dislikes are added as explicit negatives. The retriever feature of each candidate is its position
in the shown list. The user's context is what they liked before that click (data set history
rated >= 4, then earlier thumbs-up), so no list sees its own future.

The gate holds out each user's latest likes (`split_latest`): a user's earlier feedback trains the
candidate and their later lists judge it, which is the question the product faces (this person's
next like), with every feedback user informing the gate. Training sees nothing a user did from their
first held-out like on, not even which items they liked later. Users (held-out feedback and replay
alike) fall into one of two gate folds by a hash: each fold's lists are gated with the fusion weight
chosen on the other fold's, so no list is scored with a weight chosen on it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
from typing import Mapping, NamedTuple, Sequence

import numpy as np

from assistant.reranker_data import liked_history
from data.catalogue import Interaction
from data.feedback import DISLIKE, LIKE, FeedbackEvent
from finetune.training import RerankExample

HELD_OUT_SHARE = 0.45
MAX_CANDIDATES = 20
EXTRA_DISLIKES = 5


def _user_bucket(user_id: str, salt: str = "refresh-holdout") -> float:
    digest = hashlib.sha256(f"{salt}:{user_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def held_out_count(user_id: str, n_lists: int, share: float = HELD_OUT_SHARE) -> int:
    """How many of a user's latest lists are held out: `share` of them, rounded up or down by a stable
    hash of the user, so that over users exactly `share` is held out on average (a user with one list
    is held out with probability `share`)."""
    return min(n_lists, int(share * n_lists + _user_bucket(user_id)))


def gate_fold(user_id: str) -> int:
    """0 or 1, stable per user and independent of `held_out_count`."""
    return int(_user_bucket(user_id, "refresh-gate-fold") < 0.5)


def feedback_examples(events: Sequence[FeedbackEvent], histories: Mapping[str, Sequence[Interaction]],
                      texts: Mapping[str, str], max_candidates: int = MAX_CANDIDATES) -> list[RerankExample]:
    """One list per thumbs-up on an item of a shown list (of at least two known items), the target at
    the position it was shown in. A like outside any shown list only extends the user's history: put
    at a fixed slot it would teach the reranker that slot."""
    return [example for _, example in _lists_with_events(events, histories, texts, max_candidates)]


def _lists_with_events(events: Sequence[FeedbackEvent], histories: Mapping[str, Sequence[Interaction]],
                       texts: Mapping[str, str], max_candidates: int = MAX_CANDIDATES
                       ) -> list[tuple[int, RerankExample]]:
    """feedback_examples, each list with the index in `events` of the like that made it."""
    by_user: dict[str, list[tuple[int, FeedbackEvent]]] = {}
    for index, event in enumerate(events):
        by_user.setdefault(event.user_id, []).append((index, event))
    out = []
    for user, user_events in by_user.items():
        base = histories.get(user, ())
        liked_before = liked_history([x.item_id for x in base], [x.rating for x in base], n=8)
        liked_before = [i for i in liked_before if i in texts]
        disliked: list[str] = []
        liked_items = {e.item_id for _, e in user_events if e.value == LIKE}
        for index, event in user_events:
            if event.value == DISLIKE:
                disliked.append(event.item_id)
                continue
            if event.value != LIKE or event.item_id not in texts:
                continue
            shown = [i for i in event.context.get("shown") or [] if i in texts]
            if event.item_id not in shown:  # no list it was chosen from (e.g. stated in chat): history only
                liked_before.append(event.item_id)
                continue
            extra = [i for i in reversed(disliked) if i in texts and i not in shown][:EXTRA_DISLIKES]
            # another item the user liked is no negative, whichever came first
            candidates = [i for i in dict.fromkeys(shown + extra) if i == event.item_id or i not in liked_items]
            candidates = candidates[:max_candidates]
            if event.item_id not in candidates:
                candidates = candidates[: max_candidates - 1] + [event.item_id]
            history = [texts[i] for i in liked_before[-8:]]
            if len(candidates) >= 2 and history:
                out.append((index, RerankExample(
                    user_id=user, history=history, candidates=[texts[i] for i in candidates],
                    target=candidates.index(event.item_id),
                    retriever_scores=position_scores(len(candidates)),
                    request=str(event.context.get("query") or "")[:200], candidate_ids=candidates)))
            liked_before.append(event.item_id)
    return out


class FeedbackSplit(NamedTuple):
    train: list[RerankExample]  # each user's lists before their first held-out like, built from those events only
    held: list[RerankExample]  # each user's latest lists
    every: list[RerankExample]  # every list the events make (held ones included), as feedback_examples builds them


def split_latest(events: Sequence[FeedbackEvent], histories: Mapping[str, Sequence[Interaction]],
                 texts: Mapping[str, str], share: float = HELD_OUT_SHARE) -> FeedbackSplit:
    """Training and held-out feedback lists, `events` in the order they happened. Each user's latest
    lists are held out (`held_out_count`); training lists are built from the user's events before the
    first held-out like only, so no training list is shaped by what the user did later (an item liked
    later is not a negative, for instance, which only a later event can tell)."""
    made = _lists_with_events(events, histories, texts)
    by_user: dict[str, list[tuple[int, RerankExample]]] = {}
    for pair in made:
        by_user.setdefault(pair[1].user_id, []).append(pair)
    held, cutoff = [], {}
    for user, pairs in by_user.items():
        n_held = held_out_count(user, len(pairs), share)
        if n_held:
            held += [example for _, example in pairs[len(pairs) - n_held:]]
            cutoff[user] = pairs[len(pairs) - n_held][0]
    before = [e for index, e in enumerate(events) if index < cutoff.get(e.user_id, len(events))]
    return FeedbackSplit(feedback_examples(before, histories, texts), held, [example for _, example in made])


def first_per_user(examples: Sequence, cap: int, user_of=lambda example: example.user_id) -> list:
    """Each user's first `cap` lists, in the given order (`user_of`: a list's user, by default a
    RerankExample's)."""
    if cap < 1:
        raise ValueError(f"cap must be at least 1, got {cap}")
    seen: dict[str, int] = {}
    kept = []
    for example in examples:
        user = user_of(example)
        seen[user] = seen.get(user, 0) + 1
        if seen[user] <= cap:
            kept.append(example)
    return kept


def position_scores(n: int) -> list[float]:
    """The retriever feature of a list known only by its order: first highest."""
    return [-float(rank) for rank in range(n)]


def by_position(example: RerankExample) -> RerankExample:
    """The list with its retriever feature replaced by the candidates' positions, the feature feedback
    lists carry (only the order they were shown in is stored) and serving passes."""
    return dataclasses.replace(example, retriever_scores=position_scores(len(example.candidates)))


def popularity_replay_examples(histories: Mapping[str, tuple[Sequence[str], Sequence[float]]],
                               targets: Mapping[str, str], popularity: Mapping[str, int], texts: Mapping[str, str],
                               users: Sequence[str], seed: int, k: int = MAX_CANDIDATES) -> list[RerankExample]:
    """Replay lists without a sequential retriever: the user's validation item among the most popular
    items they have not seen, ranked by popularity (the retriever feature)."""
    ranked = sorted(popularity, key=lambda i: (-popularity[i], i))
    rng = random.Random(seed)
    out = []
    for user in users:
        items, ratings = histories.get(user, ((), ()))
        target = targets.get(user)
        if not items or target is None or target not in texts:
            continue
        seen = set(items) | {target}
        pool = [i for i in ranked[: 10 * k] if i not in seen and i in texts]
        negatives = rng.sample(pool, min(k - 1, len(pool)))
        candidates = sorted(negatives + [target], key=lambda i: -popularity.get(i, 0))
        history = [texts[i] for i in liked_history(list(items), list(ratings), 8) if i in texts]
        out.append(RerankExample(user_id=user, history=history, candidates=[texts[i] for i in candidates],
                                 target=candidates.index(target),
                                 retriever_scores=[float(np.log1p(popularity.get(i, 0))) for i in candidates],
                                 candidate_ids=candidates))
    return out
