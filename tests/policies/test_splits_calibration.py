"""Calibration reads only validation prompts; workloads read test prompts (issue 11 item 2)."""

import pytest

from ciarsim.nn import splits
from ciarsim.policies.calibrate import signal_thresholds
from ciarsim.policies.engine import load_prompts
from ciarsim.scenario.schema import ModelsConfig, WorkloadConfig


def test_calibration_reads_validation_and_refuses_test(tiny_models, monkeypatch):
    seen = []
    real = splits.scenes

    def spy(split, n, start=0, data_dir=None):
        seen.append(split)
        return real(split, n, start, data_dir)

    monkeypatch.setattr(splits, "scenes", spy)
    wl = WorkloadConfig(images=4, token_grid=4)
    signal_thresholds(["entropy"], [0.3], wl, ModelsConfig(), 0, rho=0.0, models=tiny_models)
    assert seen and set(seen) == {"validation"}
    with pytest.raises(splits.SplitError):
        signal_thresholds(["entropy"], [0.3], wl, ModelsConfig(), 0, rho=0.0, models=tiny_models, split="test")


def test_workload_prompts_are_the_test_split():
    p = load_prompts(2, 3, 40)
    assert p.split == "test" and p.captions == splits.scenes("test", 3, 2).captions
    v = load_prompts(2, 3, 40, split="validation")
    assert v.captions != p.captions


def test_gates_follow_the_chosen_cfg_variant(tiny_models):
    import numpy as np

    from ciarsim.nn.checkpoints import ModelSet
    from ciarsim.policies import gated
    from ciarsim.scenario.schema import GatedPolicy

    wl = WorkloadConfig(images=2, token_grid=4)
    pol = GatedPolicy(name="gated", signal="entropy", tau=float("inf"), rho=0.0)
    m = tiny_models
    cond = ModelSet(m.tokenizer, m.cloud, m.device, {"interhead": {"cfg_variant": {"entropy": "conditional"}}})
    a = gated.decode(pol, wl, ModelsConfig(), 0, models=m, quality=False)
    b = gated.decode(pol, wl, ModelsConfig(), 0, models=cond, quality=False)
    assert np.array_equal(a.tokens, b.tokens)  # the gate is closed: same trajectory, different scores
    assert not np.allclose(a.u, b.u)
