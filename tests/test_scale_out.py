"""Past one machine (on loopback): one `chroma run` server and TWO `recsys serve` processes that
share it and one feedback database. Feedback given through one instance is used by the other at
once (the disliked item is excluded there, the liked one counts as history), and thumbs given
through both at the same time are all stored exactly once."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from tests.conftest import REPO, free_port, make_home
from tests.test_browser import _wait_until_up
from tests.test_chroma_server import chroma_server  # noqa: F401  (the `chroma run` fixture)

USER = "57"
QUERY = "a comedy"


def _serve(home, location, log):
    env = {**os.environ, "RECSYS_HOME": str(home.root), "RECSYS_DATASET": "ml-100k",
           "RECSYS_CHROMA_HOST": location.host, "RECSYS_CHROMA_PORT": str(location.port),
           "RECSYS_REFRESH_EVERY_EVENTS": "0", "RECSYS_REFRESH_EVERY_MINUTES": "0"}
    for key in ("RECSYS_AUTH_USER", "RECSYS_AUTH_PASSWORD", "RECSYS_SERVER_HOST", "RECSYS_CONFIG"):
        env.pop(key, None)
    port = free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--port", str(port)], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}/"


@pytest.fixture
def two_instances(chroma_server, embedder, tmp_path):  # noqa: F811
    """ML-100K ingested into the Chroma server; two app processes over one home (one feedback DB)."""
    from assistant.ingest import ingest_movielens
    from assistant.retriever_training import publish_sequential_vectors, sequential_model_dir
    from data.store import Dataset
    from retrieval.profiles import ProfileWeights
    from retrieval.sequential import MODEL_FILE
    from retrieval.vector_store import open_client

    home = make_home(tmp_path / "home")
    client = open_client(chroma_server)
    ingest_movielens(home, "ml-100k", client, embedder, ProfileWeights(), progress=False)
    model_dir = sequential_model_dir(home, "ml-100k")
    if (model_dir / MODEL_FILE).exists():  # published once here, not raced by the two instances
        from retrieval.sequential import SASRecRetriever

        publish_sequential_vectors(Dataset(home.dataset_db("ml-100k")), SASRecRetriever.load(model_dir), client)
    procs = [_serve(home, chroma_server, home.logs / f"serve-{name}.log") for name in "ab"]
    try:
        for (proc, url), name in zip(procs, "ab"):
            _wait_until_up(url, proc, home.logs / f"serve-{name}.log")
        yield procs[0][1], procs[1][1], home, client
    finally:
        for proc, _ in procs:
            proc.terminate()
        for proc, _ in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def tab(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def ids(out) -> list[str]:
    assert "error" not in out, out
    return [i["item_id"] for i in out["items"]]


def test_two_app_instances_share_one_chroma_server_and_one_feedback_store(two_instances):
    from data.feedback import DISLIKE, LIKE, FeedbackStore
    from retrieval.profiles import ProfileStore, ProfileWeights

    url_a, url_b, home, client = two_instances
    profiles = ProfileStore(client, "ml-100k", ProfileWeights())
    events_before = profiles.get(USER).events

    on_a = tab(url_a)
    first_a = ids(on_a.predict(QUERY, USER, 10, api_name="/recommend"))
    first_b = ids(tab(url_b).predict(QUERY, USER, 10, api_name="/recommend"))
    assert first_a == first_b and len(first_a) == 10  # one data set, one vector store

    disliked = first_a[0]
    assert on_a.predict(disliked, False, "", api_name="/feedback")["stored"]  # given through A ...
    on_b = tab(url_b)
    after_b = ids(on_b.predict(QUERY, USER, 10, api_name="/recommend"))
    assert disliked not in after_b and len(after_b) == 10  # ... excluded on B at once
    assert profiles.get(USER).events == events_before + 1  # the profile A moved is the one B reads

    liked = after_b[0]
    assert on_b.predict(liked, True, "", api_name="/feedback")["stored"]  # and the other way round
    after_a = ids(tab(url_a).predict(QUERY, USER, 10, api_name="/recommend"))
    assert liked not in after_a and disliked not in after_a  # the liked one is history now

    store = FeedbackStore(home.feedback_db())
    assert [(e.item_id, e.value) for e in store.events("ml-100k", USER)] == [(disliked, DISLIKE), (liked, LIKE)]

    # Thumbs through both instances at the same time: every acknowledged event stored once, none lost
    acked, failures = {}, []

    def clicks(url, user):
        try:
            api = tab(url)
            items = ids(api.predict("a drama", user, 10, api_name="/recommend"))
            for n, item in enumerate(items):
                ack = api.predict(item, n % 2 == 0, "", api_name="/feedback")
                api.predict(item, n % 2 == 0, "", api_name="/feedback")  # a resubmitted click
                acked[ack["event_id"]] = (user, item)
        except Exception as err:  # noqa: BLE001 - reported below
            failures.append(repr(err))

    threads = [threading.Thread(target=clicks, args=(url, user))
               for url, user in ((url_a, "58"), (url_b, "59"), (url_a, "60"), (url_b, "61"))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not failures, failures
    stored = {e.event_id: (e.user_id, e.item_id) for e in store.events("ml-100k") if e.user_id != USER}
    assert len(acked) == 40 and stored == acked
    assert store.count("ml-100k") == 42
    store.close()
