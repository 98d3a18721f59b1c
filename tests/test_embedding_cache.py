"""The embedding cache is shared by the server's threads and by other processes (ingest, refresh):
concurrent writers neither fail nor lose vectors, and cached vectors equal the model's."""
import sqlite3
import subprocess
import sys
import threading

import numpy as np

from retrieval.embedder import Embedder
from tests.conftest import REPO

WRITER = """
import sys
sys.path.insert(0, {repo!r})
from ui.offline import go_offline
go_offline()
from pathlib import Path
from retrieval.embedder import Embedder
e = Embedder(cache_path=Path({path!r}))
for n in range(10):
    e.encode([f"process text {{n}} {{m}}" for m in range(20)])
print(e.encoded_count)
"""


def test_threads_and_a_second_process_share_the_cache(tmp_path, embedder):
    path = tmp_path / "embeddings.sqlite"
    shared = Embedder(cache_path=path)
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other = subprocess.Popen([sys.executable, "-c", WRITER.format(repo=str(REPO), path=str(path))],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    errors: list[BaseException] = []

    def encode(thread: int) -> None:
        try:
            for n in range(10):
                shared.encode([f"thread {thread} text {n} {m}" for m in range(20)])
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=encode, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out, err = other.communicate(timeout=600)
    assert not errors and other.returncode == 0, (errors, err[-2000:])
    assert int(out.split()[-1]) == 200
    texts = [f"thread {t} text {n} {m}" for t in range(4) for n in range(10) for m in range(20)] + \
            [f"process text {n} {m}" for n in range(10) for m in range(20)]
    fresh = Embedder(cache_path=path)
    cached = fresh.encode(texts)
    assert fresh.encoded_count == 0  # every vector, from both processes and all threads, was stored
    sample = [0, 399, 800, 999]
    np.testing.assert_allclose(cached[sample], embedder.encode_raw([texts[i] for i in sample]), atol=1e-5)
