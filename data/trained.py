"""Trained artifacts committed with the project, so a fresh install serves the full pipeline without a
training step: small files (safetensors and JSON), each listed with its sha256 in MANIFEST.json
beside the exact command that made it and its measured metrics.

    data/trained/<data set>/MANIFEST.json
    data/trained/<data set>/<artifact>/...   e.g. sasrec/, reranker/
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from data.fetch import sha256_of

TRAINED_ROOT = Path(__file__).resolve().parent / "trained"
MANIFEST = "MANIFEST.json"


class CorruptArtifact(RuntimeError):
    pass


@dataclass(frozen=True)
class TrainedArtifact:
    name: str
    folder: Path
    command: str
    metrics: dict


def write_manifest(dataset_dir: Path, artifacts: dict[str, dict]) -> Path:
    """Record every file of each artifact folder with its sha256; `artifacts` maps a folder name to
    {"command": ..., "metrics": {...}}."""
    entries = {}
    for name, info in artifacts.items():
        folder = dataset_dir / name
        files = {str(p.relative_to(folder)): sha256_of(p) for p in sorted(folder.rglob("*")) if p.is_file()}
        entries[name] = {**info, "files": files}
    path = dataset_dir / MANIFEST
    path.write_text(json.dumps(entries, indent=1, sort_keys=True) + "\n")
    return path


def committed(dataset: str, root: Path = TRAINED_ROOT) -> dict[str, TrainedArtifact]:
    """The committed artifacts of a data set, every file checked against the manifest first."""
    dataset_dir = root / dataset
    manifest = dataset_dir / MANIFEST
    if not manifest.exists():
        return {}
    try:
        entries = json.loads(manifest.read_text())
    except json.JSONDecodeError as err:
        raise CorruptArtifact(f"{manifest} is not valid JSON: {err}") from None
    out = {}
    for name, entry in entries.items():
        folder = dataset_dir / name
        for relative, expected in entry.get("files", {}).items():
            path = folder / relative
            if not path.exists() or sha256_of(path) != expected:
                raise CorruptArtifact(f"{path} is missing or does not match its sha256 in {manifest}")
        out[name] = TrainedArtifact(name, folder, entry.get("command", ""), entry.get("metrics", {}))
    return out


def install_folder(source: Path, target: Path) -> bool:
    """Copy a committed folder into the runtime home unless something is there already (a model
    trained in this home wins); the copy is renamed into place whole. Returns whether it copied."""
    if target.exists():
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(source, tmp)
    os.rename(tmp, target)
    return True
