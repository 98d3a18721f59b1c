"""What one browser tab holds between events (kept in a gr.State, so tabs never share it)."""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field

LIKE, DISLIKE = "like", "dislike"


class ClickTokens:
    """Server-made event ids for feedback clicks. Clicking the same thumb on the same target again
    (a double click, a retried request) reuses its id, so the store counts it once; clicking the
    other thumb gets a fresh id and rotates this one, so a change of mind is always stored."""

    def __init__(self):
        self._ids: dict[tuple, str] = {}

    def event_id(self, target: tuple, value: str) -> str:
        return self._ids.setdefault((target, value), uuid.uuid4().hex)

    def landed(self, target: tuple, value: str) -> None:
        for other in (LIKE, DISLIKE):
            if other != value:
                self._ids.pop((target, other), None)


@dataclass
class TabState:
    session: object | None = None  # assistant.Session
    reply: object | None = None  # the Reply whose cards are on screen
    explanations: list[str] = field(default_factory=list)
    pending: bool = False  # better explanations are still being written
    marks: dict[str, str] = field(default_factory=dict)  # item_id -> like/dislike clicked in this tab
    messages: list[dict] = field(default_factory=list)  # the chat, in Gradio's messages format
    message_meta: dict[int, dict] = field(default_factory=dict)  # chat index -> query and items of a reply
    tokens: ClickTokens = field(default_factory=ClickTokens)
    notice: str = ""  # one status line (markdown, already escaped)

    def show(self, reply) -> None:
        self.reply = reply
        self.explanations = [r.explanation for r in reply.items]

    @property
    def items(self) -> list:
        return list(self.reply.items) if self.reply is not None else []
