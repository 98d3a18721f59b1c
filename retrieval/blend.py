"""Exact scoring of the whole catalogue from the three ways of knowing a film, under hard constraints.

Each view scores every eligible film; the scores are z-scored over the eligible films and summed
with their weights, so a view's weight means the same whatever its raw scale:
- text: the request's "about" part against each film's text (never its title);
- collaborative: EASE from the films named or liked ("like Heat", "I loved Heat and Ronin", a
  profile), plus the named films' own text (what they are about, their credits);
- prior: how well loved a film is (Bayesian average rating, critics' scores).
A catalogue of a few thousand films is scored in about a millisecond, so no candidate is lost to an
approximate index under a narrow filter.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retrieval.collaborative import CollaborativeModel


@dataclass(frozen=True)
class BlendWeights:
    text: float = 1.0  # the request's about-part against film text
    collaborative: float = 1.0  # EASE from named or liked films
    reference_text: float = 0.5  # the named films' own text against film text
    prior: float = 0.2  # RECSYS_PRIOR_WEIGHT: how much well-loved films are preferred
    vague_prior: float = 1.0  # the prior's weight when nothing else is known (vague request, new user)


def zscore_over(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    chosen = values[mask]
    if chosen.size < 2:
        return np.zeros_like(values, dtype=np.float64)
    spread = chosen.std()
    if spread < 1e-12:
        return np.zeros_like(values, dtype=np.float64)
    return (values - chosen.mean()) / spread


class CatalogueScorer:
    def __init__(self, item_ids: list[str], text_vectors: np.ndarray, collaborative: CollaborativeModel | None,
                 prior: np.ndarray | None, weights: BlendWeights = BlendWeights(),
                 passages: tuple[list[str], np.ndarray] | None = None):
        self.item_ids = list(item_ids)
        self.position = {item: n for n, item in enumerate(self.item_ids)}
        self.text = np.asarray(text_vectors, dtype=np.float32)
        owners, vectors = passages if passages is not None else ([], np.zeros((0, self.text.shape[1]), np.float32))
        keep = [n for n, owner in enumerate(owners) if owner in self.position]
        self.passage_owner = np.array([self.position[owners[n]] for n in keep], dtype=np.int64)
        self.passages = np.asarray(vectors, dtype=np.float32)[keep] if keep else np.zeros((0, self.text.shape[1]),
                                                                                          np.float32)
        self.collaborative = collaborative
        self.prior = np.zeros(len(item_ids)) if prior is None else np.asarray(prior, dtype=np.float64)
        self.weights = weights
        if collaborative is not None:
            self._to_collaborative = np.array([collaborative.position.get(i, -1) for i in self.item_ids])

    def _collaborative_scores(self, liked: list[str], weights: list[float] | None) -> np.ndarray | None:
        if self.collaborative is None:
            return None
        raw = self.collaborative.scores_from(liked, weights)
        if raw is None:
            return None
        known = self._to_collaborative >= 0
        out = np.full(len(self.item_ids), np.nan)
        out[known] = raw[self._to_collaborative[known]]
        return np.where(np.isnan(out), np.nanmin(out[known]) if known.any() else 0.0, out)

    def score(self, eligible: np.ndarray, query_vector: np.ndarray | None = None, references: list[str] = (),
              liked: list[str] = (), liked_weights: list[float] | None = None,
              prior_weight: float | None = None) -> tuple[np.ndarray, dict[str, bool]]:
        """Fused scores over the catalogue (meaningful where `eligible`), and which views took part.
        `references`: films the request names; `liked`: a person's liked films (with optional weights,
        negative for dislikes) when nothing is named."""
        total = np.zeros(len(self.item_ids), dtype=np.float64)
        used = {"text": False, "collaborative": False, "reference_text": False, "prior": False}
        if query_vector is not None:
            total += self.weights.text * zscore_over(self.text_similarity(query_vector), eligible)
            used["text"] = True
        seeds = list(references) or list(liked)
        seed_weights = None if references else liked_weights
        collaborative = self._collaborative_scores(seeds, seed_weights) if seeds else None
        if collaborative is not None:
            total += self.weights.collaborative * zscore_over(collaborative, eligible)
            used["collaborative"] = True
        named = [self.position[r] for r in references if r in self.position]
        # without ratings for the named films, their text is all there is to go on
        reference_weight = self.weights.reference_text if collaborative is not None else \
            max(self.weights.reference_text, self.weights.collaborative)
        if named and reference_weight:
            centre = self.text[named].mean(axis=0)
            total += reference_weight * zscore_over(self.text @ centre, eligible)
            used["reference_text"] = True
        if prior_weight is None:
            prior_weight = self.weights.prior if any(used.values()) else self.weights.vague_prior
        if prior_weight:
            total += prior_weight * zscore_over(self.prior, eligible)
            used["prior"] = True
        return total, used

    def text_similarity(self, query_vector: np.ndarray) -> np.ndarray:
        """Per film, the best of its own text and its description's passages against the request."""
        scores = (self.text @ query_vector).astype(np.float64)
        if len(self.passage_owner):
            np.maximum.at(scores, self.passage_owner, (self.passages @ query_vector).astype(np.float64))
        return scores

    def top(self, scores: np.ndarray, eligible: np.ndarray, exclude: set[str], k: int) -> list[tuple[str, float]]:
        mask = eligible.copy()
        for item in exclude:
            n = self.position.get(item)
            if n is not None:
                mask[n] = False
        candidates = np.flatnonzero(mask)
        if candidates.size == 0:
            return []
        order = candidates[np.argsort(-scores[candidates], kind="stable")[:k]]
        return [(self.item_ids[n], float(scores[n])) for n in order]
