"""`recsys chat`: the terminal loop on the same Assistant, driven with scripted input."""
from __future__ import annotations

import pytest

from assistant.assistant import Assistant
from data.feedback import DISLIKE, LIKE, FeedbackStore
from ui.terminal import run_chat


def scripted(lines):
    feed = iter(lines)

    def read(prompt):
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    return read


@pytest.fixture
def assistant(recommender_100k, tmp_path):
    return Assistant(recommender_100k, FeedbackStore(tmp_path / "events.sqlite"))


def test_chat_lists_explained_picks_and_takes_thumbs(assistant):
    out = []
    code = run_chat(assistant, "34", k=4, read=scripted(["a western", ":like 1", ":dislike 2", ":dislike 9",
                                                         "older ones", ":history", ":bogus", ":quit", "never read"]),
                    write=out.append)
    text = "\n".join(out)
    assert code == 0 and "Chatting as user 34" in text
    assert " 1. " in text and " 4. " in text and "[Western" in text
    events = assistant.store.events(user_id="34")
    assert [e.value for e in events] == [LIKE, DISLIKE]
    assert "Give a pick number from 1 to 4" in text and "Unknown command :bogus" in text
    assert "older than what you saw" in text.lower()
    liked = assistant.recommender.items[events[0].item_id].label
    assert any(f"{liked}  (5)" in chunk for chunk in out)  # :history lists the thumbs-up


def test_chat_ends_at_end_of_input_and_needs_a_list_to_rate(assistant):
    out = []
    assert run_chat(assistant, None, read=scripted([":like 1", "", "hello"]), write=out.append) == 0
    assert "Chatting as new user" in out[0] and "Nothing to rate yet" in "\n".join(out)
