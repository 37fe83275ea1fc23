"""No process-wide state in decoding: two model sets decode side by side in one process, the
model cache belongs to its caller, and autograd is left as it was."""

import numpy as np
import torch

from ciarsim.nn import checkpoints as ck
from ciarsim.policies import ciar
from ciarsim.policies.engine import ModelCache
from ciarsim.scenario.schema import CiarPolicy, ModelsConfig, WorkloadConfig

WORKLOAD = WorkloadConfig(images=4, token_grid=4)
POLICY = CiarPolicy(name="ciar", tau=0.5, rho=0.1)


def _save(models, folder, scale: float) -> None:
    """Save ``models`` as a model set with the cloud's head scaled by ``scale`` (another set)."""
    with torch.no_grad():
        cloud = type(models.cloud)(models.cloud.cfg)
        cloud.load_state_dict(models.cloud.state_dict())
        cloud.lm_head.weight.mul_(scale)
    for kind, model in (("tokenizer", models.tokenizer), ("cloud", cloud), ("device", models.device)):
        ck.save_checkpoint(model, folder, kind, {})


def _decode(folder, cache: ModelCache):
    models = cache.get(str(folder))
    return ciar.decode(POLICY, WORKLOAD, ModelsConfig(checkpoints=str(folder)), 0, models=models, quality=False)


def test_two_model_sets_decode_in_one_process(tiny_models, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    _save(tiny_models, a, 1.0)
    _save(tiny_models, b, -1.0)
    assert torch.is_grad_enabled()
    first = ModelCache()
    ts_a, ts_b = _decode(a, first), _decode(b, first)
    assert torch.is_grad_enabled()  # decoding left autograd on (inference_mode scopes only)
    assert not np.array_equal(ts_a.tokens, ts_b.tokens)  # each set decoded with its own models
    assert first.get(str(a)) is first.get(str(a)) and first.get(str(a)) is not first.get(str(b))
    second = ModelCache()  # another caller's cache: its own models, the same results
    assert second.get(str(a)) is not first.get(str(a))
    again_b, again_a = _decode(b, second), _decode(a, second)
    assert np.array_equal(ts_a.tokens, again_a.tokens) and np.array_equal(ts_b.tokens, again_b.tokens)
    # and training still works in this process after decoding
    layer = torch.nn.Linear(2, 1)
    layer(torch.ones(1, 2)).sum().backward()
    assert layer.weight.grad is not None


def test_cache_reloads_a_set_retrained_in_place(tiny_models, tmp_path):
    _save(tiny_models, tmp_path, 1.0)
    cache = ModelCache()
    before = cache.get(str(tmp_path))
    assert cache.get(str(tmp_path)) is before
    _save(tiny_models, tmp_path, 2.0)
    assert cache.get(str(tmp_path)) is not before
