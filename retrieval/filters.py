"""Hard constraints on items and their translation into Chroma `where` filters."""
from __future__ import annotations

from dataclasses import dataclass, field

from data.catalogue import Item
from data.facts import FilmFacts, facts_of, person_key

UNKNOWN_YEAR = -1
UNKNOWN = -1  # a numeric fact the source does not have
ACCLAIMED_CRITICS_SCORE = 85  # "critically acclaimed": Rotten Tomatoes meter (>= 20 reviews), else Metacritic
ROLES = ("director", "cast", "any")


@dataclass(frozen=True)
class Person:
    """A named person a request asks for or excludes: satisfied by a film crediting any of `keys` in
    `role` ("Coen brothers" is Joel Coen or Ethan Coen as director)."""
    role: str  # director | cast | any
    keys: tuple[str, ...]  # person_key of each name
    label: str

    def credited(self, facts: FilmFacts) -> bool:
        directors = {person_key(n) for n in facts.directors} if self.role in ("director", "any") else set()
        cast = {person_key(n) for n in facts.cast} if self.role in ("cast", "any") else set()
        return any(k in directors or k in cast for k in self.keys)

    def metadata_values(self) -> list[str]:
        prefixes = {"director": ("d:",), "cast": ("c:",), "any": ("d:", "c:")}[self.role]
        return [p + k for k in self.keys for p in prefixes]


@dataclass(frozen=True)
class Constraints:
    genres_all: frozenset[str] = field(default_factory=frozenset)  # genre slugs
    genres_any: frozenset[str] = field(default_factory=frozenset)
    genres_none: frozenset[str] = field(default_factory=frozenset)
    year_min: int | None = None  # inclusive
    year_max: int | None = None  # inclusive
    years_none: frozenset[tuple[int, int]] = field(default_factory=frozenset)  # excluded (first, last) year ranges
    # Facts. A film whose fact is unknown satisfies neither a positive nor a negative fact constraint:
    # "nothing with Jim Carrey" cannot vouch for a film whose cast is unknown.
    people_all: frozenset[Person] = field(default_factory=frozenset)
    people_none: frozenset[Person] = field(default_factory=frozenset)
    languages_any: frozenset[str] = field(default_factory=frozenset)  # the film's main language
    languages_none: frozenset[str] = field(default_factory=frozenset)
    countries_any: frozenset[str] = field(default_factory=frozenset)
    runtime_min: int | None = None  # minutes, inclusive
    runtime_max: int | None = None
    oscar_winner: bool = False
    acclaimed: bool = False

    def has_facts(self) -> bool:
        return bool(self.people_all or self.people_none or self.languages_any or self.languages_none
                    or self.countries_any or self.runtime_min is not None or self.runtime_max is not None
                    or self.oscar_winner or self.acclaimed)

    def is_empty(self) -> bool:
        return not (self.genres_all or self.genres_any or self.genres_none or self.years_none
                    or self.year_min is not None or self.year_max is not None or self.has_facts())

    def is_contradictory(self) -> bool:
        if self.year_min is not None and self.year_max is not None and self.year_min > self.year_max:
            return True
        if self.year_min is not None and self.year_max is not None and any(
                a <= self.year_min and self.year_max <= b for a, b in self.years_none):
            return True
        if self.genres_all & self.genres_none:
            return True
        if self.runtime_min is not None and self.runtime_max is not None and self.runtime_min > self.runtime_max:
            return True
        if self.languages_any and self.languages_any <= self.languages_none:
            return True
        if self.people_all & self.people_none:
            return True
        return bool(self.genres_any) and self.genres_any <= self.genres_none

    def describe(self) -> str:
        parts = []
        if self.genres_all:
            parts.append("genres: " + " and ".join(sorted(self.genres_all)))
        if self.genres_any:
            parts.append("any of: " + ", ".join(sorted(self.genres_any)))
        if self.genres_none:
            parts.append("not: " + ", ".join(sorted(self.genres_none)))
        if self.year_min is not None or self.year_max is not None:
            parts.append(f"years {self.year_min if self.year_min is not None else '…'}-"
                         f"{self.year_max if self.year_max is not None else '…'}")
        for a, b in sorted(self.years_none):
            parts.append(f"not {a}" if a == b else f"not {a}-{b}")
        cue = {"director": "directed by ", "cast": "with ", "any": "with or by "}
        for person in sorted(self.people_all, key=lambda p: p.label):
            parts.append(cue[person.role] + person.label)
        for person in sorted(self.people_none, key=lambda p: p.label):
            parts.append("nothing " + cue[person.role] + person.label)
        if self.languages_any:
            parts.append("in " + " or ".join(sorted(self.languages_any)))
        if self.languages_none:
            parts.append("not in " + ", ".join(sorted(self.languages_none)))
        if self.countries_any:
            parts.append("from " + " or ".join(sorted(self.countries_any)))
        if self.runtime_min is not None and self.runtime_max is not None:
            parts.append(f"{self.runtime_min}-{self.runtime_max} minutes")
        elif self.runtime_min is not None:
            parts.append(f"at least {self.runtime_min} minutes")
        elif self.runtime_max is not None:
            parts.append(f"at most {self.runtime_max} minutes")
        if self.oscar_winner:
            parts.append("won an Oscar")
        if self.acclaimed:
            parts.append(f"critically acclaimed (critics' score >= {ACCLAIMED_CRITICS_SCORE})")
        return "; ".join(parts) or "no constraints"


def genre_key(slug: str) -> str:
    return f"g_{slug}"


def item_metadata(item: Item, genre_vocabulary: list[str]) -> dict:
    """Chroma metadata: year and one boolean per genre of the whole catalogue (False included)."""
    own = set(item.genre_slugs)
    meta = {"title": item.title, "year": item.year if item.year is not None else UNKNOWN_YEAR,
            "content_hash": item.content_hash}
    meta.update({genre_key(slug): slug in own for slug in genre_vocabulary})
    facts = facts_of(item)
    if facts is not None:
        people = [f"d:{person_key(n)}" for n in facts.directors] + [f"c:{person_key(n)}" for n in facts.cast]
        if people and facts.directors and facts.cast:
            meta["people"] = people
        meta.update({"runtime": facts.runtime if facts.runtime is not None else UNKNOWN,
                     "language": facts.language or "", "countries": list(facts.countries) or [""],
                     "oscars": facts.oscars_won if facts.oscars_won is not None else UNKNOWN,
                     "critics": facts.critics_score if facts.critics_score is not None else UNKNOWN})
    return meta


def _facts_where(constraints: Constraints) -> list[dict]:
    clauses: list[dict] = []
    for person in sorted(constraints.people_all, key=lambda p: p.label):
        values = person.metadata_values()
        alternatives = [{"people": {"$contains": v}} for v in values]
        clauses.append(alternatives[0] if len(alternatives) == 1 else {"$or": alternatives})
    for person in sorted(constraints.people_none, key=lambda p: p.label):
        clauses.extend({"people": {"$not_contains": v}} for v in person.metadata_values())
    if constraints.people_none:
        clauses.append({"runtime": {"$gte": UNKNOWN}})  # credits known: the key exists only with facts
    if constraints.languages_any:
        clauses.append({"language": {"$in": sorted(constraints.languages_any)}})
    if constraints.languages_none:
        clauses.append({"language": {"$nin": sorted(constraints.languages_none) + [""]}})
    if constraints.countries_any:
        countries = sorted(constraints.countries_any)
        alternatives = [{"countries": {"$contains": c}} for c in countries]
        clauses.append(alternatives[0] if len(alternatives) == 1 else {"$or": alternatives})
    if constraints.runtime_min is not None:
        clauses.append({"runtime": {"$gte": constraints.runtime_min}})
    if constraints.runtime_max is not None:
        clauses.append({"runtime": {"$lte": constraints.runtime_max}})
        clauses.append({"runtime": {"$ne": UNKNOWN}})
    if constraints.oscar_winner:
        clauses.append({"oscars": {"$gte": 1}})
    if constraints.acclaimed:
        clauses.append({"critics": {"$gte": ACCLAIMED_CRITICS_SCORE}})
    return clauses


def to_where(constraints: Constraints, genre_vocabulary: list[str]) -> dict | None:
    known = set(genre_vocabulary)
    clauses: list[dict] = []
    for slug in sorted(constraints.genres_all):
        clauses.append({genre_key(slug): True} if slug in known else {"year": {"$lt": -10**9}})
    any_known = sorted(s for s in constraints.genres_any if s in known)
    if constraints.genres_any:
        if not any_known:
            clauses.append({"year": {"$lt": -10**9}})  # matches nothing, as it must
        elif len(any_known) == 1:
            clauses.append({genre_key(any_known[0]): True})
        else:
            clauses.append({"$or": [{genre_key(s): True} for s in any_known]})
    for slug in sorted(constraints.genres_none):
        if slug in known:
            clauses.append({genre_key(slug): False})
    if constraints.year_min is not None:
        clauses.append({"year": {"$gte": constraints.year_min}})
    if constraints.year_max is not None:
        clauses.append({"year": {"$lte": constraints.year_max}})
        if constraints.year_min is None:
            clauses.append({"year": {"$ne": UNKNOWN_YEAR}})
    for a, b in sorted(constraints.years_none):  # an unknown year (-1) is outside every range
        clauses.append({"$or": [{"year": {"$lt": a}}, {"year": {"$gt": b}}]})
    clauses.extend(_facts_where(constraints))
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def satisfies(item: Item, constraints: Constraints) -> bool:
    """The same rule as `to_where`, on an Item: the independent check used in tests and as a guard."""
    own = set(item.genre_slugs)
    if not constraints.genres_all <= own:
        return False
    if constraints.genres_any and not (constraints.genres_any & own):
        return False
    if constraints.genres_none & own:
        return False
    if constraints.year_min is not None and (item.year is None or item.year < constraints.year_min):
        return False
    if constraints.year_max is not None and (item.year is None or item.year > constraints.year_max):
        return False
    if item.year is not None and any(a <= item.year <= b for a, b in constraints.years_none):
        return False
    return facts_satisfy(facts_of(item), constraints)


def facts_satisfy(facts: FilmFacts | None, constraints: Constraints) -> bool:
    """The fact constraints on one film's facts; an unknown fact satisfies no fact constraint."""
    if not constraints.has_facts():
        return True
    if facts is None:
        return False
    if constraints.people_all or constraints.people_none:
        if not (facts.directors and facts.cast):
            return False
        if not all(p.credited(facts) for p in constraints.people_all):
            return False
        if any(p.credited(facts) for p in constraints.people_none):
            return False
    if constraints.languages_any and facts.language not in constraints.languages_any:
        return False
    if constraints.languages_none and (facts.language is None or facts.language in constraints.languages_none):
        return False
    if constraints.countries_any and not set(facts.countries) & constraints.countries_any:
        return False
    if constraints.runtime_min is not None and (facts.runtime is None or facts.runtime < constraints.runtime_min):
        return False
    if constraints.runtime_max is not None and (facts.runtime is None or facts.runtime > constraints.runtime_max):
        return False
    if constraints.oscar_winner and not (facts.oscars_won or 0) >= 1:
        return False
    if constraints.acclaimed and (facts.critics_score is None or facts.critics_score < ACCLAIMED_CRITICS_SCORE):
        return False
    return True


def metadata_satisfies(meta: dict, constraints: Constraints) -> bool:
    """`to_where` evaluated on one item's stored metadata (genres missing from it count as False)."""
    def has(slug: str) -> bool:
        return bool(meta.get(genre_key(slug), False))

    if not all(has(s) for s in constraints.genres_all):
        return False
    if constraints.genres_any and not any(has(s) for s in constraints.genres_any):
        return False
    if any(has(s) for s in constraints.genres_none):
        return False
    year = meta.get("year", UNKNOWN_YEAR)
    if constraints.year_min is not None and (year == UNKNOWN_YEAR or year < constraints.year_min):
        return False
    if constraints.year_max is not None and (year == UNKNOWN_YEAR or year > constraints.year_max):
        return False
    if year != UNKNOWN_YEAR and any(a <= year <= b for a, b in constraints.years_none):
        return False
    return not constraints.has_facts() or _metadata_facts_satisfy(meta, constraints)


def _metadata_facts_satisfy(meta: dict, constraints: Constraints) -> bool:
    if "runtime" not in meta:  # no facts joined
        return False
    people = set(meta.get("people") or ())
    if constraints.people_all or constraints.people_none:
        if not people:
            return False
        if not all(people & set(p.metadata_values()) for p in constraints.people_all):
            return False
        if any(people & set(p.metadata_values()) for p in constraints.people_none):
            return False
    language = meta.get("language") or None
    if constraints.languages_any and language not in constraints.languages_any:
        return False
    if constraints.languages_none and (language is None or language in constraints.languages_none):
        return False
    if constraints.countries_any and not set(meta.get("countries") or ()) & constraints.countries_any:
        return False
    runtime = meta.get("runtime", UNKNOWN)
    if constraints.runtime_min is not None and (runtime == UNKNOWN or runtime < constraints.runtime_min):
        return False
    if constraints.runtime_max is not None and (runtime == UNKNOWN or runtime > constraints.runtime_max):
        return False
    if constraints.oscar_winner and meta.get("oscars", UNKNOWN) < 1:
        return False
    if constraints.acclaimed and meta.get("critics", UNKNOWN) < ACCLAIMED_CRITICS_SCORE:
        return False
    return True
