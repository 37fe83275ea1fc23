"""Cloud GPT: shapes, KV cache == full forward, k-token verification == k single steps, CFG."""

import pytest
import torch

from ciarsim.nn.gpt import (GPT, GPT_PRESETS, cfg_mix, decode_step, drop_condition, generate,
                            image_logits, new_cache, prefill, sample)


@pytest.fixture(scope="module")
def setup():
    cfg = GPT_PRESETS["tiny"](text_vocab_size=10, cap_len=5)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = GPT(cfg).eval()
    gen = torch.Generator().manual_seed(1)
    cap = torch.randint(0, 10, (3, 5), generator=gen)
    img = torch.randint(0, cfg.vocab_size, (3, cfg.n_image), generator=gen)
    return model, cap, img, gen


def test_logits_shape(setup):
    model, cap, img, _ = setup
    assert image_logits(model, cap, img).shape == (3, model.cfg.n_image, model.cfg.vocab_size)


def test_kv_cache_decode_equals_full_forward(setup):
    model, cap, img, _ = setup
    full = image_logits(model, cap, img)
    cache = new_cache(model, 3)
    steps = [prefill(model, cap, cache)]
    for t in range(model.cfg.n_image - 1):
        steps.append(decode_step(model, img[:, t:t + 1], cache)[:, -1])
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_k_token_verification_equals_single_steps_and_rollback(setup):
    model, cap, img, _ = setup
    c1, c2 = new_cache(model, 3), new_cache(model, 3)
    prefill(model, cap, c1), prefill(model, cap, c2)
    decode_step(model, img[:, :3], c1)
    c1.pos = model.cfg.cap_len + 1  # roll back two tokens (positions are absolute), verify k=5 at once
    many = decode_step(model, img[:, 1:6], c1)
    decode_step(model, img[:, :1], c2)
    single = torch.cat([decode_step(model, img[:, t:t + 1], c2) for t in range(1, 6)], 1)
    torch.testing.assert_close(many, single, atol=1e-5, rtol=1e-5)
    assert c1.pos == c2.pos == model.cfg.cap_len + 6


def test_zero_features_leave_logits_unchanged(setup):
    model, cap, img, _ = setup
    feats = torch.zeros(3, model.cfg.cap_len + model.cfg.n_image - 1, model.cfg.dim)
    torch.testing.assert_close(image_logits(model, cap, img, feats), image_logits(model, cap, img))
    feats[:, -1] = 1.0
    assert not torch.allclose(image_logits(model, cap, img, feats)[:, -1], image_logits(model, cap, img)[:, -1])


def test_generate_is_reproducible_and_cfg_mix(setup):
    model, cap, _, _ = setup
    a = generate(model, cap, cfg_scale=2.0, top_k=5, gen=torch.Generator().manual_seed(3))
    b = generate(model, cap, cfg_scale=2.0, top_k=5, gen=torch.Generator().manual_seed(3))
    assert a.shape == (3, model.cfg.n_image) and torch.equal(a, b)
    lg = torch.randn(4, 7)
    torch.testing.assert_close(cfg_mix(lg, 1.0), lg[:2])


def test_sample_top_k_and_greedy():
    gen = torch.Generator().manual_seed(0)
    logits = torch.tensor([[0.0, 5.0, 4.0, -1.0]]).repeat(200, 1)
    s = sample(logits, top_k=2, gen=gen)
    assert set(s.tolist()) <= {1, 2}
    assert sample(logits, greedy=True).eq(1).all()


def test_drop_condition_uses_null():
    gen = torch.Generator().manual_seed(0)
    cap = torch.ones(1000, 4, dtype=torch.long)
    out = drop_condition(cap, 0.1, 99, gen)
    share = (out[:, 0] == 99).float().mean().item()
    assert 0.05 < share < 0.15 and ((out == 99).all(1) | (out == 1).all(1)).all()


def test_profile_model_table_format():
    from ciarsim.nn.profile import profile_model

    cfg = GPT_PRESETS["tiny"](text_vocab_size=10, cap_len=5)
    df = profile_model(cfg, batches=[1, 2], contexts=[8, 40], new_tokens=[1, 3], repeats=2)
    assert list(df.columns[:8]) == ["gpu", "model", "params_m", "batch", "context", "new_tokens", "mode",
                                    "ms_median"]
    assert len(df) == 8 and (df.ms_median > 0).all() and "torch" in df.columns
