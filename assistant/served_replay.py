"""Replay lists as the system serves them: what a data set user was shown before their last like.

For a sampled data set user (one who left no feedback) the last like is held out, and everything
from it on is unseen: the recommender ranks from the earlier history alone, with a profile vector
built from that history (the stored profile already holds the held-out like), no text request,
top 20, the later items excluded. A list is kept when the held-out like is in it. The retriever
feature is the position, as in serving and in feedback lists. These are the lists the refresh's gate
checks for forgetting: what an adapter does to the lists older users are served, not to a list
ranked by one retriever alone.
"""
from __future__ import annotations

import random
import time
from typing import Collection

import numpy as np

from assistant.feedback_training import position_scores
from assistant.recommender import Recommender
from assistant.request_parser import Request
from assistant.reranker_data import liked_history
from data.catalogue import Interaction
from finetune.training import RerankExample
from retrieval.filters import Constraints
from retrieval.profiles import Profile, build_profile

LIKE = 4.0
POOL = 20
MIN_LIKES = 6  # the held-out one and at least five before it
TRIES_PER_LIST = 20  # users tried per wanted list, at most (a list is kept only when its target is in it)


def served_replay_lists(recommender: Recommender, texts: dict[str, str], n: int, seed: int,
                        skip_users: Collection[str] = (), seconds: float | None = 90.0) -> list[RerankExample]:
    """Up to `n` lists of seeded users outside `skip_users`, trying at most TRIES_PER_LIST users per
    list and for at most `seconds` (a weak retriever finds few held-out likes)."""
    users = sorted(set(recommender.dataset.user_ids()) - set(skip_users))
    random.Random(seed).shuffle(users)
    deadline = None if seconds is None else time.monotonic() + seconds
    out: list[RerankExample] = []
    for user in users[: n * TRIES_PER_LIST]:
        if len(out) >= n or (deadline is not None and time.monotonic() >= deadline):
            break
        example = _served_list(recommender, texts, user)
        if example is not None:
            out.append(example)
    return out


def profile_of(recommender: Recommender, user: str, interactions: list[Interaction]) -> Profile | None:
    """The profile vector these interactions alone give (what the stored one was before the rest)."""
    vectors = recommender.item_vectors([x.item_id for x in interactions])
    kept = [x for x in interactions if x.item_id in vectors]
    if not kept:
        return None
    return build_profile(user, np.stack([vectors[x.item_id] for x in kept]), [x.rating for x in kept],
                         [x.timestamp for x in kept], recommender.profiles.weights)


def split_at_last_like(history: list[Interaction]) -> tuple[list[Interaction], str, set[str]] | None:
    """(the history before the last like, that like's item, the items after it) of a time-ordered
    history with at least MIN_LIKES likes; None otherwise."""
    likes = [n for n, x in enumerate(history) if x.rating >= LIKE]
    if len(likes) < MIN_LIKES:
        return None
    last = likes[-1]
    return history[:last], history[last].item_id, {x.item_id for x in history[last + 1:]}


def _served_list(recommender: Recommender, texts: dict[str, str], user: str) -> RerankExample | None:
    split = split_at_last_like(recommender.dataset.user_history(user))
    if split is None:
        return None
    earlier, target, later = split
    profile = profile_of(recommender, user, earlier)
    if profile is None or target not in texts:
        return None
    shown = recommender.recommend_request(Request(text="", constraints=Constraints()), earlier, None, POOL,
                                          exclude=later, profile=profile)
    candidates = [r.item.item_id for r in shown.items if r.item.item_id in texts]
    if target not in candidates:
        return None
    liked = [i for i in liked_history([x.item_id for x in earlier], [x.rating for x in earlier], n=8) if i in texts]
    if not liked:
        return None
    return RerankExample(user_id=user, history=[texts[i] for i in liked], candidates=[texts[i] for i in candidates],
                         target=candidates.index(target), retriever_scores=position_scores(len(candidates)),
                         candidate_ids=candidates)
