"""Issue 5's targets judged on several temporal runs together (bench/temporal_pooled.py)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from temporal_pooled import Run, bootstrap_intervals, load_run, verdict  # noqa: E402

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"
scores = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=30)


def _run(stale, immediate, refreshed, forgetting=0.0, seconds=500.0, name="run"):
    return Run(name, {"stale": np.array(stale, float), "immediate": np.array(immediate, float),
                      "refreshed": np.array(refreshed, float)}, forgetting, seconds, "promoted")


@given(st.data(), st.integers(min_value=1, max_value=4))
@settings(max_examples=60, deadline=None)
def test_pooled_means_weight_every_test_user_once(data, n_runs):
    runs = []
    for i in range(n_runs):
        n = data.draw(st.integers(min_value=1, max_value=20))
        columns = [data.draw(st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=n, max_size=n)) for _ in range(3)]
        runs.append(_run(*columns, name=f"r{i}"))
    result = verdict(runs)
    every = {name: np.concatenate([run.per_user[name] for run in runs]) for name in ("stale", "immediate", "refreshed")}
    assert result.users == sum(len(run.per_user["stale"]) for run in runs)
    assert result.refreshed_vs_stale == pytest.approx(every["refreshed"].mean() / every["stale"].mean())
    assert result.refresh_adds_met == (every["refreshed"].mean() > every["immediate"].mean())
    assert result.lift_met == (result.refreshed_vs_stale >= 1.05)


def test_a_larger_run_weighs_more_than_a_smaller_one():
    big = _run([0.1] * 300, [0.1] * 300, [0.12] * 300)   # 1.2 x
    small = _run([0.1] * 100, [0.1] * 100, [0.09] * 100)  # 0.9 x
    assert verdict([big, small]).refreshed_vs_stale == pytest.approx((300 * 0.12 + 100 * 0.09) / 400 / 0.1)


def test_a_rejected_refresh_counts_as_it_serves_and_fails_refresh_adds():
    result = verdict([_run([0.1] * 10, [0.11] * 10, [0.11] * 10)])
    assert result.lift_met and not result.refresh_adds_met and not result.all_met


@pytest.mark.parametrize("forgetting, seconds, met", [(0.02, 600.0, True), (0.021, 500.0, False), (0.0, 600.5, False)])
def test_forgetting_and_refresh_time_are_judged_on_every_run(forgetting, seconds, met):
    good = _run([0.1] * 10, [0.1] * 10, [0.12] * 10)
    other = _run([0.1] * 10, [0.1] * 10, [0.12] * 10, forgetting=forgetting, seconds=seconds)
    assert verdict([good, other]).all_met is met


@given(scores)
@settings(max_examples=40, deadline=None)
def test_bootstrap_interval_holds_the_point_estimate_of_identical_users(values):
    values = [v + 0.01 for v in values]
    run = _run(values, values, [2 * v for v in values])
    intervals = bootstrap_intervals([run], resamples=200)
    assert intervals["refreshed_vs_stale"] == pytest.approx((2.0, 2.0))
    low, high = intervals["refreshed_minus_immediate"]
    assert low <= float(np.mean(values)) <= high


def test_kept_seed_15_result_fails_the_lift_it_reported():
    run = load_run(RESULTS / "temporal_400_seed15_forget1000.json")
    result = verdict([run])
    reported = json.loads((RESULTS / "temporal_400_seed15_forget1000.json").read_text())
    assert result.refreshed_vs_stale == pytest.approx(reported["refreshed"]["vs_stale"], abs=2e-3)
    assert not result.lift_met and not result.refresh_adds_met  # rejected: refreshed = immediate = 1.034 x


def test_malformed_result_files_get_a_clear_message(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(SystemExit, match="not a temporal result"):
        load_run(broken)
    mismatched = tmp_path / "mismatched.json"
    mismatched.write_text(json.dumps({"per_user_ndcg@10": {"users": ["a", "b"], "stale": [0.1], "immediate": [0.1],
                                                           "refreshed": [0.1]}, "forgetting": 0.0, "refresh_seconds": 1}))
    with pytest.raises(SystemExit, match="do not match"):
        load_run(mismatched)


def test_a_result_without_a_refresh_loads_with_an_unknown_decision(tmp_path):
    result = tmp_path / "no_refresh.json"
    result.write_text(json.dumps({"per_user_ndcg@10": {"users": ["a"], "stale": [0.1], "immediate": [0.1],
                                                       "refreshed": [0.1]}, "forgetting": 0.0, "refresh_seconds": 1,
                                  "refresh": None}))
    assert load_run(result).decision == "unknown"
