"""Entry points: the `recsys` CLI and the Gradio chat app."""
