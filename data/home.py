"""The one runtime home directory and the layout of everything under it."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RuntimeHome:
    root: Path

    @property
    def downloads(self) -> Path:
        return self.root / "downloads"

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def chroma(self) -> Path:
        return self.root / "chroma"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def adapters(self) -> Path:
        return self.root / "adapters"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def dataset_db(self, name: str) -> Path:
        return self.datasets / f"{name}.sqlite"

    def collaborative_model(self, name: str) -> Path:
        return self.models / f"collaborative-{name}"

    def feedback_db(self) -> Path:
        return self.root / "feedback" / "events.sqlite"

    def forgotten_users(self) -> Path:
        return self.root / "feedback" / "forgotten_users.json"

    def embedding_cache(self) -> Path:
        return self.cache / "embeddings.sqlite"

    def share_language_models(self, source_models: Path) -> None:
        """Link the converted language models of another home's models folder into this one; models
        trained here (a sequential retriever) stay in this home."""
        if not source_models.exists():
            return
        for model in source_models.iterdir():
            if (model / "tokenizer.json").exists():
                (self.models / model.name).symlink_to(model.resolve(), target_is_directory=True)

    def ensure(self) -> "RuntimeHome":
        for path in (self.downloads, self.raw, self.models, self.chroma, self.datasets,
                     self.cache, self.adapters, self.logs, self.root / "feedback"):
            path.mkdir(parents=True, exist_ok=True)
        return self
