"""Film facts (credits, runtime, language, country, awards, critics' scores) joined onto a catalogue.

The source is the CC0 `movies.db` of `bokeh-sampledata` (OMDb + Rotten Tomatoes fields, films
1940-2014). A catalogue film is joined on its normalised title (or an alternative title given in
parentheses) and a release year within one year; among several rows the exact year wins, then
the most-voted one. A fact the source does not have is absent from the item, never guessed.
"""
from __future__ import annotations

import re
import sqlite3
import unicodedata
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from data.catalogue import Item
from data.summaries import match_key

YEAR_TOLERANCE = 1
FACTS_KEY = "facts"
_PARENTHESES = re.compile(r"\(([^()]*)\)")
_OSCARS_WON = re.compile(r"\bWon (\d+) Oscars?\b", re.IGNORECASE)
_OSCARS_NOMINATED = re.compile(r"\bNominated for (\d+) Oscars?\b", re.IGNORECASE)

_QUERY = """
SELECT o.Title, o.Year, o.Runtime, o.Director, o.Writer, o."Cast", o.Language, o.Country, o.Awards,
       o.Oscars, o.Metacritic, o.imdbRating, o.imdbVotes, o.Rating, t.Meter, t.Reviews
FROM omdb o LEFT JOIN tomatoes t ON o.ID = t.ID
"""


def person_key(name: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a person's name."""
    name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", name).split())


def _names(text) -> tuple[str, ...]:
    if not text or text == "N/A":
        return ()
    out = []
    for part in str(text).split(","):
        part = re.sub(r"\s*\(.*?\)\s*", " ", part).strip()  # "Jim Uhls (screenplay)" -> "Jim Uhls"
        if part and part != "N/A" and part not in out:
            out.append(part)
    return tuple(out)


def _number(value, kind=float):
    if value is None or value == "" or value == "N/A":
        return None
    try:
        number = kind(value)
    except (TypeError, ValueError):
        return None
    return number


@dataclass(frozen=True)
class FilmFacts:
    directors: tuple[str, ...] = ()
    writers: tuple[str, ...] = ()
    cast: tuple[str, ...] = ()  # the source lists cast alphabetically, not by billing
    runtime: int | None = None  # minutes
    languages: tuple[str, ...] = ()  # the first is the film's main language
    countries: tuple[str, ...] = ()
    mpaa: str | None = None
    oscars_won: int | None = None
    oscars_nominated: int | None = None
    awards: str | None = None
    imdb_rating: float | None = None
    imdb_votes: int | None = None
    metacritic: int | None = None
    rt_meter: int | None = None
    rt_reviews: int | None = None

    def to_json(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()
                if v not in (None, ())}

    @staticmethod
    def from_json(data: dict) -> "FilmFacts":
        fields = FilmFacts.__dataclass_fields__
        return FilmFacts(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in fields})

    @property
    def language(self) -> str | None:
        return self.languages[0] if self.languages else None

    @property
    def critics_score(self) -> int | None:
        """Rotten Tomatoes meter where it rests on at least 20 reviews, else Metacritic."""
        if self.rt_meter is not None and (self.rt_reviews or 0) >= 20:
            return self.rt_meter
        return self.metacritic


def facts_of(item: Item) -> FilmFacts | None:
    data = item.extra.get(FACTS_KEY) if item.extra else None
    return FilmFacts.from_json(data) if data else None


def _row_facts(row) -> FilmFacts:
    (_title, _year, runtime, director, writer, cast, language, country, awards, oscars, metacritic,
     imdb_rating, imdb_votes, mpaa, meter, reviews) = row
    awards_text = awards if awards and awards != "N/A" else None
    won = _OSCARS_WON.search(awards_text or "")
    nominated = _OSCARS_NOMINATED.search(awards_text or "")
    oscars_won = int(won.group(1)) if won else (_number(oscars, int) if awards_text else 0)
    runtime_minutes = _number(runtime)
    return FilmFacts(
        directors=_names(director), writers=_names(writer), cast=_names(cast),
        runtime=int(round(runtime_minutes)) if runtime_minutes and runtime_minutes > 0 else None,
        languages=_names(language), countries=_names(country),
        mpaa=mpaa if mpaa and mpaa not in ("N/A", "NOT RATED", "UNRATED") else None,
        oscars_won=oscars_won,
        oscars_nominated=int(nominated.group(1)) + (oscars_won or 0) if nominated else oscars_won,
        awards=awards_text, imdb_rating=_number(imdb_rating), imdb_votes=_number(imdb_votes, int),
        metacritic=_number(metacritic, int), rt_meter=_number(meter, int), rt_reviews=_number(reviews, int))


def load_facts(db_path: Path) -> dict[tuple[str, int], list[tuple[int, FilmFacts]]]:
    """(title key, year) -> [(imdb votes, facts)] for every row of the source with a title and year."""
    if not db_path.exists():
        raise FileNotFoundError(f"film facts database missing at {db_path}; run `recsys setup`")
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute(_QUERY).fetchall()
    except sqlite3.DatabaseError as err:
        raise ValueError(f"{db_path} is not the expected film facts database: {err}") from None
    finally:
        conn.close()
    table: dict[tuple[str, int], list[tuple[int, FilmFacts]]] = {}
    for row in rows:
        title, year = row[0], _number(row[1], int)
        if not title or year is None:
            continue
        key = match_key(str(title))
        if key:
            table.setdefault((key, year), []).append((_number(row[12], int) or 0, _row_facts(row)))
    return table


def title_keys(title: str) -> list[str]:
    """The keys a catalogue title may be known by: itself, and each alternative title in parentheses
    ("Shall We Dance? (Shall We Dansu?)"), with a leading article moved or dropped."""
    keys = [match_key(title)]
    for alternative in _PARENTHESES.findall(title):
        alternative = re.sub(r"^(?:a\.k\.a\.|aka)\s+", "", alternative.strip(), flags=re.IGNORECASE)
        match = re.match(r"^(?P<body>.+?), (?P<article>The|A|An|La|Le|Les|Il|El|Der|Die|Das)$", alternative)
        if match:
            alternative = f"{match['article']} {match['body']}"
        keys.append(match_key(alternative))
    out = []
    for key in keys:
        for variant in (key, key[4:] if key.startswith("the ") else None):
            if variant and variant not in out:
                out.append(variant)
    return out


def _find(item: Item, table: dict[tuple[str, int], list[tuple[int, FilmFacts]]]) -> FilmFacts | None:
    if item.year is None:
        return None
    for delta in sorted(range(-YEAR_TOLERANCE, YEAR_TOLERANCE + 1), key=abs):
        for key in title_keys(item.title):
            rows = table.get((key, item.year + delta))
            if rows:
                return max(rows, key=lambda r: r[0])[1]
    return None


@dataclass(frozen=True)
class FactsCoverage:
    matched: int
    items: int
    fields: dict[str, int]  # facts field -> items that have it

    def describe(self) -> str:
        share = self.matched / self.items if self.items else 0.0
        detail = ", ".join(f"{name} {count / self.items:.0%}" for name, count in self.fields.items()) \
            if self.items else ""
        return f"film facts: {self.matched}/{self.items} items ({share:.1%}); {detail}"

    def to_json(self) -> dict:
        return {"matched": self.matched, "items": self.items, "fields": self.fields}


_COVERAGE_FIELDS = ("directors", "cast", "runtime", "languages", "countries", "rt_meter", "metacritic", "mpaa")


def attach_facts(items: list[Item], table: dict[tuple[str, int], list[tuple[int, FilmFacts]]]
                 ) -> tuple[list[Item], FactsCoverage]:
    out, matched = [], 0
    fields = {name: 0 for name in _COVERAGE_FIELDS}
    joined = [(item, _find(item, table)) for item in items]
    # The source lists cast alphabetically; ordering each film's cast by how many catalogue films credit
    # them puts the stars first (a card shows the first few).
    credits = Counter(person_key(n) for _, found in joined if found for n in found.cast)
    for item, found in joined:
        if found is None:
            out.append(item)
            continue
        matched += 1
        found = replace(found, cast=tuple(sorted(found.cast, key=lambda n: (-credits[person_key(n)], n))))
        for name in _COVERAGE_FIELDS:
            fields[name] += getattr(found, name) not in (None, ())
        out.append(replace(item, extra={**item.extra, FACTS_KEY: found.to_json()}))
    return out, FactsCoverage(matched, len(items), fields)
