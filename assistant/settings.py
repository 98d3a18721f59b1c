"""The one typed settings object. It is filled at the edge (CLI, UI) and passed down."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from retrieval.blend import BlendWeights
from retrieval.candidates import FusionWeights
from retrieval.profiles import ProfileWeights


EXPLANATION_WRITERS = ("none", "smollm2", "qwen")


@dataclass(frozen=True)
class Settings:
    home: Path  # RECSYS_HOME: all runtime state (raw data, models, chroma, caches, adapters, logs)
    dataset: str = "ml-1m"  # RECSYS_DATASET: the catalogue the assistant serves
    chroma_host: str | None = None  # RECSYS_CHROMA_HOST: use a `chroma run` server instead of embedded
    chroma_port: int = 8000  # RECSYS_CHROMA_PORT
    default_k: int = 10  # RECSYS_DEFAULT_K: recommendations per reply
    max_k: int = 100
    diversity: float = 0.3  # RECSYS_DIVERSITY: MMR weight of the final list (0 = relevance order only)  # RECSYS_MAX_K: the largest k a caller may ask for
    fusion: FusionWeights = field(default_factory=FusionWeights)  # RECSYS_FUSION_{QUERY,PROFILE,LIKED_REFERENCE}
    blend: BlendWeights = field(default_factory=BlendWeights)  # RECSYS_PRIOR_WEIGHT: the quality prior's weight
    profile: ProfileWeights = field(default_factory=ProfileWeights)  # RECSYS_PROFILE_HALF_LIFE_DAYS, ...
    server_host: str = "127.0.0.1"  # RECSYS_SERVER_HOST
    server_port: int = 7860  # RECSYS_SERVER_PORT
    turn_concurrency: int = 2  # RECSYS_TURN_CONCURRENCY: chat turns run at once by `recsys serve` (ui/chat_app.py)
    auth_user: str | None = None  # RECSYS_AUTH_USER: required (with the password) to bind beyond loopback
    auth_password: str | None = None  # RECSYS_AUTH_PASSWORD
    log_requests: bool = False  # RECSYS_LOG_REQUESTS: write request text to the logs
    reranker: str = "auto"  # RECSYS_RERANKER: auto (the serving adapter, if any) | off
    refresh_every_events: int = 500  # RECSYS_REFRESH_EVERY_EVENTS: `recsys serve` refreshes after this many (0: never)
    refresh_every_minutes: float = 60.0  # RECSYS_REFRESH_EVERY_MINUTES: ... or this often when there is new feedback
    refresh_model: str = "smollm2"  # RECSYS_REFRESH_MODEL
    # RECSYS_EXPLANATION_WRITER: none (template explanations only) | smollm2 | qwen: a language model rewrites
    # each card's explanation after the cards are shown; outputs failing verification keep the template.
    # Measured in bench/bench_explanations.py (README); the template stays the default.
    explanation_writer: str = "none"
    # RECSYS_EXPLANATION_ADAPTER: an adapter-registry version (e.g. v0003) or "serving" merged into the
    # writer's model; empty: the base model. The adapter must have been trained on the writer's model.
    explanation_adapter: str | None = None
    models: tuple[str, ...] = ("smollm2", "qwen")  # RECSYS_MODELS: language models fetched at set-up
