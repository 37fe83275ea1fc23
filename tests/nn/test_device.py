"""Device model: InterFuse bounds, U, cloud init, zero-init phi, device KV cache, Inter-DRO loss."""

import pytest
import torch

from ciarsim.nn.device import (DeviceConfig, DeviceModel, InterDROWeights, device_prefill, device_step,
                               guide, inter_dro_loss, interfuse, new_device_cache, uncertainty)
from ciarsim.nn.gpt import GPT, GPT_PRESETS, image_logits, sequence


def _direct(c, r):
    """Non-log interval-softmax bounds, straight from the formula (float64)."""
    c, r = c.double(), r.double()
    lo, hi = (c - r).exp(), (c + r).exp()
    p_lo = lo / (lo + hi.sum(-1, keepdim=True) - hi)
    p_hi = hi / (hi + lo.sum(-1, keepdim=True) - lo)
    return p_lo, torch.softmax(c, -1), p_hi


def test_interfuse_bounds_valid_and_match_direct():
    gen = torch.Generator().manual_seed(0)
    c = torch.randn(4, 6, 50, generator=gen) * 3
    r = torch.rand(4, 6, 50, generator=gen) * 2
    lo, mid, hi = (t.exp() for t in interfuse(c, r))
    assert (lo <= mid + 1e-6).all() and (mid <= hi + 1e-6).all()
    assert (lo.sum(-1) <= 1 + 1e-5).all() and (hi.sum(-1) >= 1 - 1e-5).all()
    for ours, ref in zip((lo, mid, hi), _direct(c, r)):
        torch.testing.assert_close(ours.double(), ref, atol=1e-6, rtol=1e-4)


def test_interfuse_is_stable_for_extreme_logits():
    c = torch.tensor([[80.0, 0.0, -80.0]])
    lo, mid, hi = interfuse(c, torch.full_like(c, 0.5))
    assert torch.isfinite(lo).all() and torch.isfinite(hi).all()


def test_uncertainty_zero_when_radius_zero_and_grows_with_radius():
    c = torch.randn(3, 20, generator=torch.Generator().manual_seed(1))
    lo, _, hi = interfuse(c, torch.zeros_like(c))
    torch.testing.assert_close(uncertainty(lo.exp(), hi.exp()), torch.zeros(3), atol=1e-7, rtol=0)
    u1 = uncertainty(*(t.exp() for t in interfuse(c, torch.full_like(c, 0.1))[::2]))
    u2 = uncertainty(*(t.exp() for t in interfuse(c, torch.full_like(c, 0.5))[::2]))
    assert (u2 > u1).all() and (u1 > 0).all()


@pytest.fixture(scope="module")
def models():
    cfg = GPT_PRESETS["tiny"](text_vocab_size=10, cap_len=5)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        cloud = GPT(cfg).eval()
        dev = DeviceModel(DeviceConfig(cloud=cfg, summary_dim=8, phi_hidden=16)).eval()
    dev.init_from_cloud(cloud)
    gen = torch.Generator().manual_seed(2)
    cap = torch.randint(0, 10, (2, 5), generator=gen)
    img = torch.randint(0, cfg.vocab_size, (2, cfg.n_image), generator=gen)
    return cloud, dev, cap, img


def test_init_from_cloud_copies_embeddings_and_first_block(models):
    cloud, dev, _, _ = models
    assert torch.equal(dev.trunk.tok_emb.weight, cloud.tok_emb.weight)
    assert torch.equal(dev.trunk.blocks[0].attn.qkv.weight, cloud.blocks[0].attn.qkv.weight)
    assert torch.equal(dev.trunk.lm_head.weight, cloud.lm_head.weight)
    assert len(dev.trunk.blocks) == 1


def test_zero_initialised_phi_leaves_cloud_unchanged(models):
    cloud, dev, cap, img = models
    out = dev(sequence(cap, img))
    f = dev.features(out)
    assert f.shape == (2, cloud.cfg.cap_len + cloud.cfg.n_image - 1, cloud.cfg.dim)
    torch.testing.assert_close(image_logits(cloud, cap, img, f), image_logits(cloud, cap, img))


def test_device_kv_cache_equals_full_forward(models):
    _, dev, cap, img = models
    Lc = dev.cfg.cloud.cap_len
    full = dev(sequence(cap, img))
    cache = new_device_cache(dev, 2)
    first = device_prefill(dev, cap, cache)
    rest = device_step(dev, img[:, :4], cache)
    torch.testing.assert_close(first.U[:, 0], full.U[:, Lc - 1])
    torch.testing.assert_close(rest.log_p_mid, full.log_p_mid[:, Lc:Lc + 4], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(rest.r, full.r[:, Lc:Lc + 4], atol=1e-5, rtol=1e-5)


def test_guide_mixes_the_centre_and_keeps_the_conditional_u(models):
    _, dev, cap, img = models
    null = torch.full_like(cap, dev.cfg.cloud.null_id)
    out = dev(torch.cat([cap, null]))
    one, three = guide(out, 1.0), guide(out, 3.0)
    torch.testing.assert_close(one.c, out.c[:2])
    cc, cu = out.c.chunk(2)
    torch.testing.assert_close(three.c, cu + 3.0 * (cc - cu))
    torch.testing.assert_close(three.p_mid.sum(-1), torch.ones_like(three.U))
    torch.testing.assert_close(three.U, out.U[:2])  # U: the conditional branch's, whatever the scale
    assert not torch.allclose(three.c, one.c)


def test_inter_dro_loss_terms_finite_and_backprop(models):
    cloud, dev, cap, img = models
    dev.train()
    seq = sequence(cap, img)
    out = dev(seq)
    logp = torch.log_softmax(cloud(seq), -1).detach()
    terms = inter_dro_loss(out, logp, InterDROWeights())
    assert set(terms) == {"anchor_mid", "anchor_hi", "anchor_lo", "align", "dro_lo", "total"}
    assert all(torch.isfinite(v) for v in terms.values())
    terms["total"].backward()
    assert dev.head_r.weight.grad is not None and dev.head_r.weight.grad.abs().sum() > 0
    dev.zero_grad()
    dev.eval()


def test_loo_logsumexp_matches_float64_brute_force_and_has_finite_gradients():
    from ciarsim.nn.device import loo_logsumexp

    gen = torch.Generator().manual_seed(3)
    cases = [torch.randn(5, 3, 64, generator=gen) * 6,
             torch.tensor([[2.0, 2.0, -1.0, 0.5]]),  # a tied maximum
             torch.tensor([[80.0, 0.0, -80.0, -200.0]]),  # one term dominates
             torch.tensor([[-1e4, -1e4 + 1.0, -1e4 - 3.0]])]  # far from zero
    for x in cases:
        ref = torch.stack([torch.logsumexp(torch.cat([x.double()[..., :i], x.double()[..., i + 1:]], -1), -1)
                           for i in range(x.shape[-1])], -1)
        torch.testing.assert_close(loo_logsumexp(x).double(), ref, atol=1e-5, rtol=1e-6)
        xg = x.clone().requires_grad_(True)
        loo_logsumexp(xg).sum().backward()
        assert torch.isfinite(xg.grad).all()
