"""A kill -9 in the middle of an ingest leaves the data set, the vectors and the feedback store usable."""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time

from data.feedback import LIKE, FeedbackEvent, FeedbackStore
from data.store import Dataset
from retrieval.item_index import ItemIndex
from retrieval.vector_store import ChromaLocation, open_client
from tests.conftest import REPO, make_home


def test_kill_9_during_ingest_leaves_everything_usable(ml100k, tmp_path):
    source, _, _ = ml100k
    home = make_home(tmp_path / "home")
    shutil.copy(source.dataset_db("ml-100k"), home.dataset_db("ml-100k"))
    shutil.rmtree(home.chroma)
    shutil.copytree(source.chroma, home.chroma)
    store = FeedbackStore(home.feedback_db())
    store.record(FeedbackEvent("ml-100k", "1", "s", "50", LIKE, {"shown": ["50"]}))
    store.close()
    env = {**os.environ, "RECSYS_HOME": str(home.root), "OMP_NUM_THREADS": "1"}
    expected = ["50"]
    for number, delay in enumerate( (random.Random(3).uniform(2, 6), random.Random(4).uniform(6, 12))):
        proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "ingest", "--dataset", "ml-100k"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        dataset = Dataset(home.dataset_db("ml-100k"))  # the previous complete version, or the new one: never half
        assert dataset.item_count() == 1682 and len(dataset.interaction_arrays()[0]) == 100_000
        dataset.close()
        store = FeedbackStore(home.feedback_db())
        assert [e.item_id for e in store.events()] == expected
        assert store.record(FeedbackEvent("ml-100k", "1", "s", str(60 + number), LIKE))
        expected.append(str(60 + number))
        store.forget_user("ml-100k", "nobody")
        store.close()
    done = subprocess.run([sys.executable, "-m", "ui.cli", "ingest", "--dataset", "ml-100k"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert ItemIndex(open_client(ChromaLocation(path=home.chroma)), "ml-100k").count() == 1682
    rec = subprocess.run([sys.executable, "-m", "ui.cli", "recommend", "--dataset", "ml-100k", "--json", "a western"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert rec.returncode == 0 and '"Western"' in rec.stdout
