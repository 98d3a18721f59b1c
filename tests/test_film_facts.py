"""Film facts: the join onto a catalogue, and the hard constraints they serve (logic, tiny fixtures)."""
from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

from data.catalogue import Item
from data.facts import FACTS_KEY, FilmFacts, attach_facts, facts_of, load_facts
from retrieval.filters import Constraints, Person, item_metadata, metadata_satisfies, satisfies

_OMDB = """CREATE TABLE omdb (ID INTEGER, imdbID TEXT, Title TEXT, Year INTEGER, Rating TEXT, Runtime REAL,
Genre TEXT, Released TEXT, Director TEXT, Writer TEXT, "Cast" TEXT, Metacritic INTEGER, imdbRating REAL,
imdbVotes INTEGER, Language TEXT, Country TEXT, Awards TEXT, lastUpdated TEXT, Oscars INTEGER)"""
_TOMATOES = """CREATE TABLE tomatoes (ID INTEGER, Image TEXT, Rating REAL, Meter INTEGER, Reviews INTEGER,
Fresh INTEGER, Rotten INTEGER, Consensus TEXT, userMeter INTEGER, userRating REAL, userReviews INTEGER, DVD TEXT,
BoxOffice REAL, Production TEXT, Website TEXT, lastUpdated TEXT)"""


def _db(tmp_path, rows):
    path = tmp_path / "movies.db"
    conn = sqlite3.connect(path)
    conn.execute(_OMDB)
    conn.execute(_TOMATOES)
    for n, (title, year, director, cast, runtime, language, votes, awards, meter) in enumerate(rows):
        conn.execute("INSERT INTO omdb (ID, Title, Year, Runtime, Director, \"Cast\", Language, Country, imdbVotes, "
                     "Awards, Oscars) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                     (n, title, year, runtime, director, cast, language, "United States", votes, awards, 0))
        conn.execute("INSERT INTO tomatoes (ID, Meter, Reviews) VALUES (?,?,?)", (n, meter, 40))
    conn.commit()
    conn.close()
    return path


def test_the_join_uses_title_keys_year_tolerance_and_the_most_voted_row(tmp_path):
    path = _db(tmp_path, [
        ("Heat", 1995, "Michael Mann", "Al Pacino, Robert De Niro, Val Kilmer", 170, "English", 500000, None, 86),
        ("Heat", 1986, "Dick Richards", "Burt Reynolds", 101, "English", 900, None, 17),
        ("Heat", 1995, "Someone Else", "Nobody", 90, "English", 12, None, 10),  # fewer votes: loses
        ("Shall We Dance?", 1997, "Masayuki Suo", "Koji Yakusho", 136, "Japanese", 9000,
         "Won 1 Oscar. Nominated for 2 Oscars.", 90),
        ("Matrix", 1999, "Lana Wachowski, Lilly Wachowski", "Keanu Reeves", 136, "English", 1, None, 87),
    ])
    items = [Item("Heat (1995)", "Heat", 1995, ("Action",)),
             Item("Shall We Dance? (Shall We Dansu?) (1996)", "Shall We Dansu? (Shall We Dance?)", 1996, ("Comedy",)),
             Item("Matrix, The (1999)", "The Matrix", 1999, ("Sci-Fi",)),
             Item("Unknown Film (1970)", "Unknown Film", 1970, ("Drama",))]
    joined, coverage = attach_facts(items, load_facts(path))
    assert coverage.matched == 3 and coverage.items == 4
    heat, dance, matrix, unknown = (facts_of(i) for i in joined)
    assert heat.directors == ("Michael Mann",) and heat.runtime == 170 and heat.critics_score == 86
    assert dance.language == "Japanese" and dance.oscars_won == 1 and dance.oscars_nominated == 3
    assert matrix.directors == ("Lana Wachowski", "Lilly Wachowski")  # "The Matrix" joins "Matrix"
    assert unknown is None and FACTS_KEY not in joined[3].extra  # never guessed


def test_a_missing_or_malformed_database_is_a_clear_error(tmp_path):
    import pytest

    with pytest.raises(FileNotFoundError, match="recsys setup"):
        load_facts(tmp_path / "absent.db")
    (tmp_path / "bad.db").write_text("not a database")
    with pytest.raises(ValueError, match="not the expected film facts database"):
        load_facts(tmp_path / "bad.db")


def test_item_text_never_holds_the_title():
    item = Item("x", "The Shining", 1980, ("Horror",), "The Shining is a 1980 horror film. In The Shining, a "
                "caretaker goes mad.", {FACTS_KEY: FilmFacts(directors=("Stanley Kubrick",)).to_json()})
    assert "shining" not in item.text.lower()
    assert "Stanley Kubrick" in item.text and "caretaker goes mad" in item.text


NAMES = ["Ann Able", "Ben Black", "Cid Cole", "Dee Dunn", "Eve East"]


@st.composite
def films(draw):
    known = draw(st.booleans())
    extra = {}
    if known:
        facts = FilmFacts(directors=tuple(draw(st.lists(st.sampled_from(NAMES), min_size=0, max_size=2, unique=True))),
                          cast=tuple(draw(st.lists(st.sampled_from(NAMES), min_size=0, max_size=3, unique=True))),
                          runtime=draw(st.one_of(st.none(), st.integers(60, 220))),
                          languages=tuple(draw(st.lists(st.sampled_from(["English", "French"]), max_size=1))))
        extra = {FACTS_KEY: facts.to_json()}
    return Item("x", "Film", 1990, ("Drama",), "", extra)


people = st.builds(lambda role, names: Person(role, tuple(sorted({n.lower() for n in names})), "/".join(names)),
                   st.sampled_from(["director", "cast", "any"]),
                   st.lists(st.sampled_from(NAMES), min_size=1, max_size=2))


@settings(max_examples=300, deadline=None)
@given(films(), people)
def test_a_film_crediting_a_negated_person_never_satisfies(item, person):
    constraints = Constraints(people_none=frozenset({person}))
    facts = facts_of(item)
    if satisfies(item, constraints):
        assert facts is not None and facts.directors and facts.cast  # unknown credits never pass
        assert not person.credited(facts)


@settings(max_examples=300, deadline=None)
@given(films(), st.lists(people, max_size=1), st.lists(people, max_size=1),
       st.one_of(st.none(), st.integers(60, 200)), st.one_of(st.none(), st.integers(60, 200)),
       st.sets(st.sampled_from(["English", "French"]), max_size=1))
def test_chroma_metadata_and_the_item_check_agree(item, wanted, unwanted, low, high, languages):
    constraints = Constraints(people_all=frozenset(wanted), people_none=frozenset(unwanted), runtime_min=low,
                              runtime_max=high, languages_any=frozenset(languages))
    assert metadata_satisfies(item_metadata(item, ["drama"]), constraints) == satisfies(item, constraints)
