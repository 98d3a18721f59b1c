"""Shared fixtures: the real fetched raw data, a temporary runtime home, real ML-100K in Chroma."""
from __future__ import annotations

from ui.offline import go_offline

go_offline()

import os  # noqa: E402
import socket  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from data.fetch import is_complete  # noqa: E402
from data.home import RuntimeHome  # noqa: E402
from data.registry import DATASETS  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SOURCE_HOME = RuntimeHome(Path(os.environ.get("RECSYS_HOME") or REPO / ".recsys"))
SMOLLM2_DIR = SOURCE_HOME.models / "smollm2"

# One intra-op thread for the whole suite: on a 2-core machine a second OpenMP thread spinning
# against any other process made small forwards 7-50x slower (measured while developing).
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    if not (SMOLLM2_DIR / "config.json").exists():
        pytest.fail(f"converted SmolLM2 missing at {SMOLLM2_DIR}; ./test.sh runs `recsys setup --models smollm2`")
    return SMOLLM2_DIR


needs_model = pytest.mark.usefixtures("smollm2_dir")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _require_raw():
    missing = [a.name for a in DATASETS.values() if not is_complete(a, SOURCE_HOME.raw)]
    if missing:
        pytest.fail(f"raw data {missing} not fetched under {SOURCE_HOME.root}; run ./test.sh (it runs recsys setup)")


def make_home(root: Path) -> RuntimeHome:
    """A fresh home that shares the already-fetched raw files (read-only) with the real one."""
    _require_raw()
    home = RuntimeHome(root).ensure()
    home.raw.rmdir()
    home.raw.symlink_to(SOURCE_HOME.raw.resolve(), target_is_directory=True)
    home.share_language_models(SOURCE_HOME.models)
    return home


@pytest.fixture
def tmp_home(tmp_path) -> RuntimeHome:
    return make_home(tmp_path / "home")


@pytest.fixture(scope="session")
def embedder(tmp_path_factory):
    from retrieval.embedder import Embedder

    return Embedder(cache_path=tmp_path_factory.mktemp("embcache") / "embeddings.sqlite")


@pytest.fixture(scope="session")
def ml100k(tmp_path_factory, embedder):
    """ML-100K ingested for real into a session-wide temporary home with embedded Chroma."""
    from assistant.ingest import ingest_movielens
    from retrieval.profiles import ProfileWeights
    from retrieval.vector_store import ChromaLocation, open_client

    home = make_home(tmp_path_factory.mktemp("ml100k") / "home")
    client = open_client(ChromaLocation(path=home.chroma))
    report = ingest_movielens(home, "ml-100k", client, embedder, ProfileWeights(), progress=False)
    return home, client, report


@pytest.fixture(scope="session")
def recommender_100k(ml100k, embedder):
    from assistant.recommender import Recommender
    from data.store import Dataset
    from retrieval.candidates import FusionWeights
    from retrieval.item_index import ItemIndex
    from retrieval.profiles import ProfileStore, ProfileWeights

    from retrieval.collaborative import CollaborativeModel

    home, client, _ = ml100k
    return Recommender(Dataset(home.dataset_db("ml-100k")), ItemIndex(client, "ml-100k"),
                       ProfileStore(client, "ml-100k", ProfileWeights()), embedder, FusionWeights(),
                       collaborative=CollaborativeModel.load(home.collaborative_model("ml-100k")))


@pytest.fixture(scope="session")
def sasrec_100k(ml100k):
    """A small SASRec trained for real on ML-100K's training period and published to Chroma."""
    from assistant.retriever_training import train_retriever

    home, client, _ = ml100k
    report = train_retriever(home, "ml-100k", client, minutes=2.0, max_epochs=3, learning_rate=3e-3,
                             log=lambda *_: None)
    return home, report


@pytest.fixture(scope="module")
def served_app(ml100k, embedder):
    """The app as `recsys serve` builds it (build_assistant over the ML-100K home, its default queue), on
    loopback in this process; one per test module."""
    from assistant.runtime import build_assistant
    from ui.chat_app import build_app, launch
    from ui.config import load_settings

    home = ml100k[0]
    settings = load_settings({"RECSYS_HOME": str(home.root), "RECSYS_DATASET": "ml-100k"})
    assistant = build_assistant(settings, embedder)
    app = build_app(assistant, home)
    port = free_port()
    launch(app, "127.0.0.1", port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}/", assistant
    app.close()
