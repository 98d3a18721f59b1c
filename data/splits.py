"""Leave-last-out split by timestamp, and the guard that keeps held-out interactions out of training.

Protocol (stated in every number reported from it): for each user, interactions are ordered by
timestamp, ties broken by stored order; the last one is the *test* target, the second-to-last
the *validation* target, and everything before is the *training* sequence.

Which history each stage may see:

- ``train``: the training sequence only (what a model may be fitted on);
- ``valid``: the training sequence as input, the validation item as target;
- ``test``: training sequence + validation item as input, the test item as target.

Leave-last-out lets other users' later interactions into training (it is not a global temporal
split); claims about "learning over time" need a global temporal split instead.

Users with fewer than three interactions keep everything in training and have no targets.
Plain python/numpy; no model code.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

STAGES = ("train", "valid", "test")
PROTOCOL = "leave-last-out by timestamp"


class LeakageError(AssertionError):
    """A validation or test interaction reached data meant for training."""


@dataclass(frozen=True)
class LeaveLastOutSplit:
    """Per-user sequences of item ids, in time order."""

    train: dict[str, list[str]]
    valid: dict[str, str]
    test: dict[str, str]
    train_timestamps: dict[str, list[int]] = field(default_factory=dict, repr=False)
    valid_timestamp: dict[str, int] = field(default_factory=dict, repr=False)
    test_timestamp: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def users(self) -> list[str]:
        """All users, in a stable (sorted) order."""
        return sorted(self.train)

    @property
    def evaluable_users(self) -> list[str]:
        """Users that have both a validation and a test target, sorted."""
        return sorted(u for u in self.test if u in self.valid)

    def items(self) -> list[str]:
        """Every item that occurs in any interaction (train, valid or test), sorted."""
        seen: set[str] = set()
        for seq in self.train.values():
            seen.update(seq)
        seen.update(self.valid.values())
        seen.update(self.test.values())
        return sorted(seen)

    def history(self, user: str, stage: str) -> list[str]:
        """The input history a model may use for ``user`` at ``stage`` (see module docstring)."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {STAGES}, not {stage!r}")
        seq = list(self.train.get(user, []))
        if stage == "test" and user in self.valid:
            seq.append(self.valid[user])
        return seq

    def target(self, user: str, stage: str) -> str:
        if stage == "valid":
            return self.valid[user]
        if stage == "test":
            return self.test[user]
        raise ValueError(f"stage {stage!r} has no target")

    def held_out(self, user: str) -> list[str]:
        """The user's validation and test items (what training must never see)."""
        return [x for x in (self.valid.get(user), self.test.get(user)) if x is not None]


def leave_last_out(user_ids: Sequence, item_ids: Sequence, timestamps: Sequence) -> LeaveLastOutSplit:
    """Split interaction columns (e.g. ``Dataset.interaction_arrays()``) leave-last-out by timestamp.

    Order within a user is by timestamp; equal timestamps keep the order of the input rows.
    """
    users = np.asarray(user_ids, dtype=object)
    items = np.asarray(item_ids, dtype=object)
    times = np.asarray(timestamps, dtype=np.int64)
    if not (len(users) == len(items) == len(times)):
        raise ValueError("user_ids, item_ids and timestamps must have the same length")
    if len(users) == 0:
        return LeaveLastOutSplit({}, {}, {})
    user_codes, user_names = _codes(users)
    # np.lexsort is stable: sort by user, then timestamp, keeping stored order on ties.
    order = np.lexsort((times, user_codes))
    user_codes, items, times = user_codes[order], items[order], times[order]
    bounds = np.flatnonzero(np.diff(user_codes)) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [len(user_codes)]))
    train: dict[str, list[str]] = {}
    train_ts: dict[str, list[int]] = {}
    valid: dict[str, str] = {}
    valid_ts: dict[str, int] = {}
    test: dict[str, str] = {}
    test_ts: dict[str, int] = {}
    for s, e in zip(starts, ends):
        user = str(user_names[user_codes[s]])
        seq = [str(x) for x in items[s:e]]
        ts = [int(x) for x in times[s:e]]
        if len(seq) < 3:
            train[user], train_ts[user] = seq, ts
            continue
        train[user], train_ts[user] = seq[:-2], ts[:-2]
        valid[user], valid_ts[user] = seq[-2], ts[-2]
        test[user], test_ts[user] = seq[-1], ts[-1]
    return LeaveLastOutSplit(train, valid, test, train_ts, valid_ts, test_ts)


def training_interactions(split: LeaveLastOutSplit) -> dict[str, list[str]]:
    """For the train stage: per user, only the training-period item sequence (copies)."""
    return {u: list(seq) for u, seq in split.train.items()}


def training_arrays(split: LeaveLastOutSplit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training-period interactions as columns (user_id, item_id, timestamp), in time order per user."""
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    for u in split.users:
        seq = split.train[u]
        users.extend([u] * len(seq))
        items.extend(seq)
        times.extend(split.train_timestamps.get(u, [0] * len(seq)))
    return np.array(users, dtype=object), np.array(items, dtype=object), np.array(times, dtype=np.int64)


def assert_no_leakage(split: LeaveLastOutSplit, training: Mapping[str, Sequence[str]]) -> None:
    """Raise :class:`LeakageError` if ``training`` (user -> item sequence fed to a trainer) holds
    any of that user's validation/test interactions, or an interaction not in the user's training
    period at all. Repeated items are handled by counting occurrences.

    Training may be a subset of the training period (e.g. truncated to the last ``max_len``
    items) but never more.
    """
    for user, seq in training.items():
        allowed = Counter(split.train.get(user, ()))
        given = Counter(seq)
        for item, n in given.items():
            if n > allowed.get(item, 0):
                kind = ("validation/test" if item in split.held_out(user) else "non-training")
                raise LeakageError(f"user {user!r}: {kind} interaction {item!r} reached training "
                                   f"({n} given, {allowed.get(item, 0)} allowed)")


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    names, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.astype(np.int64), names
