"""A minimal Gradio chat: type a request, get explained recommendations (feedback comes later)."""
from __future__ import annotations

from ui.offline import go_offline

go_offline()

import html  # noqa: E402

from assistant.recommender import InvalidRequest, Recommendations, UnknownUser  # noqa: E402
from assistant.request_parser import InvalidQuery  # noqa: E402


def render_reply(reply: Recommendations) -> str:
    lines = []
    if reply.message:
        lines.append(f"_{html.escape(reply.message)}_\n")
    if not reply.items:
        lines.append("Nothing in the catalogue matches every constraint. Try loosening one.")
    for rank, rec in enumerate(reply.items, start=1):
        genres = ", ".join(rec.item.genres)
        lines.append(f"{rank}. **{html.escape(rec.item.label)}** — {html.escape(genres)}  \n"
                     f"   {html.escape(rec.explanation)}")
    return "\n".join(lines)


def make_handler(recommender):
    def respond(message, history, user_id, k):
        history = list(history or [])
        text = message if isinstance(message, str) else str(message)
        user = (user_id or "").strip() or None
        try:
            reply = recommender.recommend(text, user_id=user, k=int(k))
            answer = render_reply(reply)
        except (InvalidQuery, InvalidRequest, UnknownUser) as err:
            answer = f"⚠️ {html.escape(str(err))}"
        history.append({"role": "user", "content": text})
        history.append({"role": "assistant", "content": answer})
        return history, ""

    return respond


def build_app(recommender, default_k: int = 10, max_k: int = 50):
    import gradio as gr

    with gr.Blocks(title="Movie recommendation assistant") as app:
        gr.Markdown("## Movie recommendation assistant\nAsk for what you feel like watching: "
                    "*scary movies from the 80s*, *more like Alien but not horror*, *a 90s comedy*.")
        with gr.Row():
            user_box = gr.Textbox(label="User id (optional, e.g. 1m_42)", scale=2, elem_id="user-id")
            k_slider = gr.Slider(1, max_k, value=default_k, step=1, label="How many", scale=1)
        chat = gr.Chatbot(label="Assistant", elem_id="chat", height=480)
        message = gr.Textbox(label="Your request", placeholder="e.g. scary movies from the 80s", elem_id="message")
        handler = make_handler(recommender)
        message.submit(handler, [message, chat, user_box, k_slider], [chat, message], api_name="recommend")
    return app


def serve(settings, port: int | None = None) -> None:
    from assistant.runtime import build_recommender

    recommender = build_recommender(settings)
    app = build_app(recommender, settings.default_k, min(settings.max_k, 50))
    print(f"chat UI on http://{settings.server_host}:{port or settings.server_port}")
    app.launch(server_name=settings.server_host, server_port=port or settings.server_port, share=False,
               ssr_mode=False, show_error=True)
