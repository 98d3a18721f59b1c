"""Read configuration ONCE, at the edge: RECSYS_* environment variables over an optional TOML
file (RECSYS_CONFIG, else <home>/config.toml), into the typed Settings object."""
from __future__ import annotations

import os
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Mapping

from assistant.settings import EXPLANATION_WRITERS, Settings
from retrieval.candidates import FusionWeights
from retrieval.profiles import ProfileWeights

REPO_ROOT = Path(__file__).resolve().parent.parent
PREFIX = "RECSYS_"


class ConfigError(ValueError):
    pass


def _number(name: str, value, kind):
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a {kind.__name__}, got {value!r}") from None


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    home = Path(env.get(f"{PREFIX}HOME") or REPO_ROOT / ".recsys").expanduser().resolve()
    file_values: dict = {}
    config_path = Path(env[f"{PREFIX}CONFIG"]) if env.get(f"{PREFIX}CONFIG") else home / "config.toml"
    if config_path.exists():
        try:
            file_values = tomllib.loads(config_path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{config_path}: {err}") from None
    elif env.get(f"{PREFIX}CONFIG"):
        raise ConfigError(f"RECSYS_CONFIG points to {config_path}, which does not exist")

    def get(key: str, default=None):
        return env.get(PREFIX + key.upper(), file_values.get(key, default))

    base = Settings(home=home)
    fusion = FusionWeights(
        query=_number("fusion_query", get("fusion_query", base.fusion.query), float),
        profile=_number("fusion_profile", get("fusion_profile", base.fusion.profile), float),
        liked_reference=_number("fusion_liked_reference",
                                get("fusion_liked_reference", base.fusion.liked_reference), float),
        sequential=_number("fusion_sequential", get("fusion_sequential", base.fusion.sequential), float))
    profile = ProfileWeights(
        neutral_rating=_number("profile_neutral_rating", get("profile_neutral_rating", 3.0), float),
        rating_scale=_number("profile_rating_scale", get("profile_rating_scale", 2.0), float),
        half_life_days=_number("profile_half_life_days", get("profile_half_life_days", 180.0), float))
    models = get("models", ",".join(base.models))
    models = tuple(m.strip() for m in (models.split(",") if isinstance(models, str) else models) if m.strip())
    settings = replace(
        base, dataset=str(get("dataset", base.dataset)), chroma_host=get("chroma_host") or None,
        chroma_port=_number("chroma_port", get("chroma_port", base.chroma_port), int),
        default_k=_number("default_k", get("default_k", base.default_k), int),
        max_k=_number("max_k", get("max_k", base.max_k), int), fusion=fusion, profile=profile,
        blend=replace(base.blend, prior=_number("prior_weight", get("prior_weight", base.blend.prior), float)),
        server_host=str(get("server_host", base.server_host)),
        server_port=_number("server_port", get("server_port", base.server_port), int), models=models,
        turn_concurrency=_number("turn_concurrency", get("turn_concurrency", base.turn_concurrency), int),
        diversity=_number("diversity", get("diversity", base.diversity), float),
        auth_user=get("auth_user") or None, auth_password=get("auth_password") or None,
        log_requests=str(get("log_requests", "false")).lower() in ("1", "true", "yes"),
        reranker=str(get("reranker", base.reranker)),
        refresh_every_events=_number("refresh_every_events", get("refresh_every_events", base.refresh_every_events), int),
        refresh_every_minutes=_number("refresh_every_minutes",
                                      get("refresh_every_minutes", base.refresh_every_minutes), float),
        refresh_model=str(get("refresh_model", base.refresh_model)),
        explanation_writer=str(get("explanation_writer", base.explanation_writer) or "none").strip().lower(),
        explanation_adapter=str(get("explanation_adapter") or "").strip() or None)
    if settings.explanation_writer not in EXPLANATION_WRITERS:
        raise ConfigError(f"explanation_writer must be one of {', '.join(EXPLANATION_WRITERS)}, "
                          f"got {settings.explanation_writer!r}")
    if settings.explanation_adapter and settings.explanation_writer == "none":
        raise ConfigError("explanation_adapter needs an explanation_writer (smollm2 or qwen)")
    if settings.reranker not in ("auto", "off"):
        raise ConfigError(f"reranker must be 'auto' or 'off', got {settings.reranker!r}")
    if not 1 <= settings.turn_concurrency <= 64:
        raise ConfigError(f"turn_concurrency must be between 1 and 64, got {settings.turn_concurrency}")
    if not 0.0 <= settings.blend.prior <= 5.0:
        raise ConfigError(f"prior_weight must be between 0 and 5, got {settings.blend.prior}")
    if not 0.0 <= settings.diversity <= 1.0:
        raise ConfigError(f"diversity must be between 0 and 1, got {settings.diversity}")
    if profile.half_life_days <= 0 or profile.rating_scale <= 0:
        raise ConfigError("profile_half_life_days and profile_rating_scale must be positive")
    if not 1 <= settings.default_k <= settings.max_k:
        raise ConfigError(f"default_k must be between 1 and max_k ({settings.max_k})")
    return settings
