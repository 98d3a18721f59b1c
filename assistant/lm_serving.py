"""The serving LoRA reranker inside a turn, hot-reloaded when the registry promotes a new version.

Each turn asks `current()`, a file read of the registry's serving pointer. When the pointer has
moved, the new version is verified and loaded in a background thread while requests keep using
the old one; the swap is one assignment under a lock, so no request is dropped or sees half a
model. A version whose fitted fusion weight is infinite (the LM did not beat the retriever on
held-out users) is not run at all: the retriever order stands, so the reranker never makes a
list worse than retrieval.
"""
from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from pathlib import Path

from finetune.adapters import AdapterRegistry

MAX_RERANKED = 20
PREFIX_CACHE_USERS = 64  # prefix KV caches kept (a few MB each in bf16)


@dataclass(frozen=True)
class LoadedReranker:
    version: str
    scorer: object
    weight: float  # retriever weight in LM + weight * zscore(retriever score); inf: retriever order only


def weight_value(weight) -> float:
    """A fusion weight as stored (a table key or fusion.json's value) as a number; "inf": the retriever order."""
    return math.inf if str(weight) == "inf" else float(weight)


def fusion_weight(folder: Path, scorer) -> float:
    fusion = folder / "fusion.json"
    if fusion.exists():
        return weight_value(json.loads(fusion.read_text()).get("weight", "inf"))
    return float(scorer.retriever_weight.detach())


class ServingReranker:
    def __init__(self, registry: AdapterRegistry, background: bool = True, log=print, pinned: str | None = None):
        """`pinned`: serve this version whatever the serving pointer says (evaluating a version that
        was not promoted)."""
        self.registry = registry
        self.pinned = pinned
        self.background = background
        self.log = log
        self._lock = threading.Lock()  # guards the swap and serialises model use (one forward at a time)
        self._loaded: LoadedReranker | None = None
        self._loading: str | None = None
        self.failed: dict[str, str] = {}

    def _load(self, version: str) -> None:
        from finetune.scorer import fast_dtype

        try:
            # the adapter merged into bf16 weights (fp32 on a CPU without native bf16): the same scores as
            # LoRA on top, ~10% faster per turn
            scorer = self.registry.load(version, merge=True, dtype=fast_dtype())
            scorer.reuse_prefixes = PREFIX_CACHE_USERS  # never trained: a user's next turn reuses its prefix
            loaded = LoadedReranker(version, scorer, fusion_weight(self.registry.path(version), scorer))
            with self._lock:
                self._loaded = loaded
            self.log(f"reranker: serving adapter {version} (fusion weight {loaded.weight})")
        except Exception as err:  # a broken version must not take serving down: keep the old one
            self.failed[version] = str(err)
            self.log(f"reranker: could not load {version}: {err}; keeping "
                     f"{self._loaded.version if self._loaded else 'retrieval order'}")
        finally:
            self._loading = None

    def current(self) -> LoadedReranker | None:
        wanted = self.pinned or self.registry.serving()
        loaded = self._loaded
        if wanted and (loaded is None or loaded.version != wanted) and self._loading is None \
                and wanted not in self.failed:
            self._loading = wanted
            if self.background:
                threading.Thread(target=self._load, args=(wanted,), daemon=True).start()
            else:
                self._load(wanted)
        return self._loaded

    def version(self) -> str | None:
        loaded = self._loaded
        return loaded.version if loaded else None

    def scores(self, history: list[str], candidates: list[str], retriever_scores: list[float],
               request: str = "") -> list[float] | None:
        """Fused scores for up to MAX_RERANKED candidate texts, or None when the retriever order stands."""
        loaded = self.current()
        if loaded is None or math.isinf(loaded.weight) or not history or len(candidates) < 2:
            return None
        with self._lock:
            return loaded.scorer.rerank_scores(history, candidates, retriever_scores, request,
                                               retriever_weight=loaded.weight)
