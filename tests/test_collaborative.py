"""The collaborative item space and the catalogue scorer on tiny synthetic interactions."""
from __future__ import annotations

import numpy as np

from retrieval.blend import BlendWeights, CatalogueScorer
from retrieval.collaborative import CollaborativeModel, build_collaborative
from retrieval.quality import bayesian_average, quality_prior

ITEMS = ["a", "b", "c", "d", "e"]


def interactions():
    # a and b are loved together; c and d together; e is rated low by everyone
    rows = []
    for user in range(20):
        pair = ("a", "b") if user < 10 else ("c", "d")
        rows += [(f"u{user}", pair[0], 5.0), (f"u{user}", pair[1], 4.0), (f"u{user}", "e", 1.0)]
    users, items, ratings = zip(*rows)
    return np.array(users, dtype=object), np.array(items, dtype=object), np.array(ratings, dtype=np.float32)


def test_ease_scores_what_is_loved_together_and_counts_are_real(tmp_path):
    model = build_collaborative(ITEMS, *interactions(), lam=1.0, dimension=3)
    scores = model.scores_from(["a"])
    assert int(np.argmax(scores)) == ITEMS.index("b")
    assert model.co_liked("a", "b") == (10, 10) and model.co_liked("a", "c") == (10, 0)
    assert model.scores_from(["unknown"]) is None
    assert model.item_stats("e").likers == 0 and model.item_stats("e").mean_rating == 1.0
    model.save(tmp_path / "cf")
    again = CollaborativeModel.load(tmp_path / "cf")
    assert again.item_ids == ITEMS and np.allclose(again.weights, model.weights)
    model.save(tmp_path / "cf")  # replacing a saved model leaves one complete model
    assert CollaborativeModel.load(tmp_path / "cf").meta["model"] == "EASE"


def test_bayesian_average_needs_support():
    # two 5-star ratings do not beat two thousand 4.4s
    average = bayesian_average(np.array([2, 2000, 5000]), np.array([10.0, 8800.0, 15000.0]), support=50)
    assert average[1] > average[0] > average[2]
    prior = quality_prior(np.array([2, 2000, 100]), np.array([10.0, 8800.0, 150.0]), np.array([np.nan, 90, 20]))
    assert int(np.argmax(prior)) == 1


def test_scorer_honours_eligibility_and_exclusions_and_falls_back_to_the_prior():
    model = build_collaborative(ITEMS, *interactions(), lam=1.0, dimension=3)
    text = np.eye(5, 4, dtype=np.float32)
    scorer = CatalogueScorer(ITEMS, text, model, np.array([0.0, 1.0, 2.0, 3.0, -1.0]), BlendWeights())
    eligible = np.array([True, True, True, True, False])
    scores, used = scorer.score(eligible)  # nothing known: the prior alone
    assert used["prior"] and not used["collaborative"]
    assert [i for i, _ in scorer.top(scores, eligible, {"d"}, 3)] == ["c", "b", "a"]
    scores, used = scorer.score(eligible, references=["a"])
    top = [i for i, _ in scorer.top(scores, eligible, {"a"}, 4)]
    assert used["collaborative"] and top[0] == "b" and "e" not in top and "a" not in top
