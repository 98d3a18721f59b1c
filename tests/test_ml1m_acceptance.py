"""The issue's acceptance query on the real ML-1M catalogue, ingested into a temporary home."""
import pytest

from assistant.ingest import ingest_movielens
from assistant.recommender import Recommender
from data.store import Dataset
from retrieval.candidates import FusionWeights
from retrieval.item_index import ItemIndex
from retrieval.profiles import ProfileStore, ProfileWeights
from retrieval.vector_store import ChromaLocation, open_client


@pytest.mark.slow
def test_scary_movies_from_the_80s_on_ml1m(tmp_home, embedder):
    client = open_client(ChromaLocation(path=tmp_home.chroma))
    report = ingest_movielens(tmp_home, "ml-1m", client, embedder, ProfileWeights(), progress=False)
    assert (report.items, report.interactions, report.users) == (3883, 1_000_209, 6040)
    matched, _ = report.summary_coverage
    assert matched > 150
    rec = Recommender(Dataset(tmp_home.dataset_db("ml-1m")), ItemIndex(client, "ml-1m"),
                      ProfileStore(client, "ml-1m", ProfileWeights()), embedder, FusionWeights())
    out = rec.recommend("scary movies from the 80s", k=10).to_json()
    assert len(out["items"]) == 10
    for item in out["items"]:
        assert "Horror" in item["genres"] and 1980 <= item["year"] <= 1989
        assert all(item[f] not in (None, "", []) for f in ("item_id", "title", "year", "genres", "explanation"))
    user_reply = rec.recommend("scary movies from the 80s", user_id="1m_10", k=10)
    seen = {x.item_id for x in rec.history("1m_10")}
    assert not seen & {r.item.item_id for r in user_reply.items}
    assert any("you rated" in r.explanation for r in user_reply.items)

    # The fresh-install default: set-up alone serves the collaborative space, the facts and the committed
    # trained artifacts (sequential retriever, reranker adapter), through the assistant as served.
    from assistant.runtime import build_assistant
    from data.trained import committed
    from ui.config import load_settings

    described = report.describe()
    assert "collaborative space: EASE" in described and "film facts: 3" in described
    artifacts = committed("ml-1m")
    assistant = build_assistant(load_settings({"RECSYS_HOME": str(tmp_home.root), "RECSYS_DATASET": "ml-1m",
                                               "RECSYS_REFRESH_EVERY_EVENTS": "0"}), embedder, writer=False)
    assert assistant.recommender.collaborative is not None
    if "sasrec" in artifacts:
        assert assistant.recommender.sequential is not None
    if "reranker" in artifacts:
        from finetune.adapters import AdapterRegistry

        assert assistant.lm is not None and AdapterRegistry.of_home(tmp_home).serving()
    session = assistant.new_session(None)
    reply = assistant.reply(session, "movies like Heat")
    titles = {r.item.title for r in reply.items}
    assert len(reply.items) == 10 and "Heat" not in titles
    assert titles & {"Ronin", "The Usual Suspects", "L.A. Confidential", "Casino", "The Godfather", "GoodFellas",
                     "Reservoir Dogs", "The Professional (a.k.a. Leon: The Professional)", "Seven (Se7en)",
                     "The Fugitive", "Pulp Fiction", "Face/Off", "The Rock", "Donnie Brasco"}
    reply = assistant.reply(assistant.new_session(None), "a comedy with Tom Hanks")
    assert reply.items and all("Tom Hanks" in (r.item.extra["facts"]["cast"]) for r in reply.items)
