"""Pointwise LM scoring of recommendation candidates with a shared user-context prefix.

For one user the prompt is

    <chat template: system + user turn>  Recently liked movies: A; B; ... [Request: ...]
                                         Candidate: <candidate text>  Will the user like it? ...
    <assistant turn start>

and the score of a candidate is read at the LAST token: by default the "Yes" minus "No" logit
(`head="yesno"`, i.e. the hidden state dotted with lm_head[Yes] - lm_head[No]), or a small
trainable linear head initialised to that same direction (`head="linear"`).

Everything before the candidate text (the prefix) is identical for all K candidates, so it is
run ONCE; the K candidate suffixes are then packed into one unpadded row that attends to the
prefix's KV cache. Each candidate token only attends to the prefix and to its own tokens, so a
score does not depend on the other candidates or their order (order invariance), and it equals
the score of the full concatenated sequence run alone (up to float noise).
"""
from __future__ import annotations

import contextlib
import functools
import copy
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

_SENTINEL = "\u2063CANDIDATE\u2063"


@dataclass
class PromptConfig:
    system: str = "You are a movie recommender. Answer Yes or No."
    max_history: int = 8
    # False: history items as 'Title (year)', candidates keep their genres (~50 fewer prefix tokens).
    history_genres: bool = False
    history_intro: str = "Recently liked movies: "
    request_intro: str = "\nRequest: "
    user_template: str = "{context}\nWill this user like the following movie?\n{candidate}"
    yes_token: str = "Yes"
    no_token: str = "No"
    # True: candidate + end of user turn + assistant-turn start, score read where "Yes"/"No" would be
    # generated. False (default, what was trained and measured): the sequence ends with the candidate
    # text, about 5 fewer tokens per candidate (~25% of the candidate tokens).
    answer_turn: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def item_text(title: str, year: int | None = None, genres: Sequence[str] = ()) -> str:
    """The candidate / history text: 'Title (year) [Genre, Genre]'."""
    head = title if year is None else f"{title} ({year})"
    return f"{head} [{', '.join(genres)}]" if genres else head


def without_genres(text: str) -> str:
    """Inverse of the genre part of `item_text`: 'Heat (1995) [Action, Crime]' -> 'Heat (1995)'."""
    if text.endswith("]") and " [" in text:
        return text[: text.rindex(" [")]
    return text


@functools.cache
def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices through oneDNN (AVX512 or newer). Without it (an
    AVX2-only CPU) bf16 weights and bf16 autocast run an emulated path: on an AVX2 AMD EPYC a
    SmolLM2 matrix product took 8x as long in bf16 as in fp32, a LoRA training step ~20x."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def fast_dtype() -> torch.dtype:
    """bf16 where this CPU runs it natively (~1.8x faster than fp32 there), else fp32."""
    return torch.bfloat16 if native_bf16() else torch.float32


def autocast_context(enabled: bool):
    """bf16 autocast when asked for and native on this CPU; otherwise the weights' own precision."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled and native_bf16() else contextlib.nullcontext()


class RerankScorer(nn.Module):
    """Wraps a causal LM (optionally a peft model) + score head + residual retriever weight."""

    def __init__(self, model: nn.Module, tokenizer, prompt: PromptConfig | None = None, head: str = "yesno"):
        super().__init__()
        if head not in ("yesno", "linear"):
            raise ValueError(f"head must be 'yesno' or 'linear', not {head!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.prompt = prompt or PromptConfig()
        self.head_kind = head
        self.yes_id = self._single_token(self.prompt.yes_token)
        self.no_id = self._single_token(self.prompt.no_token)
        w = model.get_output_embeddings().weight.detach()
        direction = (w[self.yes_id] - w[self.no_id]).float().clone()
        if head == "linear":
            self.head_vec = nn.Parameter(direction)
            self.head_bias = nn.Parameter(torch.zeros(()))
        else:
            self.register_buffer("head_vec", direction)
            self.register_buffer("head_bias", torch.zeros(()))
        # residual weight on the (z-scored) retriever score; learned in training or fitted later
        self.retriever_weight = nn.Parameter(torch.zeros(()))
        # prefix token ids + bf16 flag -> KV cache of the prefix (most recent last); used only when
        # `reuse_prefixes` > 0, which only an inference-only scorer may set (the weights must not change)
        self.reuse_prefixes = 0
        self._prefix_cache: OrderedDict = OrderedDict()

    # ----------------------------------------------------------------- prompt building
    def _single_token(self, text: str) -> int:
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"{text!r} is not a single token for this tokenizer: {ids}")
        return ids[0]

    def _template_parts(self, context: str) -> tuple[str, str]:
        user = self.prompt.user_template.format(context=context, candidate=_SENTINEL)
        messages = [{"role": "system", "content": self.prompt.system}, {"role": "user", "content": user}]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        before, after = text.split(_SENTINEL)
        return before, after

    def context_text(self, history: Sequence[str], request: str = "") -> str:
        hist = list(history)[-self.prompt.max_history:] if self.prompt.max_history > 0 else []
        if not self.prompt.history_genres:
            hist = [without_genres(h) for h in hist]
        ctx = self.prompt.history_intro + ("; ".join(hist) if hist else "(none)")
        if request:
            ctx += self.prompt.request_intro + request
        return ctx

    def encode(self, history: Sequence[str], candidates: Sequence[str], request: str = ""
               ) -> tuple[list[int], list[list[int]]]:
        """Token ids of the shared prefix and of each candidate suffix."""
        before, after = self._template_parts(self.context_text(history, request))
        tok = self.tokenizer
        prefix = tok.encode(before, add_special_tokens=False)
        tail = after if self.prompt.answer_turn else ""
        suffixes = [tok.encode(c + tail, add_special_tokens=False) for c in candidates]
        return prefix, suffixes

    # ----------------------------------------------------------------- model plumbing
    def decoder(self) -> nn.Module:
        m = self.model
        if hasattr(m, "get_base_model"):
            m = m.get_base_model()
        return m.model

    def _head(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden.float() @ self.head_vec.float() + self.head_bias.float()

    def score_ids(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]], bf16: bool = False
                  ) -> torch.Tensor:
        """LM scores (K,) for one prefix and K suffixes: prefix run once, KV cache shared."""
        if len(suffixes) == 0:
            return torch.zeros(0)
        return self._head(self.hidden_ids(prefix, suffixes, bf16))

    def hidden_ids(self, prefix: Sequence[int], suffixes: Sequence[Sequence[int]], bf16: bool = False
                   ) -> torch.Tensor:
        """Final-layer hidden state (K, H) at each candidate's last token.

        The prefix runs once; the K suffixes are then packed into ONE row (no padding) whose
        attention mask lets each candidate token see the whole prefix and the earlier tokens of
        its own candidate only, with positions restarting after the prefix for every candidate.
        """
        dec = self.decoder()
        device = self.head_vec.device
        sizes, starts, offset, own_earlier = _packed_candidates(suffixes, device)
        p, total = len(prefix), len(offset)
        ids = torch.tensor([[t for s in suffixes for t in s]], dtype=torch.long, device=device)
        allowed = torch.cat([torch.ones((total, p), dtype=torch.bool, device=device), own_earlier], dim=1)
        with autocast_context(bf16):
            cache = self._prefix_kv(dec, prefix, bf16)
            h = dec(input_ids=ids, attention_mask=self._attention_mask(allowed, dec.config),
                    position_ids=(p + offset).unsqueeze(0), past_key_values=cache,
                    use_cache=True).last_hidden_state[0]
        return h[starts + sizes - 1]

    def hidden_lists(self, lists: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]], bf16: bool = False
                     ) -> list[torch.Tensor]:
        """`hidden_ids` for several (prefix, suffixes) lists in ONE forward: the training path.

        Each list is one row, its prefix then its candidates' tokens, with the mask and positions of
        `hidden_ids` (the prefix causal; each candidate token sees the whole prefix and its own earlier
        tokens); rows are right-padded, a padding token seeing only itself. No KV cache: one larger
        forward and backward uses this CPU's matrix units better than one small pass per list (about
        half the time per training list; bench/bench_refresh_step.py).
        """
        if not lists:
            return []
        rows, positions, masks, lasts = [], [], [], []
        for prefix, suffixes in lists:
            sizes, starts, offset, own_earlier = _packed_candidates(suffixes)
            p, total = len(prefix), len(offset)
            allowed = torch.zeros((p + total, p + total), dtype=torch.bool)
            allowed[:p, :p] = torch.ones((p, p), dtype=torch.bool).tril()
            allowed[p:, :p] = True
            allowed[p:, p:] = own_earlier
            rows.append(list(prefix) + [t for s in suffixes for t in s])
            positions.append(torch.cat([torch.arange(p), p + offset]))
            masks.append(allowed)
            lasts.append(p + starts + sizes - 1)
        width = max(len(row) for row in rows)
        ids = torch.zeros((len(rows), width), dtype=torch.long)
        position_ids = torch.zeros((len(rows), width), dtype=torch.long)
        allowed = torch.eye(width, dtype=torch.bool).repeat(len(rows), 1, 1)
        for b, (row, pos, mask) in enumerate(zip(rows, positions, masks)):
            n = len(row)
            ids[b, :n] = torch.tensor(row)
            position_ids[b, :n] = pos
            allowed[b, :n, :n] = mask
        dec = self.decoder()
        device = self.head_vec.device
        with autocast_context(bf16):
            h = dec(input_ids=ids.to(device), attention_mask=self._attention_mask(allowed.to(device), dec.config),
                    position_ids=position_ids.to(device), use_cache=False).last_hidden_state
        return [h[b, last.to(device)] for b, last in enumerate(lasts)]

    def score_lists(self, lists: Sequence[tuple[Sequence[int], Sequence[Sequence[int]]]], bf16: bool = False
                    ) -> list[torch.Tensor]:
        """LM scores (K_b,) of each (prefix, suffixes) list, all lists in one forward (`hidden_lists`)."""
        return [self._head(h) for h in self.hidden_lists(lists, bf16)]

    def _prefix_kv(self, dec, prefix: Sequence[int], bf16: bool):
        """The prefix's KV cache: computed, or (with `reuse_prefixes`) a copy of the one kept from an
        earlier call with the same prefix, e.g. the same user's next turn. The suffix pass appends to
        the cache it is given, hence the copy."""
        key = (tuple(prefix), bf16)
        reuse = self.reuse_prefixes > 0 and not torch.is_grad_enabled()
        if reuse and key in self._prefix_cache:
            self._prefix_cache.move_to_end(key)
            return copy.deepcopy(self._prefix_cache[key])
        ids = torch.tensor([list(prefix)], dtype=torch.long, device=self.head_vec.device)
        cache = dec(input_ids=ids, use_cache=True).past_key_values
        if reuse:
            self._prefix_cache[key] = copy.deepcopy(cache)
            while len(self._prefix_cache) > self.reuse_prefixes:
                self._prefix_cache.popitem(last=False)
        return cache

    def _attention_mask(self, allowed: torch.Tensor, config) -> torch.Tensor:
        """A custom 4D mask from an (L, S) or (B, L, S) boolean one, in the form the model's attention kernel
        takes (bool for sdpa, additive else)."""
        mask = allowed[None, None] if allowed.dim() == 2 else allowed[:, None]
        if getattr(config, "_attn_implementation", "sdpa") == "sdpa":
            return mask
        dtype = torch.bfloat16 if torch.is_autocast_enabled("cpu") else next(self.model.parameters()).dtype
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)

    def score_full(self, prefix: Sequence[int], suffix: Sequence[int], bf16: bool = False) -> torch.Tensor:
        """Reference: score of the concatenated sequence in one ordinary forward (no cache sharing)."""
        dec = self.decoder()
        ids = torch.tensor([list(prefix) + list(suffix)], dtype=torch.long, device=self.head_vec.device)
        with autocast_context(bf16):
            h = dec(input_ids=ids).last_hidden_state[0, -1]
        return self._head(h)

    def score(self, history: Sequence[str], candidates: Sequence[str], request: str = "",
              bf16: bool = False) -> torch.Tensor:
        """LM scores (K,) for candidate texts given history texts (oldest first) and an optional request."""
        prefix, suffixes = self.encode(history, candidates, request)
        return self.score_ids(prefix, suffixes, bf16=bf16)

    @torch.no_grad()
    def rerank_scores(self, history: Sequence[str], candidates: Sequence[str], retriever_scores=None,
                      request: str = "", bf16: bool = True, retriever_weight: float | None = None
                      ) -> list[float]:
        """Serving score: LM score + w * zscore(retriever score) (w = learned/fitted weight)."""
        lm = self.score(history, candidates, request, bf16=bf16).float()
        if retriever_scores is None:
            return lm.tolist()
        w = float(self.retriever_weight.detach()) if retriever_weight is None else float(retriever_weight)
        return (lm + w * zscore(torch.tensor(list(retriever_scores), dtype=torch.float32))).tolist()

    # ----------------------------------------------------------------- head state I/O
    def head_state(self) -> dict:
        return {"head": self.head_kind, "head_vec": self.head_vec.detach().cpu().clone(),
                "head_bias": self.head_bias.detach().cpu().clone(),
                "retriever_weight": self.retriever_weight.detach().cpu().clone(),
                "prompt": self.prompt.to_dict()}

    def load_head_state(self, state: dict) -> None:
        with torch.no_grad():
            self.head_vec.copy_(state["head_vec"])
            self.head_bias.copy_(state["head_bias"])
            self.retriever_weight.copy_(state["retriever_weight"])


def _packed_candidates(suffixes: Sequence[Sequence[int]], device=None
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The layout of K candidate suffixes packed one after another: each candidate's size and start, each
    token's offset within its candidate, and (T, T) which packed tokens each token may see (the earlier
    tokens of its own candidate, itself included)."""
    if len(suffixes) == 0:
        raise ValueError("no candidate suffixes")
    sizes = torch.tensor([len(s) for s in suffixes], device=device)
    if int(sizes.min()) < 1:
        raise ValueError("empty candidate suffix")
    owner = torch.repeat_interleave(torch.arange(len(suffixes), device=device), sizes)
    starts = torch.cumsum(sizes, 0) - sizes
    offset = torch.arange(int(sizes.sum()), device=device) - starts[owner]
    own_earlier = (owner[:, None] == owner[None, :]) & (offset[:, None] >= offset[None, :])
    return sizes, starts, offset, own_earlier


def zscore(x: torch.Tensor) -> torch.Tensor:
    """Per-list standardisation of retriever scores (a constant list maps to zeros)."""
    x = x.float()
    if x.numel() < 2:
        return torch.zeros_like(x)
    sd = x.std(unbiased=False)
    return (x - x.mean()) / sd if float(sd) > 1e-12 else torch.zeros_like(x)


def load_base(model_dir: Path | str, dtype=torch.float32):
    """Base LM + tokenizer from a converted transformers folder (offline)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)
    model.eval()
    return model, tok


def build_scorer(model_dir: Path | str, prompt: PromptConfig | None = None, head: str = "yesno",
                 dtype=torch.float32) -> RerankScorer:
    """Base model scorer (no adapter). dtype=torch.bfloat16 stores weights in bf16 (faster under autocast)."""
    model, tok = load_base(model_dir, dtype=dtype)
    return RerankScorer(model, tok, prompt, head)


def prompt_from_dict(d: dict) -> PromptConfig:
    fields = {k: v for k, v in d.items() if k in PromptConfig.__dataclass_fields__}
    fields.setdefault("history_genres", True)  # adapters saved before the field existed were trained with genres
    return PromptConfig(**fields)


def write_json_atomic(path: Path, obj) -> None:
    import os

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)
