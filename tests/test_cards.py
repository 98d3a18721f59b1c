"""Catalogue text is rendered safely: HTML and markdown from item data come out as text."""
from __future__ import annotations

from assistant.recommender import Recommendation
from data.catalogue import Interaction, Item
from ui.cards import assistant_markdown, card_html, escape_markdown, history_html, reply_markdown, short_description

EVIL = Item("1<x>", "Bad <b>Title</b> **loud** [x](javascript:alert(1))", 1999, ("Horror", "<i>Drama</i>"),
            "<script>alert('x')</script> It is a film. It has a second sentence.",
            {"description_source": "<img src=x onerror=alert(1)>"})


def test_a_script_in_a_description_is_escaped_in_the_card():
    html = card_html(1, Recommendation(EVIL, 0.5, "Because <script>steal()</script> you liked it."))
    assert "<script" not in html and "<img" not in html and "<b>" not in html and "<i>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; It is a film." in html
    assert "Because &lt;script&gt;steal()&lt;/script&gt; you liked it." in html
    assert "It has a second sentence" not in html  # a short description: the first sentence
    assert 'data-item-id="1&lt;x&gt;"' in html


def test_chat_text_escapes_markdown_and_html():
    text = reply_markdown("Noted that you like *x*.", [Recommendation(EVIL, 0.5, "why")])
    assert "<b>" not in text and "](javascript" not in text and "**loud**" not in text
    assert r"\*\*loud\*\* \[x\]\(javascript:alert\(1\)\)" in text
    assert escape_markdown("<script>") == "&lt;script&gt;"
    assert assistant_markdown("say *a funny comedy* or <b>") == "say *a funny comedy* or &lt;b&gt;"


def test_short_description_is_one_sentence_cut_at_a_word():
    assert short_description("Heat is a 1995 film. It stars Pacino.") == "Heat is a 1995 film."
    assert short_description("It stars R. Lee Ermey as a drill sergeant. Next.") == \
        "It stars R. Lee Ermey as a drill sergeant."
    assert short_description("Once Upon a Time in the West (Italian: C'era una volta il West, transl. Once "
                             "upon a time the West) is a 1968 film. It stars Fonda.") == \
        "Once Upon a Time in the West (Italian: C'era una volta il West, transl. Once upon a time the West) is a " \
        "1968 film."
    long = short_description("word " * 100, limit=50)
    assert len(long) <= 50 and long.endswith("…") and not long.endswith(" …")
    assert short_description(None) == "" and short_description("   ") == ""


def test_history_panel_escapes_titles_and_marks_thumbs():
    items = {"1<x>": EVIL, "2": Item("2", "Heat", 1995, ("Action",))}
    entries = [Interaction("u", "2", 4.0, 880000000), Interaction("u", "1<x>", 5.0, 1700000000)]
    html = history_html("User <u>", entries, items, liked_here={"1<x>"}, disliked={"9"})
    assert "<b>Title</b>" not in html and "User &lt;u&gt;" in html
    assert html.index("Bad &lt;b&gt;") < html.index("Heat (1995)")  # newest first
    assert "★★★★☆" in html and "👍" in html and "1 rating in the data set, 1 👍, 1 👎" in html
    assert "No history yet" in history_html("New user", [], items, set(), set())
