"""`recsys forget`: nothing of the person is left in any store, and a rebuild keeps them out."""
from __future__ import annotations

import sqlite3

import pytest

from assistant.assistant import Assistant
from assistant.recommender import UnknownUser
from assistant.ingest import ingest_movielens
from assistant.recommender import Recommender
from data.feedback import FeedbackStore
from data.store import Dataset
from retrieval.candidates import FusionWeights
from retrieval.item_index import ItemIndex
from retrieval.profiles import ProfileStore, ProfileWeights
from retrieval.vector_store import ChromaLocation, open_client

SECRET = "my-very-private-comment-4711"


def test_forget_removes_history_feedback_profile_and_session(tmp_home, embedder):
    client = open_client(ChromaLocation(path=tmp_home.chroma))
    ingest_movielens(tmp_home, "ml-100k", client, embedder, ProfileWeights(), progress=False)
    recommender = Recommender(Dataset(tmp_home.dataset_db("ml-100k")), ItemIndex(client, "ml-100k"),
                              ProfileStore(client, "ml-100k", ProfileWeights()), embedder, FusionWeights())
    store = FeedbackStore(tmp_home.feedback_db())
    assistant = Assistant(recommender, store)
    victim, bystander = assistant.new_session("7"), assistant.new_session("8")
    for session in (victim, bystander):
        reply = assistant.reply(session, "a western", k=3)
        assistant.feedback(session, reply.items[0].item.item_id, liked=True, comment=SECRET)
        assistant.feedback(session, reply.items[1].item.item_id, liked=False)
    before_8 = len(recommender.dataset.user_history("8"))

    other_tab = assistant.new_session("7")
    report = assistant.forget(victim, tmp_home)
    with pytest.raises(UnknownUser):  # another open tab of the same person cannot write for them again
        assistant.feedback(other_tab, reply.items[2].item.item_id, liked=True)
    with pytest.raises(UnknownUser):
        assistant.new_session("7")

    assert report.interactions > 0 and report.feedback_events == 2 and report.profile
    assert victim.shown == [] and victim.state.turns == 0
    assert recommender.dataset.user_history("7") == []
    assert store.events(user_id="7") == [] and len(store.events(user_id="8")) == 2
    assert recommender.profiles.get("7") is None and recommender.profiles.get("8") is not None
    assert len(recommender.dataset.user_history("8")) == before_8
    store.close()
    raw = b"".join(p.read_bytes() for p in tmp_home.feedback_db().parent.glob("events.sqlite*"))
    assert raw.count(SECRET.encode()) == 1  # the bystander's copy only: the victim's bytes are overwritten
    with sqlite3.connect(tmp_home.dataset_db("ml-100k")) as conn:
        assert conn.execute("SELECT COUNT(*) FROM interactions WHERE user_id = '7'").fetchone()[0] == 0

    ingest_movielens(tmp_home, "ml-100k", client, embedder, ProfileWeights(), progress=False)  # a rebuild
    assert Dataset(tmp_home.dataset_db("ml-100k")).user_history("7") == []
    assert ProfileStore(client, "ml-100k", ProfileWeights()).get("7") is None
    assert len(Dataset(tmp_home.dataset_db("ml-100k")).user_history("8")) == before_8
