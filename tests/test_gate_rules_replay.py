"""The gate's pooled-AUC rule against the held-out interval rule it replaced (bench/gate_rules.py), its
replay check on the point estimate against the interval check it replaced, and which of a gate's kept
lists a replay keeps (per-user cap)."""
from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
from hypothesis import given, strategies as st

from assistant.refresh import Judged, RefreshConfig, gate_decision

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from gate_rules import capped_per_user, held_out_interval_decision  # noqa: E402

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


def _judged(candidate_ranks, serving_ranks, prefix):
    n = len(candidate_ranks)
    return Judged(np.array(candidate_ranks), np.array(serving_ranks), np.full(n, 20),
                  tuple(f"{prefix}{i // 2}" for i in range(n)))  # two lists a user


def _decisions(held, replay):
    """The gate's decision (the pooled-AUC rule) and the held-out interval rule's, on the same lists."""
    config = RefreshConfig(min_held_out=3, min_held_out_users=2)
    gate = gate_decision(held, replay, config)
    return gate, held_out_interval_decision(gate, config)["decision"]


def test_the_gate_promotes_a_small_held_out_gain_that_replay_lists_confirm():
    rng = np.random.default_rng(0)
    serving = rng.integers(1, 21, 120)
    held = _judged(np.clip(serving + rng.choice([-5, 4], 120), 1, 20), serving, "h")  # noisy, slightly better
    replay_serving = rng.integers(2, 21, 300)
    replay = _judged(replay_serving - 1, replay_serving, "r")  # every replay target one place higher
    gate, former = _decisions(held, replay)
    assert gate["decision"] == "promoted" and gate["pooled_auc"]["ci_low"] > 0
    assert former == "rejected"  # the held-out lists alone do not confirm it


def test_the_gate_rejects_a_held_out_loss_however_replay_gains():
    rng = np.random.default_rng(1)
    serving = rng.integers(1, 20, 120)
    held = _judged(serving + 1, serving, "h")  # every liked item one place lower
    replay_serving = rng.integers(4, 21, 600)
    replay = _judged(replay_serving - 3, replay_serving, "r")
    gate, _ = _decisions(held, replay)
    assert gate["pooled_auc"]["ci_low"] > 0 and gate["decision"] == "rejected"


def test_the_gate_rejects_no_change_and_too_few_lists():
    serving = np.arange(1, 21).repeat(6)
    same = _judged(serving, serving, "h")
    assert _decisions(same, _judged(serving, serving, "r"))[0]["decision"] == "rejected"
    few = _judged([1, 1], [5, 5], "h")
    gate, former = _decisions(few, _judged(serving, serving, "r"))
    assert gate["decision"] == former == "rejected"


def test_the_gate_needs_its_pooled_interval_above_zero_not_just_a_held_out_gain():
    serving = np.tile([8, 9, 10, 11, 12], 8)
    shifts = np.tile([-7, -7, 6, 6], 10)  # half the users gain 7 places, half lose 6: a noisy gain of half a place
    held = _judged(serving + shifts, serving, "h")
    flat = np.tile(np.arange(1, 21), 2)
    gate, former = _decisions(held, _judged(flat, flat, "r"))
    assert former == "rejected"
    assert gate["pooled_auc"]["mean_diff"] > 0 and gate["pooled_auc"]["ci_low"] <= 0
    assert gate["decision"] == "rejected"


def test_the_held_out_interval_rule_promotes_what_its_lists_confirm():
    better, worse = np.tile([1, 2, 3, 2, 1, 4], 5), np.tile([3, 6, 12, 9, 2, 15], 5)
    flat = np.tile(np.arange(1, 21), 2)
    gate, former = _decisions(_judged(better, worse, "h"), _judged(flat, flat, "r"))
    assert gate["held_out_auc"]["ci_low"] > 0 and former == gate["decision"] == "promoted"


def test_the_gates_point_check_passes_a_noisy_flat_replay_the_interval_rule_turns_down_but_not_a_loss():
    config = RefreshConfig(min_held_out=3, min_held_out_users=2)
    interval = replace(config, replay_check="interval")
    rng = np.random.default_rng(2)
    serving = rng.integers(4, 18, 200)
    held = _judged(serving - 3, serving, "h")  # a clear held-out gain
    replay_serving = np.tile(np.arange(4, 18), 6)
    noisy = _judged(replay_serving + np.tile([-3, -3, 3, 3], 21), replay_serving, "r")  # no change on average
    gate = gate_decision(held, noisy, config)
    assert abs(gate["replay_auc"]["mean_diff"]) < 0.01 and gate["replay_auc"]["largest_relative_drop"] > 0.02
    assert gate["decision"] == "promoted" and gate_decision(held, noisy, interval)["decision"] == "rejected"
    worse = _judged(replay_serving + 2, replay_serving, "r")  # every replay target two places lower
    gate = gate_decision(held, worse, config)
    assert gate["replay_auc"]["relative_drop"] > 0.02 and gate["decision"] == "rejected"


def _gate_rows(n_users: int, seed: int) -> list[dict]:
    """Lists as a refresh keeps them: the candidate's LM scores lift the target a little, noisily."""
    rng = np.random.default_rng(seed)
    rows = []
    for kind, users in (("held_out", n_users), ("replay", n_users)):
        for n in range(users * 2):
            target = int(rng.integers(0, 20))
            lm = rng.normal(0.0, 1.0, 20)
            lm[target] += rng.normal(0.4, 1.0)
            rows.append({"kind": kind, "user": f"{kind}{n // 2}", "fold": n % 2, "target": target,
                         "lm": lm.round(4).tolist(), "retriever": [-float(i) for i in range(20)],
                         "serving_rank": target + 1})
    return rows


def test_the_replay_uses_the_refreshs_seed_for_its_intervals(tmp_path):
    """A temporal run seeds its refresh (and so the gate's bootstrap) with --seed: the replay must too,
    or an interval near zero can flip its decision (seed 6: [-0.0002, ...] in the run, [+0.0004, ...] replayed with 0)."""
    from gate_rules import main

    lists = tmp_path / "gate_lists.json"
    lists.write_text(json.dumps(_gate_rows(40, seed=3)))
    intervals = {}
    for seed in (0, 6):
        out = tmp_path / f"replay_{seed}.json"
        assert main([str(lists), "--seed", str(seed), "--json", str(out)]) == 0
        reason = json.loads(out.read_text())["rules"]["pooled"]["reason"]
        intervals[seed] = reason
    assert intervals[0] != intervals[6]  # another bootstrap, another interval in the reason
