"""One recommendation turn: parse -> embed and fuse -> retrieve under hard constraints -> explain."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from assistant.explain import closest_liked, explain
from assistant.metrics import zscore
from assistant.request_parser import Request, RequestParser, TitleEntry
from data.catalogue import Interaction, Item
from data.store import Dataset
from retrieval.candidates import CandidateRetriever, FusionWeights, fuse
from retrieval.embedder import Embedder
from retrieval.filters import satisfies
from retrieval.item_index import ItemIndex
from retrieval.profiles import Profile, ProfileStore

LIKED_RATING = 4.0
LIKED_WINDOW = 200  # recent likes an explanation may cite


class UnknownUser(LookupError):
    pass


class InvalidRequest(ValueError):
    pass


@dataclass
class Recommendation:
    item: Item
    score: float
    explanation: str

    def to_json(self) -> dict:
        return {"item_id": self.item.item_id, "title": self.item.title, "year": self.item.year,
                "genres": list(self.item.genres), "score": round(self.score, 6), "explanation": self.explanation}


@dataclass
class Recommendations:
    request: Request
    items: list[Recommendation]
    requested: int
    timings_ms: dict = field(default_factory=dict)

    @property
    def message(self) -> str:
        parts = []
        if not self.request.constraints.is_empty():
            parts.append(f"Constraints: {self.request.constraints.describe()}.")
        if self.request.reference_labels:
            parts.append("Like: " + ", ".join(self.request.reference_labels) + ".")
        if len(self.items) < self.requested:
            parts.append(f"Only {len(self.items)} of the {self.requested} requested items match every constraint.")
        parts.extend(note[0].upper() + note[1:] + "." for note in self.request.notes)
        return " ".join(parts)

    def to_json(self) -> dict:
        out = {"items": [r.to_json() for r in self.items], "timings_ms": self.timings_ms,
               "constraints": self.request.constraints.describe(), "requested": self.requested,
               "returned": len(self.items)}
        if self.message:
            out["message"] = self.message
        return out


class Recommender:
    def __init__(self, dataset: Dataset, index: ItemIndex, profiles: ProfileStore, embedder: Embedder,
                 fusion: FusionWeights, max_k: int = 100, sequential=None, sequential_index: ItemIndex | None = None):
        self.sequential = sequential  # SASRecRetriever over user histories, or None
        self.sequential_retriever = None
        if sequential is not None and sequential_index is not None and sequential_index.count():
            ids, vectors = sequential_index.all_vectors()
            self.sequential_vectors = dict(zip(ids, vectors))
        else:
            self.sequential = None
        self.dataset = dataset
        self.index = index
        self.profiles = profiles
        self.embedder = embedder
        self.fusion = fusion
        self.max_k = max_k
        self.items = {item.item_id: item for item in dataset.items()}
        self.genre_vocabulary = sorted({s for item in self.items.values() for s in item.genre_slugs})
        popularity = dataset.popularity()
        self.parser = RequestParser([TitleEntry(i.item_id, i.title, i.year, popularity.get(i.item_id, 0))
                                     for i in self.items.values()], self.genre_vocabulary)
        self.retriever = CandidateRetriever(index, self.genre_vocabulary)
        if self.sequential is not None:
            self.sequential_retriever = CandidateRetriever(sequential_index, self.genre_vocabulary)
            ids, vectors = index.all_vectors()
            self.text_vectors = dict(zip(ids, vectors))

    def history(self, user_id: str) -> list[Interaction]:
        history = self.dataset.user_history(user_id)
        if not history:  # a user exists through their interactions
            raise UnknownUser(f"unknown user {user_id!r} in data set {self.dataset.name!r}")
        return history

    def recommend(self, text: str, user_id: str | None = None, k: int = 10,
                  exclude: set[str] | None = None) -> Recommendations:
        history = self.history(user_id) if user_id is not None else []
        started = time.perf_counter()
        request = self.parser.parse(text)
        parse_ms = round((time.perf_counter() - started) * 1000, 2)
        reply = self.recommend_request(request, history, user_id, k, exclude)
        reply.timings_ms = {"parse_ms": parse_ms, **reply.timings_ms}
        reply.timings_ms["total_ms"] = round(reply.timings_ms["total_ms"] + parse_ms, 2)
        return reply

    def recommend_request(self, request: Request, history: list[Interaction], profile_user: str | None, k: int,
                          exclude: set[str] | None = None, rerank: Callable | None = None,
                          pool: int | None = None, profile: Profile | None = None) -> Recommendations:
        """Retrieve for an already parsed request. `history` is what the user has seen (excluded, and
        their likes shape the sequential vector and the explanations); `profile_user` names the profile
        vector fused with the query, or `profile` gives one (e.g. built from part of a history).
        `rerank(request, [(item, score)], k)` may reorder a pool of `pool` candidates down to k
        (diversity, dislike penalties)."""
        if not isinstance(k, int) or not 1 <= k <= self.max_k:
            raise InvalidRequest(f"k must be a whole number from 1 to {self.max_k}, got {k!r}")
        timings: dict[str, float] = {}
        started = clock = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[name] = round((now - clock) * 1000, 2)
            clock = now

        query_vector = self.embedder.encode_one(request.text) if request.text.strip() else None
        if profile is None and profile_user is not None:
            profile = self.profiles.get(profile_user)
        reference_vectors = self.index.vectors(list(request.references)) if request.references else {}
        reference_mean = (np.mean(list(reference_vectors.values()), axis=0) if reference_vectors else None)
        vector = fuse([(self.fusion.query, query_vector),
                       (self.fusion.profile, profile.query_vector() if profile else None),
                       (self.fusion.liked_reference, reference_mean)])
        if vector is None:
            raise InvalidRequest("there is nothing to search with: say what you would like to watch")
        lap("embed_ms")
        excluded = {x.item_id for x in history} | set(request.references) | set(exclude or ())
        wanted = k if rerank is None else min(self.max_k, max(k, pool or 3 * k))
        if self.sequential is not None and history:
            chosen = self._hybrid(vector, history, request, excluded, wanted)
        else:
            retrieval = self.retriever.retrieve(vector, request.constraints, excluded, wanted)
            chosen = [(self.items[c.item_id], c.score) for c in retrieval.candidates if c.item_id in self.items]
        lap("retrieve_ms")
        if rerank is not None:
            chosen = rerank(request, chosen, k)[:k]
            lap("rerank_ms")
        violations = [item.item_id for item, _ in chosen if not satisfies(item, request.constraints)]
        if violations:  # the filter and the independent check disagree: never serve a violating item
            raise RuntimeError(f"retrieval returned items violating {request.constraints}: {violations[:5]}")
        recommendations = self._explain(chosen, request, history)
        lap("explain_ms")
        timings["total_ms"] = round((time.perf_counter() - started) * 1000, 2)
        return Recommendations(request, recommendations, k, timings)

    def item_vectors(self, item_ids: list[str]) -> dict[str, np.ndarray]:
        """Unit text vectors of the given items (for diversity and similarity to feedback)."""
        if self.sequential is not None:
            return {i: self.text_vectors[i] for i in item_ids if i in self.text_vectors}
        return self.index.vectors(item_ids) if item_ids else {}

    def _hybrid(self, text_vector: np.ndarray, history: list[Interaction], request: Request, excluded: set[str],
                k: int) -> list[tuple[Item, float]]:
        """Union of the text and the sequential candidates under the same hard constraints, ranked by
        z-scored text similarity plus `fusion.sequential` x z-scored sequential score."""
        pool = max(50, 3 * k)
        user_vector = self.sequential.user_vector([x.item_id for x in history])
        text = self.retriever.retrieve(text_vector, request.constraints, excluded, pool).candidates
        seq = self.sequential_retriever.retrieve(user_vector, request.constraints, excluded, pool).candidates
        ids = list(dict.fromkeys([c.item_id for c in seq] + [c.item_id for c in text]))
        ids = [i for i in ids if i in self.items]
        if not ids:
            return []
        text_scores = np.array([float(self.text_vectors[i] @ text_vector) for i in ids])
        seq_raw = [float(self.sequential_vectors[i] @ user_vector) if i in self.sequential_vectors else None for i in ids]
        floor = min((x for x in seq_raw if x is not None), default=0.0)
        seq_scores = np.array([floor if x is None else x for x in seq_raw])
        fused = zscore(text_scores) * self.fusion.query + zscore(seq_scores) * self.fusion.sequential
        order = np.argsort(-fused, kind="stable")[:k]
        return [(self.items[ids[n]], float(fused[n])) for n in order]

    def evidence_vectors(self, history: Sequence[Interaction], item_ids: Sequence[str]
                         ) -> tuple[dict[str, np.ndarray], list[tuple[Interaction, np.ndarray]]]:
        """The vectors explanations compare: of ``item_ids`` and of the user's last LIKED_WINDOW liked
        items (sequential when trained: "people who liked X liked this" beats title-word similarity;
        else text), and the liked (interaction, vector) pairs, oldest first."""
        liked = [x for x in history if x.rating >= LIKED_RATING and x.item_id in self.items][-LIKED_WINDOW:]
        needed = [x.item_id for x in liked] + list(item_ids)
        if self.sequential is not None:
            vectors = {i: self.sequential_vectors[i] / np.linalg.norm(self.sequential_vectors[i])
                       for i in needed if i in self.sequential_vectors}
        else:
            vectors = self.index.vectors(needed) if needed else {}
        return vectors, [(x, vectors[x.item_id]) for x in liked if x.item_id in vectors]

    def _explain(self, chosen: list[tuple[Item, float]], request: Request,
                 history: list[Interaction]) -> list[Recommendation]:
        vectors, liked_vectors = self.evidence_vectors(history, [item.item_id for item, _ in chosen])
        reference = self.items.get(request.references[0]) if request.references else None
        out = []
        for item, score in chosen:
            own = set(item.genres)
            related = [(x, v) for x, v in liked_vectors if own & set(self.items[x.item_id].genres)]
            evidence = closest_liked(vectors[item.item_id], related, min_similarity=-1.0) \
                if item.item_id in vectors else None
            out.append(Recommendation(item, score, explain(
                item, request.constraints, evidence, self.items.get(evidence.item_id) if evidence else None,
                reference)))
        return out
