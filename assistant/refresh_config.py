"""The settings of one refresh (`recsys refresh`, the scheduler in `recsys serve`, the temporal protocol).

A module of its own, free of torch, so that the command line takes its defaults from here at parse time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from finetune.lora_layers import check_lora_layers


REPLAY_CHECKS = ("point", "interval")


@dataclass(frozen=True)
class RefreshConfig:
    model: str = "smollm2"
    minutes: float = 5.0  # training budget (less when the whole budget would not leave the gate its time)
    # scoring budget of the gate (None: every list the whole budget allows); in the temporal protocol its 800
    # lists took 3.4 min on a quiet machine, and 4.0 min stopped it at 764 on a slower run
    gate_minutes: float | None = 4.0
    budget_minutes: float | None = 9.5  # the whole refresh: setup, training and gate (None: no overall limit)
    max_examples: int | None = None  # training lists seen (default: one pass over the mix)
    replay_ratio: float = 1.0  # replay lists per feedback list in the training mix
    min_new_events: int = 1
    min_held_out: int = 20  # fewer held-out feedback lists than this: nothing is promoted
    min_held_out_users: int = 5  # nor from fewer users (the interval resamples users)
    margin: float = 0.0  # the pooled AUC gain's 95% interval must start above this (absolute AUC)
    tolerance: float = 0.02  # largest relative replay AUC drop the gate allows
    # how the gate reads the replay AUC's relative change against the tolerance: "point", its estimate (since
    # stop 34), or "interval", the low end of its 95% interval (non-inferiority; at 300 replay lists that
    # interval is 1.5-5% wide on each side, wider than the tolerance, so it passed only candidates whose replay rose)
    replay_check: str = "point"
    replay_eval_users: int = 300  # replay lists offered to the gate (both folds)
    min_fit_feedback: int = 10  # fewer feedback lists than this in a fold: its weight is chosen on replay lists alone
    max_gate_lists: int | None = 500  # held-out feedback lists offered to the gate (seeded sample above this)
    # of that sample, each user's first n lists (None: all). 3, fixed before temporal seeds 3 and 4 were run,
    # promoted neither (stop 31, README "Measured"), so the gate offers every sampled list again
    max_gate_lists_per_user: int | None = None
    learning_rate: float = 5e-4
    train_negatives: int | None = 7
    fresh_lora_layers: int | None = 10  # a refresh with no serving adapter: LoRA in the top n layers (None: all)
    threads: int | None = None
    seed: int = 0

    def __post_init__(self):
        check_lora_layers(self.fresh_lora_layers, "fresh_lora_layers")
        if self.replay_check not in REPLAY_CHECKS:
            raise ValueError(f"replay_check must be one of {', '.join(REPLAY_CHECKS)}, got {self.replay_check!r}")
        for name in ("max_gate_lists", "max_gate_lists_per_user"):  # None: no cap
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a whole number of lists of at least 1 (or None), got {value!r}")
        _check_minutes(self.minutes, "minutes")
        for name in ("gate_minutes", "budget_minutes"):  # None: no limit
            if getattr(self, name) is not None:
                _check_minutes(getattr(self, name), name)


def _check_minutes(value, name: str) -> None:
    """A budget is a finite number of minutes above zero: a negative one is not 'no limit'."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number of minutes above 0, got {value!r}")
