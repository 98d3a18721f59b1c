"""The canonical catalogue and interactions every data set is converted into."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

# MovieLens genre names and the slug used as a metadata key (g_<slug>) everywhere else.
MOVIELENS_GENRES = ("Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
                    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
                    "Thriller", "War", "Western")

_TRAILING_ARTICLE = re.compile(
    r"^(?P<body>.+?), (?P<article>The|A|An|La|Le|Les|L'|Il|Lo|Das|Der|Die|El|Los|Las|Det|Den)"
    r"(?P<rest>\s*\(.*\))?$")


def genre_slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", name.strip().lower().replace("'s", "")).strip("_")
    if not slug:
        raise ValueError(f"genre name {name!r} has no letters or digits")
    return slug


def normalise_title(title: str) -> str:
    """'Matrix, The' -> 'The Matrix'; 'City of Lost Children, The (Cité...)' -> 'The City of ...'."""
    title = " ".join(title.split())
    match = _TRAILING_ARTICLE.match(title)
    if not match:
        return title
    article = match["article"]
    joiner = "" if article.endswith("'") else " "
    return f"{article}{joiner}{match['body']}{match['rest'] or ''}"


@dataclass(frozen=True)
class Item:
    item_id: str
    title: str
    year: int | None
    genres: tuple[str, ...]
    description: str = ""
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def text(self) -> str:
        """What the embedder sees: what the film is (year, genres, credits, language) and, where known,
        what it is about. Never the title: a title is a name, and a request must not match a film
        because a word of it appears in the title."""
        parts = [f"A {self.year} film." if self.year is not None else "A film."]
        if self.genres:
            parts.append("Genres: " + ", ".join(self.genres) + ".")
        facts = (self.extra or {}).get("facts") or {}
        if facts.get("directors"):
            parts.append("Directed by " + ", ".join(facts["directors"][:3]) + ".")
        if facts.get("cast"):
            parts.append("Starring " + ", ".join(facts["cast"][:4]) + ".")
        if facts.get("languages"):
            parts.append(f"In {facts['languages'][0]}.")
        if self.description:
            parts.append(self.description_without_title())
        return " ".join(parts)

    def description_without_title(self) -> str:
        names = {re.sub(r"\s*\(.*?\)\s*$", "", self.title).strip()}
        names |= {n.strip() for n in re.findall(r"\(([^()]*)\)", self.title)}
        text = self.description
        for name in sorted(filter(None, names), key=len, reverse=True):
            text = re.sub(r"(?<!\w)" + re.escape(name) + r"(?!\w)", "the film", text, flags=re.IGNORECASE)
        return text

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    @property
    def genre_slugs(self) -> tuple[str, ...]:
        return tuple(genre_slug(g) for g in self.genres)

    @property
    def label(self) -> str:
        return self.title if self.year is None else f"{self.title} ({self.year})"

    def to_json(self) -> dict:
        return {"item_id": self.item_id, "title": self.title, "year": self.year, "genres": list(self.genres),
                "description": self.description, "extra": self.extra}

    @staticmethod
    def from_row(item_id: str, title: str, year, genres_json: str, description: str, extra_json: str) -> "Item":
        return Item(item_id, title, None if year is None else int(year), tuple(json.loads(genres_json)),
                    description, json.loads(extra_json))


@dataclass(frozen=True)
class Interaction:
    user_id: str
    item_id: str
    rating: float
    timestamp: int
