"""Metrics of the temporal protocol against hand-computed values."""
from __future__ import annotations

import math

import pytest

from assistant.temporal_eval import _metrics


@pytest.mark.parametrize("ranked,targets,ndcg,recall", [
    (["a", "b", "c"], {"b"}, 1 / math.log2(3), 1.0),
    (["a", "b", "c"], {"a", "z"}, 1 / (1 + 1 / math.log2(3)), 0.5),
    (["a", "b"], {"z"}, 0.0, 0.0),
    ([str(n) for n in range(20)], {str(n) for n in range(10, 20)}, 0.0, 0.0),  # hits below the top 10 count 0
    ([str(n) for n in range(10)], {str(n) for n in range(15)}, 1.0, 1.0),  # recall over min(10, targets)
])
def test_ndcg_and_recall_at_10(ranked, targets, ndcg, recall):
    got_ndcg, got_recall = _metrics(ranked, targets)
    assert got_ndcg == pytest.approx(ndcg) and got_recall == pytest.approx(recall)
