"""The fact parts of a request: people, language, country, runtime, awards and critics.

"with Tom Hanks", "nothing with Jim Carrey", "directed by Michael Mann", "a Coen brothers film",
"a Spielberg movie", "a French film", "under 90 minutes", "longer than two and a half hours",
"an Oscar winner", "critically acclaimed". Names are matched against the credits of the catalogue
(exactly, by surname after a cue, or fuzzily), and a name that is ambiguous or unknown is reported,
never applied.
"""
from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field

from data.catalogue import Item
from data.facts import facts_of, person_key
from retrieval.filters import Person

LANGUAGE_WORDS = {
    "french": "French", "japanese": "Japanese", "italian": "Italian", "german": "German", "spanish": "Spanish",
    "chinese": "Mandarin", "mandarin": "Mandarin", "cantonese": "Cantonese", "korean": "Korean",
    "swedish": "Swedish", "russian": "Russian", "hindi": "Hindi", "bollywood": "Hindi", "danish": "Danish",
    "portuguese": "Portuguese", "polish": "Polish", "czech": "Czech", "greek": "Greek", "dutch": "Dutch",
    "norwegian": "Norwegian", "finnish": "Finnish", "hungarian": "Hungarian", "persian": "Persian",
    "farsi": "Persian", "iranian": "Persian", "turkish": "Turkish", "hebrew": "Hebrew", "arabic": "Arabic",
    "english-language": "English", "english language": "English",
}
COUNTRY_WORDS = {
    "british": "United Kingdom", "uk": "United Kingdom", "english": "United Kingdom",
    "american": "United States", "hollywood": "United States",
    "australian": "Australia", "canadian": "Canada", "irish": "Ireland", "mexican": "Mexico",
    "indian": "India", "brazilian": "Brazil", "new zealand": "New Zealand", "hong kong": "Hong Kong",
    "taiwanese": "Taiwan", "scottish": "United Kingdom",
}
_FOREIGN = re.compile(r"\b(?:foreign(?:[\s-]language)?|non[\s-]english|not in english|subtitled|with subtitles)\b",
                      re.IGNORECASE)
_LANGUAGE_CUE = re.compile(r"\b(?:in|spoken in)\s+(?P<word>[A-Za-z]+)\b")
_NATIONALITY = re.compile(r"\b(?P<word>" + "|".join(sorted({*LANGUAGE_WORDS, *COUNTRY_WORDS}, key=len, reverse=True))
                          + r")\b(?=(?:[\s-]language)?\s+(?:\w+\s+){0,3}?(?:films?|movies?|cinema|comedy|comedies|drama|dramas|"
                            r"thrillers?|horror|animation|anime|westerns?|classics?|romance|musicals?|one|ones|"
                            r"war|crime|action|sci-fi|noir)\b)", re.IGNORECASE)
_NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "an": 1, "a": 1, "ninety": 90, "hundred": 100}
_DURATION = (r"(?P<amount>\d+(?:\.\d+)?|one|two|three|four|an|a)(?P<half>\s+and\s+a\s+half|\s*½)?\s*"
             r"(?P<unit>hours?|hrs?|h|minutes?|mins?|m)\b(?:\s+(?:and\s+)?(?P<extra>\d+)\s*(?:minutes?|mins?))?")
_SHORTER = re.compile(r"\b(?:under|less than|shorter than|below|no longer than|not longer than|at most|max(?:imum)?|"
                      r"within|up to|no more than)\s+(?:an?\s+)?" + _DURATION, re.IGNORECASE)
_LONGER = re.compile(r"\b(?:over|more than|longer than|above|at least|min(?:imum)?|no shorter than|"
                     r"not shorter than)\s+(?:an?\s+)?" + _DURATION, re.IGNORECASE)
_HOUR_AND_HALF = re.compile(r"\b(?P<cmp>under|less than|shorter than|over|more than|longer than|at least|at most)\s+"
                            r"an\s+hour\s+and\s+a\s+half\b", re.IGNORECASE)
_SHORT_FILM = re.compile(r"\b(?:short|quick)\s+(?:films?|movies?|watch|ones?)\b", re.IGNORECASE)
_LONG_FILM = re.compile(r"\b(?:long|epic)\s+(?:films?|movies?|ones?)\b", re.IGNORECASE)
_OSCAR = re.compile(r"\b(?:oscar|academy award)[\s-]*(?:winners?|winning|won)\b|\bwon\s+(?:an?\s+|the\s+)?"
                    r"(?:oscars?|academy awards?)\b|\b(?:oscars?|academy awards?)\s+for\b", re.IGNORECASE)
_ACCLAIMED = re.compile(r"\b(?:critically[\s-]acclaimed|acclaimed|critics'?\s+(?:loved|love|liked|favou?rites?|"
                        r"darlings?|picks?)|well[\s-]reviewed|(?:highly|well)[\s-]rated by critics|"
                        r"great reviews|rave reviews|certified fresh)\b", re.IGNORECASE)
# Who: "directed by X", "by X", "a X film", "with X", "starring X", "featuring X", "X movies".
_DIRECTOR_CUE = re.compile(r"\b(?:directed by|director|from director|made by|filmmaker|by)\s+$", re.IGNORECASE)
_CAST_CUE = re.compile(r"\b(?:with|starring|featuring|stars?|actor|actress|by actor|by actress|has|having)\s+$",
                       re.IGNORECASE)
_NEGATION = re.compile(r"\b(?:no|not|nothing|without|except|excluding|avoid|never|skip|none|"
                       r"don'?t want|do not want|but not|hate|can'?t stand)\b(?:\s+\w+){0,3}\s*$", re.IGNORECASE)
_NAME_TOKEN = re.compile(r"[A-Za-zÀ-ÿ][\w'’.-]*")
_BROTHERS = re.compile(r"\b(?:the\s+)?(?P<name>[A-Za-z][\w'-]+)\s+brothers\b|\bthe\s+(?P<plural>[A-Z][\w'-]+)s\b"
                       r"(?=\s+(?:films?|movies?)\b)", re.IGNORECASE)
_NOT_NAMES = set("""a an the and or but of to in on at for with from by about as is are was were be it this that
these those one ones i me my we you your some any more less other another movie movies film films watch see
something anything like similar more please good great best new old classic comedy drama thriller horror action
war crime western romance no not nothing without except directed director starring featuring stars actor
actress made filmmaker foreign minutes hours long short oscar winner acclaimed critics has having what which
who how funny scary sad dark light kids family animated love story""".split())


@dataclass
class FactParse:
    people_all: set = field(default_factory=set)
    people_none: set = field(default_factory=set)
    languages_any: set = field(default_factory=set)
    languages_none: set = field(default_factory=set)
    countries_any: set = field(default_factory=set)
    runtime_min: int | None = None
    runtime_max: int | None = None
    oscar_winner: bool = False
    acclaimed: bool = False
    notes: list[str] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)  # parts of the text this parse consumed


def _minutes(match: re.Match) -> int:
    amount = match["amount"].lower()
    value = float(_NUMBER_WORDS.get(amount, amount) if not amount.replace(".", "").isdigit() else amount)
    if match["half"]:
        value += 0.5
    unit = match["unit"].lower()
    minutes = value * 60 if unit.startswith("h") else value
    if match["extra"]:
        minutes += int(match["extra"])
    return int(round(minutes))


class FactParser:
    def __init__(self, items: list[Item]):
        self.directors: Counter[str] = Counter()
        self.cast: Counter[str] = Counter()
        self.display: dict[str, str] = {}
        languages: set[str] = set()
        countries: set[str] = set()
        for item in items:
            facts = facts_of(item)
            if facts is None:
                continue
            for name in facts.directors:
                self.directors[person_key(name)] += 1
                self.display.setdefault(person_key(name), name)
            for name in facts.cast:
                self.cast[person_key(name)] += 1
                self.display.setdefault(person_key(name), name)
            languages.update(facts.languages[:1])
            countries.update(facts.countries)
        self.languages = languages
        self.countries = countries
        self._surnames: dict[str, set[str]] = {}
        for key in set(self.directors) | set(self.cast):
            parts = key.split()
            if len(parts) >= 2:
                self._surnames.setdefault(parts[-1], set()).add(key)
        self._full_names = sorted(set(self.directors) | set(self.cast))

    @property
    def has_facts(self) -> bool:
        return bool(self.display)

    def films(self, key: str, role: str) -> int:
        if role == "director":
            return self.directors[key]
        if role == "cast":
            return self.cast[key]
        return self.directors[key] + self.cast[key]

    # ---- people --------------------------------------------------------------------------------
    def _role_for(self, before: str) -> str | None:
        if _DIRECTOR_CUE.search(before):
            return "director"
        if _CAST_CUE.search(before):
            return "cast"
        return None

    def _person(self, keys: tuple[str, ...], role: str, label: str) -> Person:
        if role == "any":  # no cue: the role the person is mostly credited in, unless they are both
            directed = sum(self.directors[k] for k in keys)
            acted = sum(self.cast[k] for k in keys)
            if directed >= 2 * acted:
                role = "director"
            elif acted >= 2 * directed:
                role = "cast"
        return Person(role, keys, label)

    def _resolve_surname(self, surname: str, role: str | None) -> tuple[list[str], str | None]:
        """People of that surname with films in `role`; the most-credited one if it dominates, else all."""
        candidates = sorted(self._surnames.get(surname, ()))
        role = role or "any"
        ranked = sorted(((self.films(k, role), k) for k in candidates if self.films(k, role) > 0), reverse=True)
        if not ranked:
            return [], None
        if len(ranked) == 1 or ranked[0][0] >= 3 * ranked[1][0]:
            return [ranked[0][1]], None
        names = ", ".join(self.display[k] for _, k in ranked[:4])
        return [], f"'{surname.title()}' could be {names}: say the full name"

    def parse_people(self, text: str, parse: FactParse) -> None:
        if not self.has_facts:
            return
        taken = [False] * len(text)

        def add(start: int, end: int, keys: tuple[str, ...], role: str, label: str) -> None:
            negated = bool(_NEGATION.search(text[max(0, start - 40):start]))
            person = self._person(keys, role, label)
            (parse.people_none if negated else parse.people_all).add(person)
            taken[start:end] = [True] * (end - start)
            parse.spans.append((start, end))

        for m in _BROTHERS.finditer(text):
            surname = person_key(m["name"] or m["plural"])
            keys = tuple(sorted(k for k in self._surnames.get(surname, ()) if self.directors[k]))
            if keys and (m["name"] or len(keys) > 1):
                add(m.start(), m.end(), keys, "director", " and ".join(self.display[k] for k in keys))
        tokens = [(m.start(), m.end(), m.group(0).strip(".'’")) for m in _NAME_TOKEN.finditer(text)]
        n = 0
        while n < len(tokens):
            start = tokens[n][0]
            if taken[start]:
                n += 1
                continue
            matched = False
            for length in (4, 3, 2):  # full names, longest first
                window = tokens[n:n + length]
                if len(window) < length or any(w[2].lower() in _NOT_NAMES for w in (window[0], window[-1])):
                    continue
                key = person_key(" ".join(w[2] for w in window))
                before = text[max(0, start - 40):start]
                role = self._role_for(before)
                if key in self.display:
                    add(start, window[-1][1], (key,), role or "any", self.display[key])
                    n += length
                    matched = True
                    break
                if role and all(w[2][:1].isupper() for w in window):
                    close = difflib.get_close_matches(key, self._full_names, n=2, cutoff=0.8)
                    if close:
                        add(start, window[-1][1], (close[0],), role, self.display[close[0]])
                        parse.notes.append(f"read '{' '.join(w[2] for w in window)}' as {self.display[close[0]]}")
                        n += length
                        matched = True
                        break
            if matched:
                continue
            word = tokens[n][2]
            before = text[max(0, start - 40):start]
            after = text[tokens[n][1]:tokens[n][1] + 20]
            role = self._role_for(before)
            possessive = re.match(r"(?:'s)?\s+(?:films?|movies?|pictures?|classics?)\b", after, re.IGNORECASE)
            if word.lower() not in _NOT_NAMES and word[:1].isupper() and (role or possessive):
                surname = person_key(word)
                keys, ambiguity = self._resolve_surname(surname, role if role else ("director" if possessive else None))
                if keys:
                    add(start, tokens[n][1], tuple(keys), role or "director", self.display[keys[0]])
                elif ambiguity:
                    parse.notes.append(ambiguity + "; not applied")
                    parse.spans.append((start, tokens[n][1]))
                elif role:
                    parse.notes.append(f"no one named '{word}' is credited in this catalogue; not applied")
                    parse.spans.append((start, tokens[n][1]))
            n += 1

    # ---- the rest ------------------------------------------------------------------------------
    def parse(self, text: str) -> FactParse:
        parse = FactParse()
        self.parse_people(text, parse)
        lowered = text.lower()
        if _FOREIGN.search(text):
            parse.languages_none.add("English")
            parse.spans.append(_FOREIGN.search(text).span())
        for m in _NATIONALITY.finditer(text):
            word = m["word"].lower()
            negated = bool(_NEGATION.search(text[max(0, m.start() - 30):m.start()]))
            if word in LANGUAGE_WORDS:
                (parse.languages_none if negated else parse.languages_any).add(LANGUAGE_WORDS[word])
            elif not negated:
                parse.countries_any.add(COUNTRY_WORDS[word])
            parse.spans.append(m.span())
        for m in _LANGUAGE_CUE.finditer(text):
            word = m["word"].lower()
            if word in LANGUAGE_WORDS or word == "english":
                language = LANGUAGE_WORDS.get(word, "English")
                negated = bool(_NEGATION.search(text[max(0, m.start() - 30):m.start()]))
                (parse.languages_none if negated else parse.languages_any).add(language)
                parse.spans.append(m.span())
        for m in _HOUR_AND_HALF.finditer(text):
            if m["cmp"].lower() in ("under", "less than", "shorter than", "at most"):
                parse.runtime_max = 90
            else:
                parse.runtime_min = 90
            parse.spans.append(m.span())
        for m in _SHORTER.finditer(text):
            if parse.runtime_max is None:
                parse.runtime_max = _minutes(m) - (0 if re.match(r"(?:at most|no longer|not longer|max|up to|"
                                                                  r"within|no more)", m.group(0), re.I) else 1)
                parse.spans.append(m.span())
        for m in _LONGER.finditer(text):
            if parse.runtime_min is None:
                parse.runtime_min = _minutes(m) + (0 if re.match(r"(?:at least|min|no shorter|not shorter)",
                                                                 m.group(0), re.I) else 1)
                parse.spans.append(m.span())
        if parse.runtime_max is None and _SHORT_FILM.search(text):
            parse.runtime_max = 95
            parse.notes.append("'short' read as: at most 95 minutes")
        if parse.runtime_min is None and _LONG_FILM.search(text):
            parse.runtime_min = 150
            parse.notes.append("'long' read as: at least 150 minutes")
        if _OSCAR.search(lowered):
            parse.oscar_winner = True
            parse.spans.append(_OSCAR.search(lowered).span())
        if _ACCLAIMED.search(lowered):
            parse.acclaimed = True
            parse.spans.append(_ACCLAIMED.search(lowered).span())
        return parse
