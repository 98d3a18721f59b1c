"""The sequential retriever trained by `train_retriever`, published to Chroma and fused with text
retrieval: hard constraints and exclusions still hold, and a user's history changes the ranking."""
import pytest

from assistant.recommender import Recommender
from assistant.retriever_training import SEQUENTIAL_KIND, sequential_model_dir
from retrieval.filters import satisfies
from retrieval.item_index import ItemIndex
from retrieval.sequential import SASRecRetriever


@pytest.fixture(scope="module")
def hybrid(ml100k, sasrec_100k, recommender_100k):
    home, client, _ = ml100k
    _, report = sasrec_100k
    sequential = SASRecRetriever.load(sequential_model_dir(home, "ml-100k"))
    seq_index = ItemIndex(client, "ml-100k", kind=SEQUENTIAL_KIND, space="ip")
    base = recommender_100k
    rec = Recommender(base.dataset, base.index, base.profiles, base.embedder, base.fusion,
                      sequential=sequential, sequential_index=seq_index)
    return report, rec


def test_training_report_and_vectors_in_chroma(hybrid):
    report, rec = hybrid
    assert report["epochs_run"] >= 1 and report["train_wall_s"] > 0
    assert report["item_vectors_in_chroma"] == 1682
    assert "leave-last-out" in report["split"]
    assert len(rec.sequential_vectors) == 1682


@pytest.mark.parametrize("text", ["scary movies from the 80s", "a comedy, no romance", "dramas before 1960",
                                  "sci-fi or fantasy", "a film noir western from the 1990s"])
def test_hybrid_results_honour_constraints_and_exclusions(hybrid, text):
    _, rec = hybrid
    seen = {x.item_id for x in rec.history("13")}
    reply = rec.recommend(text, user_id="13", k=15)
    request = rec.parser.parse(text)
    matching = [i for i in rec.items.values() if satisfies(i, request.constraints) and i.item_id not in seen]
    assert len(reply.items) == min(15, len(matching))
    assert all(satisfies(r.item, request.constraints) for r in reply.items)
    assert not seen & {r.item.item_id for r in reply.items}


def test_history_shapes_the_hybrid_ranking(hybrid, recommender_100k):
    _, rec = hybrid
    text_only = [r.item.item_id for r in recommender_100k.recommend("a good movie", user_id="13", k=10).items]
    fused = [r.item.item_id for r in rec.recommend("a good movie", user_id="13", k=10).items]
    other_user = [r.item.item_id for r in rec.recommend("a good movie", user_id="500", k=10).items]
    assert fused != text_only and fused != other_user


def test_a_retrained_model_of_another_width_replaces_the_published_vectors(tmp_path, recommender_100k):
    """SASRec retrained with another hidden size: its vectors replace the stored ones (Chroma fixes a
    collection's dimension at the first insert), under the same filter metadata."""
    import numpy as np

    from retrieval.vector_store import ChromaLocation, open_client

    client = open_client(ChromaLocation(path=tmp_path / "chroma"))
    items = sorted(recommender_100k.items.values(), key=lambda i: i.item_id)[:50]
    vocabulary = recommender_100k.genre_vocabulary
    index = ItemIndex(client, "ml-100k", kind=SEQUENTIAL_KIND, space="ip")
    index.put_vectors(items, np.ones((50, 64), dtype=np.float32), vocabulary)
    wider = np.random.default_rng(0).standard_normal((40, 128)).astype(np.float32)
    index.put_vectors(items[:40], wider, vocabulary)
    reopened = ItemIndex(client, "ml-100k", kind=SEQUENTIAL_KIND, space="ip")
    assert reopened.count() == 40
    stored = reopened.vectors([i.item_id for i in items[:40]])
    np.testing.assert_allclose(np.stack([stored[i.item_id] for i in items[:40]]), wider, rtol=1e-6)
    assert reopened.query(wider[0], 5, {"year": {"$gte": 0}})[0]  # filters work on the new collection
