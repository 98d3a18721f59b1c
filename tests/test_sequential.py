import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from data.splits import LeakageError, leave_last_out
from retrieval.sequential import (CONFIG_FILE, META_FILE, MODEL_FILE, RESUME_FILE, VOCAB_FILE, SASRecConfig,
                                  SASRecRetriever, full_softmax_ce, train_sasrec)

N_ITEMS = 20
ITEMS = [f"m{i:02d}" for i in range(N_ITEMS)]


def _cycle_data(n_users=60, seed=0):
    """Item i is always followed by item i+1 (mod N): users start at random places."""
    rng = np.random.default_rng(seed)
    users, items, times = [], [], []
    for u in range(n_users):
        start, length = rng.integers(N_ITEMS), rng.integers(8, 16)
        for t in range(length):
            users.append(f"u{u}")
            items.append(ITEMS[(start + t) % N_ITEMS])
            times.append(t)
    return leave_last_out(users, items, times)


def _small_cfg(**kw):
    base = dict(hidden=32, blocks=1, heads=1, dropout=0.0, max_len=12, lr=1e-2, batch_size=16,
                max_epochs=20, patience=50, val_users=30, seed=0)
    base.update(kw)
    return SASRecConfig(**base)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.set_num_threads(1)
    split = _cycle_data()
    out = tmp_path_factory.mktemp("sasrec")
    res = train_sasrec(split.train, split.valid, ITEMS, out, _small_cfg(), budget_minutes=1.0,
                       progress=False, split=split)
    return split, out, res


def test_learns_next_item_pattern(trained):
    split, out, res = trained
    model = res.retriever
    for i in range(N_ITEMS):
        history = [ITEMS[(i - k) % N_ITEMS] for k in range(7, -1, -1)]
        scores = model.score_all([history])[0]
        scores[[model.item_ids.index(x) for x in history]] = -np.inf  # the protocol removes history
        assert model.item_ids[int(np.argmax(scores))] == ITEMS[(i + 1) % N_ITEMS]
    assert res.best_ndcg10 == pytest.approx(1.0)
    assert res.history[-1]["loss"] < 0.5 * res.history[0]["loss"]


def test_vectors_give_the_same_scores_and_checkpoint_round_trips(trained):
    split, out, res = trained
    for name in (MODEL_FILE, CONFIG_FILE, VOCAB_FILE, META_FILE, RESUME_FILE):
        assert (out / name).exists()
    assert not list(out.glob("*.tmp"))
    assert json.loads((out / VOCAB_FILE).read_text()) == ITEMS
    assert json.loads((out / CONFIG_FILE).read_text())["hidden"] == 32
    loaded = SASRecRetriever.load(out)
    seqs = [split.history(u, "test") for u in split.evaluable_users[:5]]
    ids, items = loaded.item_vectors()
    assert ids == ITEMS and items.shape == (N_ITEMS, 32)
    users = np.stack([loaded.user_vector(s) for s in seqs])
    np.testing.assert_allclose(users @ items.T, loaded.score_all(seqs), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(loaded.score_all(seqs), res.retriever.score_all(seqs), rtol=1e-5, atol=1e-5)
    # batching with different padding lengths does not change a user's vector
    np.testing.assert_allclose(loaded.user_vectors([seqs[0], ["m01"]])[0], loaded.user_vector(seqs[0]),
                               rtol=1e-5, atol=1e-5)


def test_resume_continues_from_saved_epoch(trained, tmp_path):
    split = _cycle_data(n_users=20, seed=1)
    cfg = _small_cfg(max_epochs=4)
    first = train_sasrec(split.train, split.valid, ITEMS, tmp_path, cfg, max_epochs=2, progress=False)
    assert first.epochs_run == 2
    second = train_sasrec(split.train, split.valid, ITEMS, tmp_path, cfg, max_epochs=4, progress=False)
    assert second.epochs_run == 4 and [h["epoch"] for h in second.history] == [1, 2, 3, 4]
    assert second.wall_s >= first.wall_s
    # changed training settings (a lower lr) resume as a new phase with the new learning rate
    third = train_sasrec(split.train, split.valid, ITEMS, tmp_path, _small_cfg(max_epochs=5, lr=1e-3),
                         progress=False)
    assert third.epochs_run == 5 and third.history[-1]["lr"] == pytest.approx(1e-3)
    assert json.loads((tmp_path / META_FILE).read_text())["phases"][0]["from_epoch"] == 4


def test_leaky_training_data_is_refused(tmp_path):
    split = _cycle_data(n_users=5)
    leaky = {u: split.train[u] + [split.test[u]] for u in split.train}
    with pytest.raises(LeakageError):
        train_sasrec(leaky, split.valid, ITEMS, tmp_path, _small_cfg(max_epochs=1), progress=False, split=split)


def test_chunked_full_softmax_matches_cross_entropy():
    torch.manual_seed(0)
    h = torch.randn(300, 16, requires_grad=True)
    table = torch.randn(50, 16, requires_grad=True)
    tgt = torch.randint(0, 50, (300,))
    loss = full_softmax_ce(h, table, tgt, chunk=64)
    (loss * 2).backward()
    gh, gt = h.grad.clone(), table.grad.clone()
    h.grad = table.grad = None
    ref = F.cross_entropy(h @ table.T, tgt)
    (ref * 2).backward()
    assert float(loss) == pytest.approx(float(ref), rel=1e-5)
    torch.testing.assert_close(gh, h.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(gt, table.grad, rtol=1e-4, atol=1e-6)
