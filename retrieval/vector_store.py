"""Where the vectors live: an embedded Chroma database by default, or a `chroma run` server.

Both are the same chromadb client interface, so every caller takes one code path.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path


class VectorStoreUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class ChromaLocation:
    path: Path | None = None  # embedded PersistentClient
    host: str | None = None  # HttpClient against a `chroma run` server
    port: int = 8000

    def describe(self) -> str:
        return f"chroma server http://{self.host}:{self.port}" if self.host else f"embedded chroma at {self.path}"


def open_client(location: ChromaLocation):
    import chromadb
    from chromadb.config import Settings

    settings = Settings(anonymized_telemetry=False)
    if location.host:
        try:
            client = chromadb.HttpClient(host=location.host, port=location.port, settings=settings)
            client.heartbeat()
        except Exception as err:  # chromadb raises several transport errors
            raise VectorStoreUnavailable(f"cannot reach {location.describe()}: {err}") from None
        return client
    if location.path is None:
        raise ValueError("a Chroma location needs a path or a host")
    location.path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(location.path), settings=settings)


def collection_name(kind: str, dataset: str) -> str:
    """Chroma names: 3-512 chars of [a-zA-Z0-9._-], starting and ending alphanumeric."""
    name = re.sub(r"[^a-zA-Z0-9._-]+", "-", f"{kind}_{dataset}").strip("-._")
    if len(name) < 3 or len(name) > 512:
        raise ValueError(f"cannot make a valid collection name from {kind!r} and {dataset!r}")
    return name
