"""Convert a GGUF file ONCE into a plain transformers folder (safetensors + tokenizer).

Loading GGUF de-quantises every time (20-45 s) and the HF Trainer refuses it; the converted
folder loads in seconds. The folder is written under a temporary name and renamed, so an
interrupted conversion never leaves a folder that looks complete.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

DONE_MARKER = "conversion.json"


def is_converted(out_dir: Path, source_sha256: str | None = None) -> bool:
    marker = out_dir / DONE_MARKER
    if not marker.exists():
        return False
    if source_sha256 is None:
        return True
    return json.loads(marker.read_text()).get("source_sha256") == source_sha256


def convert_gguf(gguf_path: Path, out_dir: Path, source_sha256: str = "") -> Path:
    """De-quantise `gguf_path` into `out_dir`; a no-op if already converted from the same source."""
    if is_converted(out_dir, source_sha256 or None):
        return out_dir
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(gguf_model.state_dict(), strict=False)
    missing = [k for k in missing if not k.endswith("lm_head.weight")]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion of {name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if getattr(config, "tie_word_embeddings", False):
        model.tie_weights()
    tmp = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / DONE_MARKER).write_text(json.dumps({"source": name, "source_sha256": source_sha256}))
    shutil.rmtree(out_dir, ignore_errors=True)
    os.replace(tmp, out_dir)
    return out_dir
