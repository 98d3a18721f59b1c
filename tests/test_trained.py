"""Committed trained artifacts: the manifest is checked before anything is installed."""
from __future__ import annotations

import pytest

from data.trained import CorruptArtifact, committed, install_folder, write_manifest


def _artifact(root):
    folder = root / "toy" / "sasrec"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "vocab.json").write_text('["a", "b"]')
    write_manifest(root / "toy", {"sasrec": {"command": "recsys train-retriever", "metrics": {"ndcg@10": 0.1}}})
    return folder


def test_a_verified_artifact_installs_once_and_a_home_model_wins(tmp_path):
    _artifact(tmp_path / "trained")
    found = committed("toy", tmp_path / "trained")
    assert found["sasrec"].command == "recsys train-retriever" and found["sasrec"].metrics == {"ndcg@10": 0.1}
    target = tmp_path / "home" / "models" / "sasrec-toy"
    assert install_folder(found["sasrec"].folder, target)
    assert (target / "model.safetensors").read_bytes() == b"weights"
    (target / "model.safetensors").write_bytes(b"trained here")
    assert not install_folder(found["sasrec"].folder, target)  # never overwrites the home's own
    assert (target / "model.safetensors").read_bytes() == b"trained here"
    assert committed("absent", tmp_path / "trained") == {}


@pytest.mark.parametrize("damage", ["flip", "delete"])
def test_a_changed_or_missing_file_is_refused(tmp_path, damage):
    folder = _artifact(tmp_path / "trained")
    if damage == "flip":
        (folder / "model.safetensors").write_bytes(b"weightz")
    else:
        (folder / "vocab.json").unlink()
    with pytest.raises(CorruptArtifact, match="sha256"):
        committed("toy", tmp_path / "trained")


def test_the_committed_ml1m_artifacts_match_their_manifest():
    found = committed("ml-1m")
    assert {"sasrec", "reranker"} <= set(found)
    assert all(a.command.startswith("recsys ") and a.metrics for a in found.values())
