"""The pointwise LM scorer: shared-prefix KV-cache scoring equals full-sequence scoring, and scores
do not depend on candidate order or on the other candidates."""
from __future__ import annotations

import random

import pytest
import torch

from tests.conftest import SMOLLM2_DIR as MODEL, needs_model

HISTORY = ["Fargo (1996)", "Alien (1979)", "Heat (1995)"]
CANDIDATES = ["Star Wars (1977) [Action, Adventure, Sci-Fi]", "Babe (1995) [Comedy]",
              "Se7en (1995) [Crime, Thriller]", "Casablanca (1942) [Drama, Romance, War]", "Clueless (1995)"]


@pytest.fixture(scope="module")
def scorer():
    from finetune.scorer import build_scorer

    torch.manual_seed(0)
    return build_scorer(MODEL)


def test_item_text_and_zscore():
    from finetune.scorer import item_text, zscore

    assert item_text("Heat", 1995, ["Action", "Crime"]) == "Heat (1995) [Action, Crime]"
    assert item_text("Heat") == "Heat"
    z = zscore(torch.tensor([1.0, 2.0, 3.0]))
    assert abs(float(z.mean())) < 1e-6 and abs(float(z.std(unbiased=False)) - 1) < 1e-5
    assert torch.equal(zscore(torch.tensor([2.0, 2.0])), torch.zeros(2))


@needs_model
def test_prefix_is_shared_and_holds_context(scorer):
    prefix, suffixes = scorer.encode(HISTORY, CANDIDATES, request="something scary")
    text = scorer.tokenizer.decode(prefix)
    assert "Heat (1995)" in text and "something scary" in text
    assert len(suffixes) == len(CANDIDATES)
    assert "Star Wars" in scorer.tokenizer.decode(suffixes[0]) and "Star Wars" not in text


@needs_model
def test_history_is_truncated_to_most_recent(scorer):
    scorer.prompt.max_history, old = 2, scorer.prompt.max_history
    try:
        text = scorer.context_text(HISTORY)
    finally:
        scorer.prompt.max_history = old
    assert "Alien" in text and "Heat" in text and "Fargo" not in text
    assert "(none)" in scorer.context_text([])


@needs_model
def test_cached_equals_full_sequence(scorer):
    prefix, suffixes = scorer.encode(HISTORY, CANDIDATES)
    assert len({len(s) for s in suffixes}) > 1  # candidates of different lengths share one packed row
    with torch.no_grad():
        cached = scorer.score_ids(prefix, suffixes)
        full = torch.stack([scorer.score_full(prefix, s) for s in suffixes])
    assert torch.allclose(cached, full, atol=1e-4), (cached - full).abs().max()


@needs_model
def test_lists_in_one_forward_score_as_each_list_alone(scorer):
    """The training path packs several lists of different lengths into one padded batch: each list's
    scores equal its own KV-cache pass, whatever else shares the batch and in what order."""
    lists = [scorer.encode(HISTORY, CANDIDATES), scorer.encode(HISTORY[:1], CANDIDATES[3:], request="short"),
             scorer.encode(HISTORY[::-1] + ["Babe (1995)"], CANDIDATES[:2])]
    assert len({len(p) + sum(map(len, s)) for p, s in lists}) == 3  # rows of three widths: padding is exercised
    with torch.no_grad():
        alone = [scorer.score_ids(prefix, suffixes) for prefix, suffixes in lists]
        together = scorer.score_lists(lists)
        reversed_batch = scorer.score_lists(lists[::-1])[::-1]
        config = scorer.decoder().config
        config._attn_implementation, old = "eager", config._attn_implementation
        try:
            eager = scorer.score_lists(lists)
        finally:
            config._attn_implementation = old
    for a, b, c, d in zip(alone, together, reversed_batch, eager):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
        assert torch.allclose(b, c, atol=1e-4) and torch.allclose(b, d, atol=1e-4)
    assert scorer.score_lists([]) == []
    with pytest.raises(ValueError, match="empty candidate"):
        scorer.score_lists([(lists[0][0], [[]])])
    with pytest.raises(ValueError, match="no candidate"):
        scorer.score_lists([(lists[0][0], [])])


@needs_model
def test_additive_mask_path_matches_boolean_mask_path(scorer):
    """The packed row's custom mask is boolean for sdpa and additive for eager attention: same scores."""
    prefix, suffixes = scorer.encode(HISTORY, CANDIDATES)
    config = scorer.decoder().config
    with torch.no_grad():
        sdpa = scorer.score_ids(prefix, suffixes)
        config._attn_implementation, old = "eager", config._attn_implementation
        try:
            eager = scorer.score_ids(prefix, suffixes)
        finally:
            config._attn_implementation = old
    assert torch.allclose(sdpa, eager, atol=1e-4), (sdpa - eager).abs().max()


def test_history_is_rendered_without_genres_unless_the_prompt_says_so():
    from finetune.scorer import PromptConfig, RerankScorer, prompt_from_dict, without_genres

    assert without_genres("Heat (1995) [Action, Crime]") == "Heat (1995)"
    assert without_genres("Heat (1995)") == "Heat (1995)"
    history = ["Heat (1995) [Action, Crime]", "Babe (1995) [Comedy]"]
    plain = RerankScorer.context_text(_PromptHolder(PromptConfig()), history)
    assert "Heat (1995); Babe (1995)" in plain and "[" not in plain
    with_genres = RerankScorer.context_text(_PromptHolder(PromptConfig(history_genres=True)), history)
    assert "Heat (1995) [Action, Crime]; Babe (1995) [Comedy]" in with_genres
    # an adapter saved before the field existed was trained with genres in the history
    assert prompt_from_dict({"max_history": 8}).history_genres is True
    assert prompt_from_dict(PromptConfig().to_dict()).history_genres is False


class _PromptHolder:
    def __init__(self, prompt):
        self.prompt = prompt


@needs_model
def test_reused_prefix_gives_the_same_scores_and_is_bounded(scorer):
    calls = [(h, b) for h in (HISTORY, ["Babe (1995)", "Toy Story (1995)"]) for b in (False, True)]
    try:
        with torch.no_grad():
            fresh = [scorer.score(h, CANDIDATES, bf16=b) for h, b in calls]
            scorer.reuse_prefixes = 4
            filled = [scorer.score(h, CANDIDATES, bf16=b) for h, b in calls]
            kept = dict(scorer._prefix_cache)
            reused = [scorer.score(h, CANDIDATES, bf16=b) for h, b in calls]
            assert len(kept) == 4 and all(scorer._prefix_cache[k] is v for k, v in kept.items())  # read, not redone
            for a, b, c in zip(fresh, filled, reused):
                assert torch.equal(a, b) and torch.equal(a, c)
            # the suffix pass did not grow the kept caches
            assert all(cache.get_seq_length() == len(key[0]) for key, cache in scorer._prefix_cache.items())
            scorer.reuse_prefixes = 2
            scorer.score(HISTORY, CANDIDATES[:2], bf16=False)  # a hit: now the most recently used
            scorer.score(["Heat (1995)"], CANDIDATES[:2], bf16=False)  # a new prefix: evicts down to 2
            assert [key[0] == tuple(scorer.encode(HISTORY, [])[0]) for key in scorer._prefix_cache] == [True, False]
        scorer._prefix_cache.clear()
        scorer.score(HISTORY, CANDIDATES[:2])  # gradients on (training): nothing is kept
        assert len(scorer._prefix_cache) == 0
    finally:
        scorer.reuse_prefixes = 0
        scorer._prefix_cache.clear()


@needs_model
def test_order_invariance_and_independence(scorer):
    with torch.no_grad():
        base = scorer.score(HISTORY, CANDIDATES)
        for seed in range(2):
            perm = list(range(len(CANDIDATES)))
            random.Random(seed).shuffle(perm)
            shuffled = scorer.score(HISTORY, [CANDIDATES[i] for i in perm])
            assert torch.allclose(shuffled, base[perm], atol=1e-4)
        alone = scorer.score(HISTORY, CANDIDATES[2:3])
    assert torch.allclose(alone, base[2:3], atol=1e-4)


@needs_model
def test_order_invariance_bf16(scorer):
    """In bf16 a candidate's place in the packed row changes rounding only: an order effect no larger
    than the bf16 rounding itself (bf16 against fp32 scores)."""
    with torch.no_grad():
        base = scorer.score(HISTORY, CANDIDATES, bf16=True)
        fp32 = scorer.score(HISTORY, CANDIDATES, bf16=False)
        perm = list(reversed(range(len(CANDIDATES))))
        shuffled = scorer.score(HISTORY, [CANDIDATES[i] for i in perm], bf16=True)
    rounding = float((base - fp32).abs().max())
    assert rounding < 0.1 * float(fp32.std())
    assert float((shuffled - base[perm]).abs().max()) <= max(rounding, 1e-3)


@needs_model
def test_linear_head_starts_at_yes_minus_no(scorer):
    from finetune.scorer import RerankScorer

    lin = RerankScorer(scorer.model, scorer.tokenizer, scorer.prompt, head="linear")
    prefix, suffixes = scorer.encode(HISTORY, CANDIDATES[:3])
    with torch.no_grad():
        a = scorer.score_ids(prefix, suffixes)
        b = lin.score_ids(prefix, suffixes)
        # the yes-no head equals the real lm_head logit difference
        ids = torch.tensor([prefix + suffixes[0]])
        logits = scorer.model(input_ids=ids).logits[0, -1]
    assert torch.allclose(a, b, atol=1e-5)
    assert abs(float(logits[scorer.yes_id] - logits[scorer.no_id]) - float(a[0])) < 1e-3


@needs_model
def test_rerank_scores_adds_weighted_retriever_feature(scorer):
    with torch.no_grad():
        lm = scorer.score(HISTORY, CANDIDATES[:3], bf16=False)
    fused = scorer.rerank_scores(HISTORY, CANDIDATES[:3], retriever_scores=[3.0, 2.0, 1.0], bf16=False,
                                 retriever_weight=2.0)
    z = torch.tensor([1.0, 0.0, -1.0]) * (1 / (2 / 3) ** 0.5)
    assert torch.allclose(torch.tensor(fused), lm + 2.0 * z, atol=1e-4)


def test_bf16_is_used_only_where_the_cpu_has_it_natively():
    """On a CPU without native bf16 (AVX2 only) bf16 runs an emulated kernel, 4-8x slower than fp32
    (bench/bench_cpu_dtype.py): autocast then stays off and weights load in fp32."""
    from finetune.scorer import autocast_context, fast_dtype, native_bf16

    with autocast_context(True):
        assert torch.is_autocast_enabled("cpu") == native_bf16()
    with autocast_context(False):
        assert not torch.is_autocast_enabled("cpu")
    assert fast_dtype() == (torch.bfloat16 if native_bf16() else torch.float32)
