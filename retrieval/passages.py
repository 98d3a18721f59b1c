"""A film's description as passages: a few sentences each, so that a request describing one scene
or turn of the story can match the passage that tells it (a whole summary is truncated by the
encoder, and its opening sentence is usually credits)."""
from __future__ import annotations

import functools

SENTENCES_PER_PASSAGE = 2


@functools.lru_cache(maxsize=1)
def _segmenter():
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def sentences(text: str) -> list[str]:
    """Sentences of `text` by pysbd (rule-based; handles "Dr.", "tr.", initials and quotes)."""
    return [s.strip() for s in _segmenter().segment(text) if s.strip()] if text.strip() else []


def passages(text: str, size: int = SENTENCES_PER_PASSAGE) -> list[str]:
    parts = sentences(text)
    return [" ".join(parts[n:n + size]) for n in range(0, len(parts), size)]


def passage_texts(items) -> list[tuple[str, str]]:
    """(item id, passage) for every described item, the title replaced as in the item text."""
    out = []
    for item in items:
        if item.description:
            out.extend((item.item_id, p) for p in passages(item.description_without_title()))
    return out


class PassageIndex:
    """The passages collection: one vector per passage, its item id in the metadata."""

    def __init__(self, client, dataset: str):
        from retrieval.vector_store import collection_name

        self._client = client
        self._name = collection_name("passages", dataset)
        self.collection = client.get_or_create_collection(self._name, embedding_function=None,
                                                          configuration={"hnsw": {"space": "cosine"}})

    def sync(self, items, embedder, progress: bool = False) -> int:
        """Make the collection hold the passages of `items`; only new texts are embedded (the
        embedder caches by text). Returns the number of passages."""
        import hashlib

        import numpy as np

        wanted = passage_texts(items)
        ids = [f"{item}#{n}" for n, (item, _) in enumerate(wanted)]
        digest = hashlib.sha256("\x1f".join(f"{i}\x1e{t}" for (i, t) in wanted).encode()).hexdigest()
        stored = self.collection.get(ids=["__digest__"], include=["metadatas"])
        if stored["ids"] and stored["metadatas"][0].get("digest") == digest:
            return len(wanted)
        self._client.delete_collection(self._name)
        self.collection = self._client.get_or_create_collection(self._name, embedding_function=None,
                                                               configuration={"hnsw": {"space": "cosine"}})
        if wanted:
            vectors = embedder.encode([t for _, t in wanted], progress=progress)
            for start in range(0, len(wanted), 5000):
                self.collection.add(ids=ids[start:start + 5000], embeddings=vectors[start:start + 5000],
                                    metadatas=[{"item_id": i} for i, _ in wanted[start:start + 5000]])
        marker = np.zeros((1, embedder.dimension), dtype=np.float32)
        marker[0, 0] = 1.0
        self.collection.add(ids=["__digest__"], embeddings=marker, metadatas=[{"digest": digest, "item_id": ""}])
        return len(wanted)

    def all(self):
        """(item ids, vectors) of every passage."""
        import numpy as np

        got = self.collection.get(include=["embeddings", "metadatas"])
        keep = [n for n, meta in enumerate(got["metadatas"]) if meta.get("item_id")]
        vectors = np.asarray(got["embeddings"], dtype=np.float32)
        return [got["metadatas"][n]["item_id"] for n in keep], (vectors[keep] if keep else np.zeros((0, vectors.shape[1] if vectors.ndim == 2 else 1), np.float32))
