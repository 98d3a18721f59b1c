"""Short-text generation from a chat prompt with a converted base LM, optionally with a LoRA adapter.

    gen = TextGenerator.load(home.models / "smollm2")                   # base model
    gen = TextGenerator.load(home.models / "qwen", adapter="<registry>/v0003")   # + LoRA (merged)
    out = gen.generate([{"role": "system", "content": ...}, {"role": "user", "content": ...}])
    out.text, out.new_tokens, out.seconds

Greedy decoding, at most `max_new_tokens` new tokens, under torch.inference_mode and (by default)
bf16 autocast with bf16 weights where the CPU has native bf16 (about 1.8x faster than fp32 there,
RESOURCES.md), fp32 elsewhere (emulated bf16 is several times slower).
Generation stops early once the text holds `stop_after_sentences` complete sentences.
One generator is not safe to call from two threads at once; callers hold a lock.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from finetune.scorer import autocast_context, fast_dtype, load_base

_SENTENCE_END = re.compile(r"[.!?](?:[\"'”’)\]]*)(?=\s|$)")


@dataclass(frozen=True)
class Generation:
    text: str  # the new text only, special tokens removed, stripped
    new_tokens: int
    seconds: float
    prompt_tokens: int
    stopped: str  # "eos" | "sentences" | "length"


class _SentenceStop:
    """A transformers StoppingCriteria: stop once the new text holds n complete sentences."""

    def __init__(self, tokenizer, prompt_len: int, sentences: int):
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.sentences = sentences
        self.hit = False

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        text = self.tokenizer.decode(input_ids[0, self.prompt_len:], skip_special_tokens=True)
        done = len(_SENTENCE_END.findall(text.rstrip())) >= self.sentences
        self.hit = self.hit or done
        return torch.tensor([done], dtype=torch.bool, device=input_ids.device)


class TextGenerator:
    def __init__(self, model, tokenizer, name: str = "", bf16: bool = True):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name
        self.bf16 = bf16
        self.model.eval()

    @classmethod
    def load(cls, model_dir: Path | str, adapter: Path | str | None = None, bf16: bool = True,
             name: str | None = None) -> "TextGenerator":
        """Base model from a converted transformers folder; `adapter` is a peft adapter folder (an
        adapter-registry version folder holding adapter/, or the adapter folder itself), merged in."""
        folder = None
        if adapter is not None:  # checked before the (seconds-long) model load
            folder = Path(adapter)
            if (folder / "adapter").is_dir():
                folder = folder / "adapter"
            if not (folder / "adapter_config.json").exists():
                raise FileNotFoundError(f"no peft adapter (adapter_config.json) in {folder}")
        model, tok = load_base(model_dir, dtype=fast_dtype() if bf16 else torch.float32)
        label = name or Path(model_dir).name
        if folder is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
            label += "+" + Path(adapter).name
        return cls(model, tok, label, bf16)

    def prompt_ids(self, messages: list[dict], assistant_prefix: str = "") -> list[int]:
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self.tokenizer.encode(text + assistant_prefix, add_special_tokens=False)

    def generate(self, messages: list[dict], max_new_tokens: int = 50, assistant_prefix: str = "",
                 stop_after_sentences: int | None = 2, repetition_penalty: float = 1.1) -> Generation:
        """Greedy continuation of the chat (ending in an open assistant turn, optionally already begun
        with `assistant_prefix`, which is not part of the returned text)."""
        from transformers import StoppingCriteriaList

        ids = self.prompt_ids(messages, assistant_prefix)
        input_ids = torch.tensor([ids], dtype=torch.long)
        stop = _SentenceStop(self.tokenizer, len(ids), stop_after_sentences) if stop_after_sentences else None
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id
        started = time.perf_counter()
        with torch.inference_mode(), autocast_context(self.bf16):
            out = self.model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
                do_sample=False, repetition_penalty=repetition_penalty, pad_token_id=pad,
                stopping_criteria=StoppingCriteriaList([stop]) if stop else None)
        seconds = time.perf_counter() - started
        new = out[0, len(ids):]
        eos = {self.tokenizer.eos_token_id, *(_as_list(self.model.generation_config.eos_token_id))}
        ended = len(new) > 0 and int(new[-1]) in eos
        text = self.tokenizer.decode(new, skip_special_tokens=True).strip()
        stopped = "eos" if ended else ("sentences" if stop is not None and stop.hit else "length")
        return Generation(text, int(len(new)), seconds, len(ids), stopped)


def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
