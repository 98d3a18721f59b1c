"""Explanations built from real evidence: the request it satisfies, the user's own history,
the reference title, and the item's text. Item text is quoted as data, never interpreted."""
from __future__ import annotations

import re

import numpy as np

from data.catalogue import Interaction, Item
from data.facts import facts_of, person_key
from retrieval.filters import Constraints

MAX_SNIPPET_CHARS = 160


def _first_sentence(text: str) -> str:
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    return sentence if len(sentence) <= MAX_SNIPPET_CHARS else sentence[: MAX_SNIPPET_CHARS - 1].rstrip() + "…"


def explain(item: Item, constraints: Constraints, evidence: Interaction | None, evidence_item: Item | None,
            reference: Item | None, co_liked: tuple[str, int, int] | None = None) -> str:
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
    reasons.extend(fact_reasons(item, constraints))
    head = "; ".join(reasons) if reasons else f"matches your request ({', '.join(item.genres) or 'no genre'})"
    text = head[0].upper() + head[1:] + "."
    if co_liked is not None:
        label, lovers, both = co_liked
        text += f" {both / lovers:.0%} of the {lovers:,} people who loved {label} also loved it."
    if item.description:
        text += f" Plot: “{_first_sentence(item.description)}”"
    return text


def fact_reasons(item: Item, constraints: Constraints) -> list[str]:
    """The fact constraints this film meets, stated from its facts."""
    facts = facts_of(item)
    if facts is None:
        return []
    reasons = []
    directed = [p.label for p in constraints.people_all if p.role == "director" or
                (p.role == "any" and any(person_key(n) in p.keys for n in facts.directors))]
    starring = [p.label for p in constraints.people_all if p.label not in directed]
    if directed:
        reasons.append("directed by " + " and ".join(directed))
    if starring:
        reasons.append("with " + " and ".join(starring))
    if (constraints.runtime_min is not None or constraints.runtime_max is not None) and facts.runtime:
        reasons.append(f"{facts.runtime} minutes")
    if (constraints.languages_any or constraints.languages_none) and facts.language:
        reasons.append(f"in {facts.language}")
    if constraints.countries_any and facts.countries:
        reasons.append("made in " + ", ".join(facts.countries[:3]))
    if constraints.oscar_winner and facts.oscars_won:
        reasons.append(f"won {facts.oscars_won} Oscar{'s' if facts.oscars_won > 1 else ''}")
    if constraints.acclaimed and facts.critics_score is not None:
        source = "Rotten Tomatoes" if facts.rt_meter == facts.critics_score else "Metacritic"
        reasons.append(f"critics' score {facts.critics_score} ({source})")
    return reasons


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
