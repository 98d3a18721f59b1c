"""The chat app's event logic without a browser: the streamed turn, thumbs, sessions per tab."""
from __future__ import annotations

import itertools

import pytest

from assistant.assistant import Assistant
from data.feedback import DISLIKE, LIKE, FeedbackStore
from ui.controller import NEW_USER, ChatController


class SlowWriter:
    """Stands in for the language-model writer: better texts for the first two cards."""

    def write(self, reply, history):
        for index in range(min(2, len(reply.items))):
            yield index, f"Better <b>reason</b> #{index}"


@pytest.fixture
def controller(recommender_100k, tmp_path):
    return ChatController(Assistant(recommender_100k, FeedbackStore(tmp_path / "events.sqlite")), max_cards=10)


def test_a_turn_streams_cards_first_then_better_explanations(controller):
    controller.assistant.writer = SlowWriter()
    state = controller.start(None, "36")
    frames = []
    for step in itertools.chain(controller.turn(state, "a western", 4), controller.explain(state)):
        frames.append((list(step.messages), list(step.explanations), step.pending))
    echo, cards, *better, done = frames
    assert echo[0][-1] == {"role": "assistant", "content": "…"} and echo[1] == []
    assert len(cards[1]) == 4 and cards[2] is True  # the cards, with template explanations, come first
    assert cards[1] == [r.explanation for r in state.reply.items]
    assert "Western" in cards[0][-1]["content"]
    assert [b[1][:2] for b in better][-1] == ["Better <b>reason</b> #0", "Better <b>reason</b> #1"]
    assert done[2] is False and done[1][2:] == cards[1][2:]
    assert list(controller.explain(state)) == []  # nothing pending any more


def test_a_newer_reply_stops_the_old_explanations(controller):
    controller.assistant.writer = SlowWriter()
    state = controller.start(None, "36")
    list(controller.turn(state, "a western", 3))
    stream = controller.explain(state)
    first = next(stream)
    assert first.explanations[0].startswith("Better")
    list(controller.turn(state, "something else", 3))  # new cards while the old ones are being explained
    assert list(stream) == [] and state.pending  # the old stream stops; the new cards still await theirs
    assert not state.explanations[0].startswith("Better")


def test_thumbs_are_idempotent_per_click_and_a_change_of_mind_counts(controller):
    state = controller.start(None, "36")
    for _ in controller.turn(state, "a comedy", 3):
        pass
    item = state.items[0].item.item_id
    controller.item_feedback(state, 0, True)
    controller.item_feedback(state, 0, True)  # a double click
    assert "Already noted" in state.notice
    controller.item_feedback(state, 0, False)
    controller.item_feedback(state, 0, True)
    events = controller.assistant.store.events(user_id="36")
    assert [(e.item_id, e.value) for e in events] == [(item, LIKE), (item, DISLIKE), (item, LIKE)]
    assert len({e.event_id for e in events}) == 3 and state.marks[item] == LIKE
    controller.item_feedback(state, 7, True)
    assert "gone" in state.notice

    controller.message_feedback(state, 1, False)
    controller.message_feedback(state, 1, False)
    controller.message_feedback(state, 1, "")  # un-clicked: nothing stored
    [thumb] = controller.assistant.store.message_events(user_id="36")
    assert thumb.value == DISLIKE and thumb.context["items"] == [r.item.item_id for r in state.items]


def test_users_and_sessions(controller):
    choices = controller.user_choices()
    assert choices[0] == NEW_USER and choices[1:4] == ["1", "2", "3"] and len(choices) == 201
    fresh = controller.start(None, NEW_USER)
    assert fresh.session.is_new_user and "new user" in fresh.notice
    unknown = controller.start(None, "nobody")
    assert unknown.session.is_new_user and "unknown user" in unknown.notice
    a, b = controller.start(None, "36"), controller.start(None, "36")
    assert a.session.session_id != b.session.session_id
    assert "User 36" in controller.history_panel(a)


def test_forget_me_erases_the_tab_user_and_continues_as_a_new_user(recommender_100k, tmp_path):
    """The "Forget me" button's logic: a new user (so the shared ML-100K data set is untouched) rates,
    is forgotten, and nothing of theirs is left in the feedback store or the profiles."""
    from data.home import RuntimeHome

    home = RuntimeHome(tmp_path / "home").ensure()
    store = FeedbackStore(tmp_path / "events.sqlite")
    assistant = Assistant(recommender_100k, store)
    controller = ChatController(assistant, max_cards=10, home=home)
    state = controller.start(None, NEW_USER)
    list(controller.turn(state, "a western", 4))
    controller.item_feedback(state, 0, True)
    controller.item_feedback(state, 1, False)
    controller.message_feedback(state, 1, True)
    bystander = controller.start(None, NEW_USER)
    list(controller.turn(bystander, "a western", 4))
    controller.item_feedback(bystander, 0, False)
    user = state.session.user_id
    assert len(store.events(user_id=user)) == 2 and recommender_100k.profiles.get(user) is not None

    fresh = controller.forget(state)
    assert fresh.session.is_new_user and fresh.session.user_id != user
    assert fresh.items == [] and fresh.messages == [] and not fresh.marks
    assert "2 feedback events" in fresh.notice and "the profile vector" in fresh.notice, fresh.notice
    assert state.session.shown == [] and state.reply is None  # the old tab state holds nothing either
    assert store.events(user_id=user) == [] and store.message_events(user_id=user) == []
    assert recommender_100k.profiles.get(user) is None
    assert len(store.events(user_id=bystander.session.user_id)) == 1  # only that user
    assert recommender_100k.profiles.get(bystander.session.user_id) is not None

    without_home = ChatController(assistant, max_cards=10)
    kept = controller.start(None, NEW_USER)
    assert "not available" in without_home.forget(kept).notice
