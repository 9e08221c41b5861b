"""The per-sensor context encoder/decoder and the context-aware loss (issue #4, stage 1)."""

from __future__ import annotations

import pytest
import torch

from ecoembed.models import (
    ContextEncoder,
    NeighbourhoodDecoder,
    context_weights,
    mask_inputs,
    weighted_masked_loss,
)
from ecoembed.models.encoder import stem_kernels
from ecoembed.models.losses import pointwise_loss

SIZE, FRAMES = 15, 11


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return ContextEncoder(10, size=SIZE, frames=FRAMES, latent_dim=7).eval()


def random_window(h: int, w: int, channels: int = 10, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(FRAMES, channels, h, w, generator=g)
    x[torch.rand(FRAMES, 1, h, w, generator=g).expand_as(x) < 0.2] = float("nan")  # clouds
    dt = torch.tensor([-40.0, -33, -25, -18, -10, 0, 5, 12, 20, 31, 38])
    return x, dt


def test_stem_receptive_field_is_the_context_window():
    assert sum(k - 1 for k in stem_kernels(15)) == 14 and max(stem_kernels(15)) <= 5
    assert sum(k - 1 for k in stem_kernels(9)) == 8
    with pytest.raises(ValueError):
        stem_kernels(14)


def test_dense_encoding_equals_encoding_each_pixels_own_neighbourhood(encoder):
    """One pass over a window gives every pixel the code its own cropped neighbourhood
    gives (the condition for sharing work between neighbours in dense export)."""
    x, dt = random_window(40, 36)
    dense = encoder.encode_dense(x, dt, pixel_batch=100)  # (7, 26, 22)
    assert dense.shape == (7, 40 - SIZE + 1, 36 - SIZE + 1)
    rows, cols = dense.shape[1:]
    patches = torch.stack(
        [x[:, :, r : r + SIZE, c : c + SIZE] for r in range(rows) for c in range(cols)]
    )
    with torch.no_grad():
        single = encoder(patches, dt.expand(len(patches), -1))
    diff = (single.reshape(rows, cols, -1).permute(2, 0, 1) - dense).abs().max()
    assert diff < 1e-4, float(diff)


@pytest.mark.parametrize("centre_skip", [False, True])
def test_window_codes_equal_each_centres_own_neighbourhood_with_its_frames_dropped(centre_skip):
    """Dense stage-1 training: codes read from one stem pass per window equal the codes
    of each centre's own neighbourhood, with that centre's dropped frames set to NaN, and
    the gradient reaches the stem through both (a dropped frame's features are the stem's
    output on an all-missing frame, so its weights and biases still learn)."""
    torch.manual_seed(0)
    enc = ContextEncoder(10, size=SIZE, frames=FRAMES, centre_skip=centre_skip)
    x0, dt0 = random_window(20, 22, seed=1)
    x1, _ = random_window(20, 22, seed=2)
    windows = torch.stack([x0, x1])  # (2, T, C, 20, 22): stem output grid 6 x 8
    dt = torch.stack([dt0, dt0 + 3])
    at = (
        torch.tensor([0, 0, 1, 1, 0]),
        torch.tensor([0, 5, 3, 5, 2]),
        torch.tensor([1, 7, 0, 7, 4]),
    )
    g = torch.Generator().manual_seed(3)
    drop = torch.rand(5, FRAMES, generator=g) < 0.3
    drop[0, FRAMES // 2] = True  # also the central frame
    codes = enc.window_codes(windows, dt, at, drop)
    patches = torch.stack(
        [
            windows[k, :, :, r : r + SIZE, c : c + SIZE]
            for k, r, c in zip(*(a.tolist() for a in at), strict=True)
        ]
    ).clone()
    patches[drop] = float("nan")
    single = enc(patches, dt[at[0]])
    assert (codes - single).abs().max() < 1e-5
    codes.sum().backward()
    dense_grad = [p.grad.clone() for p in enc.stem.parameters()]
    enc.zero_grad()
    single.sum().backward()
    for a, b in zip(dense_grad, (p.grad for p in enc.stem.parameters()), strict=True):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
        assert b.abs().sum() > 0
    with pytest.raises(ValueError, match="frames"):
        enc.window_codes(windows[:, :5], dt[:, :5], at)


def test_code_depends_on_the_context_window_and_nothing_outside(encoder):
    x, dt = random_window(SIZE + 2, SIZE + 2)
    x = torch.nan_to_num(x)
    base = encoder.encode_dense(x, dt)[:, 0, 0]  # the window at rows/cols 0..14
    outside = x.clone()
    outside[:, :, SIZE, SIZE] += 5.0  # just beyond the window of pixel (0, 0)
    assert torch.equal(encoder.encode_dense(outside, dt)[:, 0, 0], base)
    corner = x.clone()
    corner[:, :, SIZE - 1, SIZE - 1] += 5.0  # its far corner
    assert not torch.allclose(encoder.encode_dense(corner, dt)[:, 0, 0], base)
    later = x.clone()
    later[FRAMES - 1] += 5.0  # another date of the same neighbourhood
    assert not torch.allclose(encoder.encode_dense(later, dt)[:, 0, 0], base)


def test_missing_is_not_zero(encoder):
    x, dt = random_window(SIZE, SIZE, seed=3)
    x = torch.nan_to_num(x)
    zero, missing = x.clone(), x.clone()
    zero[FRAMES // 2, :, 7, 7] = 0.0
    missing[FRAMES // 2, :, 7, 7] = float("nan")
    a = encoder.encode_dense(zero, dt)
    b = encoder.encode_dense(missing, dt)
    assert torch.isfinite(b).all() and not torch.allclose(a, b)


def test_decoder_shapes_and_gradients_reach_the_encoder(encoder):
    dec = NeighbourhoodDecoder(10, size=SIZE, latent_dim=7)
    enc = ContextEncoder(10, size=SIZE, frames=FRAMES).train()
    x, dt = random_window(SIZE, SIZE)
    patches, dts = x[None].repeat(4, 1, 1, 1, 1), dt.expand(4, -1)
    out = dec(enc(patches, dts), dts)
    assert out.shape == (4, FRAMES, 10, SIZE, SIZE)
    loss = weighted_masked_loss(out, patches, context_weights(SIZE, FRAMES))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all()
        for p in enc.parameters()
        if p.requires_grad
    )


def test_context_weights_follow_the_paper():
    w = context_weights(SIZE, FRAMES)
    c, k = SIZE // 2, FRAMES // 2
    assert w[k, c, c] == 1.0
    assert w[k, c, c + 1] == pytest.approx(0.01) and w[k, c - 1, c + 1] == pytest.approx(0.01)
    assert w[k, c + 2, c] == pytest.approx(0.001) and w[k, 0, 0] == pytest.approx(0.01 * 0.1**6)
    assert w[k + 1, c, c] == pytest.approx(0.1) and w[0, c, c] == pytest.approx(0.1**5)
    assert w[k - 2, c, c + 1] == pytest.approx(0.01 * 0.01)


def test_loss_ignores_missing_targets_and_weighs_the_centre():
    w = context_weights(5, 3)
    target = torch.zeros(1, 3, 2, 5, 5)
    target[0, 0, :, 0, 0] = float("nan")
    pred = torch.zeros_like(target)
    pred[0, 0, :, 0, 0] = 100.0  # error only where the target is missing
    assert weighted_masked_loss(pred, target, w) == 0.0
    centre, edge = torch.zeros_like(target), torch.zeros_like(target)
    centre[0, 1, :, 2, 2] = 1.0
    edge[0, 1, :, 2, 0] = 1.0
    assert weighted_masked_loss(centre, target, w) > 50 * weighted_masked_loss(edge, target, w)


def test_losses_penalise_large_errors_less_than_squared():
    err = torch.tensor([0.0, 0.1, -0.2, 1.0, -3.0])
    assert torch.allclose(pointwise_loss(err, "mse"), err**2)
    assert torch.allclose(pointwise_loss(err, "l1"), err.abs())
    huber = pointwise_loss(err, "huber", delta=0.3)
    # squared within delta, then linear with the squared loss's slope at delta
    assert torch.allclose(huber[:3], err[:3] ** 2)
    assert torch.allclose(huber[3:], 2 * 0.3 * (err[3:].abs() - 0.15))
    with pytest.raises(ValueError, match="unknown loss 'l2'"):
        pointwise_loss(err, "l2")
    # one outlier among small errors: its share of the weighted loss falls from mse to l1
    w = context_weights(5, 3)
    target = torch.zeros(1, 3, 2, 5, 5)
    pred = torch.full_like(target, 0.05)
    pred[0, 1, 0, 2, 2] = 4.0  # the centre, weight 1
    share = {}
    for kind in ("mse", "huber", "l1"):
        clean = pred.clone()
        clean[0, 1, 0, 2, 2] = 0.05
        total = weighted_masked_loss(pred, target, w, kind, 0.3)
        share[kind] = 1 - weighted_masked_loss(clean, target, w, kind, 0.3) / total
    assert share["mse"] > share["huber"] > share["l1"] > 0


def test_input_masking_hides_frames_and_the_centre():
    g = torch.Generator().manual_seed(0)
    x = torch.ones(200, FRAMES, 3, SIZE, SIZE)
    m = mask_inputs(x, p_frame=0.2, p_centre=0.5, generator=g)
    frame_hidden = torch.isnan(m).all(dim=(2, 3, 4)).float().mean()
    assert 0.15 < frame_hidden < 0.25
    centre_hidden = torch.isnan(m[:, FRAMES // 2, 0, SIZE // 2, SIZE // 2]).float().mean()
    assert 0.45 < centre_hidden < 0.65
    assert torch.isfinite(x).all()  # the input itself is untouched
