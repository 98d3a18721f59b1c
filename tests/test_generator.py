"""TextGenerator: greedy, bounded, deterministic short generation from a chat prompt (real SmolLM2)."""
from __future__ import annotations

import pytest

from tests.conftest import needs_model

MESSAGES = [{"role": "system", "content": "You answer in one short sentence."},
            {"role": "user", "content": "Name a good movie for a rainy day."}]


@pytest.fixture(scope="module")
def generator(smollm2_dir):
    from finetune.generator import TextGenerator

    return TextGenerator.load(smollm2_dir)


@needs_model
def test_greedy_bounded_and_deterministic(generator):
    first = generator.generate(MESSAGES, max_new_tokens=8, stop_after_sentences=None)
    again = generator.generate(MESSAGES, max_new_tokens=8, stop_after_sentences=None)
    assert first.text == again.text and first.text
    assert first.new_tokens <= 8 and first.prompt_tokens > 10
    assert first.stopped in ("eos", "length")


@needs_model
def test_assistant_prefix_is_continued_not_returned(generator):
    out = generator.generate(MESSAGES, max_new_tokens=6, assistant_prefix="You might enjoy")
    assert not out.text.startswith("You might enjoy")
    assert generator.prompt_ids(MESSAGES, "You might enjoy")[-3:] != generator.prompt_ids(MESSAGES)[-3:]


def test_missing_adapter_is_an_error(smollm2_dir, tmp_path):
    from finetune.generator import TextGenerator

    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        TextGenerator.load(smollm2_dir, adapter=tmp_path)


@needs_model
def test_lora_adapter_from_a_registry_folder(generator, smollm2_dir, tmp_path):
    """A registry-style version folder (adapter/ + config.json) is merged in; a fresh LoRA (B = 0) leaves
    the output unchanged, and a writer refuses an adapter trained on another base model."""
    import json

    from peft import LoraConfig, get_peft_model

    from finetune.generator import TextGenerator
    from finetune.scorer import load_base

    base, _ = load_base(smollm2_dir)
    version = tmp_path / "v0001"
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(version / "adapter")
    (version / "config.json").write_text(json.dumps({"model_dir": str(smollm2_dir)}))
    tuned = TextGenerator.load(smollm2_dir, adapter=version)
    assert tuned.name == "smollm2+v0001"
    assert tuned.generate(MESSAGES, max_new_tokens=5).text == generator.generate(MESSAGES, max_new_tokens=5).text

    from assistant.explanation_writer import build_writer

    with pytest.raises(ValueError, match="trained on"):
        build_writer("qwen", smollm2_dir.parent, recommender=None, adapter=version)
