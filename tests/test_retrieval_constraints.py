"""Property: whatever the constraints, every returned item satisfies them, and a filtered query
returns min(k, matching items not excluded) items: never padded, never silently short."""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.filters import Constraints, satisfies

GENRES = ["action", "adventure", "animation", "children", "comedy", "crime", "documentary", "drama", "fantasy",
          "film_noir", "horror", "musical", "mystery", "romance", "sci_fi", "thriller", "war", "western"]
genre_sets = st.frozensets(st.sampled_from(GENRES), max_size=3)
years = st.one_of(st.none(), st.integers(1920, 2000))


@st.composite
def constraints(draw):
    a, b = draw(years), draw(years)
    if a is not None and b is not None and draw(st.booleans()):
        a, b = min(a, b), max(a, b)
    ranges = draw(st.frozensets(st.tuples(st.integers(1920, 2000), st.integers(0, 15)), max_size=2))
    return Constraints(genres_all=draw(st.frozensets(st.sampled_from(GENRES), max_size=2)),
                       genres_any=draw(genre_sets), genres_none=draw(genre_sets), year_min=a, year_max=b,
                       years_none=frozenset((start, start + span) for start, span in ranges))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(c=constraints(), k=st.integers(1, 40), seed=st.integers(0, 10_000), n_excluded=st.integers(0, 300))
def test_every_item_satisfies_and_nothing_is_lost(recommender_100k, c, k, seed, n_excluded):
    rec = recommender_100k
    rng = np.random.default_rng(seed)
    ids = sorted(rec.items)
    excluded = set(rng.choice(ids, size=n_excluded, replace=False)) if n_excluded else set()
    vector = rng.standard_normal(rec.embedder.dimension).astype(np.float32)
    vector /= np.linalg.norm(vector)
    result = rec.retriever.retrieve(vector, c, excluded, k)
    got = [rec.items[x.item_id] for x in result.candidates]
    assert all(satisfies(item, c) for item in got)
    assert not {i.item_id for i in got} & excluded
    assert len({i.item_id for i in got}) == len(got)
    matching = sum(1 for item in rec.items.values() if satisfies(item, c) and item.item_id not in excluded)
    assert len(got) == min(k, matching)
    scores = [x.score for x in result.candidates]
    assert scores == sorted(scores, reverse=True)


def test_filtered_recall_against_exact_search(recommender_100k):
    """The approximate index must agree with brute force on most of the top-20 under a filter."""
    rec = recommender_100k
    rng = np.random.default_rng(0)
    c = Constraints(genres_all=frozenset({"drama"}), year_min=1990)
    overlaps = []
    for _ in range(20):
        v = rng.standard_normal(rec.embedder.dimension).astype(np.float32)
        v /= np.linalg.norm(v)
        approx = {x.item_id for x in rec.retriever.retrieve(v, c, set(), 20).candidates}
        exact = {x.item_id for x in rec.retriever.exact(v, c, set(), 20).candidates}
        overlaps.append(len(approx & exact) / len(exact))
    assert np.mean(overlaps) >= 0.9


def test_end_to_end_request_returns_only_matches_and_says_when_short(recommender_100k):
    reply = recommender_100k.recommend("a film noir western from the 1990s", k=10)
    assert all("Western" in r.item.genres and "Film-Noir" in r.item.genres for r in reply.items)
    assert len(reply.items) < 10 and "Only" in reply.message
    reply = recommender_100k.recommend("scary movies from the 80s", k=10)
    assert len(reply.items) == 10
    assert all("Horror" in r.item.genres and 1980 <= r.item.year <= 1989 for r in reply.items)
    assert all(r.explanation for r in reply.items)
