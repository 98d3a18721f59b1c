"""Versioned adapter registry: one folder per version under a root, plus a 'serving' pointer.

    <root>/v0001/adapter/      peft LoRA weights (adapter_config.json, adapter_model.safetensors)
    <root>/v0001/head.safetensors, head.json   score head + residual retriever weight; head kind + prompt
    <root>/v0001/config.json   training config + base model
    <root>/v0001/data_summary.json, metrics.json
    <root>/v0001/manifest.json sha256 of every file above, written at publish time
    <root>/serving.json        {"version": "v0001", "previous": [...]}

Versions are copied in under a temporary name and renamed, and the pointer is replaced
atomically, so a reader never sees a half-written version. A version whose files do not match
its manifest (corrupted, truncated, tampered with) is never promoted or loaded. Weights are read
only from safetensors: nothing here unpickles.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

_VERSION = re.compile(r"^v(\d{4,})$")
HEAD_TENSORS = "head.safetensors"
HEAD_META = "head.json"
MANIFEST = "manifest.json"
_HEAD_KEYS = ("head_vec", "head_bias", "retriever_weight")


class CorruptAdapter(ValueError):
    pass


def write_head(folder: Path, state: dict) -> None:
    """A scorer's head state as safetensors (tensors) + JSON (head kind, prompt)."""
    from safetensors.torch import save_file

    save_file({k: state[k].contiguous() for k in _HEAD_KEYS}, str(Path(folder) / HEAD_TENSORS))
    (Path(folder) / HEAD_META).write_text(json.dumps({"head": state["head"], "prompt": state["prompt"]}, indent=2))


def read_head(folder: Path) -> dict:
    from safetensors.torch import load_file

    state = dict(load_file(str(Path(folder) / HEAD_TENSORS)))
    state.update(json.loads((Path(folder) / HEAD_META).read_text()))
    return state


def _file_digests(folder: Path) -> dict[str, str]:
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST:
            out[path.relative_to(folder).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def verify_folder(folder: Path) -> list[str]:
    """Problems with an adapter folder against its manifest; [] when every file is intact."""
    folder = Path(folder)
    if not (folder / MANIFEST).exists():
        return [f"{folder.name}: no {MANIFEST}"]
    try:
        expected = json.loads((folder / MANIFEST).read_text())["files"]
    except (ValueError, KeyError, TypeError):
        return [f"{folder.name}: unreadable {MANIFEST}"]
    actual = _file_digests(folder)
    problems = [f"{folder.name}: missing {name}" for name in expected if name not in actual]
    problems += [f"{folder.name}: checksum mismatch in {name}" for name in expected
                 if name in actual and actual[name] != expected[name]]
    problems += [f"{folder.name}: unexpected file {name}" for name in actual if name not in expected]
    for required in ("adapter/adapter_config.json", HEAD_TENSORS, HEAD_META):
        if required not in expected:
            problems.append(f"{folder.name}: incomplete, no {required}")
    return problems


@dataclass(frozen=True)
class AdapterVersion:
    version: str
    path: Path
    metrics: dict
    config: dict
    created: float


class AdapterRegistry:
    """`models_root`: where base models live (a folder per model name). A version records its base
    model by name, so it loads in any runtime home (a committed default adapter, a copied home)."""

    def __init__(self, root: Path | str, models_root: Path | str | None = None):
        self.root = Path(root)
        self.models_root = Path(models_root) if models_root is not None else None

    @classmethod
    def of_home(cls, home) -> "AdapterRegistry":
        """The registry of a runtime home (``data.home.RuntimeHome``), resolving base models in it."""
        return cls(home.adapters, home.models)

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

    def model_dir(self, version: str) -> Path:
        """The base model folder this version was trained on, resolved in this registry's models root."""
        return base_model_dir(self.path(version), self.models_root)

    def publish(self, folder: Path | str) -> str:
        """Copy a finished adapter folder in as the next version; returns its name."""
        folder = Path(folder)
        if not (folder / "adapter").is_dir() or not (folder / HEAD_TENSORS).exists():
            raise ValueError(f"{folder} is not an adapter folder (adapter/ and {HEAD_TENSORS} expected)")
        self.root.mkdir(parents=True, exist_ok=True)
        while True:
            existing = self._versions()
            n = int(_VERSION.match(existing[-1]).group(1)) + 1 if existing else 1
            name = f"v{n:04d}"
            tmp = self.root / f".{name}.partial-{os.getpid()}-{time.time_ns()}"
            shutil.copytree(folder, tmp)
            (tmp / MANIFEST).unlink(missing_ok=True)
            (tmp / MANIFEST).write_text(json.dumps({"files": _file_digests(tmp), "published": time.time()},
                                                   indent=2))
            try:
                os.rename(tmp, self.root / name)  # fails if another writer took the name
                return name
            except OSError:
                shutil.rmtree(tmp, ignore_errors=True)
                if (self.root / name).exists():
                    continue
                raise

    def verify(self, version: str) -> list[str]:
        return verify_folder(self.path(version))

    def _pointer(self) -> dict:
        p = self.root / "serving.json"
        try:
            return json.loads(p.read_text()) if p.exists() else {}
        except ValueError:
            return {}

    def set_serving(self, version: str) -> None:
        """Promote a version (after checking every file against its manifest): one atomic rename."""
        self.path(version)
        problems = self.verify(version)
        if problems:
            raise CorruptAdapter(f"refusing to serve {version}: " + "; ".join(problems))
        pointer = self._pointer()
        previous = list(pointer.get("previous", []))
        if pointer.get("version") and pointer["version"] != version:
            previous.append(pointer["version"])
        tmp = self.root / f"serving.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps({"version": version, "since": time.time(), "previous": previous[-50:]}))
        os.replace(tmp, self.root / "serving.json")

    def rollback(self) -> str:
        """Serve the version that served before the current one; returns it."""
        pointer = self._pointer()
        previous = [v for v in pointer.get("previous", []) if v in self._versions()]
        if not previous:
            raise KeyError("nothing to roll back to: no earlier serving version")
        target = previous[-1]
        problems = self.verify(target)
        if problems:
            raise CorruptAdapter(f"cannot roll back to {target}: " + "; ".join(problems))
        tmp = self.root / f"serving.json.tmp-{os.getpid()}"
        tmp.write_text(json.dumps({"version": target, "since": time.time(), "previous": previous[:-1]}))
        os.replace(tmp, self.root / "serving.json")
        return target

    def serving(self) -> str | None:
        v = self._pointer().get("version")
        return v if v in self._versions() else None

    def load(self, version: str | None = None, model_dir: Path | str | None = None, merge: bool = False,
             dtype=None):
        """A RerankScorer with this version's adapter (default: the serving version, else the latest)."""
        version = version or self.serving() or (self._versions() or [None])[-1]
        if version is None:
            raise KeyError(f"no adapter versions in {self.root}")
        problems = self.verify(version)
        if problems:
            raise CorruptAdapter(f"refusing to load {version}: " + "; ".join(problems))
        return load_adapter(self.path(version), model_dir=model_dir or self.model_dir(version), merge=merge,
                            dtype=dtype)


def base_model_dir(folder: Path | str, models_root: Path | str | None = None) -> Path:
    """`models_root/<model_name>` when given, else the absolute folder recorded at training time."""
    cfg = json.loads((Path(folder) / "config.json").read_text())
    if models_root is not None and cfg.get("model_name"):
        path = Path(models_root) / cfg["model_name"]
    else:
        path = Path(cfg["model_dir"])
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"adapter {Path(folder).name} needs base model {cfg.get('model_name')!r}, "
                                f"not found at {path}; run `recsys setup --models {cfg.get('model_name')}`")
    return path


def load_adapter(folder: Path | str, model_dir: Path | str | None = None, merge: bool = False, dtype=None):
    """Load a saved adapter folder onto its base model; `merge` folds LoRA into the weights.

    `dtype` of the base weights: default float32; torch.bfloat16 halves memory and skips the
    per-call weight casts under bf16 autocast (serving)."""
    import torch
    from peft import PeftModel

    from finetune.scorer import RerankScorer, load_base, prompt_from_dict

    folder = Path(folder)
    model_dir = model_dir or base_model_dir(folder)
    head = read_head(folder)
    base, tok = load_base(model_dir, dtype=dtype or torch.float32)
    model = PeftModel.from_pretrained(base, str(folder / "adapter"))
    if merge:
        model = model.merge_and_unload()
    model.eval()
    scorer = RerankScorer(model, tok, prompt_from_dict(head["prompt"]), head=head["head"])
    scorer.load_head_state(head)
    scorer.eval()
    return scorer
