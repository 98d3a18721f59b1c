"""Lists built from feedback events: the target where it was shown, dislikes as negatives, no future."""
from __future__ import annotations

from assistant.feedback_training import feedback_examples, is_held_out, split_by_user
from data.catalogue import Interaction
from data.feedback import DISLIKE, LIKE, FeedbackEvent

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


def test_held_out_users_are_a_stable_share():
    users = [f"user{n}" for n in range(4000)]
    share = sum(is_held_out(u) for u in users) / len(users)
    assert 0.22 < share < 0.28 and [is_held_out(u) for u in users[:50]] == [is_held_out(u) for u in users[:50]]
    events = [ev(u, "3", LIKE, ["3", "4"]) for u in users[:200]]
    hist = {u: [Interaction(u, "1", 5.0, 1)] for u in users[:200]}
    train, held = split_by_user(feedback_examples(events, hist, TEXTS))
    assert not {e.user_id for e in train} & {e.user_id for e in held}


def test_an_item_the_user_also_liked_is_never_a_negative():
    """Two likes from one shown list: each is the other's fellow positive, not its negative (also when
    the second like comes later)."""
    events = [ev("u", "3", LIKE, ["3", "4", "5", "6"]), ev("u", "5", LIKE, ["3", "4", "5", "6"]),
              ev("u", "6", DISLIKE, ["4", "6"])]
    first, second = feedback_examples(events, {"u": [Interaction("u", "1", 5.0, 1)]}, TEXTS)
    assert first.candidate_ids == ["3", "4", "6"] and first.target == 0
    assert second.candidate_ids == ["4", "5", "6"] and second.target == 1
