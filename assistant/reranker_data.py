"""Training / evaluation lists for the LM reranker, built from per-user sequences and a retriever.

Everything here takes plain data (per-user item sequences in time order, a candidate function)
so any split can feed it. The caller is responsible for passing only training-period
interactions as histories; `assert_no_leakage` checks that held-out items never appear in a
history or as a training target.
"""
from __future__ import annotations

from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from finetune.scorer import item_text
from finetune.training import RerankExample

CandidateFn = Callable[[Sequence[str]], list[tuple[str, float]]]


def user_sequences(user_ids, item_ids, ratings, timestamps=None) -> dict[str, tuple[list[str], list[float]]]:
    """Group interaction columns (sorted by user, then time) into {user: (items, ratings)}."""
    u = np.asarray(user_ids, dtype=object)
    if len(u) == 0:
        return {}
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    ends = np.r_[starts[1:], len(u)]
    items = np.asarray(item_ids, dtype=object)
    rates = np.asarray(ratings, dtype=np.float32)
    return {str(u[s]): (list(items[s:e]), [float(x) for x in rates[s:e]]) for s, e in zip(starts, ends)}


def item_texts(items: Iterable, with_genres: bool = True) -> dict[str, str]:
    """{item_id: 'Title (year) [genres]'} from catalogue Items."""
    return {it.item_id: item_text(it.title, it.year, it.genres if with_genres else ()) for it in items}


def liked_history(items: Sequence[str], ratings: Sequence[float], n: int = 8, like_threshold: float = 4.0
                  ) -> list[str]:
    """The last `n` items rated >= like_threshold (oldest first); falls back to the last n items."""
    liked = [i for i, r in zip(items, ratings) if r >= like_threshold]
    return (liked or list(items))[-n:]


def build_examples(histories: Mapping[str, tuple[Sequence[str], Sequence[float]]], targets: Mapping[str, str],
                   candidate_fn: CandidateFn, texts: Mapping[str, str], history_texts: Mapping[str, str] | None = None,
                   k: int = 20, require_target: bool = True, n_history: int = 8, like_threshold: float = 4.0,
                   users: Iterable[str] | None = None) -> list[RerankExample]:
    """One example per user: candidates = retriever top-k for the history, in retriever order.

    With `require_target` (the default) only users whose target the retriever found naturally are
    kept (no inserted positives, so no 'odd one out' shortcut). The candidate order is the
    retriever's; the LM scorer is order-invariant, so this does not leak position.
    """
    history_texts = history_texts or texts
    out = []
    for user in (users if users is not None else histories.keys()):
        if user not in targets:
            continue
        items, ratings = histories[user]
        if not items:
            continue
        target = targets[user]
        recs = candidate_fn(list(items))[:k]
        ids = [i for i, _ in recs]
        if target not in ids:
            if require_target:
                continue
            ids = ids[: k - 1] + [target]
            recs = recs[: k - 1] + [(target, min((s for _, s in recs), default=0.0))]
        hist = liked_history(items, ratings, n_history, like_threshold)
        out.append(RerankExample(user_id=user, history=[history_texts[i] for i in hist],
                                 candidates=[texts[i] for i in ids], target=ids.index(target),
                                 retriever_scores=[float(s) for _, s in recs], candidate_ids=ids))
    return out


def assert_no_leakage(histories: Mapping[str, tuple[Sequence[str], Sequence[float]]],
                      held_out: Mapping[str, Iterable[str]], examples: Sequence[RerankExample] = ()) -> None:
    """Raise if any user's held-out item (validation/test) is in their history or is a training target."""
    for user, items in held_out.items():
        bad = set(items) & set(histories.get(user, ((), ()))[0])
        if bad:
            raise AssertionError(f"leakage: held-out items {sorted(bad)[:3]} of {user} in the training history")
    for ex in examples:
        held = set(held_out.get(ex.user_id, ()))
        if ex.candidate_ids and ex.candidate_ids[ex.target] in held:
            raise AssertionError(f"leakage: training target of {ex.user_id} is a held-out item")
