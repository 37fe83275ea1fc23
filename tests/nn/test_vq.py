"""VQ tokenizer: shapes, code range, normalised codebook, restart of dead codes."""

import torch

from ciarsim.nn.vq import VQ_PRESETS, VQModel, codebook_usage, psnr_db


def _model():
    torch_gen = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = VQModel(VQ_PRESETS["tiny"]())
    return m.eval(), torch_gen


def test_encode_decode_shapes():
    m, gen = _model()
    imgs = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8, generator=gen)
    codes = m.encode(imgs)
    assert codes.shape == (3, 256) and codes.dtype == torch.int64
    assert 0 <= codes.min() and codes.max() < m.cfg.codebook_size
    out = m.decode_code(codes)
    assert out.shape == (3, 64, 64, 3) and out.dtype == torch.uint8


def test_code_vectors_are_unit_norm_and_decode_is_deterministic():
    m, gen = _model()
    assert torch.allclose(m.code_vectors.norm(dim=-1), torch.ones(m.cfg.codebook_size), atol=1e-5)
    codes = torch.randint(0, m.cfg.codebook_size, (2, 256), generator=gen)
    assert torch.equal(m.decode_code(codes), m.decode_code(codes))


def test_restart_dead_codes_moves_unused_entries():
    m, gen = _model()
    usage = torch.zeros(m.cfg.codebook_size)
    usage[:10] = 0.1
    zf = torch.nn.functional.normalize(torch.randn(500, m.cfg.code_dim, generator=gen), dim=-1)
    before = m.codebook.detach().clone()
    n = m.restart_dead(usage, zf, gen)
    assert n == m.cfg.codebook_size - 10
    assert torch.equal(m.codebook[:10], before[:10]) and not torch.equal(m.codebook[10:], before[10:])


def test_psnr_and_usage():
    a = torch.zeros(2, 4, 4, 3, dtype=torch.uint8)
    assert psnr_db(a, a) == float("inf")
    assert abs(psnr_db(a, a + 1) - 48.13) < 0.01
    assert codebook_usage(torch.tensor([[0, 1, 1, 3]]), 8) == 3 / 8
