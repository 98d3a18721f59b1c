"""Isolation: one person's feedback, history and session state never reach another person's results.

Two people of opposite tastes (one likes only horror, the other only children's films and
animation) use the served app at the same time through its public API, each from their own tabs
(one gradio_client.Client per tab, so per-tab sessions are exercised). Each runs the same script:
a neutral request, thumbs on the list (like their genre, dislike the rest, on different
positions so that what one dislikes the other leaves unrated), a refinement, a request of their
own taste, a refinement, and the neutral request again in a NEW tab. The twin protocol makes the
claim exact: each script is first run ALONE (a fresh new user, nobody else active), then both
run together, step by step behind a barrier so their turns and thumbs interleave, and every list
must be identical to the solo run's.
"""
from __future__ import annotations

import threading

import numpy as np

K = 8
NEUTRAL = "a film from the 90s"
TASTES = {"horror": ({"Horror"}, "scary movies from the 80s"),
          "kids": ({"Children's", "Animation"}, "an animated film for kids")}


def tab(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def person(url: str, taste: str, offset: int, barrier: threading.Barrier | None = None) -> dict:
    """One person's script; returns what they saw and what they rated. `offset` picks the positions
    of the first list they rate (0: even, 1: odd)."""
    genres, request = TASTES[taste]
    first_tab = tab(url)
    seen, likes, dislikes = {}, [], []

    def sync():
        if barrier is not None:
            barrier.wait(timeout=300)

    def turn(name, text, client, user="", k=K):
        sync()
        out = client.predict(text, user, k, api_name="/recommend")
        assert "error" not in out, out
        seen[name] = {"ids": [i["item_id"] for i in out["items"]], "constraints": out["constraints"],
                      "genres": [set(i["genres"]) for i in out["items"]], "session": out["session_id"]}
        return out

    def thumbs(client, items):
        for item in items:
            sync()
            liked = bool(genres & set(item["genres"]))
            ack = client.predict(item["item_id"], liked, "", api_name="/feedback")
            assert ack["stored"], ack
            (likes if liked else dislikes).append(item["item_id"])

    out = turn("neutral", NEUTRAL, first_tab)
    user_id = out["user_id"]
    thumbs(first_tab, out["items"][offset::2])
    turn("neutral older", "older ones", first_tab)
    out = turn("own taste", request, first_tab)
    thumbs(first_tab, [i for i in out["items"] if genres & set(i["genres"])][:2])
    turn("own taste refined", "no romance", first_tab)
    # a fresh session of the same user; a long list, so that the other's dislikes have room to show up
    turn("neutral again, new tab", NEUTRAL, tab(url), user=user_id, k=40)
    return {"user": user_id, "seen": seen, "likes": likes, "dislikes": dislikes}


def test_two_concurrent_users_of_opposite_tastes_never_reach_each_other(served_app):
    from ui.chat_app import TURN_CONCURRENCY

    assert TURN_CONCURRENCY >= 2, "the two users' turns should really overlap"
    url, assistant = served_app
    solo = {"horror": person(url, "horror", 0), "kids": person(url, "kids", 1)}

    barrier = threading.Barrier(2)
    together, failures = {}, []

    def run(taste, offset):
        try:
            together[taste] = person(url, taste, offset, barrier)
        except BaseException as err:  # noqa: BLE001 - reported below
            failures.append(f"{taste}: {err!r}")
            barrier.abort()

    threads = [threading.Thread(target=run, args=("horror", 0)), threading.Thread(target=run, args=("kids", 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    assert not failures, failures
    horror, kids = together["horror"], together["kids"]

    # Running next to the other person changed nothing: every list, every constraint, as when alone
    for taste in TASTES:
        for step, alone in solo[taste]["seen"].items():
            got = together[taste]["seen"][step]
            assert got["ids"] == alone["ids"], (taste, step)
            assert got["constraints"] == alone["constraints"], (taste, step)
        assert (together[taste]["likes"], together[taste]["dislikes"]) == (solo[taste]["likes"],
                                                                           solo[taste]["dislikes"])

    # The same neutral first request gives both the same list; their tastes then pull them apart
    assert horror["seen"]["neutral"]["ids"] == kids["seen"]["neutral"]["ids"]
    assert horror["likes"] and kids["likes"] and horror["dislikes"] and kids["dislikes"]
    assert all(g & TASTES["horror"][0] for g in horror["seen"]["own taste"]["genres"])
    assert all(g & TASTES["kids"][0] for g in kids["seen"]["own taste"]["genres"])

    # What one disliked never comes back to them, and is excluded for them alone: the exclusion set the
    # engine applies to each user holds exactly their own dislikes. (Whether the other's dislikes show up
    # in a given list depends on where each one's own thumbs moved their profile, so lists are not used.)
    for me, other in ((horror, kids), (kids, horror)):
        again = set(me["seen"]["neutral again, new tab"]["ids"])
        assert not again & set(me["dislikes"])
        _, excluded = assistant.feedback_state(me["user"])
        assert excluded == set(me["dislikes"]) and not excluded & (set(other["dislikes"]) - set(me["dislikes"]))

    # Session constraints stay in their session: each refinement narrows its own request only, and a
    # new tab starts without them
    assert "horror" in horror["seen"]["own taste refined"]["constraints"]
    assert "horror" not in kids["seen"]["own taste refined"]["constraints"]
    assert "romance" in kids["seen"]["own taste refined"]["constraints"]
    for person_ in (horror, kids):
        assert person_["seen"]["neutral again, new tab"]["constraints"] == person_["seen"]["neutral"]["constraints"]
        assert person_["seen"]["neutral again, new tab"]["session"] != person_["seen"]["neutral"]["session"]
    assert horror["seen"]["neutral"]["session"] != kids["seen"]["neutral"]["session"]

    # Stores: each user's events, history and profile hold only their own clicks
    for me in (horror, kids):
        events = assistant.store.events("ml-100k", me["user"])
        assert sorted(e.item_id for e in events) == sorted(me["likes"] + me["dislikes"])
        liked, disliked = assistant.feedback_state(me["user"])
        assert {x.item_id for x in liked} == set(me["likes"]) and disliked == set(me["dislikes"])
        session = assistant.new_session(me["user"])
        assert {x.item_id for x in assistant.history(session)} == set(me["likes"])
    for taste in TASTES:  # the profile moved by the same clicks, whoever else was clicking meanwhile
        a = assistant.recommender.profiles.get(together[taste]["user"])
        b = assistant.recommender.profiles.get(solo[taste]["user"])
        assert a is not None and b is not None and a.events == b.events
        np.testing.assert_allclose(a.vector, b.vector, atol=1e-4)
