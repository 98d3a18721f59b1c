"""The Gradio Blocks app: streaming chat, recommendation cards with per-item thumbs, message
thumbs, a user selector, a "my history" panel and an admin tab. Public API: `recommend` and
`feedback` (gradio_client); every other handler is private."""
from __future__ import annotations

from ui.offline import go_offline

go_offline()

from data.home import RuntimeHome  # noqa: E402
from ui.cards import CSS, card_html  # noqa: E402
from ui.controller import NEW_USER, ChatController  # noqa: E402
from ui.session import DISLIKE, LIKE, TabState  # noqa: E402

MAX_CARDS = 10

# Gradio's queue, set deliberately (bench/bench_load.py measures it; README "Load"). Events sharing a
# concurrency_id share one limit (Gradio takes the smallest limit given in the group).
# - "turn" (a chat message and the public /recommend): TURN_CONCURRENCY at once. A turn is
#   CPU-bound (query embedding, Chroma reads, numpy); Chroma reads and the embedder's inference are
#   safe from several threads, the session has its own lock, and the model parts that are not
#   re-entrant serialise themselves (the LoRA reranker's forward passes under ServingReranker's
#   lock, the explanation writer under its own). So turns may overlap; the default is one per core
#   of the 2-core machines here (RECSYS_TURN_CONCURRENCY). Measured with 20 sessions on ML-100K
#   (bench/results/load_concurrency_ml-100k.json): limits 1, 2, 4 and 8 all gave 4.6-5.1 turns/s on
#   the saturated cores; a higher limit only moves the waiting from turns to thumbs (turn p50
#   3.3 / 2.5 / 1.2 / 1.0 s, thumb p50 0.3 / 0.6 / 1.3 / 1.4 s) and, with a language model serving,
#   would park more worker threads on its lock.
# - "explain" (the language-model explanations after a turn): 1. The writer's generation runs one
#   at a time anyway; a limit of 1 makes waiting explanations queue instead of holding worker
#   threads, so they never delay a turn's cards.
# - "feedback" (card thumbs and /feedback): FEEDBACK_CONCURRENCY. A SQLite WAL insert plus one
#   profile update (atomic per process, retrieval.profiles); short, so a few run at once.
# - "forget": 1; every other event (page load, user change, message thumbs, admin tab) keeps
#   Gradio's default of 1 per handler, set explicitly below.
# - QUEUE_MAX_SIZE: events waiting beyond this are refused at once ("queue is full") instead of
#   waiting minutes: at the ~13 events/s measured (4.7 turns/s + 8.7 thumbs/s, 2 cores) that is ~5 s.
TURN_CONCURRENCY = 2
EXPLAIN_CONCURRENCY = 1
FEEDBACK_CONCURRENCY = 4
QUEUE_MAX_SIZE = 64
TITLE = "Movie recommendation assistant"
INTRO = ("Ask for what you feel like watching: *scary movies from the 80s*, *a funny 90s comedy*, *more like "
         "Alien but not horror*. Then refine: *older ones*, *no romance*, *more like the second one*, "
         "*something else*. Rate each pick with 👍 / 👎: it counts at once.")


def build_app(assistant, home: RuntimeHome | None = None, max_cards: int = MAX_CARDS,
              turn_concurrency: int = TURN_CONCURRENCY):
    """`home` enables the admin tab (adapter versions live under it) and the "Forget me" button."""
    import gradio as gr

    controller = ChatController(assistant, max_cards, home)
    default_k = min(assistant.default_k, max_cards)

    def render(state: TabState):
        """Every output of a chat event, from the tab state."""
        items = state.items
        rows, cards, ups, downs = [], [], [], []
        for slot in range(max_cards):
            if slot < len(items):
                rec = items[slot]
                mark = state.marks.get(rec.item.item_id)
                rows.append(gr.update(visible=True))
                cards.append(card_html(slot + 1, rec, state.explanations[slot], mark, state.pending))
                ups.append(gr.update(variant="primary" if mark == LIKE else "secondary"))
                downs.append(gr.update(variant="stop" if mark == DISLIKE else "secondary"))
            else:
                rows.append(gr.update(visible=False))
                cards.append("")
                ups.append(gr.update(variant="secondary"))
                downs.append(gr.update(variant="secondary"))
        return [state, state.messages, state.notice, controller.history_panel(state), *rows, *cards, *ups, *downs]

    def on_load():
        return render(controller.start(None, NEW_USER))

    def on_user(choice, state):
        return render(controller.start(state, choice))

    def on_new_conversation(choice, state):
        user = state.session.user_id if state is not None and state.session is not None else choice
        return render(controller.start(state, user))

    def on_submit(text, state, k):
        for current in controller.turn(state, text, k):
            yield ["", *render(current)]

    def on_forget(state):
        fresh = controller.forget(state)
        return [*render(fresh), gr.update(visible=False),
                gr.update(choices=controller.user_choices(), value=NEW_USER)]

    def on_explain(state):
        streamed = False
        for current in controller.explain(state):
            streamed = True
            yield render(current)[4 + max_cards:4 + 2 * max_cards]  # the card texts only
        if not streamed:  # no writer, or a newer reply took over: leave the cards as they are
            yield [gr.skip()] * max_cards

    def on_message_like(state, data):
        state = controller.message_feedback(state, data.index, data.liked)
        return state, state.notice

    on_message_like.__annotations__ = {"data": gr.LikeData}  # resolvable (gr is imported in here)

    def api_recommend(text, user, k, state):
        return controller.api_recommend(state, text, user, k)

    def api_feedback(item_id, liked, event_id, state):
        return controller.api_feedback(state, item_id, liked, event_id)

    with gr.Blocks(title=TITLE) as app:
        state = gr.State(None)
        gr.Markdown(f"## {TITLE}\n{INTRO}")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=1, min_width=260):
                        user = gr.Dropdown(controller.user_choices(), value=NEW_USER, allow_custom_value=True,
                                           label="User", info="A data set user, or a new user", elem_id="user")
                        k_slider = gr.Slider(1, max_cards, value=default_k, step=1, label="Picks per reply",
                                             elem_id="k")
                        restart = gr.Button("New conversation", size="sm", elem_id="restart")
                        forget = gr.Button("Forget me", size="sm", variant="stop", elem_id="forget",
                                           visible=home is not None)
                        with gr.Group(visible=False, elem_classes="forget-confirm") as forget_box:
                            gr.Markdown("**Erase everything held about you?** Your ratings, thumbs, profile "
                                        "and this conversation are deleted for good; you continue as a new "
                                        "user. Adapters already trained on your feedback stay (README, "
                                        "Privacy).", elem_id="forget-question")
                            with gr.Row():
                                forget_yes = gr.Button("Yes, forget me", size="sm", variant="stop",
                                                       elem_id="forget-yes")
                                forget_no = gr.Button("Cancel", size="sm", elem_id="forget-no")
                        with gr.Accordion("My history", open=True):
                            history = gr.HTML(elem_id="history")
                    with gr.Column(scale=3):
                        chat = gr.Chatbot(label="Assistant", elem_id="chat", height=420,
                                          feedback_options=("Like", "Dislike"), sanitize_html=True)
                        with gr.Row():
                            message = gr.Textbox(show_label=False, placeholder="e.g. scary movies from the 80s",
                                                 elem_id="message", scale=5, autofocus=True)
                            send = gr.Button("Send", variant="primary", scale=1, min_width=80, elem_id="send")
                        status = gr.Markdown(elem_id="status")
                        rows, cards, ups, downs = [], [], [], []
                        with gr.Column(elem_id="cards"):
                            for slot in range(max_cards):
                                with gr.Row(visible=False, elem_classes="card-row", elem_id=f"card-row-{slot}") as row:
                                    cards.append(gr.HTML(elem_id=f"card-{slot}", padding=False))
                                    with gr.Column(scale=0, min_width=64, elem_classes="thumbs"):
                                        ups.append(gr.Button("👍", size="sm", elem_id=f"like-{slot}"))
                                        downs.append(gr.Button("👎", size="sm", elem_id=f"dislike-{slot}"))
                                rows.append(row)
            admin_outputs = None
            if home is not None:
                with gr.Tab("Admin", id="admin-tab") as admin_tab:
                    from ui.admin import build_admin_tab

                    refresh_admin, admin_outputs = build_admin_tab(home, assistant.store, assistant.dataset)
                admin_tab.select(refresh_admin, None, admin_outputs, api_visibility="private")
        with gr.Column(visible=False):  # inputs and outputs of the public API
            api_text = gr.Textbox(label="text")
            api_user = gr.Textbox(label="user")
            api_k = gr.Number(value=default_k, precision=0, label="k")
            api_item = gr.Textbox(label="item_id")
            api_liked = gr.Checkbox(label="liked")
            api_event = gr.Textbox(label="event_id")
            api_out = gr.JSON(label="result")
            api_recommend_button = gr.Button("recommend")
            api_feedback_button = gr.Button("feedback")

        view = [state, chat, status, history, *rows, *cards, *ups, *downs]
        app.load(on_load, None, view, api_visibility="private")
        user.input(on_user, [user, state], view, api_visibility="private")
        restart.click(on_new_conversation, [user, state], view, api_visibility="private")
        forget.click(lambda: gr.update(visible=True), None, forget_box, api_visibility="private",
                     show_progress="hidden")
        forget_no.click(lambda: gr.update(visible=False), None, forget_box, api_visibility="private",
                        show_progress="hidden")
        forget_yes.click(on_forget, [state], [*view, forget_box, user], api_visibility="private",
                         concurrency_id="forget", concurrency_limit=1)
        for trigger in (message.submit, send.click):
            trigger(on_submit, [message, state, k_slider], [message, *view], api_visibility="private",
                    concurrency_id="turn", concurrency_limit=turn_concurrency, show_progress="minimal").then(
                on_explain, [state], cards, api_visibility="private", concurrency_id="explain",
                concurrency_limit=EXPLAIN_CONCURRENCY, show_progress="hidden")
        chat.like(on_message_like, [state], [state, status], api_visibility="private")
        for slot in range(max_cards):
            for button, liked in ((ups[slot], True), (downs[slot], False)):
                button.click(lambda s, slot=slot, liked=liked: render(controller.item_feedback(s, slot, liked)),
                             [state], view, api_visibility="private", concurrency_id="feedback",
                             concurrency_limit=FEEDBACK_CONCURRENCY, show_progress="hidden")
        api_recommend_button.click(api_recommend, [api_text, api_user, api_k, state], [api_out, state],
                                   api_name="recommend", concurrency_id="turn", concurrency_limit=turn_concurrency)
        api_feedback_button.click(api_feedback, [api_item, api_liked, api_event, state], [api_out, state],
                                  api_name="feedback", concurrency_id="feedback",
                                  concurrency_limit=FEEDBACK_CONCURRENCY)
    app.queue(max_size=QUEUE_MAX_SIZE, default_concurrency_limit=1)
    return app


def launch(app, host: str, port: int, auth=None, **kw):
    from ui.cards import CSS as css

    return app.launch(server_name=host, server_port=port, share=False, ssr_mode=False, show_error=True,
                      auth=auth, css=css, footer_links=["api"], **kw)


__all__ = ["build_app", "launch", "CSS", "MAX_CARDS", "TURN_CONCURRENCY", "QUEUE_MAX_SIZE"]
