"""The quality prior: how well loved a film is, with its support taken into account.

A Bayesian average rating shrinks each film's mean towards the catalogue's mean by `support`
pseudo-ratings, so a film rated 5 by two people does not outrank one rated 4.4 by two thousand.
Where critics' scores are known they join it, z-scored, at half weight. The result is z-scored
over the catalogue: a film of average quality scores 0.
"""
from __future__ import annotations

import numpy as np

DEFAULT_SUPPORT = 50.0
CRITICS_WEIGHT = 0.5


def bayesian_average(raters: np.ndarray, rating_sums: np.ndarray, support: float = DEFAULT_SUPPORT) -> np.ndarray:
    raters = np.asarray(raters, dtype=np.float64)
    sums = np.asarray(rating_sums, dtype=np.float64)
    total = raters.sum()
    global_mean = sums.sum() / total if total else 0.0
    return (sums + support * global_mean) / (raters + support)


def _zscore(values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    chosen = values if mask is None else values[mask]
    if chosen.size == 0:
        return np.zeros_like(values)
    spread = chosen.std()
    return (values - chosen.mean()) / spread if spread > 1e-12 else np.zeros_like(values)


def quality_prior(raters: np.ndarray, rating_sums: np.ndarray, critics: np.ndarray | None = None,
                  support: float = DEFAULT_SUPPORT) -> np.ndarray:
    """One score per film (z-scored); `critics` holds critics' scores 0-100, NaN where unknown."""
    prior = _zscore(bayesian_average(raters, rating_sums, support))
    if critics is not None:
        critics = np.asarray(critics, dtype=np.float64)
        known = ~np.isnan(critics)
        if known.sum() >= 2:
            critic_z = np.where(known, _zscore(np.nan_to_num(critics), known), 0.0)
            prior = prior + CRITICS_WEIGHT * critic_z
    return _zscore(prior)
