import numpy as np
import pytest

from data.splits import LeakageError, assert_no_leakage, leave_last_out, training_arrays, training_interactions



def _toy():
    # stored order deliberately not time-sorted; user b has a timestamp tie (x before y in storage)
    users = ["a", "a", "a", "a", "b", "b", "b", "b", "c", "c"]
    items = ["a3", "a1", "a4", "a2", "b1", "x", "y", "b0", "c1", "c2"]
    times = [30, 10, 40, 20, 5, 7, 7, 1, 1, 2]
    return leave_last_out(users, items, times)


def test_leave_last_out_by_timestamp_with_stored_order_ties():
    s = _toy()
    assert s.train["a"] == ["a1", "a2"] and s.valid["a"] == "a3" and s.test["a"] == "a4"
    assert s.train["b"] == ["b0", "b1"] and s.valid["b"] == "x" and s.test["b"] == "y"
    # too short for targets: everything stays in training
    assert s.train["c"] == ["c1", "c2"] and "c" not in s.valid and "c" not in s.test
    assert s.evaluable_users == ["a", "b"]
    assert s.history("a", "train") == s.history("a", "valid") == ["a1", "a2"]
    assert s.history("a", "test") == ["a1", "a2", "a3"]
    assert s.target("a", "valid") == "a3" and s.target("a", "test") == "a4"
    assert s.train_timestamps["a"] == [10, 20] and s.test_timestamp["a"] == 40


def test_training_stage_has_no_held_out_interaction():
    s = _toy()
    train = training_interactions(s)
    assert_no_leakage(s, train)
    for u, seq in train.items():
        assert not set(seq) & set(s.held_out(u))
    users, items, times = training_arrays(s)
    assert len(users) == sum(len(v) for v in s.train.values())
    # every training interaction is strictly before (or tied with but stored before) the user's validation one
    for u, t in zip(users, times):
        if u in s.valid_timestamp:
            assert t <= s.valid_timestamp[u]
    # a truncated (suffix) training sequence is allowed
    assert_no_leakage(s, {"a": ["a2"]})


@pytest.mark.parametrize("leak", ["valid", "test"])
def test_guard_fails_when_held_out_reaches_training(leak):
    s = _toy()
    train = training_interactions(s)
    train["a"].append(s.valid["a"] if leak == "valid" else s.test["a"])
    with pytest.raises(LeakageError):
        assert_no_leakage(s, train)
    # an item that is not in the user's training period at all is refused too
    with pytest.raises(LeakageError):
        assert_no_leakage(s, {"b": ["a1"]})


def test_repeated_items_are_counted():
    s = leave_last_out(["u"] * 4, ["p", "q", "p", "p"], [1, 2, 3, 4])
    assert s.train["u"] == ["p", "q"] and s.valid["u"] == "p" and s.test["u"] == "p"
    assert_no_leakage(s, {"u": ["p", "q"]})
    with pytest.raises(LeakageError):
        assert_no_leakage(s, {"u": ["p", "q", "p"]})


def test_ml100k_split_is_leak_free(ml100k):
    from data.store import Dataset

    home, _, _ = ml100k
    ds = Dataset(home.dataset_db("ml-100k"))
    users, items, _r, times = ds.interaction_arrays()
    s = leave_last_out(users, items, times)
    assert len(s.evaluable_users) == len(set(users.tolist()))
    assert sum(len(v) for v in s.train.values()) + len(s.valid) + len(s.test) == len(users)
    assert_no_leakage(s, training_interactions(s))
    # held-out items are each user's two latest interactions
    for u in s.evaluable_users[:50]:
        assert max(s.train_timestamps[u]) <= s.valid_timestamp[u] <= s.test_timestamp[u]
