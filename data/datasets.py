"""Build the canonical stored data sets from raw files under the runtime home."""
from __future__ import annotations

from pathlib import Path

from data.fetch import is_complete
from data.forgotten import ForgottenUsers
from data.home import RuntimeHome
from data.importer import read_catalogue, read_interactions
from data.movielens import load_interactions, load_items
from data.facts import FactsCoverage, attach_facts, load_facts
from data.registry import DATASETS, FILM_FACTS, FILM_SUMMARIES
from data.store import write_dataset
from data.summaries import Coverage, attach_summaries, load_summaries

MOVIELENS = ("ml-1m", "ml-100k")


class MissingRawData(RuntimeError):
    pass


def build_movielens(home: RuntimeHome, name: str) -> tuple[Coverage, FactsCoverage]:
    if name not in MOVIELENS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(MOVIELENS)}")
    for artifact in (DATASETS[name], FILM_SUMMARIES, FILM_FACTS):
        if not is_complete(artifact, home.raw):
            raise MissingRawData(f"{artifact.name} has not been fetched; run `recsys setup` first")
    items = load_items(home.raw / name, name)
    summaries = load_summaries(home.raw / FILM_SUMMARIES.name / "movie_summaries.json")
    items, coverage = attach_summaries(items, summaries)
    items, facts_coverage = attach_facts(items, load_facts(home.raw / FILM_FACTS.name / "movies.db"))
    forgotten = ForgottenUsers(home.forgotten_users()).of(name)
    interactions = (x for x in load_interactions(home.raw / name, name) if x.user_id not in forgotten)
    write_dataset(home.dataset_db(name), items, interactions,
                  meta={"source": name, "summary_coverage": {"matched": coverage.matched, "items": coverage.items},
                        "facts_coverage": facts_coverage.to_json()})
    return coverage, facts_coverage


def build_custom(home: RuntimeHome, name: str, catalogue: Path, interactions: Path | None) -> int:
    """Validate both files completely, then write the data set; returns the item count."""
    items = read_catalogue(catalogue)
    events = read_interactions(interactions, {i.item_id for i in items}) if interactions else []
    forgotten = ForgottenUsers(home.forgotten_users()).of(name)
    events = [x for x in events if x.user_id not in forgotten]
    write_dataset(home.dataset_db(name), items, events,
                  meta={"source": str(catalogue), "interactions_source": str(interactions or "")})
    return len(items)
