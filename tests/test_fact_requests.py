"""The fact parts of a request on a tiny catalogue: people, language, runtime, awards, critics."""
from __future__ import annotations

import pytest

from assistant.fact_requests import FactParser
from assistant.request_parser import RequestParser, TitleEntry
from data.catalogue import Item
from data.facts import FACTS_KEY, FilmFacts


def film(title, year, directors=(), cast=(), runtime=None, language="English", oscars=0, meter=None, genres=("Drama",)):
    facts = FilmFacts(directors=tuple(directors), cast=tuple(cast), runtime=runtime, languages=(language,),
                      countries=("United States",), oscars_won=oscars, rt_meter=meter, rt_reviews=50 if meter else None)
    return Item(f"{title} ({year})", title, year, tuple(genres), "", {FACTS_KEY: facts.to_json()})


ITEMS = [film("Big", 1988, ["Penny Marshall"], ["Tom Hanks"], 104, genres=("Comedy",)),
         film("Splash", 1984, ["Ron Howard"], ["Tom Hanks", "Daryl Hannah"], 111, genres=("Comedy",)),
         film("The Mask", 1994, ["Chuck Russell"], ["Jim Carrey"], 101, genres=("Comedy",)),
         film("Fargo", 1996, ["Joel Coen", "Ethan Coen"], ["Frances McDormand"], 98, oscars=2, meter=94),
         film("Raising Arizona", 1987, ["Joel Coen", "Ethan Coen"], ["Nicolas Cage"], 94),
         film("Alien", 1979, ["Ridley Scott"], ["Sigourney Weaver"], 117, meter=97),
         film("Top Gun", 1986, ["Tony Scott"], ["Tom Cruise"], 110),
         film("Heat", 1995, ["Michael Mann"], ["Al Pacino", "Robert De Niro"], 170),
         film("Amelie", 2001, ["Jean-Pierre Jeunet"], ["Audrey Tautou"], 122, language="French"),
         film("Jaws", 1975, ["Steven Spielberg"], ["Roy Scheider"], 124, oscars=3, meter=97),
         film("E.T.", 1982, ["Steven Spielberg"], ["Henry Thomas"], 115, oscars=4)]


@pytest.fixture(scope="module")
def parser():
    return RequestParser([TitleEntry(i.item_id, i.title, i.year) for i in ITEMS], ["comedy", "drama"],
                         FactParser(ITEMS))


def test_cast_and_negated_cast(parser):
    request = parser.parse("a comedy with Tom Hanks")
    assert [p.label for p in request.constraints.people_all] == ["Tom Hanks"]
    assert request.constraints.genres_all == {"comedy"}
    request = parser.parse("a funny 90s comedy, nothing with Jim Carrey")
    assert [p.label for p in request.constraints.people_none] == ["Jim Carrey"]
    assert not request.constraints.people_all and request.constraints.year_min == 1990


def test_directors_by_full_name_surname_and_brothers(parser):
    assert {p.role for p in parser.parse("directed by Michael Mann").constraints.people_all} == {"director"}
    coens = parser.parse("a Coen brothers film").constraints.people_all
    assert len(coens) == 1 and set(next(iter(coens)).keys) == {"joel coen", "ethan coen"}
    assert next(iter(parser.parse("a Spielberg movie").constraints.people_all)).keys == ("steven spielberg",)


def test_an_ambiguous_surname_is_reported_not_applied(parser):
    request = parser.parse("a Scott film")
    assert not request.constraints.people_all
    assert any("Ridley Scott" in n and "Tony Scott" in n and "not applied" in n for n in request.notes)


def test_an_unknown_name_after_a_cue_is_reported_not_applied(parser):
    request = parser.parse("directed by Zorblax")
    assert not request.constraints.people_all and any("Zorblax" in n for n in request.notes)


def test_a_misspelt_name_is_matched_fuzzily_and_said_so(parser):
    request = parser.parse("movies with Tom Hanx")
    assert [p.label for p in request.constraints.people_all] == ["Tom Hanks"]
    assert any("Tom Hanks" in n for n in request.notes)


@pytest.mark.parametrize("text, low, high", [
    ("a thriller under 90 minutes", None, 89), ("longer than two and a half hours", 151, None),
    ("at most 2 hours", None, 120), ("over 2 hours 40 minutes", 161, None),
    ("less than an hour and a half", None, 90), ("a drama that is at least 100 minutes", 100, None)])
def test_runtime(parser, text, low, high):
    constraints = parser.parse(text).constraints
    assert (constraints.runtime_min, constraints.runtime_max) == (low, high)


def test_language_awards_and_critics(parser):
    assert parser.parse("a French film").constraints.languages_any == {"French"}
    assert parser.parse("a foreign film").constraints.languages_none == {"English"}
    assert parser.parse("an Oscar winner").constraints.oscar_winner
    assert parser.parse("something critically acclaimed").constraints.acclaimed


def test_names_inside_a_named_title_are_not_people(parser):
    request = parser.parse("movies like Heat")
    assert request.references == ("Heat (1995)",) and not request.constraints.people_all
    assert request.about == ""
