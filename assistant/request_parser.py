"""A rule/lexicon parser from free text to a structured request with HARD constraints.

Handles genres and their everyday words ("scary" -> horror), decades ("80s", "early 90s",
"the eighties"), years and ranges ("before 1970", "1995 to 1998", "since 2000"), negations
("no horror", "not a drama", "isn't animated") and references ("more like Alien", "similar
to The Matrix"), resolved by fuzzy title match against the catalogue.
"""
from __future__ import annotations

import difflib
import re
import time
import unicodedata
from dataclasses import dataclass, field

from assistant.fact_requests import FactParser
from data.summaries import match_key
from retrieval.filters import Constraints

MAX_QUERY_CHARS = 1000

GENRE_WORDS: dict[str, tuple[str, ...]] = {
    "action": ("action", "action-packed", "actioner"),
    "adventure": ("adventure", "adventures", "adventurous"),
    "animation": ("animated", "animation", "animations", "cartoon", "cartoons", "anime"),
    "children": ("children's", "childrens", "children", "kids", "kid", "family-friendly", "for kids",
                 "family movie", "family movies", "family film", "family films", "for the whole family"),
    "comedy": ("comedy", "comedies", "funny", "comedic", "hilarious", "humorous", "humourous", "laugh"),
    "crime": ("crime", "crimes", "heist", "gangster", "gangsters", "mafia", "mob"),
    "documentary": ("documentary", "documentaries"),
    "drama": ("drama", "dramas", "dramatic"),
    "fantasy": ("fantasy", "fantasies", "magical"),
    "film_noir": ("film noir", "film-noir", "noir"),
    "horror": ("horror", "horrors", "scary", "frightening", "creepy", "slasher", "spooky", "terrifying"),
    "musical": ("musical", "musicals"),
    "mystery": ("mystery", "mysteries", "whodunit", "whodunnit"),
    "romance": ("romance", "romances", "romantic", "love story", "love stories"),
    "sci_fi": ("sci-fi", "scifi", "sci fi", "science fiction", "science-fiction"),
    "thriller": ("thriller", "thrillers", "suspense", "suspenseful"),
    "war": ("war", "wartime"),
    "western": ("western", "westerns", "cowboy", "cowboys"),
}
COMPOUND_GENRES = {"rom-com": ("romance", "comedy"), "romcom": ("romance", "comedy"),
                   "rom com": ("romance", "comedy")}

DECADE_WORDS = {"twenties": 1920, "thirties": 1930, "forties": 1940, "fifties": 1950, "sixties": 1960,
                "seventies": 1970, "eighties": 1980, "nineties": 1990, "noughties": 2000}

# Case-insensitive: "Horror from the 80s. No comedy." must exclude comedy, not require it.
_NEGATION = re.compile(r"\b(?:no|not|nothing|none|without|w/o|except|excluding|exclude|avoid|never|skip|"
                       r"isn't|isnt|aren't|arent|don't want|dont want|do not want|non|anything but)\b|n't\b",
                       re.IGNORECASE)
_BOUNDARY = re.compile(r"[,.;!?]|\b(?:but|though|although|however|yet|instead|rather)\b", re.IGNORECASE)
# "not made before 1990", "nothing after 1995": a negated bound flips ("not before 1990" = from 1990 on)
_NEGATED_BOUND = re.compile(r"\b(?:not|nothing|none|no)(?:\s+(?:made|released|filmed|produced|shot|anything|"
                            r"something|one|ones|films?|movies?|from|dated))*\s*$", re.IGNORECASE)
_REFERENCE = re.compile(r"\b(?:more like|something like|similar to|movies? like|films? like|in the vein of|"
                        r"reminds? me of|along the lines of|such as|like)\s+(?P<ref>.+)", re.IGNORECASE)
_REFERENCE_END = re.compile(r"[,;!?]|\.(?:\s|$)|\s(?:but|though|although|and not|without|with no|from the|"
                            r"from|in the|set in|before|after|since|between|only|except|which|that|"
                            r"less|more|no|not)\s", re.IGNORECASE)
_LIST_SPLIT = re.compile(r"\s*(?:,|;|\band\b|&|\bor\b|\bplus\b)\s*", re.IGNORECASE)
_NOT_A_REFERENCE = re.compile(r"\b(?:i|i'd|id|we|we'd|you|they|would|really|also|do|don't|dont|d)\s*$")
_DECADE = re.compile(r"(?<!\d)(?:'|’)?(?P<century>19|20)?(?P<decade>\d)0'?s\b")
_YEAR = r"(?:18[89]\d|19\d\d|20\d\d)"
_RANGE = re.compile(rf"\b(?:between\s+|from\s+)?(?P<a>{_YEAR})\s*(?:-|–|to|and|until|through|thru)\s*(?P<b>{_YEAR})\b",
                    re.IGNORECASE)
_BEFORE = re.compile(rf"\b(?:before|prior to|older than|earlier than|pre)[\s-]+(?:the\s+)?(?P<y>{_YEAR}|"
                     rf"(?:19|20)?\d0'?s|{'|'.join(DECADE_WORDS)})\b", re.IGNORECASE)
_AFTER = re.compile(rf"\b(?:after|newer than|later than|post)[\s-]+(?:the\s+)?(?P<y>{_YEAR}|"
                    rf"(?:19|20)?\d0'?s|{'|'.join(DECADE_WORDS)})\b", re.IGNORECASE)
# "since 1995" is open-ended; "from 1994" alone names that year ("a drama from 1994"), unless it goes on
# ("from 1994 on", "from 1994 onwards", "from 1994 or later").
_SINCE = re.compile(rf"\b(?:since|starting|as of)\s+(?P<y>{_YEAR})\s*(?:on(?:wards?)?|or later|and later|and after)?\b"
                    rf"|\bfrom\s+(?P<y3>{_YEAR})\s*(?:on(?:wards?)?|or later|and later|and after)\b"
                    rf"|\b(?P<y2>{_YEAR})\s+(?:or|and)\s+(?:later|newer|after)\b", re.IGNORECASE)
_UNTIL = re.compile(rf"\b(?:until|up to|no later than|through)\s+(?P<y>{_YEAR})\b"
                    rf"|\b(?P<y2>{_YEAR})\s+(?:or|and)\s+(?:earlier|older|before)\b", re.IGNORECASE)
_SINGLE_YEAR = re.compile(rf"\b(?P<y>{_YEAR})\b")
_TWO_DIGIT_YEAR = re.compile(r"(?<![\w'’])['’](?P<yy>\d\d)\b(?!['’]?s\b)")  # '95, not '90s
# a year or decade excluded: the cue right before it ("nothing from the 80s", "no 80s movies", "not 1995")
_EXCLUDED_YEARS = re.compile(r"\b(?:not|no|nothing|never|without|except|excluding|isn't|aren't|but not)\s+"
                             r"(?:(?:from|in|of|made in|set in|released in)\s+)?(?:the\s+)?(?:early|mid|late)?[\s-]*$",
                             re.IGNORECASE)
_PERSON_AFTER_NEGATION = re.compile(r"\b(?:with|starring|by)\s+(?P<name>[A-Z][\w'.-]+(?:\s+[A-Z][\w'.-]+)+)")


class InvalidQuery(ValueError):
    pass


def clean_text(text: str) -> str:
    """NFKC-normalised (full-width letters become ASCII) with control, format, private-use and
    unpaired-surrogate characters replaced by spaces: what reaches the parser and the embedder."""
    text = unicodedata.normalize("NFKC", text.encode("utf-8", "replace").decode("utf-8")
                                 if any(0xD800 <= ord(c) <= 0xDFFF for c in text) else text)
    return "".join(" " if unicodedata.category(c) in _UNSAFE_CATEGORIES else c for c in text)


_UNSAFE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}


@dataclass(frozen=True)
class TitleEntry:
    item_id: str
    title: str
    year: int | None
    popularity: int = 0


@dataclass(frozen=True)
class Request:
    text: str
    constraints: Constraints
    references: tuple[str, ...] = ()  # resolved item ids of "more like <title>"
    reference_labels: tuple[str, ...] = ()
    unresolved_references: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)
    # What the request is about, in its own words: the text without the films it names, its fact and
    # year phrases and filler. Empty when it says nothing about content ("surprise me", "like Heat").
    about: str = ""
    suggestions: tuple[str, ...] = ()  # close catalogue titles for a named film that is missing


def _word_pattern(word: str) -> str:
    return r"(?<![\w-])" + re.escape(word).replace(r"\ ", r"[\s-]+") + r"(?![\w-])"


_GENRE_PATTERNS = [(slug, re.compile(_word_pattern(w), re.IGNORECASE)) for slug, words in GENRE_WORDS.items()
                   for w in sorted(words, key=len, reverse=True)]
_COMPOUND_PATTERNS = [(slugs, re.compile(_word_pattern(w), re.IGNORECASE)) for w, slugs in COMPOUND_GENRES.items()]


def _two_digit_year(yy: int) -> int:
    """'95 -> 1995, '05 -> 2005: the latest year ending in those digits that is not in the future."""
    this_year = time.gmtime().tm_year
    return 2000 + yy if 2000 + yy <= this_year else 1900 + yy


def _decade_start(token: str) -> int:
    token = token.lower().strip("'’")
    if token in DECADE_WORDS:
        return DECADE_WORDS[token]
    match = re.fullmatch(r"(?P<century>19|20)?(?P<decade>\d)0'?s", token)
    if not match:
        return int(token)
    digit = int(match["decade"])
    century = match["century"] or ("20" if digit <= 2 else "19")
    return int(century) * 100 + digit * 10


def _bound(token: str) -> tuple[int, int]:
    """The first and last year a token covers: '1975' -> (1975, 1975), '80s' -> (1980, 1989)."""
    token = token.lower()
    if re.fullmatch(_YEAR, token):
        return int(token), int(token)
    start = _decade_start(token)
    return start, start + 9


# Words that say nothing about what a film is about: asking, politeness, time of day, praise.
FILLER_WORDS = set("""a an the and or but so of to in on at for with from by about as is are was were be been it its
this that these those one ones i i'm im me my we us you your please some any more less other another else again
just really very can could would should will want wanted like likes looking look find give show tell something
anything movie movies film films flick flicks watch watching see maybe perhaps also too not no nothing without
hmm ok okay yes yeah what what's whats which who how why when where do does did have has had get got let lets
let's same kind sort type older newer earlier later recent ones classic classics tonight today tomorrow now
evening night weekend surprise recommend recommendation recommendations suggest suggestion suggestions good great
best nice fun top favourite favorite pick picks bored boring idea ideas need mood feel feeling new fresh random
anyone everyone people watched seen made set starring directed director actor actress long short minutes hours
under over than foreign language subtitles acclaimed critically critics oscar oscars winner winning won award
awards academy brothers""".split())


def content_words(text: str, skip: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Words that carry a topic: not filler, genre words, decades or `skip`."""
    genre_tokens = {t for words in GENRE_WORDS.values() for w in words for t in w.lower().split()}
    ignored = FILLER_WORDS | genre_tokens | set(DECADE_WORDS) | set(skip) | {
        "early", "mid", "late", "decade", "century", "before", "after", "since", "until", "between"}
    return [w for w in re.findall(r"[a-z][a-z'-]{2,}", text.lower()) if w.strip("'-") not in ignored]


class RequestParser:
    def __init__(self, titles: list[TitleEntry], genre_vocabulary: list[str], facts: FactParser | None = None):
        self.facts = facts
        self.genre_vocabulary = set(genre_vocabulary)
        self._by_key: dict[str, list[TitleEntry]] = {}
        for entry in titles:
            self._by_key.setdefault(match_key(entry.title), []).append(entry)
        self._keys = list(self._by_key)
        self._by_main_title: dict[str, list[TitleEntry]] = {}  # "Star Wars" -> "Star Wars: Episode IV ..."
        for entry in titles:
            if ":" in entry.title:
                self._by_main_title.setdefault(match_key(entry.title.split(":", 1)[0]), []).append(entry)

    # ---- references -------------------------------------------------------------------------
    def resolve_title(self, text: str) -> TitleEntry | None:
        year_match = re.search(rf"\(?({_YEAR})\)?\s*$", text.strip())
        year = int(year_match.group(1)) if year_match else None
        key = match_key(text[: year_match.start()] if year_match else text)
        if not key:
            return None
        candidates = self._by_key.get(key)
        if not candidates:
            alt = key[4:] if key.startswith("the ") else "the " + key
            candidates = self._by_key.get(alt)
        if not candidates:
            candidates = self._by_main_title.get(key)
        if not candidates:
            close = difflib.get_close_matches(key, self._keys, n=1, cutoff=0.85)
            candidates = self._by_key.get(close[0]) if close else None
        if not candidates:
            return None
        if year is not None:
            dated = [c for c in candidates if c.year == year]
            candidates = dated or candidates
        return max(candidates, key=lambda c: (c.popularity, -(c.year or 0)))

    def suggest(self, text: str, n: int = 3) -> list[TitleEntry]:
        """Catalogue titles close to a name that matched none, best known first."""
        key = match_key(text)
        if not key:
            return []
        close = difflib.get_close_matches(key, self._keys, n=8, cutoff=0.75)
        words = set(key.split()) - {"the", "a", "an", "of", "and"}
        if words:
            close += [k for k in self._keys if words <= set(k.split()) and k not in close][:8]
        entries = [max(self._by_key[k], key=lambda c: c.popularity) for k in close]
        return sorted(entries, key=lambda e: -e.popularity)[:n]

    def _matches(self, text: str):
        """Reference cues in order; a cue after "I'd like" / "we would" is tried again further on
        ("I'd like something similar to Heat")."""
        position = 0
        while (match := _REFERENCE.search(text, position)) is not None:
            if _NOT_A_REFERENCE.search(text[: match.start()].lower()):
                position = match.start() + 1
                continue
            yield match
            position = match.end()

    def _resolve_many(self, ref: str) -> tuple[list[TitleEntry], list[str]]:
        """One title, or several joined by commas / "and" ("Toy Story and Babe"); a title that itself
        holds "and" ("Sense and Sensibility") is tried whole first."""
        entry = self.resolve_title(ref)
        if entry is not None:
            return [entry], []
        found, missing = [], []
        for part in _LIST_SPLIT.split(ref):
            part = part.strip(" '\".")
            if not part or self._is_generic(part):
                continue
            entry = self.resolve_title(part)
            (found.append(entry) if entry is not None else missing.append(part))
        if not found:
            return [], [ref]
        return found, missing

    def _references(self, text: str) -> tuple[str, list[TitleEntry], list[str]]:
        resolved, unresolved = [], []
        remaining = text
        for match in list(self._matches(text)):
            ref = match["ref"]
            end = _REFERENCE_END.search(ref)
            ref = (ref[: end.start()] if end else ref).strip(" '\"")
            ref = re.sub(r"^(?:the movie|the film)\s+", "", ref, flags=re.IGNORECASE)
            if not ref or self._is_generic(ref):
                continue
            found, missing = self._resolve_many(ref)
            resolved.extend(found)
            unresolved.extend(missing)
            remaining = remaining.replace(match.group(0)[: len(match.group(0)) - len(match["ref"]) + len(ref)], " ")
        return remaining, resolved, unresolved

    @staticmethod
    def _is_generic(ref: str) -> bool:
        words = re.findall(r"[\w'-]+", ref.lower())
        generic = {"a", "an", "some", "something", "anything", "to", "that", "this", "it", "one", "ones",
                   "movie", "movies", "film", "films", "watch", "see", "good", "great", "the", "more", "less"}
        if not words or words[0] in {"a", "an", "some", "something", "anything", "to", "watching", "seeing"}:
            return True
        if all(w in generic for w in words):
            return True
        return any(p.search(ref) for _, p in _GENRE_PATTERNS) and len(words) <= 3

    # ---- genres ------------------------------------------------------------------------------
    def _genres(self, text: str) -> tuple[set[str], set[str], bool, set[str]]:
        """(asked-for genres, excluded genres, whether the asked ones are alternatives, genres both asked
        for and excluded). On such a conflict the genre stays asked for: the negated mention names a
        kind of it ("scary but nothing too gory", "a comedy, not a romantic comedy"), which a genre
        filter cannot exclude; excluding the genre would return the opposite of the request."""
        positive, negative = set(), set()
        mentions: list[tuple[int, int, tuple[str, ...]]] = []
        taken = [False] * len(text)
        for slugs, pattern in _COMPOUND_PATTERNS:
            for m in pattern.finditer(text):
                mentions.append((m.start(), m.end(), slugs))
                taken[m.start():m.end()] = [True] * (m.end() - m.start())
        for slug, pattern in _GENRE_PATTERNS:
            for m in pattern.finditer(text):
                if not any(taken[m.start():m.end()]):
                    mentions.append((m.start(), m.end(), (slug,)))
                    taken[m.start():m.end()] = [True] * (m.end() - m.start())
        mentions.sort()
        for start, _end, slugs in mentions:
            (negative if self._negated(text, start) else positive).update(slugs)
        conflict = positive & negative
        negative -= conflict
        positive_spans = [(s, e) for s, e, sl in mentions if set(sl) & positive]
        any_of = any(re.search(r"\bor\b", text[a_end:b_start])
                     for (_, a_end), (b_start, _) in zip(positive_spans, positive_spans[1:]))
        return positive, negative, any_of, conflict

    @staticmethod
    def _negated(text: str, position: int) -> bool:
        window = text[max(0, position - 60):position]
        boundary = None
        for boundary in _BOUNDARY.finditer(window):
            pass
        if boundary is not None:
            window = window[boundary.end():]
        cue = None
        for cue in _NEGATION.finditer(window):
            pass
        if cue is None:
            return False
        between = window[cue.end():].split()
        return len(between) <= 4

    # ---- years -------------------------------------------------------------------------------
    @staticmethod
    def _years(text: str) -> tuple[int | None, int | None, frozenset[tuple[int, int]], str]:
        """(first year, last year, excluded (first, last) ranges, the text with year phrases removed)."""
        lo, hi = None, None
        excluded: set[tuple[int, int]] = set()
        text = _TWO_DIGIT_YEAR.sub(lambda m: str(_two_digit_year(int(m["yy"]))), text)

        def tighten(a, b):
            nonlocal lo, hi
            if a is not None:
                lo = a if lo is None else max(lo, a)
            if b is not None:
                hi = b if hi is None else min(hi, b)

        consumed = text
        for pattern, kind in ((_RANGE, "range"), (_BEFORE, "before"), (_AFTER, "after"),
                              (_SINCE, "since"), (_UNTIL, "until")):
            for m in pattern.finditer(consumed):
                if kind == "range":
                    a, b = sorted((int(m["a"]), int(m["b"])))
                    tighten(a, b)
                elif kind == "before":
                    if _NEGATED_BOUND.search(consumed[: m.start()]):
                        tighten(_bound(m["y"])[0], None)
                    else:
                        tighten(None, _bound(m["y"])[0] - 1)
                elif kind == "after":
                    if _NEGATED_BOUND.search(consumed[: m.start()]):
                        tighten(None, _bound(m["y"])[1])
                    else:
                        tighten(_bound(m["y"])[1] + 1, None)
                elif kind == "since":
                    tighten(int(m["y"] or m["y2"] or m["y3"]), None)
                else:
                    tighten(None, int(m["y"] or m["y2"]))
            consumed = pattern.sub(" ", consumed)
        decades = []
        for m in re.finditer(r"\b(?P<mod>early|mid|late)?[\s-]*(?P<tok>(?:'|’)?(?:19|20)?\d0'?s|"
                             + "|".join(DECADE_WORDS) + r")(?![\w'])", consumed, re.IGNORECASE):
            start, end = _bound(m["tok"].strip("'’"))
            mod = (m["mod"] or "").lower()
            if mod == "early":
                end = start + 3
            elif mod == "mid":
                start, end = start + 3, start + 6
            elif mod == "late":
                start = start + 6
            if _EXCLUDED_YEARS.search(consumed[:m.start("tok")]):
                excluded.add((start, end))
            else:
                decades.append((start, end))
        if decades:
            tighten(min(d[0] for d in decades), max(d[1] for d in decades))
        if decades or excluded:
            consumed = re.sub(r"\b(?:early|mid|late)?[\s-]*(?:'|’)?(?:19|20)?\d0'?s\b", " ", consumed)
        for m in _SINGLE_YEAR.finditer(consumed):
            year = int(m["y"])
            if _EXCLUDED_YEARS.search(consumed[:m.start()]):
                excluded.add((year, year))
            else:
                tighten(year, year)
        return lo, hi, frozenset(excluded), consumed

    # ---- the whole request -------------------------------------------------------------------
    def parse(self, text: str) -> Request:
        if text is None or not text.strip():
            raise InvalidQuery("the request is empty: say what you would like to watch")
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidQuery(f"the request is {len(text)} characters; keep it under {MAX_QUERY_CHARS}")
        text = " ".join(clean_text(text).split())
        if not text:
            raise InvalidQuery("the request has no readable text: say what you would like to watch")
        text = re.sub(r"\banything but\b", "anything except", text, flags=re.IGNORECASE)
        rest, references, unresolved = self._references(text)
        facts = self.facts.parse(rest) if self.facts is not None else None
        if facts is not None:
            for start, end in sorted(facts.spans, reverse=True):
                rest = rest[:start] + " " + rest[end:]
        positive, negative, any_of, conflict = self._genres(rest)
        lo, hi, excluded_years, without_years = self._years(rest)
        notes = list(facts.notes) if facts is not None else []
        unknown = (positive | negative) - self.genre_vocabulary
        if unknown:
            notes.append("this catalogue has no genre " + ", ".join(sorted(unknown)))
        if self.facts is None or not self.facts.has_facts:
            for m in _NEGATION.finditer(text):
                person = _PERSON_AFTER_NEGATION.match(text[m.end():].lstrip())
                if person:
                    notes.append(f"this catalogue has no credits: '{person['name']}' was not applied")
        suggestions: list[str] = []
        for ref in unresolved:
            close = [e for e in self.suggest(ref) if e.item_id not in {r.item_id for r in references}]
            suggestions.extend(e.item_id for e in close)
            labels = [e.title if e.year is None else f"{e.title} ({e.year})" for e in close]
            notes.append(f"'{ref}' is not in this catalogue" + (f"; did you mean {', '.join(labels[:-1])}"
                                                                 f"{' or ' if len(labels) > 1 else ''}{labels[-1]}?"
                                                                 if labels else ""))
        for slug in sorted(conflict):
            notes.append(f"{slug.replace('_', ' ')} is both asked for and excluded: kept, since a kind of "
                         f"{slug.replace('_', ' ')} cannot be excluded on its own")
        fact_fields = {} if facts is None else dict(
            people_all=frozenset(facts.people_all), people_none=frozenset(facts.people_none),
            languages_any=frozenset(facts.languages_any), languages_none=frozenset(facts.languages_none),
            countries_any=frozenset(facts.countries_any), runtime_min=facts.runtime_min,
            runtime_max=facts.runtime_max, oscar_winner=facts.oscar_winner, acclaimed=facts.acclaimed)
        constraints = Constraints(
            genres_all=frozenset() if any_of else frozenset(positive),
            genres_any=frozenset(positive) if any_of and len(positive) > 1 else frozenset(),
            genres_none=frozenset(negative), year_min=lo, year_max=hi, years_none=excluded_years, **fact_fields)
        about_words = content_words(without_years)
        return Request(text=text, constraints=constraints,
                       references=tuple(r.item_id for r in references),
                       reference_labels=tuple(r.title if r.year is None else f"{r.title} ({r.year})"
                                              for r in references),
                       unresolved_references=tuple(unresolved), notes=tuple(notes),
                       about=" ".join(without_years.split()) if about_words else "",
                       suggestions=tuple(dict.fromkeys(suggestions)))
