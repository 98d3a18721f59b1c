"""Server mode: the same ingest and retrieval code against a real `chroma run` on loopback."""
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from assistant.ingest import index_dataset
from data.store import Dataset
from retrieval.candidates import CandidateRetriever
from retrieval.filters import Constraints
from retrieval.item_index import ItemIndex
from retrieval.profiles import ProfileStore, ProfileWeights
from retrieval.vector_store import ChromaLocation, VectorStoreUnavailable, open_client
from tests.conftest import free_port


@pytest.fixture
def chroma_server(tmp_path):
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    assert chroma, "the chroma CLI ships with chromadb"
    port = free_port()
    proc = subprocess.Popen([chroma, "run", "--path", str(tmp_path / "server-db"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while True:
        try:
            open_client(ChromaLocation(host="127.0.0.1", port=port))
            break
        except VectorStoreUnavailable:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("chroma run did not come up within 60 s")
            time.sleep(0.5)
    yield ChromaLocation(host="127.0.0.1", port=port)
    proc.terminate()
    proc.wait(timeout=20)


def test_server_mode_gives_the_same_results(chroma_server, ml100k, embedder, recommender_100k):
    home, _, _ = ml100k
    client = open_client(chroma_server)
    dataset = Dataset(home.dataset_db("ml-100k"))
    sync, _, users = index_dataset(dataset, client, embedder, ProfileWeights(), progress=False)
    assert sync.added == 1682 and users == 943
    assert ProfileStore(client, "ml-100k", ProfileWeights()).count() == 943
    server = CandidateRetriever(ItemIndex(client, "ml-100k"), recommender_100k.genre_vocabulary)
    local = recommender_100k.retriever
    query = embedder.encode_one("a funny romantic comedy")
    for c in (Constraints(), Constraints(genres_all=frozenset({"comedy"}), year_min=1990),
              Constraints(genres_none=frozenset({"drama"}), year_max=1970)):
        a = [x.item_id for x in server.exact(query, c, set(), 10).candidates]
        b = [x.item_id for x in local.exact(query, c, set(), 10).candidates]
        assert a == b
        got = server.retrieve(query, c, set(), 10).candidates
        assert len(got) == 10 and len({x.item_id for x in got} & set(b)) >= 8


def test_unreachable_server_is_one_clear_error():
    with pytest.raises(VectorStoreUnavailable, match="cannot reach chroma server"):
        open_client(ChromaLocation(host="127.0.0.1", port=free_port()))
