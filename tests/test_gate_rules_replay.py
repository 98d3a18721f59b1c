"""bench/gate_rules.py's per-user cap: which of a gate's kept lists a replay keeps."""
from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from hypothesis import given, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from gate_rules import capped_per_user  # noqa: E402

rows_strategy = st.lists(st.fixed_dictionaries({"kind": st.sampled_from(["held_out", "replay"]),
                                                "user": st.sampled_from(["a", "b", "c", "d"])}), max_size=40)


@given(rows_strategy, st.integers(min_value=1, max_value=5))
def test_cap_keeps_each_users_first_lists_and_every_replay_list(rows, cap):
    rows = [{**row, "order": i} for i, row in enumerate(rows)]
    kept = capped_per_user(rows, cap)
    held = [r for r in rows if r["kind"] == "held_out"]
    expected_held = [r for r in held if sum(x["user"] == r["user"] for x in held[: held.index(r) + 1]) <= cap]
    assert [r for r in kept if r["kind"] == "held_out"] == expected_held
    assert [r for r in kept if r["kind"] == "replay"] == [r for r in rows if r["kind"] == "replay"]
    assert [r["order"] for r in kept] == sorted(r["order"] for r in kept)  # the scored order stays
    assert all(n <= cap for n in Counter(r["user"] for r in kept if r["kind"] == "held_out").values())
