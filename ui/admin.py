"""The admin tab: adapter versions with their evaluation metrics, feedback counts, last refresh."""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from data.feedback import DISLIKE, LIKE, FeedbackStore
from data.home import RuntimeHome
from finetune.adapters import AdapterRegistry
from ui.cards import escape_markdown

# Metric names that measure ranking quality (plotted); everything numeric goes in the table.
QUALITY = ("ndcg", "recall", "hit", "mrr", "auc", "precision", "map@")
METRIC_FILES = ("metrics.json", "fusion.json", "eval.json")
NO_ADAPTER = "No adapter trained yet: the assistant serves the retriever alone. `recsys train` makes one."


@dataclass
class AdminSnapshot:
    summary: str  # markdown
    versions: list[dict]  # one row per version: version, created, serving, metrics...
    points: list[dict]  # long form for the plot: version, step, metric, value

    @property
    def has_adapters(self) -> bool:
        return bool(self.versions)


def _numbers(data: dict, prefix: str = "") -> dict[str, float]:
    out = {}
    for key, value in data.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, (int, float)):
            out[prefix + key] = float(value)
        elif isinstance(value, dict) and not prefix:
            out.update(_numbers(value, f"{key}."))
    return out


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _when(value) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.timezone.utc)).timestamp()
    return None


def format_time(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def last_refresh(home: RuntimeHome, registry: AdapterRegistry, dataset: str) -> tuple[float | None, str]:
    """(time, what happened): the last `recsys refresh` of this data set, else the newest adapter's
    creation (trained by `recsys train`), else (None, ...): never."""
    from assistant.refresh import read_state

    try:
        record = read_state(home).get(dataset, {})
    except (OSError, ValueError):
        record = {}
    when = _when(record.get("finished_at"))
    if when is not None:
        outcome = " ".join(str(record[k]) for k in ("version", "decision") if record.get(k))
        return when, f"refresh: {outcome}" if outcome else "refresh"
    versions = registry.versions()
    if versions:
        newest = versions[-1]
        published = _when(_read(newest.path / "manifest.json").get("published"))
        return published or newest.created, f"adapter {newest.version} created"
    return None, "no refresh has run"


def admin_snapshot(home: RuntimeHome, store: FeedbackStore, dataset: str) -> AdminSnapshot:
    registry = AdapterRegistry.of_home(home)
    serving = registry.serving()
    rows, points = [], []
    for step, version in enumerate(registry.versions(), start=1):
        metrics: dict[str, float] = {}
        for name in METRIC_FILES:
            metrics.update(_numbers(_read(version.path / name)))
        metrics.update(_numbers(version.metrics))
        model = version.config.get("model_name", "")
        rows.append({"version": version.version, "model": model, "serving": version.version == serving,
                     "created": format_time(version.created), **{k: round(v, 4) for k, v in sorted(metrics.items())}})
        quality = {k: v for k, v in metrics.items() if any(q in k.lower() for q in QUALITY)}
        if not quality:  # a version trained but never evaluated: show how far its loss came down
            quality = {k: v for k, v in metrics.items() if k in ("loss_start", "loss_end")}
        points.extend({"version": version.version, "step": step, "metric": k, "value": v}
                      for k, v in sorted(quality.items()))
    likes, dislikes = store.count(dataset, LIKE), store.count(dataset, DISLIKE)
    m_likes, m_dislikes = store.message_count(dataset, LIKE), store.message_count(dataset, DISLIKE)
    refreshed, source = last_refresh(home, registry, dataset)
    lines = [f"**Data set:** {escape_markdown(dataset)}",
             f"**Item feedback:** {likes} 👍 likes, {dislikes} 👎 dislikes "
             f"({len(store.user_ids(dataset))} users)",
             f"**Message feedback:** {m_likes} 👍, {m_dislikes} 👎",
             f"**Last refresh:** {format_time(refreshed)}" + (f" ({escape_markdown(source)})" if refreshed else ""),
             f"**Serving adapter:** {escape_markdown(serving) if serving else 'none'}"]
    if not rows:
        lines.append(f"\n{NO_ADAPTER}")
    return AdminSnapshot("  \n".join(lines), rows, points)


def build_admin_tab(home: RuntimeHome, store: FeedbackStore, dataset: str):
    """The tab's components; returns (refresh function, outputs) for the caller to wire to load."""
    import gradio as gr
    import pandas as pd

    def refresh():
        snap = admin_snapshot(home, store, dataset)
        frame = pd.DataFrame(snap.points, columns=["version", "step", "metric", "value"])
        table = pd.DataFrame(snap.versions) if snap.versions else pd.DataFrame({"version": []})
        stamp = f"_Updated {format_time(dt.datetime.now(dt.timezone.utc).timestamp())}_"
        return (snap.summary + "  \n" + stamp, gr.update(value=frame, visible=snap.has_adapters),
                gr.update(value=table, visible=snap.has_adapters))

    with gr.Row():
        gr.Markdown("### Adapters and feedback")
        button = gr.Button("Refresh", size="sm", scale=0, min_width=100, elem_id="admin-refresh")
    summary = gr.Markdown(elem_id="admin-summary")
    plot = gr.LinePlot(x="version", y="value", color="metric", title="Evaluation metrics by adapter version",
                       x_title="adapter version", y_title="value", tooltip="all", elem_id="admin-plot",
                       visible=False)
    table = gr.Dataframe(label="Adapter versions", elem_id="admin-versions", visible=False, interactive=False)
    outputs = [summary, plot, table]
    button.click(refresh, None, outputs, api_visibility="private")
    return refresh, outputs
