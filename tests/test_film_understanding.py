"""Film understanding end to end on real ML-100K (facts joined, EASE built at ingest), through the
assistant as `recsys serve` builds it."""
from __future__ import annotations

import pytest

from data.facts import facts_of, person_key
from retrieval.filters import satisfies


@pytest.fixture(scope="module")
def product(ml100k, embedder, tmp_path_factory):
    from assistant.runtime import build_assistant
    from data.feedback import FeedbackStore
    from ui.config import load_settings

    home = ml100k[0]
    settings = load_settings({"RECSYS_HOME": str(home.root), "RECSYS_DATASET": "ml-100k", "RECSYS_RERANKER": "off"})
    assistant = build_assistant(settings, embedder, writer=False)
    assistant.store = FeedbackStore(tmp_path_factory.mktemp("feedback") / "events.sqlite")
    assistant.turn_log = None
    return assistant


def test_set_up_serves_the_collaborative_space_and_facts_without_training(ml100k, product):
    report = ml100k[2]
    assert "collaborative space: EASE" in report.describe() and "film facts:" in report.describe()
    assert product.recommender.collaborative is not None
    assert sum(facts_of(i) is not None for i in product.recommender.items.values()) > 1000


@pytest.mark.parametrize("text", ["what should I watch tonight?", "surprise me", "something to watch this weekend",
                                  "any good movies?", "I'm bored, recommend something", "a movie for tonight"])
def test_vague_requests_never_match_title_words(product, text):
    """A vague request's words play no part: its list is the one a request with no words gets."""
    reply = product.reply(product.new_session(None), text)
    baseline = product.reply(product.new_session(None), "recommend something")
    assert reply.kind == "recommendations" and len(reply.items) == 10 and reply.request.about == ""
    assert [r.item.item_id for r in reply.items] == [r.item.item_id for r in baseline.items]


def test_a_missing_film_is_reported_with_no_unrelated_list(product):
    reply = product.reply(product.new_session(None), "movies like Inception")
    assert reply.kind == "missing" and not reply.items
    assert "Inception" in reply.text and "not in this catalogue" in reply.text


def test_like_x_goes_through_the_ratings_with_real_numbers(product):
    reply = product.reply(product.new_session(None), "movies like Star Wars")
    ids = [r.item.item_id for r in reply.items]
    assert reply.request.references and reply.request.references[0] not in ids
    assert any("people who loved Star Wars" in r.explanation for r in reply.items)
    titles = {r.item.title for r in reply.items}
    assert {"The Empire Strikes Back", "Return of the Jedi"} & titles, titles


def test_cast_constraints_hold_and_unknown_credits_never_pass(product):
    reply = product.reply(product.new_session(None), "a comedy, nothing with Tom Hanks")
    assert reply.items
    for r in reply.items:
        facts = facts_of(r.item)
        assert facts is not None and facts.cast and "tom hanks" not in {person_key(n) for n in facts.cast}
        assert satisfies(r.item, reply.request.constraints)
    reply = product.reply(product.new_session(None), "a movie with Tom Hanks")
    assert reply.items and all("tom hanks" in {person_key(n) for n in facts_of(r.item).cast} for r in reply.items)
