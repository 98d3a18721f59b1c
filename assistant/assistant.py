"""The conversational turn engine shared by the chat UI, the terminal chat, the CLI and Python callers.

    assistant = Assistant(recommender, FeedbackStore(home.feedback_db()))
    session = assistant.new_session(user_id="1m_42")      # or None: a new user
    reply = assistant.reply(session, "a funny 90s comedy")
    assistant.feedback(session, reply.items[0].item.item_id, liked=False)

Feedback is stored durably first, then applied at once: a like joins the user's history and pulls
their profile vector towards the item; a dislike excludes the item for that user for good and
pushes the profile away. Items already shown in a session do not come back.
"""
from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np

from assistant.dialogue import ConversationState, Turn, interpret
from assistant.diversity import cap_per_group, franchise_key, mmr_order
from assistant.recommender import Recommendation, Recommender, UnknownUser
from assistant.request_parser import InvalidQuery, Request
from data.catalogue import Interaction, Item
from data.feedback import DISLIKE, LIKE, FeedbackEvent, FeedbackStore

LIKE_RATING = 5.0  # how a thumbs-up enters history and profile
LIKE_THRESHOLD = 4.0  # data set ratings at or above count as liked
DISLIKE_RATING = 1.0
NEW_USER_PREFIX = "new_"

HELP = ("Tell me what you feel like watching, for example *a funny 90s comedy*, *scary movies from the 80s "
        "but nothing too gory*, or *more like Alien*. You can refine: *older ones*, *less violent*, *more like "
        "the second one*, *not that one*, *something else*. New here? Say *I loved Heat and Ronin*.")


class UnknownItem(LookupError):
    pass


@dataclass
class Session:
    session_id: str
    user_id: str
    is_new_user: bool
    state: ConversationState = field(default_factory=ConversationState)
    shown: list[str] = field(default_factory=list)  # every item shown in this session, in order
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


@dataclass
class Reply:
    kind: str  # recommendations | cold_start | missing | off_topic | greeting | reset | error
    text: str
    items: list[Recommendation] = field(default_factory=list)
    request: Request | None = None
    timings_ms: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        out = {"kind": self.kind, "text": self.text, "items": [r.to_json() for r in self.items],
               "returned": len(self.items), "timings_ms": self.timings_ms}
        if self.request is not None:
            out["constraints"] = self.request.constraints.describe()
            out["references"] = list(self.request.reference_labels)
        return out


@dataclass(frozen=True)
class FeedbackAck:
    event_id: str
    stored: bool  # False when this event_id had been stored before (a double click counts once)
    message: str


class Assistant:
    def __init__(self, recommender: Recommender, feedback: FeedbackStore, default_k: int = 10,
                 diversity: float = 0.3, dislike_penalty: float = 0.5, adapter_version: str | None = None,
                 per_franchise: int | None = 2):
        self.recommender = recommender
        self.store = feedback
        self.dataset = recommender.dataset.name
        self.default_k = default_k
        self.diversity = diversity
        self.dislike_penalty = dislike_penalty
        self.per_franchise = per_franchise  # at most this many items of one franchise (sequels) per list
        self.adapter_version = adapter_version
        self._known_users: set[str] | None = None
        self._forgotten: set[str] = set()  # erased in this process: other open sessions may not write for them
        self.writer = None  # an explanation writer (language model); None: the template explanations stand
        self.lm = None  # a ServingReranker (assistant.lm_serving); None: retrieval order
        self.turn_log = None  # a TurnLog (assistant.turn_log); None: turns are not logged

    def explain_stream(self, session: Session, reply: Reply) -> Iterator[tuple[int, str]]:
        """Better explanations for `reply.items`, (index, text) one at a time, for after the cards are shown.
        Yields nothing without a writer; each text has passed verification (else it is the template)."""
        if self.writer is None or not reply.items:
            return
        history = self.history(session)
        yield from self.writer.write(reply, history)

    # ---- users and sessions ---------------------------------------------------------------------
    def known_users(self) -> set[str]:
        if self._known_users is None:
            self._known_users = set(self.recommender.dataset.user_ids())
        return self._known_users

    def new_session(self, user_id: str | None = None) -> Session:
        if user_id is None or not str(user_id).strip():
            return Session(uuid.uuid4().hex, NEW_USER_PREFIX + uuid.uuid4().hex[:12], is_new_user=True)
        user_id = str(user_id).strip()
        if user_id not in self.known_users() and not (user_id.startswith(NEW_USER_PREFIX)
                                                       and self.store.events(self.dataset, user_id)):
            raise UnknownUser(f"unknown user {user_id!r} in data set {self.dataset!r}; leave the user empty "
                              f"to start as a new user")
        return Session(uuid.uuid4().hex, user_id, is_new_user=user_id not in self.known_users())

    def feedback_state(self, user_id: str) -> tuple[list[Interaction], set[str]]:
        """(liked interactions in order, disliked item ids) from the stored events; the last word on an
        item wins, so a like after a dislike lifts the exclusion."""
        last: dict[str, tuple[str, float]] = {}
        for event in self.store.events(self.dataset, user_id):
            last.pop(event.item_id, None)
            last[event.item_id] = (event.value, event.timestamp)
        liked = [Interaction(user_id, i, LIKE_RATING, int(t)) for i, (v, t) in last.items() if v == LIKE]
        disliked = {i for i, (v, _) in last.items() if v == DISLIKE}
        return liked, disliked

    def history(self, session: Session) -> list[Interaction]:
        """Everything the user has rated: the data set's history plus their thumbs-up."""
        base = [] if session.is_new_user else self.recommender.dataset.user_history(session.user_id)
        liked, _ = self.feedback_state(session.user_id)
        seen = {x.item_id for x in base}
        return base + [x for x in liked if x.item_id not in seen]

    def forget(self, session: Session, home):
        """Erase everything held about this session's user (see assistant.forget); the session is emptied."""
        from assistant.forget import forget_user

        with session.lock:
            report = forget_user(home, self.dataset, session.user_id, self.store, self.recommender.profiles)
            session.state = ConversationState()
            session.shown.clear()
        self._forgotten.add(session.user_id)
        self._known_users = None
        return report

    # ---- one turn -------------------------------------------------------------------------------
    def reply(self, session: Session, text: str, k: int | None = None) -> Reply:
        k = self.default_k if k is None else k
        started = time.perf_counter()
        with session.lock:
            reply = self._reply(session, text, k)
        if self.turn_log is not None:
            self.turn_log.write(session, text, reply, (time.perf_counter() - started) * 1000)
        return reply

    def _reply(self, session: Session, text: str, k: int) -> Reply:
        try:
            turn = interpret(text, session.state, self.recommender.parser)
        except InvalidQuery as err:
            return Reply("error", str(err)[0].upper() + str(err)[1:] + ".")
        if turn.kind == "greeting":
            return Reply("greeting", "Hi! " + HELP)
        if turn.kind == "off_topic":
            return Reply("off_topic", "I can only help you find films from this catalogue. " + HELP)
        if turn.kind == "reset":
            session.state = ConversationState(shown_titles=session.state.shown_titles)
            return Reply("reset", "Starting over: all constraints cleared. What would you like to watch?")
        return self._recommend(session, turn, k)

    def _recommend(self, session: Session, turn: Turn, k: int) -> Reply:
        started = time.perf_counter()
        preface = []
        if turn.kind == "cold_start":
            for entry in turn.liked:
                self._record(session, entry.item_id, LIKE, {"source": "stated in chat"})
            labels = [e.title if e.year is None else f"{e.title} ({e.year})" for e in turn.liked]
            preface.append("Noted that you like " + _join(labels) + ".")
        for item_id in turn.rejected:
            self._record(session, item_id, DISLIKE, {"source": "rejected in chat",
                                                     "query": session.state.query_text})
            preface.append(f"Dropped {self.recommender.items[item_id].label}; it will not come back.")
        request = turn.request
        if request.unresolved_references and not request.references and not request.about \
                and request.constraints.is_empty():
            # "like Inception" with Inception missing: say so, never answer with an unrelated list
            text = " ".join(preface + [_sentence(n) for n in request.notes]
                            + ["Name another film, or tell me what you are in the mood for."])
            return Reply("missing", text, [], request)
        history = self.history(session)
        _, disliked = self.feedback_state(session.user_id)
        result = self.recommender.recommend_request(
            request, history, session.user_id, k, exclude=set(session.shown) | disliked,
            rerank=self._reranker(disliked, history), pool=max(3 * k, 30))
        self._remember(session, turn, result.items)
        text = " ".join(preface + [self._describe(request, len(result.items), k)])
        timings = {**result.timings_ms, "turn_ms": round((time.perf_counter() - started) * 1000, 2)}
        return Reply("cold_start" if turn.kind == "cold_start" else "recommendations", text, result.items,
                     request, timings)

    def lm_order(self, request: Request, chosen: list[tuple[Item, float]], history: list[Interaction]
                  ) -> list[tuple[Item, float]]:
        """The serving LoRA reranker over the top candidates, fused with their retrieval positions by the
        weight fitted on held-out users (positions: all a feedback list stores of the order it was shown
        in, so refreshed adapters serve on the feature they were trained and fitted on); unchanged when
        no adapter serves or retrieval order stands."""
        from assistant.feedback_training import position_scores
        from assistant.lm_serving import MAX_RERANKED
        from finetune.scorer import item_text

        items = self.recommender.items
        liked = [items[x.item_id] for x in history if x.rating >= LIKE_THRESHOLD and x.item_id in items][-8:]
        top = chosen[:MAX_RERANKED]
        fused = self.lm.scores([item_text(i.title, i.year, i.genres) for i in liked],
                               [item_text(i.title, i.year, i.genres) for i, _ in top],
                               position_scores(len(top)), request.text)
        if fused is None:
            return chosen
        order = sorted(range(len(top)), key=lambda n: -fused[n])
        reordered = [top[n][0] for n in order] + [item for item, _ in chosen[MAX_RERANKED:]]
        return [(item, 1.0 - rank / len(reordered)) for rank, item in enumerate(reordered)]

    def _reranker(self, disliked: set[str], history: list[Interaction]):
        def rerank(request: Request, chosen: list[tuple[Item, float]], k: int) -> list[tuple[Item, float]]:
            if len(chosen) <= 1:
                return chosen
            if self.lm is not None:
                chosen = self.lm_order(request, chosen, history)
            ids = [item.item_id for item, _ in chosen]
            vectors = self.recommender.similarity_vectors(ids + sorted(disliked))
            if any(i not in vectors for i in ids):
                return chosen[:k]
            matrix = np.stack([vectors[i] for i in ids])
            relevance = np.array([score for _, score in chosen], dtype=np.float64)
            relevance = (relevance - relevance.min()) / max(np.ptp(relevance), 1e-12)
            disliked_vectors = [vectors[i] for i in disliked if i in vectors]
            if disliked_vectors and self.dislike_penalty:
                closeness = (matrix @ np.stack(disliked_vectors).T).max(axis=1)
                relevance = relevance - self.dislike_penalty * np.clip(closeness, 0.0, None)
            order = mmr_order(relevance, matrix, self.diversity, len(chosen))
            order = cap_per_group(order, [franchise_key(item.title) for item, _ in chosen], self.per_franchise, k)
            return [chosen[n] for n in order]

        return rerank

    def _remember(self, session: Session, turn: Turn, items: list[Recommendation]) -> None:
        state = session.state
        request = turn.request
        state.query_text = request.text
        state.about = request.about
        state.constraints = request.constraints
        state.references = request.references
        state.reference_labels = request.reference_labels
        state.last_items = tuple(r.item.item_id for r in items)
        state.last_years = tuple(r.item.year for r in items)
        state.shown_titles.update({r.item.item_id: r.item.title for r in items})
        state.turns += 1
        session.shown.extend(r.item.item_id for r in items if r.item.item_id not in session.shown)

    @staticmethod
    def _describe(request: Request, returned: int, k: int) -> str:
        parts = []
        if not request.constraints.is_empty():
            parts.append(f"Looking for: {request.constraints.describe()}.")
        if request.reference_labels:
            parts.append("In the vein of " + _join(list(request.reference_labels)) + ".")
        parts.extend(_sentence(note) for note in request.notes)
        if returned == 0:
            parts.append("Nothing left in the catalogue matches all of that. Try loosening a constraint, or say "
                         "'start over'.")
        elif returned < k:
            parts.append(f"Only {returned} titles match every constraint.")
        else:
            parts.append(f"Here are {returned} picks.")
        return " ".join(parts)

    # ---- feedback -------------------------------------------------------------------------------
    def feedback(self, session: Session, item_id: str, liked: bool, event_id: str | None = None,
                 rating: float | None = None, comment: str | None = None) -> FeedbackAck:
        """Store one thumbs up/down durably, then apply it to this user at once."""
        if item_id not in self.recommender.items:
            raise UnknownItem(f"unknown item {item_id!r} in data set {self.dataset!r}")
        with session.lock:
            position = (session.state.last_items.index(item_id) + 1
                        if item_id in session.state.last_items else None)
            context = {"query": session.state.query_text, "shown": list(session.state.last_items),
                       "position": position}
            stored = self._record(session, item_id, LIKE if liked else DISLIKE, context, event_id, rating, comment)
        label = self.recommender.items[item_id].label
        if not stored[1]:
            return FeedbackAck(stored[0], False, f"Already noted for {label}.")
        return FeedbackAck(stored[0], True, (f"Noted: you like {label}." if liked else
                                             f"Noted: {label} will not be recommended to you again."))

    def _record(self, session: Session, item_id: str, value: str, context: dict, event_id: str | None = None,
                rating: float | None = None, comment: str | None = None) -> tuple[str, bool]:
        if session.user_id in self._forgotten:
            raise UnknownUser(f"user {session.user_id!r} was forgotten; start a new conversation")
        adapter = self.lm.version() if self.lm is not None else self.adapter_version
        event = FeedbackEvent(self.dataset, session.user_id, session.session_id, item_id, value, context,
                              rating, comment, adapter,
                              **({"event_id": event_id} if event_id else {}))
        stored = self.store.record(event)  # durable before anything else changes
        if stored:
            vector = self.recommender.item_vectors([item_id]).get(item_id)
            if vector is not None:
                self.recommender.profiles.record_event(
                    session.user_id, vector, LIKE_RATING if value == LIKE else DISLIKE_RATING,
                    int(event.timestamp), on_profile_clock=True)
        return event.event_id, stored


def _sentence(note: str) -> str:
    note = note[0].upper() + note[1:]
    return note if note.endswith(("?", "!", ".")) else note + "."


def _join(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
