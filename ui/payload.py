"""One single-turn request on a fresh session, and its JSON form: shared by `recsys recommend`
(one request or a --batch file) and the chat app's public `recommend` endpoint, so that both give
the same items for the same single-turn request and user."""
from __future__ import annotations

import time


def timed_reply(assistant, session, text: str, k: int | None):
    """(reply, wall-clock ms of the whole turn)."""
    started = time.perf_counter()
    reply = assistant.reply(session, text, k)
    return reply, round((time.perf_counter() - started) * 1000, 2)


def one_shot(assistant, text: str, user_id: str | None, k: int | None):
    """A fresh session for `user_id` (None: a new user), one turn. Raises UnknownUser."""
    session = assistant.new_session(user_id)
    reply, wall_ms = timed_reply(assistant, session, text, k)
    return session, reply, wall_ms


def reply_json(reply, requested: int, wall_ms: float | None = None) -> dict:
    """items (item_id, title, year, genres, score, explanation), constraints, requested, returned,
    message, timings_ms (parse_ms, embed_ms, retrieve_ms, ..., total_ms), kind."""
    timings = dict(reply.timings_ms)
    if wall_ms is not None:
        inner = timings.get("turn_ms", timings.get("total_ms", 0.0))
        timings.setdefault("parse_ms", round(max(0.0, wall_ms - inner), 2))  # interpreting the message
        timings["total_ms"] = wall_ms
    return {"kind": reply.kind, "items": [r.to_json() for r in reply.items],
            "constraints": reply.request.constraints.describe() if reply.request is not None else "",
            "requested": requested, "returned": len(reply.items), "message": reply.text, "timings_ms": timings}
