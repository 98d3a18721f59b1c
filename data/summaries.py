"""Attach Wikipedia plot summaries to catalogue items whose title and year match."""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, replace
from pathlib import Path

from data.catalogue import Item

_KEY_SUFFIX = re.compile(r"\s*\((?:(?P<year>\d{4}) )?(?:[\w ]+ )?film\)$")
# "... is a 1958 American film noir ..." : a year followed, within the same clause, by "film"/"movie".
_FILM_YEAR = re.compile(r"\b(18[89]\d|19\d\d|20[0-2]\d)\b[^.;]{0,120}?\b(?:film|movie|picture)\b")
YEAR_TOLERANCE = 1  # release years differ by a year between countries and between sources
_ALT_TITLE = re.compile(r"\s*\(.*?\)")


def match_key(title: str) -> str:
    """Case, accent and punctuation-insensitive form of a title; drops '(a.k.a. ...)' parts."""
    title = _ALT_TITLE.sub("", title)
    title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    title = title.lower().replace("&", "and")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", title).split())


@dataclass(frozen=True)
class Summary:
    title: str
    year: int | None
    text: str


def load_summaries(path: Path) -> list[Summary]:
    raw = json.loads(path.read_text(encoding="utf-8"))
    summaries = []
    for key, text in raw.items():
        suffix = _KEY_SUFFIX.search(key)
        year = int(suffix["year"]) if suffix and suffix["year"] else None
        title = key[: suffix.start()] if suffix else key
        if year is None:
            found = _FILM_YEAR.search(text[:400])
            year = int(found.group(1)) if found else None
        summaries.append(Summary(title.strip(), year, " ".join(text.split())))
    return summaries


@dataclass(frozen=True)
class Coverage:
    matched: int
    items: int
    summaries: int

    @property
    def ratio(self) -> float:
        return self.matched / self.items if self.items else 0.0


def attach_summaries(items: list[Item], summaries: list[Summary]) -> tuple[list[Item], Coverage]:
    by_key = {(match_key(s.title), s.year): s for s in summaries if s.year is not None}
    out, matched = [], 0
    for item in items:
        summary = None
        if item.year is not None:
            for delta in sorted(range(-YEAR_TOLERANCE, YEAR_TOLERANCE + 1), key=abs):
                summary = summary or by_key.get((match_key(item.title), item.year + delta))
        if summary is None:
            out.append(item)
            continue
        matched += 1
        out.append(replace(item, description=summary.text,
                           extra={**item.extra, "description_source": "wikipedia (CC BY-SA)"}))
    return out, Coverage(matched, len(items), len(summaries))
