"""External protocols: named by module:Class in a scenario, decoded through the registry, keyed
by their source. Runs the documented example (docs/examples/entropy_rows.py)."""

import sys
from pathlib import Path

import pytest

from ciarsim.errors import ScenarioError
from ciarsim.policies import get_decoder, plugin
from ciarsim.policies.engine import load_prompts
from ciarsim.runner.trace_cache import trace_key
from ciarsim.scenario.schema import Scenario
from ciarsim.trace import check_deps

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


@pytest.fixture
def on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLES))


def test_module_class_names_a_plugin_with_its_params(on_path):
    sc = Scenario.model_validate({"policies": [
        {"name": "entropy_rows:EntropyRows", "tau": 1.5, "label": "rows", "cfg_scale": 2.0}]})
    p = sc.policies[0]
    assert (p.name, p.protocol, p.params, p.display, p.cfg_scale) == (
        "plugin", "entropy_rows:EntropyRows", {"tau": 1.5}, "rows", 2.0)


def test_an_adaptive_candidate_may_be_a_plugin(on_path):
    sc = Scenario.model_validate({"policies": [{"name": "adaptive", "candidates": [
        {"name": "base"}, {"name": "entropy_rows:EntropyRows", "tau": 1.5, "label": "rows"}]}]})
    cand = sc.policies[0].candidates[1]
    assert (cand.name, cand.protocol, cand.params, cand.display) == (
        "plugin", "entropy_rows:EntropyRows", {"tau": 1.5}, "rows")


def test_example_protocol_equals_entropy_gating_with_fewer_round_trips(on_path, tiny_models):
    from ciarsim.policies import gated
    from ciarsim.scenario.schema import GatedPolicy

    pr = load_prompts(0, 6, tiny_models.cloud.cfg.cap_len)
    proto = plugin.make(Scenario.model_validate(
        {"policies": [{"name": "entropy_rows:EntropyRows", "tau": 0.5, "rho": 0.125}]}).policies[0])
    mine = proto.flow(pr.images, 16, 3, tiny_models).run(pr.cap_ids)
    ref_policy = GatedPolicy(name="gated", signal="entropy", tau=0.5, rho=0.125)
    ref = gated.flow(ref_policy, pr.images, 16, 3, tiny_models).run(pr.cap_ids)
    assert all((a.tokens == b.tokens).all() for a, b in zip(mine, ref))
    assert all(check_deps(a.ops) is None for a in mine)
    assert sum(a.cloud_calls for a in mine) < sum(b.cloud_calls for b in ref)
    assert get_decoder("plugin") is plugin.decode


def test_editing_the_protocol_changes_the_trace_key(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    src = (EXAMPLES / "entropy_rows.py").read_text()
    (tmp_path / "my_rows.py").write_text(src)
    pol = {"name": "plugin", "protocol": "my_rows:EntropyRows", "params": {}}
    k1 = trace_key(pol, {}, {}, 0)
    (tmp_path / "my_rows.py").write_text(src + "\n# edited\n")
    sys.modules.pop("my_rows", None)
    assert trace_key(pol, {}, {}, 0) != k1


@pytest.mark.parametrize("spec, message", [
    ("no_such_module_xyz:Foo", "cannot import module 'no_such_module_xyz'"),
    ("entropy_rows:Nope", "has no class 'Nope' with a flow"),
])
def test_bad_protocol_names_are_clear_errors(on_path, spec, message):
    p = Scenario.model_validate({"policies": [{"name": spec}]}).policies[0]
    with pytest.raises(ScenarioError, match=message):
        plugin.make(p)


def test_protocol_rejecting_its_params_is_a_clear_error(on_path):
    p = Scenario.model_validate({"policies": [{"name": "entropy_rows:EntropyRows", "tau": -1}]}).policies[0]
    with pytest.raises(ScenarioError, match="rejected its parameters.*tau must be >= 0"):
        plugin.make(p)
