"""Replay lists as served: the last like held out, ranked from the history before it alone."""
from __future__ import annotations

import numpy as np

from assistant.reranker_data import item_texts
from assistant.request_parser import Request
from assistant.served_replay import profile_of, served_replay_lists
from retrieval.filters import Constraints


def test_a_served_list_ranks_the_last_like_from_the_history_before_it(recommender_100k):
    rec = recommender_100k
    texts = item_texts(rec.dataset.items())
    skipped = set(rec.dataset.user_ids()[:100])
    lists = served_replay_lists(rec, texts, n=2, seed=0, skip_users=skipped)
    assert len(lists) == 2 and len({x.user_id for x in lists}) == 2 and not skipped & {x.user_id for x in lists}
    for example in lists:
        history = rec.dataset.user_history(example.user_id)
        last_like = max(n for n, x in enumerate(history) if x.rating >= 4)
        earlier, target = history[:last_like], history[last_like].item_id
        assert example.candidate_ids[example.target] == target
        assert not {x.item_id for x in history} - {target} & set(example.candidate_ids)  # seen or later: never shown
        assert texts[target] not in example.history and example.retriever_scores[0] == 0.0
        # the list is what the recommender serves from the earlier history's own profile ...
        again = rec.recommend_request(Request("", Constraints()), earlier, None, 20,
                                      exclude={x.item_id for x in history[last_like + 1:]},
                                      profile=profile_of(rec, example.user_id, earlier))
        assert [r.item.item_id for r in again.items] == example.candidate_ids
    # ... which is not the stored profile: that one already holds the held-out like
    user = lists[0].user_id
    history = rec.dataset.user_history(user)
    last_like = max(n for n, x in enumerate(history) if x.rating >= 4)
    rebuilt = profile_of(rec, user, history[:last_like]).query_vector()
    stored = rec.profiles.get(user).query_vector()
    assert not np.allclose(rebuilt, stored, atol=1e-4)
    assert np.allclose(profile_of(rec, user, history).query_vector(), stored, atol=1e-3)


def test_users_with_too_few_likes_give_no_list(recommender_100k):
    rec = recommender_100k
    texts = item_texts(rec.dataset.items())
    everyone = set(rec.dataset.user_ids())
    assert served_replay_lists(rec, texts, n=5, seed=0, skip_users=everyone) == []
    assert served_replay_lists(rec, texts, n=5, seed=0, seconds=0.0) == []  # no time: no lists
