"""Lists built from feedback events: the target where it was shown, dislikes as negatives, no future."""
from __future__ import annotations

from hypothesis import given, strategies as st

from assistant.feedback_training import by_position, feedback_examples, gate_fold, is_held_out, split_by_user
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


def test_held_out_users_and_gate_folds_are_stable_independent_shares():
    users = [f"user{n}" for n in range(4000)]
    held = [u for u in users if is_held_out(u)]
    assert 0.42 < len(held) / len(users) < 0.48 and [is_held_out(u) for u in users[:50]] == [is_held_out(u) for u in users[:50]]
    # the folds split held-out users (and everyone else) in halves, unrelated to being held out
    assert 0.45 < sum(gate_fold(u) for u in held) / len(held) < 0.55
    assert 0.45 < sum(gate_fold(u) for u in users if not is_held_out(u)) / (len(users) - len(held)) < 0.55
    events = [ev(u, "3", LIKE, ["3", "4"]) for u in users[:300]]
    hist = {u: [Interaction(u, "1", 5.0, 1)] for u in users[:300]}
    lists = feedback_examples(events, hist, TEXTS)
    train, held_lists = split_by_user(lists)
    groups = [{e.user_id for e in part} for part in (train, held_lists)]
    assert all(groups) and len(train) + len(held_lists) == len(lists) and not groups[0] & groups[1]


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
