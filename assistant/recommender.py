"""One recommendation turn: parse -> embed and fuse -> retrieve under hard constraints -> explain."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from assistant.explain import closest_liked, explain
from assistant.fact_requests import FactParser
from assistant.metrics import zscore
from assistant.request_parser import Request, RequestParser, TitleEntry
from data.catalogue import Interaction, Item
from data.facts import facts_of
from data.store import Dataset
from retrieval.blend import BlendWeights, CatalogueScorer
from retrieval.candidates import CandidateRetriever, FusionWeights, fuse
from retrieval.collaborative import CollaborativeModel
from retrieval.embedder import Embedder
from retrieval.filters import Constraints, satisfies
from retrieval.item_index import ItemIndex
from retrieval.passages import PassageIndex
from retrieval.profiles import Profile, ProfileStore
from retrieval.quality import quality_prior

LIKED_RATING = 4.0
LIKED_WINDOW = 200  # recent likes an explanation may cite
PROFILE_LIKES = 50  # recent likes that seed the collaborative scores of a person without named films


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
                 fusion: FusionWeights, max_k: int = 100, sequential=None, sequential_index: ItemIndex | None = None,
                 collaborative: CollaborativeModel | None = None, blend: BlendWeights = BlendWeights()):
        self.sequential = sequential  # SASRecRetriever over user histories, or None
        self.collaborative = collaborative
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
                                     for i in self.items.values()], self.genre_vocabulary,
                                    FactParser(list(self.items.values())))
        self.retriever = CandidateRetriever(index, self.genre_vocabulary)
        ids, vectors = index.all_vectors()
        self.text_vectors = dict(zip(ids, vectors))
        self._passages = PassageIndex(index._client, dataset.name).all()
        if self.sequential is not None:
            self.sequential_retriever = CandidateRetriever(sequential_index, self.genre_vocabulary)
        self.scorer = self._catalogue_scorer(ids, vectors, blend)
        self._eligible_cache: dict[Constraints, np.ndarray] = {}

    def _catalogue_scorer(self, ids: list[str], vectors: np.ndarray, blend: BlendWeights) -> CatalogueScorer:
        ids = [i for i in ids if i in self.items]
        matrix = np.stack([self.text_vectors[i] for i in ids]) if ids else np.zeros((0, 1), dtype=np.float32)
        critics = np.array([np.nan if (f := facts_of(self.items[i])) is None or f.critics_score is None
                            else f.critics_score for i in ids], dtype=np.float64)
        if self.collaborative is not None:
            stats = np.array([self.collaborative.stats[self.collaborative.position[i]]
                              if i in self.collaborative else (0, 0, 0) for i in ids], dtype=np.float64)
            prior = quality_prior(stats[:, 0], stats[:, 2], critics)
        else:
            prior = quality_prior(np.zeros(len(ids)), np.zeros(len(ids)), critics)
        return CatalogueScorer(ids, matrix, self.collaborative, prior, blend, passages=self._passages)

    def eligible(self, constraints: Constraints) -> np.ndarray:
        """Which catalogue films satisfy every hard constraint (a boolean mask in scorer order)."""
        mask = self._eligible_cache.get(constraints)
        if mask is None:
            if constraints.is_contradictory():
                mask = np.zeros(len(self.scorer.item_ids), dtype=bool)
            else:
                mask = np.array([satisfies(self.items[i], constraints) for i in self.scorer.item_ids], dtype=bool)
            if len(self._eligible_cache) > 256:
                self._eligible_cache.clear()
            self._eligible_cache[constraints] = mask
        return mask

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

        query_vector = self.embedder.encode_one(request.about) if request.about.strip() else None
        if profile is None and profile_user is not None:
            profile = self.profiles.get(profile_user)
        reference_vectors = self.index.vectors(list(request.references)) if request.references else {}
        reference_mean = (np.mean(list(reference_vectors.values()), axis=0) if reference_vectors else None)
        lap("embed_ms")
        excluded = {x.item_id for x in history} | set(request.references) | set(exclude or ())
        wanted = k if rerank is None else min(self.max_k, max(k, pool or 3 * k))
        if self.sequential is not None and history and not request.references:
            vector = fuse([(self.fusion.query, query_vector),
                           (self.fusion.profile, profile.query_vector() if profile else None),
                           (self.fusion.liked_reference, reference_mean)])
            if vector is None:
                raise InvalidRequest("there is nothing to search with: say what you would like to watch")
            chosen = self._hybrid(vector, history, request, excluded, wanted)
        else:
            eligible = self.eligible(request.constraints)
            liked = [x.item_id for x in history if x.rating >= LIKED_RATING][-PROFILE_LIKES:]
            scores, _ = self.scorer.score(eligible, query_vector, list(request.references), liked)
            chosen = [(self.items[i], s) for i, s in self.scorer.top(scores, eligible, excluded, wanted)]
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
        """Unit text vectors of the given items (the space of the stored profiles)."""
        return {i: self.text_vectors[i] for i in item_ids if i in self.text_vectors}

    def similarity_vectors(self, item_ids: list[str]) -> dict[str, np.ndarray]:
        """Unit vectors in which close means "the same people love both" (collaborative, where the
        ratings know the film; text otherwise): for diversity and the push away from dislikes."""
        if self.collaborative is None:
            return self.item_vectors(item_ids)
        vectors = self.collaborative.item_vectors(item_ids)
        blank = np.zeros(self.collaborative.vectors.shape[1], dtype=np.float32)  # unrated: close to nothing
        return {i: np.asarray(vectors.get(i, blank)) for i in item_ids if i in self.items}

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
        elif self.collaborative is not None:
            vectors = {i: v for i, v in self.similarity_vectors(needed).items() if np.any(v)}
        else:
            vectors = self.item_vectors(needed)
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
            evidence_item = self.items.get(evidence.item_id) if evidence else None
            out.append(Recommendation(item, score, explain(
                item, request.constraints, evidence, evidence_item, reference,
                self.co_liked(reference or evidence_item, item))))
        return out

    def co_liked(self, source: Item | None, item: Item) -> tuple[str, int, int] | None:
        """(source label, people who loved the source, of them who also loved the item), from the ratings."""
        if source is None or self.collaborative is None:
            return None
        counts = self.collaborative.co_liked(source.item_id, item.item_id)
        if counts is None or counts[0] < 20 or counts[1] == 0:
            return None
        return source.label, counts[0], counts[1]
