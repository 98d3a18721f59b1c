"""Reading one chat message in the context of the conversation so far.

The request parser turns a message into hard constraints. This module adds what only makes
sense in a conversation: references to earlier results by position or title ("more like the
second one", "not that one"), relative refinements ("older ones", "less violent", "something
else"), resets, statements of taste from a new user ("I loved Heat and Ronin"), and off-topic
messages. It is pure: the session's state goes in, a `Turn` describing what to do comes out.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import numpy as np

from assistant.request_parser import Request, RequestParser, TitleEntry, content_words
from data.summaries import match_key
from retrieval.filters import Constraints

ORDINALS = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
            "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "7th": 7, "eighth": 8, "8th": 8,
            "ninth": 9, "9th": 9, "tenth": 10, "10th": 10, "last": -1}
_ORDINAL = "|".join(sorted(ORDINALS, key=len, reverse=True))
_POSITION = re.compile(rf"\b(?:the\s+)?(?P<ord>{_ORDINAL})(?:\s+(?:one|film|movie|pick|suggestion|title|item))?\b"
                       r"|(?:\bnumber|\bno\.|#)\s*(?P<num>\d{1,2})\b", re.IGNORECASE)
_THAT_ONE = re.compile(r"\b(?:that|this)\s+(?:one|film|movie)\b|\b(?:that|this|it)\s*$", re.IGNORECASE)
_SIMILAR_CUE = re.compile(r"\b(?:more like|similar to|something like|like|another like|same as|in the vein of)"
                          r"\s*$", re.IGNORECASE)
_REJECT_CUE = re.compile(r"\b(?:not|no|never|drop|remove|skip|hide|exclude|hate|dislike|don'?t like|"
                         r"didn'?t like|do not like|seen|watched|saw|without)\b(?:\s+\w+){0,2}\s*$", re.IGNORECASE)
_RESET = re.compile(r"\b(?:start over|start again|new search|reset|from scratch|forget (?:that|it|all that|"
                    r"everything(?: i said)?|what i said))\b", re.IGNORECASE)
_SOMETHING_ELSE = re.compile(r"\b(?:something else|anything else|other ones|others|more please|show me more|"
                             r"more options|different ones|other suggestions|next ones|more of (?:those|these|them)|"
                             r"give me more|some more)\b|^\s*(?:more|next|another|again)\W*$", re.IGNORECASE)
_OLDER = re.compile(r"\b(?:older|earlier|less recent|more classic|classics)\b", re.IGNORECASE)
_NEWER = re.compile(r"\b(?:newer|more recent|later ones|more modern|less old|recent ones)\b", re.IGNORECASE)
# Moods the catalogue has no field for, expressed through its genres.
MOOD_GENRES = {
    "violent": ("horror", "war", "crime"),
    "gory": ("horror",),
    "bloody": ("horror", "war"),
    "dark": ("horror", "film_noir", "war", "crime", "thriller"),
    "grim": ("war", "crime", "film_noir"),
    "intense": ("horror", "thriller", "war"),
    "depressing": ("war", "drama"),
    "sad": ("drama", "war"),
    "serious": ("drama", "war", "documentary"),
    "heavy": ("drama", "war"),
    "childish": ("children", "animation"),
    "silly": ("comedy", "children"),
    "romantic": ("romance",),
    "sappy": ("romance",),
    "cheesy": ("musical", "romance"),
}
_LESS_MOOD = re.compile(rf"\b(?:less|not so|not as|not too|nothing too|nothing|fewer|no)\s+(?P<mood>{'|'.join(MOOD_GENRES)})\b",
                        re.IGNORECASE)
_LIGHTER = re.compile(r"\b(?:lighter|light-hearted|lighthearted|feel-good|feel good|cheerful|happier)\b", re.IGNORECASE)
_LESS_GENRE = re.compile(r"\bless\s+(?!than\b)(?P<word>[\w'-]+(?:\s+fiction)?)", re.IGNORECASE)
_FUNNIER = re.compile(r"\b(?:funnier|more funny|more comedy|more humou?r)\b", re.IGNORECASE)
_SCARIER = re.compile(r"\b(?:scarier|more scary|creepier)\b", re.IGNORECASE)

_LIKES = re.compile(r"^\s*(?:(?:i|we)\s+(?:really\s+|just\s+|absolutely\s+|totally\s+)?"
                    r"(?:loved|love|liked|like|enjoyed|enjoy|adore|adored|am a fan of|was a fan of)|"
                    r"my\s+favou?rites?\s+(?:are|is|include|were|was)|"
                    r"(?:i'?m|i am)\s+(?:a\s+)?(?:big\s+)?fan\s+of)\s+(?P<titles>.+)$", re.IGNORECASE)
_TITLE_SPLIT = re.compile(r"\s*(?:,|;|\band\b|&|\bor\b|\bplus\b|\bas well as\b)\s*", re.IGNORECASE)
_TITLE_TAIL = re.compile(r"\s+(?:a lot|so much|very much|too|as well|the most|movies?|films?)\s*[.!]*$", re.IGNORECASE)

MOVIE_CUES = re.compile(r"\b(?:movies?|films?|flicks?|cinema|watch|watching|recommend\w*|suggest\w*|something|"
                        r"anything|show me|see|pick|tonight|surprise|bored|classic|classics|blockbusters?|sequels?|"
                        r"plot|story|stories|actor|actress|director|starring|mood|genre|like|similar|"
                        r"ones?|more|less|older|newer|recent|funny|sad|dark|light|good|great|best)\b",
                        re.IGNORECASE)
# Off-topic: a question or task that names nothing a film catalogue can answer, or an attempt to instruct
# the assistant itself. Neither is run as a search.
NOT_A_SEARCH = re.compile(r"^\s*(?:what|who|when|where|why|how|which|is|are|can|could|would|will|do|does|did|"
                          r"should|write|translate|calculate|compute|solve|explain|define|tell me about|print|"
                          r"show me your|reveal|repeat|list your|summari[sz]e|code)\b"
                          r"|\b(?:ignore|disregard|forget) (?:all |any |the )?(?:previous|prior|above|earlier|your)\b"
                          r"|\b(?:system prompt|your instructions|your prompt|api key|password|config(?:uration)?)\b",
                          re.IGNORECASE)
GREETING = re.compile(r"^\s*(?:hi|hello|hey|hiya|howdy|good (?:morning|afternoon|evening)|thanks|thank you|"
                      r"cheers|ok|okay|cool|great|bye|goodbye)\b[\s!.?]*$", re.IGNORECASE)


@dataclass
class ConversationState:
    """What a turn needs to know about the conversation before it."""
    query_text: str = ""
    about: str = ""  # what the conversation's request is about (Request.about)
    constraints: Constraints = field(default_factory=Constraints)
    references: tuple[str, ...] = ()
    reference_labels: tuple[str, ...] = ()
    last_items: tuple[str, ...] = ()  # item ids of the previous reply, in order
    last_years: tuple[int | None, ...] = ()
    shown_titles: dict[str, str] = field(default_factory=dict)  # item id -> title, everything shown
    turns: int = 0


@dataclass
class Turn:
    kind: str  # request | refine | cold_start | reset | off_topic | greeting
    request: Request | None = None  # the effective request: this message merged with the conversation
    rejected: list[str] = field(default_factory=list)  # item ids the user turned down in words
    liked: list[TitleEntry] = field(default_factory=list)  # titles a new user said they love
    notes: list[str] = field(default_factory=list)
    substantive: bool = False  # the message brings its own topic (its text becomes the query)


def _position_item(match: re.Match, state: ConversationState) -> str | None:
    if not state.last_items:
        return None
    number = ORDINALS[match["ord"].lower()] if match["ord"] else int(match["num"])
    if number == -1:
        return state.last_items[-1]
    return state.last_items[number - 1] if 1 <= number <= len(state.last_items) else None


def _shown_title_mentions(text: str, state: ConversationState) -> list[tuple[int, str]]:
    """(position in text, item id) for every previously shown title the message names."""
    key = " " + match_key(text) + " "
    found = []
    for item_id, title in state.shown_titles.items():
        title_key = match_key(re.sub(r"\s*\(.*?\)\s*$", "", title))
        if len(title_key) >= 4 and f" {title_key} " in key:
            found.append((key.index(f" {title_key} "), item_id))
    return found


def references_to_shown(text: str, state: ConversationState) -> tuple[list[str], list[str], str]:
    """Items of earlier replies the message points at: (similar-to ids, rejected ids, text without them)."""
    similar, rejected = [], []
    rest = text
    for match in list(_POSITION.finditer(text)):
        item_id = _position_item(match, state)
        if item_id is None:
            continue
        before = text[: match.start()]
        if _SIMILAR_CUE.search(before):
            similar.append(item_id)
        elif _REJECT_CUE.search(before):
            rejected.append(item_id)
        else:
            continue
        rest = rest.replace(match.group(0), " ", 1)
    that = _THAT_ONE.search(text)
    if that and state.last_items and not similar and not rejected:
        before = text[: that.start()]
        if _SIMILAR_CUE.search(before):
            similar.append(state.last_items[0])
            rest = rest.replace(that.group(0), " ", 1)
        elif _REJECT_CUE.search(before):
            rejected.append(state.last_items[0])
            rest = rest.replace(that.group(0), " ", 1)
    for position, item_id in _shown_title_mentions(text, state):
        before = match_key(text)[:position]
        if re.search(r"\b(?:not|no|seen|watched|saw|hate|dislike|drop|remove|skip)\b(?:\s+\w+){0,2}\s*$", before):
            if item_id not in rejected:
                rejected.append(item_id)
    return similar, rejected, rest


def _rewrite_moods(text: str, genre_words: dict[str, tuple[str, ...]]) -> tuple[str, list[str]]:
    """'less violent' -> explicit negated genres the parser understands; returns (text, notes)."""
    notes = []

    def less_mood(match: re.Match) -> str:
        genres = MOOD_GENRES[match["mood"].lower()]
        notes.append(f"'{match.group(0)}' read as: no {', '.join(g.replace('_', ' ') for g in genres)}")
        return ", " + ", ".join(f"no {genre_words[g][0]}" for g in genres) + ","

    text = _LESS_MOOD.sub(less_mood, text)
    if _LIGHTER.search(text):
        genres = MOOD_GENRES["dark"]
        notes.append(f"'{_LIGHTER.search(text).group(0)}' read as: no {', '.join(g.replace('_', ' ') for g in genres)}")
        text = _LIGHTER.sub(", " + ", ".join(f"no {genre_words[g][0]}" for g in genres) + ",", text)
    text = _LESS_GENRE.sub(lambda m: f", no {m['word']}", text)
    text = _FUNNIER.sub(" comedy ", text)
    text = _SCARIER.sub(" horror ", text)
    return text, notes


def merge_constraints(previous: Constraints, new: Constraints) -> Constraints:
    """Constraints accumulate across turns; a new positive genre replaces the old positive genres and
    lifts its own exclusion, a new year bound replaces the old bounds (and lifts the year exclusions it
    overlaps), exclusions add up."""
    positive_new = new.genres_all | new.genres_any
    if positive_new:
        genres_all, genres_any = new.genres_all, new.genres_any
    else:
        genres_all, genres_any = previous.genres_all, previous.genres_any
    genres_none = (previous.genres_none - positive_new) | new.genres_none
    genres_all, genres_any = genres_all - new.genres_none, genres_any - new.genres_none
    if new.year_min is not None or new.year_max is not None:
        year_min, year_max = new.year_min, new.year_max
        # the new window lifts the exclusions it overlaps ("no 80s" then "ok, the 80s then")
        lo = year_min if year_min is not None else -10**9
        hi = year_max if year_max is not None else 10**9
        kept = {(a, b) for a, b in previous.years_none if b < lo or a > hi}
    else:
        year_min, year_max = previous.year_min, previous.year_max
        kept = set(previous.years_none)
    return Constraints(frozenset(genres_all), frozenset(genres_any), frozenset(genres_none), year_min, year_max,
                       frozenset(kept | new.years_none))


def parse_likes(text: str, parser: RequestParser) -> tuple[list[TitleEntry], list[str]]:
    """'I loved Heat and Ronin' -> (the catalogue entries named, the names not found); ([], []) when the
    message is not a statement of taste in titles ('I like scary movies' names no title)."""
    match = _LIKES.match(text)
    if not match:
        return [], []
    found: list[TitleEntry] = []
    missing: list[str] = []
    for chunk in re.split(r"\s*[,;]\s*", match["titles"]):
        chunk = _TITLE_TAIL.sub("", chunk.strip(" .!'\"")).strip()
        chunk = re.sub(r"^(?:and|&)\s+", "", chunk, flags=re.IGNORECASE)
        if not chunk:
            continue
        whole = _resolve_specific(chunk, parser)
        if whole is not None:
            found.append(whole)
            continue
        for part in _TITLE_SPLIT.split(chunk):
            part = part.strip(" .!'\"")
            entry = _resolve_specific(part, parser)
            if entry is not None:
                found.append(entry)
            elif part and not parser._is_generic(part) and parser.parse(part).constraints.is_empty():
                missing.append(part)
    if not found:
        return [], []
    return list({e.item_id: e for e in found}.values()), missing


def _resolve_specific(text: str, parser: RequestParser) -> TitleEntry | None:
    if not text or parser._is_generic(text) or len(match_key(text)) < 2:
        return None
    probe = parser.parse(text) if text.strip() else None
    if probe is not None and not probe.constraints.is_empty() and len(text.split()) <= 3:
        return None  # "horror", "80s comedies": a taste, not a title
    return parser.resolve_title(text)


def interpret(text: str, state: ConversationState, parser: RequestParser) -> Turn:
    """What this message asks for, given the conversation so far. Raises InvalidQuery on bad input."""
    request_now = parser.parse(text)  # validates (empty, too long) before anything else
    clean = request_now.text
    if GREETING.match(clean):
        return Turn("greeting")
    if _RESET.search(clean):
        rest = _RESET.sub(" ", clean).strip(" ,.;!-")
        if not rest or (not _content_words(rest) and parser.parse(rest).constraints.is_empty()):
            return Turn("reset")
        state = ConversationState(shown_titles=state.shown_titles)
        clean = rest
    liked, missing = parse_likes(clean, parser)
    if liked:
        labels = tuple(e.title if e.year is None else f"{e.title} ({e.year})" for e in liked)
        request = Request(text="", constraints=state.constraints if state.turns else Constraints(),
                          references=tuple(e.item_id for e in liked), reference_labels=labels,
                          notes=tuple(f"no title in the catalogue matches '{m}'" for m in missing))
        return Turn("cold_start", request, liked=liked, substantive=True)
    similar, rejected, rest = references_to_shown(clean, state)
    rewritten, notes = _rewrite_moods(rest, _genre_words())
    request = parser.parse(rewritten) if rewritten.strip(" ,.;!?") else Request(text="", constraints=Constraints())
    constraints = request.constraints
    relative = None
    if request.constraints.year_min is None and request.constraints.year_max is None:
        years = [y for y in state.last_years if y is not None]
        # Relative to the window asked for ("80s" -> older = before 1980), else to the middle year of the
        # last list (its oldest or newest item can be an outlier that leaves nothing beyond it).
        middle = int(np.median(years)) if years else None
        window = state.constraints
        if _OLDER.search(clean):
            relative = "older"
            bound = window.year_min - 1 if window.year_min is not None else (middle - 1 if years else None)
            if bound is not None:
                constraints = replace(constraints, year_max=bound)
                notes.append(f"older than what you saw: up to {bound}")
        elif _NEWER.search(clean):
            relative = "newer"
            bound = window.year_max + 1 if window.year_max is not None else (middle + 1 if years else None)
            if bound is not None:
                constraints = replace(constraints, year_min=bound)
                notes.append(f"newer than what you saw: from {bound}")
    something_else = bool(_SOMETHING_ELSE.search(clean))
    references = tuple(similar) + request.references
    substantive = bool(references or request.constraints.genres_all or request.constraints.genres_any
                       or request.constraints.has_facts()
                       or _content_words(request.text))
    refinement = bool(similar or rejected or relative or something_else or notes
                      or not request.constraints.is_empty())
    if not request.references and not similar and request.constraints.is_empty() and not rejected \
            and not relative and (NOT_A_SEARCH.search(clean) and not MOVIE_CUES.search(clean)
                                  or re.search(r"\b(?:ignore|disregard) (?:all |any |the )?(?:previous|prior|above)"
                                               r"|system prompt", clean, re.IGNORECASE)):
        return Turn("off_topic")
    if not substantive and not refinement:
        if state.turns and _content_words(clean) == []:
            something_else = True  # "hmm", "ok more" after a list: show the next ones
        elif not MOVIE_CUES.search(clean):
            return Turn("off_topic")
    merged = merge_constraints(state.constraints, constraints) if state.turns else constraints
    if relative == "older":
        merged = replace(merged, year_min=None)
    elif relative == "newer":
        merged = replace(merged, year_max=None)
    if references:
        ref_ids, ref_labels = references, tuple(state.shown_titles.get(i, "") for i in similar) + request.reference_labels
    elif substantive:
        ref_ids, ref_labels = (), ()
    else:
        ref_ids, ref_labels = state.references, state.reference_labels
    query_text = request.text if substantive and _content_words(request.text) else state.query_text
    about = request.about if substantive and request.about else ("" if substantive else state.about)
    effective = Request(text=query_text or request.text or clean, constraints=merged, references=ref_ids,
                        reference_labels=tuple(label for label in ref_labels if label),
                        unresolved_references=request.unresolved_references,
                        notes=tuple(notes) + request.notes, about=about, suggestions=request.suggestions)
    kind = "request" if substantive or not state.turns else "refine"
    return Turn(kind, effective, rejected=rejected, substantive=substantive)


def _content_words(text: str) -> list[str]:
    """Words that carry a topic of their own: not filler, genre words, moods or years."""
    return content_words(text, frozenset(MOOD_GENRES))


def _genre_words() -> dict[str, tuple[str, ...]]:
    from assistant.request_parser import GENRE_WORDS

    return GENRE_WORDS
