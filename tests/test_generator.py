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
