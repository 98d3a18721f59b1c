"""Explanations built from real evidence: the request it satisfies, the user's own history,
the reference title, and the item's text. Item text is quoted as data, never interpreted."""
from __future__ import annotations

import re

import numpy as np

from data.catalogue import Interaction, Item
from retrieval.filters import Constraints

MAX_SNIPPET_CHARS = 160


def _first_sentence(text: str) -> str:
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return sentence if len(sentence) <= MAX_SNIPPET_CHARS else sentence[: MAX_SNIPPET_CHARS - 1].rstrip() + "…"


def explain(item: Item, constraints: Constraints, evidence: Interaction | None, evidence_item: Item | None,
            reference: Item | None) -> str:
    reasons = []
    wanted = (constraints.genres_all | constraints.genres_any) & set(item.genre_slugs)
    if wanted or constraints.year_min is not None or constraints.year_max is not None:
        genre_names = [g for g, slug in zip(item.genres, item.genre_slugs) if slug in wanted]
        what = " ".join(filter(None, ["/".join(genre_names), "film"]))
        reasons.append(f"a {what} from {item.year}" if item.year else f"a {what}")
    if reference is not None:
        shared = sorted(set(item.genres) & set(reference.genres))
        reasons.append(f"close to {reference.label}" + (f" (shares {', '.join(shared)})" if shared else ""))
    if evidence is not None and evidence_item is not None and (reference is None
                                                                or evidence_item.item_id != reference.item_id):
        shared = [g for g in item.genres if g in evidence_item.genres]
        reasons.append(f"you rated {evidence_item.label} {evidence.rating:g}/5"
                       + (f" ({'/'.join(shared)} too)" if shared else ""))
    head = "; ".join(reasons) if reasons else f"matches your request ({', '.join(item.genres) or 'no genre'})"
    text = head[0].upper() + head[1:] + "."
    if item.description:
        text += f" Plot: “{_first_sentence(item.description)}”"
    return text


EVIDENCE_MIN_SIMILARITY = 0.3


def closest_liked(candidate_vector: np.ndarray, liked: list[tuple[Interaction, np.ndarray]],
                  min_similarity: float = EVIDENCE_MIN_SIMILARITY) -> Interaction | None:
    """The user's liked item whose vector is closest to the candidate: the grounding evidence. None when
    even the closest is not close (cosine below `min_similarity`): no evidence beats a made-up link."""
    if not liked:
        return None
    sims = np.stack([v for _, v in liked]) @ candidate_vector
    best = int(np.argmax(sims))
    return liked[best][0] if sims[best] >= min_similarity else None
