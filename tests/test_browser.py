"""The chat app in a real headless Chromium, against `recsys serve` on loopback (a subprocess) with
ML-100K ingested into a fresh home and the real embedding model: type, see cards with explanations,
thumbs up and down, a refinement, and a look at the durable feedback store."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, make_home

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
ARTIFACTS = REPO / "tests" / "artifacts"
USER = "13"  # a data set user no other test gives feedback for


def _wait_until_up(url: str, proc: subprocess.Popen, log: Path, seconds: float = 180.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"recsys serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"recsys serve did not answer within {seconds:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def served(ml100k, embedder, tmp_path_factory):
    """`recsys serve` on a free loopback port, over its own freshly ingested ML-100K home (the
    session's embedding cache is warm, so ingest is quick); yields (url, home)."""
    from assistant.ingest import ingest_movielens
    from retrieval.profiles import ProfileWeights
    from retrieval.vector_store import ChromaLocation, open_client

    home = make_home(tmp_path_factory.mktemp("served") / "home")
    ingest_movielens(home, "ml-100k", open_client(ChromaLocation(path=home.chroma)), embedder, ProfileWeights(),
                     progress=False)
    port = free_port()
    log = home.logs / "serve.log"
    env = {**os.environ, "RECSYS_HOME": str(home.root), "RECSYS_DATASET": "ml-100k",
           "RECSYS_REFRESH_EVERY_EVENTS": "0", "RECSYS_REFRESH_EVERY_MINUTES": "0"}  # no training mid-test
    for key in ("RECSYS_AUTH_USER", "RECSYS_AUTH_PASSWORD", "RECSYS_SERVER_HOST", "RECSYS_CONFIG"):
        env.pop(key, None)
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "serve", "--port", str(port)], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_until_up(url, proc, log)
        yield url, home
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def browser():
    if not shutil.which("chromium"):
        pytest.fail("Debian chromium is not installed; scripts/ensure-chromium.sh installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


def _text_of(page, selector: str) -> str:
    return page.evaluate(f"(document.querySelector({selector!r})?.innerText || '')")


def _wait_text(page, selector: str, needle: str, timeout: int = 60_000) -> None:
    page.wait_for_function(f"(document.querySelector({selector!r})?.innerText || '').includes({needle!r})",
                           timeout=timeout)


def _cards(page) -> list[dict]:
    """The cards on screen: item id, title, genres, year, explanation."""
    return page.evaluate("""() => [...document.querySelectorAll('#cards .rec-card')]
        .filter(card => card.offsetParent !== null)
        .map(card => ({id: card.dataset.itemId, title: card.querySelector('.rec-title').innerText,
                       year: card.querySelector('.rec-year')?.innerText || '',
                       genres: [...card.querySelectorAll('.rec-genre')].map(g => g.innerText),
                       why: card.querySelector('.rec-explanation').innerText}))""")


def _screenshot(page, tmp_path: Path, name: str) -> Path:
    """Saved under tmp_path and copied to tests/artifacts/ (git-ignored) for a person to look at."""
    page.screenshot(path=str(tmp_path / name), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    return Path(shutil.copy(tmp_path / name, ARTIFACTS / name))


def _ask(page, text: str, previous: list[str]) -> list[dict]:
    page.locator("#message textarea").fill(text)
    page.locator("#message textarea").press("Enter")
    page.wait_for_function(
        """previous => { const cards = [...document.querySelectorAll('#cards .rec-card')]
                           .filter(c => c.offsetParent !== null).map(c => c.dataset.itemId);
                         return cards.length > 0 && cards.join() !== previous.join(); }""",
        arg=previous, timeout=60_000)
    page.wait_for_function("!(document.querySelector('#cards')?.innerText || '').includes('refining')",
                           timeout=60_000)
    return _cards(page)


@pytest.mark.browser
def test_chat_cards_thumbs_refinement_in_a_real_browser(served, browser, tmp_path):
    from data.feedback import DISLIKE, LIKE, FeedbackStore

    url, home = served
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(url, wait_until="load")
    _wait_text(page, "#history", "New user")

    user = page.locator("#user input")  # the selector takes any data set id, not only the listed ones
    user.click()
    user.fill(USER)
    user.press("Enter")
    _wait_text(page, "#history", f"User {USER}")
    assert "ratings in the data set" in _text_of(page, "#history")

    first = _ask(page, "a funny 90s comedy", [])
    assert len(first) == 10
    for card in first:
        assert card["title"] and card["why"].strip(), card
        assert "Comedy" in card["genres"] and card["year"].strip("()").startswith("199"), card
    _wait_text(page, "#chat", first[0]["title"])

    page.locator("#like-0").click()
    _wait_text(page, "#card-0", "liked")
    page.locator("#dislike-1").click()
    _wait_text(page, "#card-1", "not for me")
    page.locator("#dislike-1").click()  # a double click counts once
    _wait_text(page, "#status", "Already noted")
    page.locator("#chat button[aria-label='Like']").last.click()  # the message as a whole
    _wait_text(page, "#status", "helpful")
    _wait_text(page, "#history", "1 👍, 1 👎")

    shots = [_screenshot(page, tmp_path, "browser-chat.png")]  # the cards, one liked, one disliked

    store = FeedbackStore(home.feedback_db())
    events = store.events("ml-100k", USER)
    assert [(e.item_id, e.value) for e in events] == [(first[0]["id"], LIKE), (first[1]["id"], DISLIKE)]
    assert events[1].context["position"] == 2 and events[1].context["query"]
    assert [e.value for e in store.message_events("ml-100k", USER)] == [LIKE]

    second = _ask(page, "no romance", [c["id"] for c in first])  # one refinement: constraints carry over
    assert second and all("Comedy" in c["genres"] and "Romance" not in c["genres"]
                          and c["year"].strip("()").startswith("199") for c in second)
    assert not {c["id"] for c in second} & {c["id"] for c in first}
    _wait_text(page, "#chat", "no romance")

    page.locator("#restart").click()  # a new session for the same user: shown items may come back...
    _wait_text(page, "#status", "New conversation")
    again = _ask(page, "a funny 90s comedy", [c["id"] for c in second])
    again_ids = {c["id"] for c in again}
    assert first[1]["id"] not in again_ids  # ...but the disliked one never does
    assert first[0]["id"] not in again_ids  # the liked one is in the history now
    assert again_ids & {c["id"] for c in first[2:]}, "the exclusion should be specific to the rated items"

    shots.append(_screenshot(page, tmp_path, "browser-new-conversation.png"))

    page.get_by_role("tab", name="Admin").click()  # counts straight from the durable store
    _wait_text(page, "#admin-summary", "1 👍 likes, 1 👎 dislikes")
    admin = _text_of(page, "#admin-summary")
    assert "Message feedback: 1 👍, 0 👎" in admin and "Last refresh: never" in admin
    assert "No adapter trained yet" in admin
    print("screenshots: " + ", ".join(map(str, shots)))
    page.close()
    assert not errors, errors


@pytest.mark.browser
def test_catalogue_html_renders_as_text_in_the_browser(browser):
    """A card whose item data carries script and markdown shows it as text; nothing runs."""
    from assistant.recommender import Recommendation
    from data.catalogue import Item
    from ui.cards import card_html, reply_markdown

    evil = Item("x<1>", 'Evil <img src=x onerror="window.pwned=1"> **bold**', 1999, ("Horror<b>",),
                "<script>window.pwned = 2</script> A [link](javascript:alert(1)) plot. Second sentence.")
    rec = Recommendation(evil, 1.0, "Because <script>window.pwned = 3</script> you liked it.")
    page = browser.new_page()
    page.set_content(f"<html><body>{card_html(1, rec)}<pre>{reply_markdown('x', [rec])}</pre></body></html>")
    assert page.evaluate("window.pwned") is None
    assert page.locator("script").count() == 0 and page.locator("img").count() == 0
    text = page.locator(".rec-card").inner_text()
    assert "<script>window.pwned = 2</script>" in text and '<img src=x onerror="window.pwned=1">' in text
    assert "[link](javascript:alert(1))" in text and "**bold**" in text
    page.close()


FORGET_USER = "21"  # a data set user no other test in this module uses


def _profile_rows(home, user_id: str) -> int:
    """Rows for this user in the served Chroma's profiles collection, read straight from its SQLite
    file (read-only: the server process owns the database)."""
    import sqlite3

    with sqlite3.connect(f"file:{home.chroma / 'chroma.sqlite3'}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COUNT(*) FROM embeddings e JOIN segments s ON e.segment_id = s.id "
                            "JOIN collections c ON s.collection = c.id "
                            "WHERE c.name = 'profiles_ml-100k' AND e.embedding_id = ?", (user_id,)).fetchone()[0]


def _interactions(home, user_id: str) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{home.dataset_db('ml-100k')}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT COUNT(*) FROM interactions WHERE user_id = ?", (user_id,)).fetchone()[0]


@pytest.mark.browser
def test_forget_me_button_erases_the_user_after_a_confirmation(served, browser, tmp_path):
    from data.feedback import FeedbackStore

    url, home = served
    store = FeedbackStore(home.feedback_db())
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.goto(url, wait_until="load")
    _wait_text(page, "#history", "New user")
    user = page.locator("#user input")
    user.click()
    user.fill(FORGET_USER)
    user.press("Enter")
    _wait_text(page, "#history", f"User {FORGET_USER}")

    cards = _ask(page, "a western", [])
    page.locator("#like-0").click()
    _wait_text(page, "#card-0", "liked")
    page.locator("#dislike-1").click()
    _wait_text(page, "#card-1", "not for me")
    page.locator("#chat button[aria-label='Like']").last.click()
    _wait_text(page, "#status", "helpful")
    interactions = _interactions(home, FORGET_USER)
    assert len(store.events("ml-100k", FORGET_USER)) == 2 and len(store.message_events("ml-100k", FORGET_USER)) == 1
    assert interactions > 0 and _profile_rows(home, FORGET_USER) == 1

    assert not page.locator("#forget-yes").is_visible()
    page.locator("#forget").click()  # first a confirmation; Cancel changes nothing
    page.locator("#forget-no").wait_for(state="visible")
    assert "Erase everything" in _text_of(page, "#forget-question")
    page.locator("#forget-no").click()
    page.locator("#forget-yes").wait_for(state="hidden")
    assert len(store.events("ml-100k", FORGET_USER)) == 2 and _profile_rows(home, FORGET_USER) == 1

    page.locator("#forget").click()
    page.locator("#forget-yes").wait_for(state="visible")
    page.locator("#forget-yes").click()
    _wait_text(page, "#status", "Forgotten")
    status = _text_of(page, "#status")
    assert f"{interactions} data set ratings" in status and "2 feedback events" in status, status
    assert "the profile vector" in status and "new user" in status, status
    _wait_text(page, "#history", "New user")
    page.locator("#forget-yes").wait_for(state="hidden")
    assert not [c for c in _cards(page) if c["id"] in {x["id"] for x in cards}]  # the old cards are gone
    _screenshot(page, tmp_path, "browser-forgotten.png")

    # nothing of theirs is left in any store (the forgotten-users list keeps only the id, so a rebuild
    # from the raw files keeps them out)
    assert store.events("ml-100k", FORGET_USER) == [] and store.message_events("ml-100k", FORGET_USER) == []
    assert _interactions(home, FORGET_USER) == 0 and _profile_rows(home, FORGET_USER) == 0
    assert FORGET_USER in home.forgotten_users().read_text()

    from gradio_client import Client  # the forgotten user is unknown to the app now

    assert "unknown user" in Client(url, verbose=False).predict("a western", FORGET_USER, 3,
                                                                api_name="/recommend")["error"]
    page.close()
    store.close()
    assert not errors, errors
