"""Adapters from the RecBole-format MovieLens files to the canonical catalogue."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

from data.catalogue import Interaction, Item, normalise_title


def _read_atomic_file(path: Path) -> Iterator[dict[str, str]]:
    """RecBole .inter/.item: tab-separated, no quoting, header names carry ':type' suffixes."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = [name.split(":", 1)[0] for name in next(reader)]
        for row in reader:
            if row:
                yield dict(zip(header, row))


def _year(text: str) -> int | None:
    text = text.strip()
    if not text:
        return None
    try:
        return int(float(text))
    except ValueError:
        return None


def load_items(raw_dir: Path, name: str) -> list[Item]:
    title_field = "movie_title"
    genre_field = "genre" if name == "ml-1m" else "class"
    items = []
    for row in _read_atomic_file(raw_dir / f"{name}.item"):
        genres = tuple(g for g in row.get(genre_field, "").split() if g and g != "unknown")
        items.append(Item(item_id=row["item_id"], title=normalise_title(row[title_field]),
                          year=_year(row.get("release_year", "")), genres=genres,
                          extra={"source": name, "original_title": row[title_field]}))
    return items


def load_interactions(raw_dir: Path, name: str) -> Iterator[Interaction]:
    for row in _read_atomic_file(raw_dir / f"{name}.inter"):
        yield Interaction(row["user_id"], row["item_id"], float(row["rating"]), int(float(row["timestamp"])))
