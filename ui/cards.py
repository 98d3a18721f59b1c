"""Safe rendering of catalogue text: recommendation cards, the history panel, chat messages.

Every string that comes from item data (title, genres, description, explanation) may hold HTML,
markdown or script. HTML goes through `html.escape`; text shown in the chat, which renders
markdown, is also backslash-escaped so that `[x](javascript:...)`, `![](http://...)` or `**` in a
title stays literal text.
"""
from __future__ import annotations

import html
import re
import time
from typing import Iterable, Sequence

DESCRIPTION_CHARS = 180
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
_ABBREVIATION = re.compile(r"(?:^|[\s(])(?:[A-Z]|Mr|Mrs|Ms|Dr|St|Jr|Sr|vs|No|lit|transl|c|ca|approx|"
                           r"e\.g|i\.e|U\.S|Vol|Pt)\.$")


def escape(text) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def escape_markdown(text) -> str:
    """Text that renders literally in a markdown + HTML renderer (the Chatbot)."""
    plain = "" if text is None else str(text)
    return html.escape(_MARKDOWN_SPECIALS.sub(r"\\\1", plain), quote=False)


def assistant_markdown(text: str) -> str:
    """The assistant's own reply text: escaped like catalogue text (it quotes titles), but its
    *emphasis* around examples stays emphasis."""
    escaped = escape_markdown(text)
    return re.sub(r"\\\*([^*\\\n]{1,80}?)\\\*", r"*\1*", escaped)


def short_description(text: str | None, limit: int = DESCRIPTION_CHARS) -> str:
    """The first sentence, cut at a word boundary to at most `limit` characters (plain text)."""
    text = " ".join((text or "").split())
    if not text:
        return ""
    first = text
    for match in _SENTENCE_END.finditer(text):
        head = text[:match.start()]
        if _ABBREVIATION.search(head) or head.count("(") > head.count(")"):
            continue  # "R. Lee Ermey", "(Italian: ..., transl. Once upon a time ...)" do not end a sentence
        first = head
        break
    if len(first) <= limit:
        return first
    cut = first[:limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + "…"


def _label(item) -> str:
    return item.title if item.year is None else f"{item.title} ({item.year})"


def card_html(rank: int, rec, explanation: str | None = None, mark: str | None = None,
              pending: bool = False) -> str:
    """One recommendation card. `mark` is 'like' / 'dislike' after a thumb; `pending` says a
    better explanation is still being written."""
    item = rec.item
    explanation = rec.explanation if explanation is None else explanation
    genres = "".join(f'<span class="rec-genre">{escape(g)}</span>' for g in item.genres)
    description = short_description(item.description)
    source = (item.extra or {}).get("description_source") if isinstance(item.extra, dict) else None
    desc_html = (f'<p class="rec-desc">{escape(description)}'
                 + (f' <span class="rec-source">({escape(source)})</span>' if source else "") + "</p>"
                 if description else "")
    badge = {"like": '<span class="rec-mark rec-liked">👍 liked</span>',
             "dislike": '<span class="rec-mark rec-disliked">👎 not for me</span>'}.get(mark or "", "")
    year = f' <span class="rec-year">({escape(item.year)})</span>' if item.year is not None else ""
    writing = ' <span class="rec-muted">(refining…)</span>' if pending else ""
    return (f'<div class="rec-card{" rec-card-disliked" if mark == "dislike" else ""}" '
            f'data-item-id="{escape(item.item_id)}" data-rank="{rank}">'
            f'<div class="rec-head"><span class="rec-rank">{rank}.</span> '
            f'<span class="rec-title">{escape(item.title)}</span>{year}{badge}</div>'
            f'<div class="rec-genres">{genres}</div>{desc_html}'
            f'<p class="rec-why"><span class="rec-why-label">Why:</span> '
            f'<span class="rec-explanation">{escape(explanation)}</span>{writing}</p></div>')


def reply_markdown(text: str, items: Sequence = ()) -> str:
    """The chat message of one reply: the assistant's words and the numbered titles (escaped)."""
    lines = [assistant_markdown(text)]
    if items:
        lines.append("")
        for rank, rec in enumerate(items, start=1):
            genres = ", ".join(rec.item.genres)
            lines.append(f"{rank}\\. **{escape_markdown(_label(rec.item))}** — {escape_markdown(genres)}")
    return "\n".join(lines)


def history_html(user_label: str, entries: Iterable, items: dict, liked_here: set[str], disliked: set[str],
                 limit: int = 15) -> str:
    """The "my history" panel: the newest `limit` entries (data set ratings and thumbs-up)."""
    entries = list(entries)
    ratings = sum(1 for x in entries if x.item_id not in liked_here)
    head = (f'<div class="rec-history"><p><b>{escape(user_label)}</b>: {ratings} rating'
            f'{"" if ratings == 1 else "s"} in the data set, {len(liked_here)} 👍, {len(disliked)} 👎 here.</p>')
    if not entries:
        return head + '<p class="rec-muted">No history yet. Rate a recommendation, or say "I loved Heat and ' \
                      'Ronin".</p></div>'
    rows = []
    for x in sorted(entries, key=lambda e: e.timestamp, reverse=True)[:limit]:
        item = items.get(x.item_id)
        label = _label(item) if item is not None else x.item_id
        when = time.strftime("%Y-%m-%d", time.gmtime(x.timestamp)) if x.timestamp else ""
        how = ("👍" if x.item_id in liked_here else
               "★" * int(round(x.rating)) + "☆" * max(0, 5 - int(round(x.rating))))
        tip = ("liked here" if x.item_id in liked_here else f"rated {x.rating:g}/5") + (f" on {when}" if when else "")
        rows.append(f'<li title="{escape(tip)}"><span class="rec-how">{how}</span>'
                    f'<span class="rec-hist-title">{escape(label)}</span></li>')
    more = len(entries) - len(rows)
    tail = f'<p class="rec-muted">… and {more} older.</p>' if more > 0 else ""
    return head + '<ul class="rec-history-list">' + "".join(rows) + "</ul>" + tail + "</div>"


CSS = """
.rec-card { border: 1px solid var(--border-color-primary); border-radius: 10px; padding: 10px 14px;
            background: var(--background-fill-secondary); }
.rec-card-disliked { opacity: 0.55; }
.rec-head { font-size: 1.05em; margin-bottom: 4px; }
.rec-rank { color: var(--body-text-color-subdued); }
.rec-title { font-weight: 700; }
.rec-year { color: var(--body-text-color-subdued); }
.rec-genre { display: inline-block; font-size: 0.8em; padding: 1px 8px; margin: 0 4px 4px 0; border-radius: 999px;
             background: var(--color-accent-soft); }
.rec-desc { margin: 4px 0; font-size: 0.92em; }
.rec-source, .rec-muted { color: var(--body-text-color-subdued); font-size: 0.85em; }
.rec-why { margin: 4px 0 0 0; font-size: 0.95em; }
.rec-why-label { font-weight: 600; }
.rec-mark { margin-left: 8px; font-size: 0.85em; padding: 1px 8px; border-radius: 999px; }
.rec-liked { background: #d6f5d6; color: #145214; }
.rec-disliked { background: #f8d7d7; color: #7a1616; }
.rec-history-list { list-style: none; padding-left: 0; margin: 0; }
.rec-history-list li { margin: 2px 0; display: flex; gap: 6px; font-size: 0.92em; }
.rec-how { flex: 0 0 5.2em; color: #b8860b; white-space: nowrap; }
.rec-hist-title { flex: 1 1 auto; }
#cards { gap: 8px; }
.card-row { align-items: stretch; gap: 8px; }
.thumbs { min-width: 64px !important; max-width: 72px; gap: 6px; justify-content: center; }
.thumbs button { min-width: 0 !important; font-size: 1.1em; }
"""
