"""Lists built from feedback events: the target where it was shown, dislikes as negatives, no future."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from assistant.feedback_training import (by_position, feedback_examples, first_per_user, gate_fold, held_out_count,
                                        split_latest)
from assistant.refresh_config import RefreshConfig
from data.catalogue import Interaction
from data.feedback import DISLIKE, LIKE, FeedbackEvent
from finetune.training import RerankExample

TEXTS = {str(n): f"Film {n} (1990)" for n in range(1, 30)}


def ev(user, item, value, shown=None, t=0.0):
    return FeedbackEvent("d", user, "s", item, value, {"shown": shown} if shown is not None else {}, timestamp=t)


def test_lists_keep_the_shown_position_and_add_dislikes_as_negatives():
    history = {"u": [Interaction("u", "1", 5.0, 1), Interaction("u", "2", 2.0, 2)]}
    events = [ev("u", "9", DISLIKE, ["3", "4", "9"]),
              ev("u", "20", LIKE),  # stated in chat: no list, but history from now on
              ev("u", "4", LIKE, ["3", "4", "5"])]
    [example] = feedback_examples(events, history, TEXTS)
    assert example.candidate_ids[:3] == ["3", "4", "5"] and example.target == 1
    assert "9" in example.candidate_ids  # the earlier dislike is an explicit negative
    assert example.history == [TEXTS["1"], TEXTS["20"]]  # liked before the click, nothing after it
    assert example.retriever_scores == sorted(example.retriever_scores, reverse=True)


def test_a_like_sees_only_what_came_before_it():
    events = [ev("u", "3", LIKE, ["3", "4"]), ev("u", "5", LIKE, ["5", "6"])]
    first, second = feedback_examples(events, {"u": [Interaction("u", "1", 5.0, 1)]}, TEXTS)
    assert TEXTS["5"] not in first.history and TEXTS["3"] in second.history


def test_held_out_counts_and_gate_folds_are_stable_shares():
    users = [f"user{n}" for n in range(4000)]
    singles = [u for u in users if held_out_count(u, 1)]
    assert 0.42 < len(singles) / len(users) < 0.48  # a user with one list is held out with probability 0.45
    assert sum(held_out_count(u, 10) for u in users) / (10 * len(users)) == pytest.approx(0.45, abs=0.01)
    assert [held_out_count(u, 7) for u in users[:50]] == [held_out_count(u, 7) for u in users[:50]]
    # the folds split users in halves, unrelated to how much of them is held out
    assert 0.45 < sum(gate_fold(u) for u in singles) / len(singles) < 0.55


def _stream(draw_users: list[int], draw_items: list[int], dislike_every: int) -> list[FeedbackEvent]:
    events = []
    for n, (user, item) in enumerate(zip(draw_users, draw_items)):
        shown = [str(1 + (item + k) % 28) for k in range(4)]
        value = DISLIKE if dislike_every and n % dislike_every == 0 else LIKE
        events.append(FeedbackEvent("d", f"u{user}", "s", shown[n % 4], value, {"shown": shown, "query": f"q{n}"},
                                    timestamp=float(n)))
    return events


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.lists(st.integers(0, 6), min_size=n, max_size=n),
                                                       st.lists(st.integers(0, 27), min_size=n, max_size=n))),
       st.integers(0, 4))
def test_each_users_latest_lists_are_held_out_and_training_sees_nothing_after_them(draws, dislike_every):
    events = _stream(*draws, dislike_every)
    history = {e.user_id: [Interaction(e.user_id, "29", 5.0, 1)] for e in events}
    every = feedback_examples(events, history, TEXTS)
    train, held, made = split_latest(events, history, TEXTS)
    assert made == every
    for user in {x.user_id for x in every}:
        mine = [x for x in every if x.user_id == user]
        kept = [x for x in held if x.user_id == user]
        n_held = held_out_count(user, len(mine))
        assert kept == mine[len(mine) - n_held:]  # the latest ones, exactly as the gate would build them
        # training: the lists the user's events before their first held-out like make, nothing else
        first_held = int(kept[0].request[1:]) if kept else len(events)  # the query names the event
        before = [e for i, e in enumerate(events) if e.user_id == user and i < first_held]
        assert [x for x in train if x.user_id == user] == feedback_examples(before, history, TEXTS)
    assert {x.user_id for x in train + held} <= {x.user_id for x in every}


def test_training_does_not_learn_from_a_later_like():
    """A later like tells that an item is no negative: training, which ends before it, keeps it one."""
    user = next(f"user{n}" for n in range(1000) if held_out_count(f"user{n}", 2) == 1)
    events = [ev(user, "3", LIKE, ["3", "4", "5"], t=1), ev(user, "5", LIKE, ["5", "6"], t=2)]
    hist = {user: [Interaction(user, "1", 5.0, 1)]}
    [trained], [gated], _ = split_latest(events, hist, TEXTS)
    assert trained.candidate_ids == ["3", "4", "5"] and gated.candidate_ids == ["5", "6"]
    assert feedback_examples(events, hist, TEXTS)[0].candidate_ids == ["3", "4"]  # knowing the future drops 5


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=2, max_size=20))
def test_by_position_keeps_the_list_and_orders_the_feature_by_position(scores):
    example = RerankExample(user_id="u", history=["a"], candidates=[f"c{n}" for n in range(len(scores))], target=1,
                            retriever_scores=scores, candidate_ids=[str(n) for n in range(len(scores))])
    moved = by_position(example)
    assert moved.candidates == example.candidates and moved.target == 1 and moved.retriever_scores[0] == 0.0
    assert all(a > b for a, b in zip(moved.retriever_scores, moved.retriever_scores[1:]))


def test_an_item_the_user_also_liked_is_never_a_negative():
    """Two likes from one shown list: each is the other's fellow positive, not its negative (also when
    the second like comes later)."""
    events = [ev("u", "3", LIKE, ["3", "4", "5", "6"]), ev("u", "5", LIKE, ["3", "4", "5", "6"]),
              ev("u", "6", DISLIKE, ["4", "6"])]
    first, second = feedback_examples(events, {"u": [Interaction("u", "1", 5.0, 1)]}, TEXTS)
    assert first.candidate_ids == ["3", "4", "6"] and first.target == 0
    assert second.candidate_ids == ["4", "5", "6"] and second.target == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("abcd"), max_size=40), st.integers(1, 5))
def test_first_per_user_keeps_each_users_first_lists_in_order(owners, cap):
    lists = [RerankExample(user, [], [f"c{n}"], 0, [0.0]) for n, user in enumerate(owners)]
    kept = first_per_user(lists, cap)
    assert kept == [x for x in lists if x in kept]  # order kept
    for user in set(owners):
        assert [x for x in kept if x.user_id == user] == [x for x in lists if x.user_id == user][:cap]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_a_per_user_gate_cap_below_one_list_is_refused(bad):
    with pytest.raises(ValueError, match="max_gate_lists_per_user"):
        RefreshConfig(max_gate_lists_per_user=bad)
    with pytest.raises(ValueError):
        first_per_user([], 0)
