"""Import a user's own catalogue and interactions from CSV or JSONL, validating every line.

A malformed file is rejected with its path, line number and reason, before anything is
written. Catalogue fields: item_id, title (required), year, genres (JSON list, or a
'|'-separated string in CSV), description; other fields are kept as extra metadata.
Interaction fields: user_id, item_id, rating, timestamp (all required).
"""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Iterator

from data.catalogue import Interaction, Item, genre_slug, normalise_title

MAX_TITLE_CHARS = 500
MAX_DESCRIPTION_CHARS = 20_000
MAX_ID_CHARS = 200
YEAR_RANGE = (1850, 2100)
ITEM_FIELDS = {"item_id", "title", "year", "genres", "description"}
INTERACTION_FIELDS = ("user_id", "item_id", "rating", "timestamp")


class MalformedFile(ValueError):
    def __init__(self, path: Path, line: int, reason: str):
        super().__init__(f"{path}:{line}: {reason}")
        self.path, self.line, self.reason = path, line, reason


def _records(path: Path) -> Iterator[tuple[int, dict]]:
    if not path.exists():
        raise MalformedFile(path, 0, "file does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as err:
                        raise MalformedFile(path, number, f"invalid JSON ({err.msg})") from None
                    if not isinstance(record, dict):
                        raise MalformedFile(path, number, "each line must be a JSON object")
                    yield number, record
        elif suffix == ".csv":
            with path.open(encoding="utf-8", newline="") as handle:
                reader = csv.DictReader(handle)
                if not reader.fieldnames:
                    raise MalformedFile(path, 1, "empty file: a header row is required")
                for record in reader:
                    if None in record:
                        raise MalformedFile(path, reader.line_num, "more fields than the header has")
                    if any(v is None for v in record.values()):
                        raise MalformedFile(path, reader.line_num, "fewer fields than the header has")
                    yield reader.line_num, record
        else:
            raise MalformedFile(path, 0, f"unsupported file type {suffix!r}: use .csv or .jsonl")
    except UnicodeDecodeError as err:
        raise MalformedFile(path, 0, f"not UTF-8 text ({err.reason})") from None


def _text(path, line, record, name, required, limit) -> str:
    value = record.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise MalformedFile(path, line, f"missing required field {name!r}")
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise MalformedFile(path, line, f"field {name!r} must be text")
    value = " ".join(str(value).split())
    if len(value) > limit:
        raise MalformedFile(path, line, f"field {name!r} is {len(value)} characters, over the limit of {limit}")
    return value


def _year(path, line, value) -> int | None:
    if value is None or value == "":
        return None
    try:
        year = int(str(value).strip())
    except ValueError:
        raise MalformedFile(path, line, f"year {value!r} is not a whole number") from None
    if not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
        raise MalformedFile(path, line, f"year {year} is outside {YEAR_RANGE[0]}-{YEAR_RANGE[1]}")
    return year


def _genres(path, line, value) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        value = value.split("|")
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise MalformedFile(path, line, "genres must be a list of strings (or 'A|B' in CSV)")
    genres = tuple(dict.fromkeys(" ".join(g.split()) for g in value if g.strip()))
    for genre in genres:
        try:
            genre_slug(genre)
        except ValueError as err:
            raise MalformedFile(path, line, str(err)) from None
    return genres


def read_catalogue(path: Path) -> list[Item]:
    items: dict[str, Item] = {}
    for line, record in _records(path):
        item_id = _text(path, line, record, "item_id", True, MAX_ID_CHARS)
        if item_id in items:
            raise MalformedFile(path, line, f"duplicate item_id {item_id!r}")
        title = normalise_title(_text(path, line, record, "title", True, MAX_TITLE_CHARS))
        extra = {k: v for k, v in record.items() if k not in ITEM_FIELDS}
        items[item_id] = Item(item_id, title, _year(path, line, record.get("year")),
                              _genres(path, line, record.get("genres")),
                              _text(path, line, record, "description", False, MAX_DESCRIPTION_CHARS),
                              {**extra, "source": str(path.name)})
    if not items:
        raise MalformedFile(path, 0, "the catalogue holds no items")
    return list(items.values())


def read_interactions(path: Path, known_items: set[str]) -> list[Interaction]:
    out = []
    for line, record in _records(path):
        missing = [f for f in INTERACTION_FIELDS if record.get(f) in (None, "")]
        if missing:
            raise MalformedFile(path, line, f"missing required field(s) {', '.join(missing)}")
        user_id = _text(path, line, record, "user_id", True, MAX_ID_CHARS)
        item_id = _text(path, line, record, "item_id", True, MAX_ID_CHARS)
        if item_id not in known_items:
            raise MalformedFile(path, line, f"unknown item_id {item_id!r} (not in the catalogue)")
        try:
            rating = float(record["rating"])
        except (TypeError, ValueError):
            raise MalformedFile(path, line, f"rating {record['rating']!r} is not a number") from None
        if not math.isfinite(rating):
            raise MalformedFile(path, line, "rating must be finite")
        try:
            timestamp = int(str(record["timestamp"]).strip())
        except ValueError:
            raise MalformedFile(path, line, f"timestamp {record['timestamp']!r} is not a Unix time in seconds") from None
        if timestamp < 0:
            raise MalformedFile(path, line, "timestamp must not be negative")
        out.append(Interaction(user_id, item_id, rating, timestamp))
    return out
