"""Adapter registry: versions, serving pointer, and save/load/merge round-trips with identical scores."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import SMOLLM2_DIR as MODEL, needs_model

HISTORY = ["Fargo (1996)", "Alien (1979)", "Heat (1995)"]
CANDIDATES = ["Star Wars (1977) [Action, Sci-Fi]", "Babe (1995) [Comedy]", "Se7en (1995) [Crime, Thriller]"]


def _fake_adapter_folder(folder: Path) -> Path:
    (folder / "adapter").mkdir(parents=True)
    (folder / "adapter" / "adapter_config.json").write_text("{}")
    from finetune.adapters import write_head

    write_head(folder, {"head": "yesno", "prompt": {}, "head_vec": torch.zeros(4), "head_bias": torch.zeros(()),
                        "retriever_weight": torch.ones(())})
    (folder / "metrics.json").write_text(json.dumps({"loss_end": 1.0}))
    (folder / "config.json").write_text(json.dumps({"model_dir": "x"}))
    return folder


def test_registry_versions_and_serving(tmp_path):
    from finetune.adapters import AdapterRegistry

    reg = AdapterRegistry(tmp_path / "adapters")
    assert reg.versions() == [] and reg.serving() is None
    src = _fake_adapter_folder(tmp_path / "a")
    assert reg.publish(src) == "v0001"
    assert reg.publish(src) == "v0002"
    vs = reg.versions()
    assert [v.version for v in vs] == ["v0001", "v0002"] and vs[0].metrics == {"loss_end": 1.0}
    reg.set_serving("v0001")
    assert reg.serving() == "v0001"
    with pytest.raises(KeyError):
        reg.set_serving("v0009")
    with pytest.raises(KeyError):
        reg.path("../etc")
    assert not [p for p in (tmp_path / "adapters").iterdir() if "partial" in p.name]
    with pytest.raises(ValueError):
        reg.publish(tmp_path)  # not an adapter folder


def test_promote_and_rollback_keep_a_history(tmp_path):
    from finetune.adapters import AdapterRegistry

    reg = AdapterRegistry(tmp_path / "adapters")
    src = _fake_adapter_folder(tmp_path / "a")
    for _ in range(3):
        reg.publish(src)
    reg.set_serving("v0001")
    reg.set_serving("v0002")
    reg.set_serving("v0003")
    assert reg.rollback() == "v0002" and reg.serving() == "v0002"
    assert reg.rollback() == "v0001" and reg.serving() == "v0001"
    with pytest.raises(KeyError):
        reg.rollback()


@pytest.mark.parametrize("damage", ["flip_byte", "truncate", "delete_head", "extra_file", "drop_manifest"])
def test_a_corrupted_or_partial_version_is_never_promoted_or_loaded(tmp_path, damage):
    from finetune.adapters import AdapterRegistry, CorruptAdapter

    reg = AdapterRegistry(tmp_path / "adapters")
    src = _fake_adapter_folder(tmp_path / "a")
    reg.set_serving(reg.publish(src))
    bad = reg.path(reg.publish(src))
    head = bad / "head.safetensors"
    if damage == "flip_byte":
        data = bytearray(head.read_bytes())
        data[-1] ^= 0xFF
        head.write_bytes(bytes(data))
    elif damage == "truncate":
        head.write_bytes(head.read_bytes()[:10])
    elif damage == "delete_head":
        head.unlink()
    elif damage == "extra_file":
        (bad / "adapter" / "evil.pkl").write_bytes(b"x")
    else:
        (bad / "manifest.json").unlink()
    assert reg.verify("v0002")
    with pytest.raises(CorruptAdapter):
        reg.set_serving("v0002")
    with pytest.raises(CorruptAdapter):
        reg.load("v0002")
    assert reg.serving() == "v0001"


@needs_model
def test_save_load_merge_round_trip(tmp_path):
    from finetune.adapters import AdapterRegistry, load_adapter
    from finetune.training import TrainConfig, make_lora_scorer, save_adapter_folder

    torch.manual_seed(0)
    cfg = TrainConfig(base_bf16=False, lora_layers=4, head="linear")
    scorer = make_lora_scorer(MODEL, cfg)
    with torch.no_grad():  # a non-trivial adapter: LoRA B is zero at init
        for name, p in scorer.model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
        scorer.head_vec.mul_(1.3)
        scorer.head_bias.fill_(0.25)
        scorer.retriever_weight.fill_(0.7)
    scorer.eval()
    with torch.no_grad():
        expected = scorer.score(HISTORY, CANDIDATES)
        base = scorer.model.get_base_model()
        with scorer.model.disable_adapter():
            plain = scorer.score(HISTORY, CANDIDATES)
    assert (expected - plain).abs().max() > 1e-3  # the adapter changes scores
    folder = save_adapter_folder(scorer, tmp_path / "out", cfg, MODEL, {"examples": 0}, {"loss_end": 0.0})
    reg = AdapterRegistry(tmp_path / "adapters")
    version = reg.publish(folder)
    reg.set_serving(version)
    for merge in (False, True):
        loaded = reg.load(merge=merge)
        assert abs(float(loaded.retriever_weight.detach()) - 0.7) < 1e-6
        with torch.no_grad():
            got = loaded.score(HISTORY, CANDIDATES)
        assert torch.allclose(got, expected, atol=1e-4), (merge, (got - expected).abs().max())
    assert not hasattr(load_adapter(folder, merge=True).model, "disable_adapter")
    with torch.no_grad():  # serving merges into bf16 weights: no further from fp32 than bf16 LoRA on top
        lora16 = reg.load(dtype=torch.bfloat16).score(HISTORY, CANDIDATES).float()
        merged16 = reg.load(merge=True, dtype=torch.bfloat16).score(HISTORY, CANDIDATES).float()
    merged_error, lora_error = (merged16 - expected).abs().max(), (lora16 - expected).abs().max()
    assert merged_error <= 1.5 * lora_error + 0.01, (merged16, lora16, expected)
    del base


def test_base_model_is_found_by_name_in_any_home(tmp_path):
    """A version records its base model by name: copied into another home (or committed), it loads from
    that home's models folder, and a missing model is a clear error naming the set-up command."""
    from finetune.adapters import AdapterRegistry, base_model_dir

    folder = _fake_adapter_folder(tmp_path / "a")
    (folder / "config.json").write_text(json.dumps({"model_dir": "/elsewhere/models/smollm2",
                                                    "model_name": "smollm2"}))
    models = tmp_path / "models"
    (models / "smollm2").mkdir(parents=True)
    (models / "smollm2" / "config.json").write_text("{}")
    reg = AdapterRegistry(tmp_path / "adapters", models)
    version = reg.publish(folder)
    assert reg.model_dir(version) == models / "smollm2"
    with pytest.raises(FileNotFoundError, match="recsys setup --models smollm2"):
        base_model_dir(reg.path(version))  # the recorded absolute folder does not exist here
    with pytest.raises(FileNotFoundError, match="smollm2"):
        AdapterRegistry(tmp_path / "adapters", tmp_path / "empty").model_dir(version)
