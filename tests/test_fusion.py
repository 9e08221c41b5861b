"""The fusion network (issue #4, stage 2): missing views, context, sensors from config, and
frozen encoders."""

from __future__ import annotations

import pytest
import torch

from ecoembed.models import ContextEncoder, FusionNetwork, freeze

B, K, LATENT = 6, 4, 7


def inputs(seed: int = 0, others=("s1",)):
    g = torch.Generator().manual_seed(seed)
    return dict(
        day_code=torch.randn(B, LATENT, generator=g),
        day_present=torch.tensor([True, False] * (B // 2)),
        context_codes=torch.randn(B, K, LATENT, generator=g),
        context_dt=torch.tensor([-20.0, -10.0, 5.0, 15.0]).expand(B, K),
        context_present=torch.tensor([True, True, False, True]).expand(B, K),
        others={m: (torch.randn(B, LATENT, generator=g), torch.full((B,), 2.0)) for m in others},
    )


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return FusionNetwork({"s2": 10, "s1": 2}, embedding_dim=7).eval()


def test_outputs_an_embedding_and_every_sensor_of_the_day(net):
    emb, dec = net(**inputs())
    assert emb.shape == (B, 7)
    assert dec["s2"].shape == (B, 10) and dec["s1"].shape == (B, 2)


def test_a_missing_day_view_ignores_its_code(net):
    a, b = inputs(), inputs()
    b["day_code"] = b["day_code"] + 3.0
    ea, _ = net(**a)
    eb, _ = net(**b)
    missing = ~a["day_present"]
    assert torch.allclose(ea[missing], eb[missing], atol=1e-6)
    assert not torch.allclose(ea[~missing], eb[~missing])


def test_absent_context_dates_are_ignored(net):
    a, b = inputs(), inputs()
    b["context_codes"] = b["context_codes"].clone()
    b["context_codes"][:, 2] += 5.0  # the absent one
    assert torch.allclose(net(**a)[0], net(**b)[0], atol=1e-6)
    b["context_codes"][:, 0] += 5.0  # a present one
    assert not torch.allclose(net(**a)[0], net(**b)[0])


def test_a_third_sensor_is_a_config_entry():
    torch.manual_seed(0)
    net3 = FusionNetwork({"s2": 10, "s1": 2, "l8": 7})
    emb, dec = net3(**inputs(others=("s1", "l8")))
    assert dec["l8"].shape == (B, 7)
    with pytest.raises(KeyError):
        net3(**inputs(others=("s1",)))
    with pytest.raises(ValueError, match="primary"):
        FusionNetwork({"s1": 2})


def test_encoders_stay_bit_identical_while_fusion_trains():
    torch.manual_seed(1)
    enc = {
        "s2": freeze(ContextEncoder(10, size=5, frames=3, latent_dim=LATENT)),
        "s1": freeze(ContextEncoder(2, size=5, frames=3, latent_dim=LATENT)),
    }
    before = {m: {k: v.clone() for k, v in e.state_dict().items()} for m, e in enc.items()}
    net = FusionNetwork({"s2": 10, "s1": 2})
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(2)
    for _ in range(5):
        x2 = torch.randn(B, 3, 10, 5, 5, generator=g)
        x1 = torch.randn(B, 3, 2, 5, 5, generator=g)
        dt = torch.tensor([-5.0, 0.0, 5.0]).expand(B, 3)
        c2, c1 = enc["s2"](x2, dt), enc["s1"](x1, dt)
        ctx = c2[:, None].expand(B, K, LATENT)
        _, dec = net(
            c2,
            torch.ones(B, dtype=torch.bool),
            ctx,
            torch.zeros(B, K),
            torch.ones(B, K, dtype=torch.bool),
            {"s1": (c1, torch.zeros(B))},
        )
        loss = ((dec["s2"] - x2[:, 1, :, 2, 2]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for m, e in enc.items():
        assert all(p.grad is None and not p.requires_grad for p in e.parameters())
        for k, v in e.state_dict().items():
            assert torch.equal(v, before[m][k]), (m, k)
    assert any(p.grad is not None for p in net.parameters())


def test_several_tokens_of_another_sensor_absent_ones_ignored(net):
    """S1 as N tokens: one present token equals the single-acquisition form, absent
    tokens change nothing, and a second present token does."""
    a = inputs()
    code, dt = a["others"]["s1"]
    g = torch.Generator().manual_seed(5)
    extra = torch.randn(B, 2, LATENT, generator=g)
    codes = torch.cat([code[:, None], extra], 1)
    gaps = torch.stack([dt, dt + 6, dt - 6], 1)
    one = torch.tensor([True, False, False]).expand(B, 3)
    single = net(**a)[0]
    b = dict(a, others={"s1": (codes, gaps, one)})
    assert torch.allclose(net(**b)[0], single, atol=1e-6)
    b["others"] = {"s1": (codes + torch.tensor([0.0, 4.0, 4.0])[None, :, None], gaps, one)}
    assert torch.allclose(net(**b)[0], single, atol=1e-6)
    b["others"] = {"s1": (codes, gaps, torch.ones(B, 3, dtype=torch.bool))}
    assert not torch.allclose(net(**b)[0], single, atol=1e-4)


def test_interpolated_views_are_linear_between_and_held_beyond():
    from ecoembed.models.fusion import interpolate_views

    before = torch.tensor([[0.0, 1.0], [2.0, 2.0], [float("nan")] * 2, [float("nan")] * 2])
    after = torch.tensor([[1.0, 3.0], [float("nan")] * 2, [4.0, 5.0], [float("nan")] * 2])
    dt_before = torch.tensor([-10.0, -3.0, 0.0, 0.0])
    dt_after = torch.tensor([30.0, 0.0, 7.0, 0.0])
    value, has = interpolate_views(before, after, dt_before, dt_after)
    assert has.tolist() == [True, True, True, False]
    torch.testing.assert_close(value[:3], torch.tensor([[0.25, 1.5], [2.0, 2.0], [4.0, 5.0]]))


def test_an_untrained_anchored_head_adds_nothing_and_reads_the_embedding_detached(net):
    emb = torch.randn(B, 7, requires_grad=True)
    decoded = torch.randn(B, 10)
    before, after = torch.randn(B, 10), torch.randn(B, 10)
    dtb, dta = torch.full((B,), -5.0), torch.full((B,), 15.0)
    out = net.reconstruct(emb, decoded, before, after, dtb, dta)
    torch.testing.assert_close(out, before + 0.25 * (after - before))
    out.sum().backward()
    assert emb.grad is None
