"""The items collection: one vector per catalogue item, metadata for hard filters."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from data.catalogue import Item
from retrieval.embedder import Embedder
from retrieval.filters import item_metadata
from retrieval.vector_store import collection_name

CHROMA_MAX_BATCH = 5000


@dataclass(frozen=True)
class SyncReport:
    added: int
    updated: int
    removed: int
    unchanged: int

    @property
    def embedded(self) -> int:
        return self.added + self.updated


class ItemIndex:
    """`kind="items"`: MiniLM text vectors (cosine). `kind="seq_items"`: the sequential model's item
    vectors (inner product), with the same filter metadata so the same retrieval code serves both."""

    def __init__(self, client, dataset: str, kind: str = "items", space: str = "cosine"):
        self.dataset = dataset
        self.space = space
        self._client = client
        self._name = collection_name(kind, dataset)
        self.collection = self._open()

    def _open(self):
        return self._client.get_or_create_collection(self._name, embedding_function=None,
                                                     configuration={"hnsw": {"space": self.space}})

    def _stored_dimension(self) -> int | None:
        got = self.collection.get(limit=1, include=["embeddings"])
        return len(got["embeddings"][0]) if len(got["ids"]) else None

    def count(self) -> int:
        return self.collection.count()

    def put_vectors(self, items: list[Item], vectors: np.ndarray, genre_vocabulary: list[str]) -> None:
        """Replace the collection's content with precomputed vectors (e.g. a retrained model's); vectors
        of another width than the stored ones (a model retrained with another size) replace the collection."""
        stored_dimension = self._stored_dimension()
        if stored_dimension is not None and stored_dimension != vectors.shape[1]:
            self._client.delete_collection(self._name)
            self.collection = self._open()
        stored = set(self.stored_hashes())
        for start in range(0, len(items), CHROMA_MAX_BATCH):
            chunk = items[start:start + CHROMA_MAX_BATCH]
            self.collection.upsert(ids=[i.item_id for i in chunk], embeddings=vectors[start:start + CHROMA_MAX_BATCH],
                                   metadatas=[item_metadata(i, genre_vocabulary) for i in chunk])
        stale = list(stored - {i.item_id for i in items})
        for start in range(0, len(stale), CHROMA_MAX_BATCH):
            self.collection.delete(ids=stale[start:start + CHROMA_MAX_BATCH])

    def _pages(self, include: list[str], where: dict | None = None):
        """Every stored record passing `where`, fetched CHROMA_MAX_BATCH at a time."""
        total = self.collection.count()
        for offset in range(0, total, CHROMA_MAX_BATCH):
            got = self.collection.get(where=where, include=include, limit=CHROMA_MAX_BATCH, offset=offset)
            yield got
            if len(got["ids"]) < CHROMA_MAX_BATCH:
                return

    def _ids_and_vectors(self, where: dict | None) -> tuple[list[str], np.ndarray]:
        ids, vecs = [], []
        for got in self._pages(["embeddings"], where):
            ids.extend(got["ids"])
            if len(got["ids"]):
                vecs.append(np.asarray(got["embeddings"], dtype=np.float32))
        return ids, (np.concatenate(vecs) if vecs else np.zeros((0, 0), dtype=np.float32))

    def all_vectors(self) -> tuple[list[str], np.ndarray]:
        return self._ids_and_vectors(None)

    def stored_hashes(self) -> dict[str, str]:
        return {i: (m or {}).get("content_hash", "") for i, m in self.all_metadata().items()}

    def sync(self, items: list[Item], embedder: Embedder, genre_vocabulary: list[str],
             progress: bool = False) -> SyncReport:
        """Make the collection hold exactly `items`; only new or changed texts are embedded."""
        stored = self.stored_hashes()
        wanted = {item.item_id: item for item in items}
        changed = [i for i in items if stored.get(i.item_id) != i.content_hash
                   or stored.get(i.item_id) is None]
        added = sum(1 for i in changed if i.item_id not in stored)
        removed = [i for i in stored if i not in wanted]
        if changed:
            vectors = embedder.encode([i.text for i in changed], progress=progress)
            batches = range(0, len(changed), CHROMA_MAX_BATCH)
            for start in tqdm(batches, desc="chroma upsert", unit="batch", disable=not progress):
                chunk = changed[start:start + CHROMA_MAX_BATCH]
                self.collection.upsert(ids=[i.item_id for i in chunk],
                                       embeddings=vectors[start:start + CHROMA_MAX_BATCH],
                                       metadatas=[item_metadata(i, genre_vocabulary) for i in chunk])
        for start in range(0, len(removed), CHROMA_MAX_BATCH):
            self.collection.delete(ids=removed[start:start + CHROMA_MAX_BATCH])
        return SyncReport(added, len(changed) - added, len(removed), len(items) - len(changed))

    def all_metadata(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for got in self._pages(["metadatas"]):
            out.update(zip(got["ids"], got["metadatas"]))
        return out

    def vectors(self, item_ids: list[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for start in range(0, len(item_ids), CHROMA_MAX_BATCH):
            got = self.collection.get(ids=item_ids[start:start + CHROMA_MAX_BATCH], include=["embeddings"])
            out.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32)))
        return out

    def matching(self, where: dict | None) -> tuple[list[str], np.ndarray]:
        """Every item passing `where`, with its vector: the exact-search fallback's input."""
        return self._ids_and_vectors(where)

    def query(self, vector: np.ndarray, n: int, where: dict | None) -> tuple[list[str], list[float]]:
        result = self.collection.query(query_embeddings=vector[None, :].astype(np.float32), n_results=n,
                                       where=where, include=["distances"])
        return result["ids"][0], [1.0 - d for d in result["distances"][0]]  # cosine and ip: similarity
