"""MMR ordering, intra-list diversity, franchise keys and the per-franchise cap."""
import numpy as np
import pytest

from assistant.diversity import cap_per_group, franchise_key, intra_list_diversity, mmr_order


@pytest.mark.parametrize("title, key", [
    ("Star Wars: Episode IV - A New Hope", "star wars"),
    ("Star Trek VI: The Undiscovered Country", "star trek"),
    ("Star Trek: Generations", "star trek"),
    ("Friday the 13th Part VII: The New Blood", "friday the 13th"),
    ("Friday the 13th", "friday the 13th"),
    ("Halloween 4: The Return of Michael Myers", "halloween"),
    ("Alien³", "alien"),
    ("Die Hard: With a Vengeance", "die hard"),
    ("The Godfather: Part II", "godfather"),
    ("Jaws 3-D", "jaws"),
    ("1941", "1941"),
    ("Freaky Friday", "freaky friday"),
])
def test_franchise_key(title, key):
    assert franchise_key(title) == key


def test_cap_keeps_order_and_at_most_cap_per_group():
    keys = ["star trek", "star trek", "star trek", "alien", "star trek", "heat", "x"]
    assert cap_per_group(list(range(7)), keys, 2, 4) == [0, 1, 3, 5]
    assert cap_per_group(list(range(7)), keys, None, 3) == [0, 1, 2]
    assert cap_per_group([6, 6], ["x"] * 7, 1, 5) == [6, 6]  # short keys are never capped


def test_mmr_weight_zero_is_relevance_order_and_diversity_grows_with_weight():
    rng = np.random.default_rng(0)
    base = rng.normal(size=(1, 16))
    near = base + 0.05 * rng.normal(size=(6, 16))  # six near-duplicates, the most relevant
    far = rng.normal(size=(6, 16))
    vectors = np.vstack([near, far])
    relevance = np.r_[np.linspace(1.0, 0.9, 6), np.linspace(0.8, 0.5, 6)]
    assert mmr_order(relevance, vectors, 0.0, 5) == [0, 1, 2, 3, 4]
    low = intra_list_diversity(vectors[mmr_order(relevance, vectors, 0.0, 5)])
    high = intra_list_diversity(vectors[mmr_order(relevance, vectors, 0.7, 5)])
    assert high > low
    with pytest.raises(ValueError):
        mmr_order(relevance, vectors, 1.5, 5)
