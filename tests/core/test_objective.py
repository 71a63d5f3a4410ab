"""The OA-ARDM estimator's expectation equals the order-averaged exact likelihood."""

import itertools

import numpy as np
import math

import pytest
import torch

from ardm_core.model import ARDMTransformer, ModelConfig
from ardm_core.objective import ardm_loss, sample_known


def tiny_net(D: int, V: int = 5, seed: int = 0) -> ARDMTransformer:
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=V, block_size=D, n_layer=1, n_head=1, n_embd=8, mlp_ratio=2)
    net = ARDMTransformer(cfg).double().eval()
    # random weights far from init so predictions actually depend on context
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.7)
    return net


@torch.no_grad()
def exact_ordered_nll(net, x: torch.Tensor, order: tuple[int, ...]) -> float:
    """-log p(x) under one order: one network call per position (teacher forcing)."""
    D = len(x)
    total = 0.0
    known = torch.zeros(D, dtype=torch.bool)
    for pos in order:
        inp = x.masked_fill(~known, net.mask_id)[None]
        total -= float(net(inp)[0, pos, x[pos]])
        known[pos] = True
    return total


@pytest.mark.parametrize("D", [3, 4])
def test_expectation_over_t_and_orders_equals_average_exact_nll(D):
    net = tiny_net(D)
    x = torch.tensor([1, 3, 2, 4][:D])
    orders = list(itertools.permutations(range(D)))
    exact = sum(exact_ordered_nll(net, x, o) for o in orders) / len(orders)

    estimates = []
    with torch.no_grad():
        for order in orders:
            rank = torch.empty(D, dtype=torch.long)
            rank[list(order)] = torch.arange(D)
            for t in range(1, D + 1):
                known = (rank < t - 1)[None]
                out = ardm_loss(net, x[None], known=known, t=torch.tensor([t]))
                estimates.append(float(out.weighted_nll[0]))
    expectation = sum(estimates) / len(estimates)
    assert expectation == pytest.approx(exact, rel=1e-12, abs=1e-12)
    assert exact > 0


def test_short_windows_use_their_own_length():
    D = 4
    net = tiny_net(D)
    x = torch.tensor([[1, 3, 2, 0]])  # valid length 3, last is padding
    lengths = torch.tensor([3])
    orders = list(itertools.permutations(range(3)))
    exact = sum(exact_ordered_nll(net, x[0, :3], o) for o in orders) / len(orders)
    vals = []
    with torch.no_grad():
        for order in orders:
            rank = torch.full((D,), 99)
            rank[list(order)] = torch.arange(3)
            for t in range(1, 4):
                out = ardm_loss(net, x, lengths, known=(rank < t - 1)[None], t=torch.tensor([t]))
                vals.append(float(out.weighted_nll[0]))
    # the padded network call differs from the unpadded one only by masked-out padding keys
    assert sum(vals) / len(vals) == pytest.approx(exact, rel=1e-9)


def test_sampled_masks_have_t_minus_one_known_and_uniform_t():
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([8] * 4000 + [5] * 4000)
    t, known = sample_known(lengths, 8, generator=g)
    assert ((known.sum(1)) == t - 1).all()
    assert (t >= 1).all() and (t <= lengths).all()
    assert not known[4000:, 5:].any(), "padding is never known"
    counts = torch.bincount(t[:4000], minlength=9)[1:].double()
    assert counts.min() > 400 and counts.max() < 600  # stratified: close to 500 each


def test_bpc_is_weighted_nll_per_char_in_bits():
    net = tiny_net(4)
    x = torch.tensor([[1, 2, 3, 4], [4, 3, 2, 1]])
    out = ardm_loss(net, x, generator=torch.Generator().manual_seed(1))
    assert float(out.bpc) == pytest.approx(float(out.weighted_nll.sum()) / 8 / math.log(2))


def test_ar_baseline_is_exact_left_to_right_nll():
    from ardm_core.objective import ar_loss

    D = 5
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=6, block_size=D, n_layer=1, n_head=1, n_embd=8, mlp_ratio=2, causal=True)
    net = ARDMTransformer(cfg).double().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.7)
    x = torch.tensor([[1, 5, 2, 4, 3]])
    out = ar_loss(net, x)
    # reference: one call per prefix, no future visible
    ref = 0.0
    for k in range(D):
        inp = torch.cat([torch.tensor([net.mask_id]), x[0, :k]])[None]
        ref -= float(net(inp)[0, k, x[0, k]].detach())
    assert float(out.weighted_nll[0]) == pytest.approx(ref, rel=1e-10)


def test_non_increasing_fit():
    import numpy as np

    from ardm_core.evaluate import non_increasing

    y = np.array([5.0, 4.0, 4.5, 3.0, 3.2, 1.0])
    f = non_increasing(y)
    assert (np.diff(f) <= 0).all()
    assert f.sum() == pytest.approx(y.sum())  # pooling keeps the mean
    np.testing.assert_allclose(non_increasing(np.array([3.0, 2.0, 1.0])), [3, 2, 1])


def test_estimated_lt_table_is_non_increasing(tiny_model, sample_text):
    from ardm_core.evaluate import estimate_loss_by_known

    raw, table = estimate_loss_by_known(tiny_model, sample_text * 2, rounds=1)
    assert len(table) == tiny_model.config.block_size
    assert (np.diff(table) <= 1e-12).all()
    assert table.mean() == pytest.approx(raw.mean())


def _span_orders(spans: list[list[int]]):
    """Every order that visits the given spans one after another, each span's positions in any order."""
    for span_perm in itertools.permutations(spans):
        for inner in itertools.product(*(itertools.permutations(s) for s in span_perm)):
            yield tuple(p for block in inner for p in block)


@pytest.mark.parametrize("spans", [[[0, 1], [2, 3]], [[0], [1, 2, 3]], [[0, 1, 2], [3, 4]]])
def test_span_order_estimator_is_unbiased_for_its_orders(spans):
    """With span orders, E over t and the orders of the weighted loss equals the
    average exact NLL over those orders: the mixed objective is still a bound."""
    D = sum(len(s) for s in spans)
    net = tiny_net(D)
    x = torch.tensor([1, 3, 2, 4, 2][:D])
    span_id = torch.empty(D, dtype=torch.long)
    for j, s in enumerate(spans):
        span_id[s] = j
    orders = list(_span_orders(spans))
    exact = sum(exact_ordered_nll(net, x, o) for o in orders) / len(orders)
    estimates = []
    with torch.no_grad():
        for order in orders:
            rank = torch.empty(D, dtype=torch.long)
            rank[list(order)] = torch.arange(D)
            for t in range(1, D + 1):
                out = ardm_loss(net, x[None], known=torch.zeros(1, D, dtype=torch.bool), t=torch.tensor([t]),
                                span_order=(rank[None], span_id[None]))
                estimates.append(float(out.weighted_nll[0]))
    assert sum(estimates) / len(estimates) == pytest.approx(exact, rel=1e-12)


def test_sampled_span_orders_visit_contiguous_spans_one_at_a_time():
    from ardm_core.objective import sample_span_order

    g = torch.Generator().manual_seed(3)
    lengths = torch.tensor([64] * 50 + [40] * 50)
    rank, span = sample_span_order(lengths, 64, generator=g, max_span=16)
    for i in range(100):
        D = int(lengths[i])
        r, s = rank[i, :D], span[i, :D]
        assert sorted(r.tolist()) == list(range(D)), "a permutation of the valid positions"
        assert (rank[i, D:] >= D).all(), "padding ranks last"
        assert (torch.diff(s) >= 0).all() and (torch.diff(s) <= 1).all(), "spans are consecutive runs"
        sizes = torch.bincount(s)
        assert sizes.max() <= 16
        visit = s[r.argsort()]  # span of the 1st, 2nd, ... visited position
        changes = int((torch.diff(visit) != 0).sum())
        assert changes == len(torch.unique(s)) - 1, "each span is finished before the next starts"


def test_span_mix_rows_are_flagged_and_scored_within_their_span():
    net = tiny_net(32, V=6)
    x = torch.randint(1, 6, (64, 32), generator=torch.Generator().manual_seed(0))
    out = ardm_loss(net, x, generator=torch.Generator().manual_seed(1), span_mix=0.5, max_span=8)
    assert 10 < int((~out.uniform).sum()) < 54
    assert torch.isfinite(out.loss)
    # a span row scores at most one span's positions
    span_rows = ~out.uniform
    assert (out.step_bits[span_rows] > 0).all()


def test_t_focus_draws_that_share_of_rows_from_the_infilling_steps():
    from ardm_core.objective import FOCUS_FROM, sample_t
    D, B = 256, 64
    lengths = torch.full((B,), D)
    g = torch.Generator().manual_seed(3)
    ts = torch.stack([sample_t(lengths, generator=g, t_focus=0.25) for _ in range(200)])  # (200, B)
    n_focus = round(0.25 * B)
    focused, rest = ts[:, :n_focus], ts[:, n_focus:]
    assert int(focused.min()) >= int(FOCUS_FROM * D) and int(focused.max()) <= D
    # the rest stay uniform on 1..D: both ends are reached and the mean is near (D + 1) / 2
    assert int(rest.min()) <= 8 and int(rest.max()) == D
    assert abs(float(rest.float().mean()) - (D + 1) / 2) < 3
    # short windows keep t within their own length
    short = torch.tensor([10, 256, 3, 40])
    for _ in range(50):
        t = sample_t(short, generator=g, t_focus=1.0)
        assert bool(((t >= 1) & (t <= short)).all())


def test_t_focus_loss_masks_few_positions_for_focused_rows():
    net = tiny_net(16)
    x = torch.randint(1, 5, (40, 16), generator=torch.Generator().manual_seed(0))
    out = ardm_loss(net, x, generator=torch.Generator().manual_seed(1), t_focus=1.0)
    assert bool((out.t >= 12).all())  # at most a quarter of 16 positions masked
