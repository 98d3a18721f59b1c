"""The chat UI served for real on loopback, driven over HTTP with gradio_client."""
import pytest

from tests.conftest import free_port
from ui.chat_app import build_app


@pytest.fixture
def running_app(recommender_100k):
    app = build_app(recommender_100k)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, share=False, ssr_mode=False,
               quiet=True)
    yield f"http://127.0.0.1:{port}/"
    app.close()


def test_chat_turn_returns_constrained_recommendations(running_app):
    from gradio_client import Client

    client = Client(running_app, verbose=False)
    history, cleared = client.predict("scary movies from the 80s", [], "", 5, api_name="/recommend")
    assert cleared == ""
    assert [m["role"] for m in history] == ["user", "assistant"]
    answer = history[-1]["content"]
    answer = answer if isinstance(answer, str) else " ".join(p.get("text", "") for p in answer)
    assert answer.count("**") == 10  # five bold titles
    assert "Horror" in answer and "198" in answer

    history, _ = client.predict("comedy", history, "no-such-user", 5, api_name="/recommend")
    last = history[-1]["content"]
    last = last if isinstance(last, str) else " ".join(p.get("text", "") for p in last)
    assert "unknown user" in last and len(history) == 4
