"""Versioned adapter registry: one folder per version under a root, plus a 'serving' pointer.

    <root>/v0001/adapter/      peft LoRA weights (adapter_config.json, adapter_model.safetensors)
    <root>/v0001/head.pt       score head + residual retriever weight + prompt
    <root>/v0001/config.json   training config + base model
    <root>/v0001/data_summary.json, metrics.json
    <root>/serving.json        {"version": "v0001"}

Versions are copied in under a temporary name and renamed, and the pointer is replaced
atomically, so a reader never sees a half-written version.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

_VERSION = re.compile(r"^v(\d{4,})$")


@dataclass(frozen=True)
class AdapterVersion:
    version: str
    path: Path
    metrics: dict
    config: dict
    created: float


class AdapterRegistry:
    def __init__(self, root: Path | str):
        self.root = Path(root)

    def _versions(self) -> list[str]:
        if not self.root.exists():
            return []
        names = [p.name for p in self.root.iterdir() if p.is_dir() and _VERSION.match(p.name)]
        return sorted(names, key=lambda n: int(_VERSION.match(n).group(1)))

    def versions(self) -> list[AdapterVersion]:
        out = []
        for name in self._versions():
            p = self.root / name
            read = lambda f: json.loads((p / f).read_text()) if (p / f).exists() else {}
            out.append(AdapterVersion(name, p, read("metrics.json"), read("config.json"), p.stat().st_mtime))
        return out

    def path(self, version: str) -> Path:
        p = self.root / version
        if not _VERSION.match(version) or not p.is_dir():
            raise KeyError(f"no adapter version {version!r} in {self.root}")
        return p

    def publish(self, folder: Path | str) -> str:
        """Copy a finished adapter folder in as the next version; returns its name."""
        folder = Path(folder)
        if not (folder / "adapter").is_dir() or not (folder / "head.pt").exists():
            raise ValueError(f"{folder} is not an adapter folder (adapter/ and head.pt expected)")
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            existing = self._versions()
            n = int(_VERSION.match(existing[-1]).group(1)) + 1 if existing else 1
            name = f"v{n:04d}"
            tmp = self.root / f".{name}.partial-{os.getpid()}-{time.time_ns()}"
            shutil.copytree(folder, tmp)
            try:
                os.rename(tmp, self.root / name)  # fails if another writer took the name
                return name
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                if (self.root / name).exists():
                    continue
                raise

    def set_serving(self, version: str) -> None:
        self.path(version)
        tmp = self.root / "serving.json.tmp"
        tmp.write_text(json.dumps({"version": version, "since": time.time()}))
        os.replace(tmp, self.root / "serving.json")

    def serving(self) -> str | None:
        p = self.root / "serving.json"
        if not p.exists():
            return None
        v = json.loads(p.read_text()).get("version")
        return v if v in self._versions() else None

    def load(self, version: str | None = None, model_dir: Path | str | None = None, merge: bool = False,
             dtype=None):
        """A RerankScorer with this version's adapter (default: the serving version, else the latest)."""
        version = version or self.serving() or (self._versions() or [None])[-1]
        if version is None:
            raise KeyError(f"no adapter versions in {self.root}")
        return load_adapter(self.path(version), model_dir=model_dir, merge=merge, dtype=dtype)


def load_adapter(folder: Path | str, model_dir: Path | str | None = None, merge: bool = False, dtype=None):
    """Load a saved adapter folder onto its base model; `merge` folds LoRA into the weights.

    `dtype` of the base weights: default float32; torch.bfloat16 halves memory and skips the
    per-call weight casts under bf16 autocast (serving)."""
    import torch
    from peft import PeftModel

    from finetune.scorer import RerankScorer, load_base, prompt_from_dict

    folder = Path(folder)
    cfg = json.loads((folder / "config.json").read_text())
    model_dir = model_dir or cfg["model_dir"]
    head = torch.load(folder / "head.pt", weights_only=False)
    base, tok = load_base(model_dir, dtype=dtype or torch.float32)
    model = PeftModel.from_pretrained(base, str(folder / "adapter"))
    if merge:
        model = model.merge_and_unload()
    model.eval()
    scorer = RerankScorer(model, tok, prompt_from_dict(head["prompt"]), head=head["head"])
    scorer.load_head_state(head)
    scorer.eval()
    return scorer
