"""User profiles: one event updates a profile exactly like a full rebuild would, and moves the ranking."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from retrieval.filters import Constraints
from retrieval.profiles import ProfileStore, ProfileWeights, apply_event, build_profile

W = ProfileWeights(half_life_days=30.0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0]),
                          st.integers(0, 400 * 86_400)), min_size=1, max_size=25))
def test_incremental_equals_rebuild(events):
    rng = np.random.default_rng(1)
    vecs = rng.standard_normal((8, 16)).astype(np.float32)
    first, rest = events[0], events[1:]
    profile = build_profile("u", vecs[[first[0]]], [first[1]], [first[2]], W)
    for item, rating, ts in rest:
        profile = apply_event(profile, vecs[item], rating, ts, W)
    rebuilt = build_profile("u", vecs[[e[0] for e in events]], [e[1] for e in events], [e[2] for e in events], W)
    assert profile.ref_time == rebuilt.ref_time and profile.events == rebuilt.events
    np.testing.assert_allclose(profile.vector, rebuilt.vector, rtol=1e-4, atol=1e-4)


def test_one_event_updates_in_place_and_changes_the_ranking(recommender_100k):
    rec = recommender_100k
    store: ProfileStore = rec.profiles
    user = "1"
    count_before = store.count()
    other_before = store.get("2").vector.copy()
    before = store.get(user)
    query = before.query_vector()

    horror = [i for i in rec.items.values() if "Horror" in i.genres]
    target = horror[0]
    vector = rec.index.vectors([target.item_id])[target.item_id]
    for _ in range(3):
        store.record_event(user, vector, 5.0, before.ref_time + 86_400)
    after = store.get(user)
    assert after.events == before.events + 3
    assert store.count() == count_before
    np.testing.assert_array_equal(store.get("2").vector, other_before)
    scores_before = [c.score for c in rec.retriever.retrieve(query, Constraints(), set(), 20).candidates]
    scores_after = [c.score for c in rec.retriever.retrieve(after.query_vector(), Constraints(), set(), 20).candidates]
    assert not np.allclose(scores_after, scores_before)
    def rank_of_target(profile_vector):
        ranked = rec.retriever.exact(profile_vector, Constraints(), set(), len(rec.items)).candidates
        return [c.item_id for c in ranked].index(target.item_id)

    assert rank_of_target(after.query_vector()) < rank_of_target(query)
