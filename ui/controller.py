"""What the chat app does on each event, free of Gradio: it takes and returns a TabState.

One controller serves every tab; everything per tab lives in the TabState (a gr.State), so two
tabs hold two separate assistant sessions.
"""
from __future__ import annotations

import re
from typing import Iterator

from assistant.assistant import Reply, UnknownItem
from assistant.recommender import InvalidRequest, UnknownUser
from data.feedback import DISLIKE, LIKE, InvalidFeedback, MessageFeedback
from ui.cards import escape_markdown, history_html, reply_markdown
from ui.payload import reply_json, timed_reply
from ui.session import TabState

NEW_USER = "new user"
USER_CHOICES = 200
HISTORY_ROWS = 15
_TRAILING_NUMBER = re.compile(r"(\d+)$")


def _user_order(user_id: str):
    match = _TRAILING_NUMBER.search(user_id)
    return (0, int(match.group(1)), user_id) if match else (1, 0, user_id)


class ChatController:
    def __init__(self, assistant, max_cards: int = 10, home=None):
        self.assistant = assistant
        self.max_cards = max_cards
        self.home = home  # a RuntimeHome: needed by `forget` (the data set and the forgotten-users list live there)

    # ---- users and sessions ---------------------------------------------------------------------
    def user_choices(self, limit: int = USER_CHOICES) -> list[str]:
        return [NEW_USER] + sorted(self.assistant.known_users(), key=_user_order)[:limit]

    def start(self, state: TabState | None, choice: str | None) -> TabState:
        """A new session (and an empty chat) for a data set user, or for a new user."""
        wanted = (choice or "").strip()
        fresh = TabState()
        try:
            fresh.session = self.assistant.new_session(None if wanted in ("", NEW_USER) else wanted)
        except UnknownUser as err:
            fresh.session = self.assistant.new_session(None)
            fresh.notice = f"⚠️ {escape_markdown(err)}. Started as a new user instead."
            return fresh
        who = ("a new user" if fresh.session.is_new_user and wanted in ("", NEW_USER)
               else f"user {fresh.session.user_id}")
        fresh.notice = escape_markdown(f"New conversation as {who}.")
        return fresh

    def ensure(self, state: TabState | None) -> TabState:
        return state if state is not None and state.session is not None else self.start(None, None)

    def user_label(self, state: TabState) -> str:
        session = state.session
        return f"New user ({session.user_id})" if session.is_new_user else f"User {session.user_id}"

    def history_panel(self, state: TabState | None) -> str:
        state = self.ensure(state)
        liked, disliked = self.assistant.feedback_state(state.session.user_id)
        return history_html(self.user_label(state), self.assistant.history(state.session),
                            self.assistant.recommender.items, {x.item_id for x in liked}, disliked, HISTORY_ROWS)

    # ---- one chat turn, streamed ----------------------------------------------------------------
    def turn(self, state: TabState | None, text: str, k: int | None = None) -> Iterator[TabState]:
        """Yields the echoed message, then the reply with its cards (template explanations). Better
        explanations come from `explain`, a separate event, so writing them holds up no other turn."""
        state = self.ensure(state)
        text = (text or "").strip()
        if not text:
            state.notice = "Type what you would like to watch."
            yield state
            return
        k = max(1, min(int(k or self.assistant.default_k), self.max_cards))
        state.messages = state.messages + [{"role": "user", "content": escape_markdown(text)},
                                           {"role": "assistant", "content": "…"}]
        state.notice = ""
        yield state
        try:
            reply = self.assistant.reply(state.session, text, k)
        except (InvalidRequest, UnknownUser) as err:
            reply = Reply("error", str(err)[:1].upper() + str(err)[1:] + ".")
        index = len(state.messages) - 1
        state.messages = state.messages[:-1] + [{"role": "assistant",
                                                 "content": reply_markdown(reply.text, reply.items)}]
        state.message_meta[index] = {"kind": reply.kind, "query": text,
                                     "items": [r.item.item_id for r in reply.items]}
        if reply.kind in ("recommendations", "cold_start"):
            state.show(reply)
            state.pending = bool(reply.items) and getattr(self.assistant, "writer", None) is not None
        yield state

    def explain(self, state: TabState | None) -> Iterator[TabState]:
        """Better explanations for the cards on screen, one at a time; stops as soon as a newer
        reply replaces those cards."""
        if state is None or state.reply is None or not state.pending:
            return
        reply = state.reply
        try:
            for position, better in self.assistant.explain_stream(state.session, reply):
                if state.reply is not reply:
                    return
                if 0 <= position < len(state.explanations):
                    state.explanations[position] = better
                    yield state
        finally:
            if state.reply is reply:
                state.pending = False
        if state.reply is reply:
            yield state

    # ---- feedback -------------------------------------------------------------------------------
    def item_feedback(self, state: TabState | None, slot: int, liked: bool) -> TabState:
        state = self.ensure(state)
        items = state.items
        if not 0 <= slot < len(items):
            state.notice = "That card is gone; ask again."
            return state
        item_id = items[slot].item.item_id
        ack = self._item_feedback(state, item_id, liked, None)
        state.notice = escape_markdown(ack.message)
        return state

    def _item_feedback(self, state: TabState, item_id: str, liked: bool, event_id: str | None):
        value = LIKE if liked else DISLIKE
        target = (state.session.session_id, item_id)
        event_id = event_id or state.tokens.event_id(target, value)
        ack = self.assistant.feedback(state.session, item_id, liked, event_id=event_id)
        state.tokens.landed(target, value)
        state.marks[item_id] = value
        return ack

    def message_feedback(self, state: TabState | None, index, liked) -> TabState:
        state = self.ensure(state)
        if isinstance(index, (list, tuple)):
            index = index[0]
        if liked not in (True, False):  # the thumb was clicked off again: nothing to store
            state.notice = "Feedback on that message cleared."
            return state
        if not isinstance(index, int) or not 0 <= index < len(state.messages):
            state.notice = "That message is gone."
            return state
        value = LIKE if liked else DISLIKE
        target = (state.session.session_id, f"message:{index}")
        message = state.messages[index]["content"]
        event = MessageFeedback(self.assistant.dataset, state.session.user_id, state.session.session_id, index,
                                message if isinstance(message, str) else str(message), value,
                                state.message_meta.get(index, {}), event_id=state.tokens.event_id(target, value))
        self.assistant.store.record_message_feedback(event)
        state.tokens.landed(target, value)
        state.notice = "Thanks: noted that this answer was " + ("helpful." if liked else "not helpful.")
        return state

    # ---- privacy --------------------------------------------------------------------------------
    def forget(self, state: TabState | None) -> TabState:
        """Erase everything held about this tab's user (Assistant.forget: history, feedback events,
        profile vector, session state), then start a new conversation as a new user; the notice says
        what was removed."""
        if self.home is None:
            state = self.ensure(state)
            state.notice = "Forgetting is not available here (no runtime home)."
            return state
        if state is None or state.session is None:
            fresh = self.start(None, NEW_USER)
            fresh.notice = "Nothing to forget yet: this is a new conversation."
            return fresh
        report = self.assistant.forget(state.session, self.home)
        state.reply, state.pending = None, False  # an explanation stream still running for this tab stops
        fresh = self.start(None, NEW_USER)
        fresh.notice = escape_markdown(
            f"Forgotten: {report.interactions} data set ratings, {report.feedback_events} feedback events "
            f"and {'the' if report.profile else 'no'} profile vector of user {report.user_id} were removed, "
            f"with this conversation. A new conversation started as a new user.")
        return fresh

    # ---- the public API -------------------------------------------------------------------------
    def api_recommend(self, state: TabState | None, text: str, user: str | None, k) -> tuple[dict, TabState]:
        """One turn as JSON. The session continues while the user stays the same (multi-turn)."""
        wanted = (user or "").strip()
        wanted = None if wanted in ("", NEW_USER) else wanted
        current = state.session if state is not None else None
        if current is None or (wanted is not None and current.user_id != wanted) or (
                wanted is None and not current.is_new_user):
            try:
                state = TabState(session=self.assistant.new_session(wanted))
            except UnknownUser as err:
                return {"error": str(err), "items": []}, state
        k = int(k) if k not in (None, "") else self.assistant.default_k
        try:
            reply, wall_ms = timed_reply(self.assistant, state.session, text or "", k)
        except (InvalidRequest, UnknownUser) as err:
            return {"error": str(err), "items": []}, state
        if reply.kind in ("recommendations", "cold_start"):
            state.show(reply)
        out = reply_json(reply, k, wall_ms)
        out.update(user_id=state.session.user_id, session_id=state.session.session_id)
        if reply.kind == "error":
            out["error"] = reply.text
        return out, state

    def api_feedback(self, state: TabState | None, item_id: str, liked: bool,
                     event_id: str | None = None) -> tuple[dict, TabState]:
        if state is None or state.session is None:
            return {"error": "no session yet: call /recommend first"}, state
        try:
            ack = self._item_feedback(state, str(item_id or ""), bool(liked), (event_id or "").strip() or None)
        except (UnknownItem, InvalidFeedback) as err:
            return {"error": str(err)}, state
        return {"event_id": ack.event_id, "stored": ack.stored, "message": ack.message,
                "user_id": state.session.user_id}, state
