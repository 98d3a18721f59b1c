"""Hard constraints on items and their translation into Chroma `where` filters."""
from __future__ import annotations

from dataclasses import dataclass, field

from data.catalogue import Item

UNKNOWN_YEAR = -1


@dataclass(frozen=True)
class Constraints:
    genres_all: frozenset[str] = field(default_factory=frozenset)  # genre slugs
    genres_any: frozenset[str] = field(default_factory=frozenset)
    genres_none: frozenset[str] = field(default_factory=frozenset)
    year_min: int | None = None  # inclusive
    year_max: int | None = None  # inclusive
    years_none: frozenset[tuple[int, int]] = field(default_factory=frozenset)  # excluded (first, last) year ranges

    def is_empty(self) -> bool:
        return not (self.genres_all or self.genres_any or self.genres_none or self.years_none
                    or self.year_min is not None or self.year_max is not None)

    def is_contradictory(self) -> bool:
        if self.year_min is not None and self.year_max is not None and self.year_min > self.year_max:
            return True
        if self.year_min is not None and self.year_max is not None and any(
                a <= self.year_min and self.year_max <= b for a, b in self.years_none):
            return True
        if self.genres_all & self.genres_none:
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
        return "; ".join(parts) or "no constraints"


def genre_key(slug: str) -> str:
    return f"g_{slug}"


def item_metadata(item: Item, genre_vocabulary: list[str]) -> dict:
    """Chroma metadata: year and one boolean per genre of the whole catalogue (False included)."""
    own = set(item.genre_slugs)
    meta = {"title": item.title, "year": item.year if item.year is not None else UNKNOWN_YEAR,
            "content_hash": item.content_hash}
    meta.update({genre_key(slug): slug in own for slug in genre_vocabulary})
    return meta


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
    return True
