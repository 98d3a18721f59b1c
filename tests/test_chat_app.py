"""The chat app's public API, served for real on loopback and driven with gradio_client; and the
promise that `recsys recommend --batch` gives the same items as the chat for a single-turn request."""
from __future__ import annotations

import json

from tests.test_cli import run

FEEDBACK_USER = "41"  # users no other test rates, so their profiles are the ingested ones
BATCH_USER = "77"
TAB_USER = "31"


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def test_public_api_recommend_then_feedback(served_app):
    url, assistant = served_app
    api = client(url)
    endpoints = api.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(endpoints) == {"/recommend", "/feedback"}  # every other handler is private

    out = api.predict("scary movies from the 80s", FEEDBACK_USER, 5, api_name="/recommend")
    assert out["kind"] == "recommendations" and out["returned"] == 5 and out["requested"] == 5
    assert out["constraints"] == "genres: horror; years 1980-1989" and out["user_id"] == FEEDBACK_USER
    for item in out["items"]:
        assert set(item) == {"item_id", "title", "year", "genres", "score", "explanation"}
        assert "Horror" in item["genres"] and 1980 <= item["year"] <= 1989 and item["explanation"]
    target = out["items"][0]["item_id"]

    first = api.predict(target, False, "", api_name="/feedback")
    again = api.predict(target, False, "", api_name="/feedback")  # the same click, resubmitted
    assert first["stored"] and not again["stored"] and first["event_id"] == again["event_id"]
    changed = api.predict(target, True, "", api_name="/feedback")  # a change of mind is a new event
    assert changed["stored"] and changed["event_id"] != first["event_id"]
    mine = api.predict(out["items"][1]["item_id"], False, "client-42", api_name="/feedback")
    assert mine["event_id"] == "client-42" and not api.predict(
        out["items"][1]["item_id"], False, "client-42", api_name="/feedback")["stored"]
    events = assistant.store.events("ml-100k", FEEDBACK_USER)
    assert [(e.item_id, e.value) for e in events] == [(target, "dislike"), (target, "like"),
                                                      (out["items"][1]["item_id"], "dislike")]

    refined = api.predict("older ones", FEEDBACK_USER, 5, api_name="/recommend")  # the session goes on
    assert refined["items"] and all(i["year"] < 1980 and "Horror" in i["genres"] for i in refined["items"])
    assert out["items"][1]["item_id"] not in {i["item_id"] for i in refined["items"]}

    assert "error" in api.predict("nope", True, "", api_name="/feedback")
    assert "unknown user" in api.predict("comedy", "no-such-user", 5, api_name="/recommend")["error"]
    assert "error" in client(url).predict(target, True, "", api_name="/feedback")  # a new tab has no session


def test_each_tab_has_its_own_session(served_app):
    url, _ = served_app
    tab_a, tab_b = client(url), client(url)
    a1 = tab_a.predict("a western", TAB_USER, 4, api_name="/recommend")
    a2 = tab_a.predict("something else", TAB_USER, 4, api_name="/recommend")
    b1 = tab_b.predict("a western", TAB_USER, 4, api_name="/recommend")
    ids = lambda out: [i["item_id"] for i in out["items"]]  # noqa: E731
    assert ids(b1) == ids(a1)  # tab B did not inherit tab A's shown items
    assert not set(ids(a2)) & set(ids(a1))
    assert a1["session_id"] != b1["session_id"]


def test_batch_gives_the_same_items_as_the_chat(served_app, ml100k, tmp_path):
    url, _ = served_app
    home = ml100k[0]
    requests = [{"q": "a funny 90s comedy", "user": BATCH_USER, "k": 6},
                {"q": "scary movies from the 80s but nothing too gory", "user": BATCH_USER, "k": 5},
                {"q": "more like Alien", "k": 5}]
    batch = tmp_path / "q.jsonl"
    batch.write_text("\n".join(json.dumps(r) for r in requests) + "\n")
    proc = run(["recommend", "--batch", str(batch)], home)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    for request, line in zip(requests, lines, strict=True):
        chat = client(url).predict(request["q"], request.get("user", ""), request["k"], api_name="/recommend")
        assert line["items"] and [i["item_id"] for i in line["items"]] == [i["item_id"] for i in chat["items"]]
        assert line["constraints"] == chat["constraints"] and line["message"] == chat["message"]
