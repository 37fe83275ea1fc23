"""Capacity at an SLO: SLO parsing, percentile intervals, the bracketing search, and the M/D/1
check against the Pollaczek-Khinchine formula."""

import numpy as np
import pytest

from ciarsim.errors import ScenarioError
from ciarsim.runner.slo import (
    Probe, Slo, parse_slo, percentile_ci, run_capacity, search, tile, Task,
)  # fmt: skip
from ciarsim.scenario.schema import (
    ArrivalConfig, CloudConfig, ModelsConfig, NetworkConfig, Scenario, WorkloadConfig,
)  # fmt: skip
from ciarsim.scenario.sweep import replication_seed
from ciarsim.sim import simulate
from ciarsim.sim.costs import CostModel
from ciarsim.trace import OP_DTYPE, ImageTrace, TraceSet, cloud_op

CLOUD = CloudConfig(runtime="eager", max_batch=1, text_tokens=0, cfg_rows=1)
MD1 = Scenario(workload=WorkloadConfig(images=1, token_grid=2),
               models=ModelsConfig(cloud=CLOUD), network=NetworkConfig(capacity="ideal"))  # fmt: skip
S_MS = CostModel.from_config(CLOUD, "models.cloud").step_ms(1, 0, 1)  # deterministic service


def _one_pass_trace() -> TraceSet:
    """Cloud-only (base-like) image: one request of one pass, nothing on the device."""
    ops = np.array([cloud_op(steps=1, new_tokens=1, context=0, tokens_down=1)], dtype=OP_DTYPE)
    img = ImageTrace(0, ops, np.zeros(4, np.int32), np.zeros(4, np.float32), np.zeros(4, np.uint8))
    return TraceSet.from_images([img], {"policy": "md1"})


def test_parse_slo():
    assert parse_slo("p95<=2000ms") == Slo(95.0, 2000.0)
    assert parse_slo(" p99 <= 1.5s ") == Slo(99.0, 1500.0)
    for bad in ("p100<=1ms", "95<=2000ms", "p95<2000ms", "p95<=2000"):
        with pytest.raises(ScenarioError, match="--slo"):
            parse_slo(bad)


def test_percentile_interval_brackets_the_estimate():
    x = np.random.default_rng(0).exponential(100.0, 2000)
    est, lo, hi = percentile_ci(x, 95)
    assert lo < est < hi and hi - lo < 0.3 * est
    assert est == pytest.approx(100 * np.log(20), rel=0.15)


@pytest.mark.parametrize("integer,truth,expect", [(False, 37.3, 37.3), (True, 37.3, 37),
                                                  (False, 0.001, 0.0), (False, 5000, 1024)])  # fmt: skip
def test_search_brackets_then_bisects(integer, truth, expect):
    fake = lambda x, full: Probe(x, x, x, x, 1, x <= truth, 100 if full else 25)  # noqa: E731
    cap, bounded, probes = search(fake, integer=integer, rel_tol=0.01, guess=lambda p: 4.0)
    assert cap == pytest.approx(expect, rel=0.01) and cap <= truth
    assert bounded == (expect != 1024) and len(probes) < 30
    if expect:  # the answer's ends were judged on full probes
        judged = {p.load for p in probes if p.images == 100}
        assert cap in judged and (not bounded or min(x for x in judged if x > cap) <= cap * 1.02 + 1)


def test_search_rechecks_an_end_a_short_probe_got_wrong():
    """Short probes think the capacity is 40; full ones know it is 30."""
    fake = lambda x, full: Probe(x, x, x, x, 1, x <= (30 if full else 40), 100 if full else 25)  # noqa: E731
    cap, bounded, _ = search(fake, integer=False, rel_tol=0.05, guess=lambda p: 4.0)
    assert 30 / 1.05 <= cap <= 30 and bounded


@pytest.mark.parametrize("rho", [0.5, 0.8])
def test_md1_cloud_matches_pollaczek_khinchine(rho):
    """Poisson arrivals, one deterministic pass each, batch 1: M/D/1. Mean wait
    W = rho * S / (2 (1 - rho)) (Pollaczek-Khinchine with zero service variance)."""
    rate_per_s = rho / S_MS * 1000.0
    traces = tile(_one_pass_trace(), 20_000)
    work = WorkloadConfig(images=20_000, token_grid=2,
                          arrival=ArrivalConfig(kind="poisson", rate_per_s=rate_per_s))
    rec = simulate(traces, workload=work, models=MD1.models, network=MD1.network,
                   seed=replication_seed(0, 0), replication=0, policy="base", record_segments=False)
    df = rec.images.sort_values("start_ms")[2000:-2000]
    wait = (df.latency_ms - S_MS).mean()
    assert df.cloud_compute_ms.to_numpy() == pytest.approx(S_MS)
    assert wait == pytest.approx(rho * S_MS / (2 * (1 - rho)), rel=0.1)


def test_run_capacity_writes_tables(tmp_path):
    path = tmp_path / "t.npz"
    _one_pass_trace().save(path)
    # p50 <= 3 S: M/D/1 median wait reaches 2 S near rho ~ 0.8 (below 1/S images per ms)
    slo = Slo(50, 3 * S_MS)
    tasks = [Task("p0", MD1, "base", str(path), kind, slo, 1500, 0.1, 0.05, 1024.0)
             for kind in ("poisson", "closed_loop")]  # fmt: skip
    table = run_capacity(tasks, tmp_path / "out")
    assert (tmp_path / "out" / "capacity.csv").exists()
    assert (tmp_path / "out" / "capacity_probes.csv").exists()
    rate = table.set_index("load").loc["poisson"]
    assert 0.5 * 1000 / S_MS < rate.capacity < 1000 / S_MS and rate.bounded
    assert rate.latency_at_capacity_ms <= 3 * S_MS and rate.images_kept == 1200
    devices = table.set_index("load").loc["closed_loop"]
    assert devices.capacity in (2.0, 3.0)  # think time 0: d devices wait (d - 1) S each


def test_capacity_figure_is_written(tmp_path):
    from ciarsim.report.capacity import write_capacity_figure

    path = tmp_path / "t.npz"
    _one_pass_trace().save(path)
    tasks = [Task("p0", MD1, "base", str(path), "poisson", Slo(95, 4 * S_MS), 400, 0.1, 0.2, 64.0)]
    run_capacity(tasks, tmp_path)
    paths = write_capacity_figure(tmp_path, 4 * S_MS, "p95<=50ms")
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)


@pytest.mark.parametrize("kind,load", [("poisson", 1.5), ("closed_loop", 6)])
def test_early_stop_only_cuts_certain_misses(kind, load):
    """Overloaded M/D/1: the probe stops early, reports a miss with a lower bound below the full
    replay's percentile; a probe that meets runs to the end with the same numbers."""
    from ciarsim.runner.slo_probe import measure

    traces = tile(_one_pass_trace(), 1500)
    x = load * 1000 / S_MS if kind == "poisson" else load
    stopped = measure(traces, MD1, "base", kind, x, 95, 3 * S_MS, early_stop=True)
    full = measure(traces, MD1, "base", kind, x, 95, 3 * S_MS, early_stop=False)
    assert stopped.stopped and not stopped.meets and not full.meets
    assert 3 * S_MS <= stopped.latency_ms <= full.latency_ms and np.isnan(stopped.ci_high_ms)
    easy = measure(traces, MD1, "base", "poisson", 0.3 * 1000 / S_MS, 95, 50 * S_MS)
    plain = measure(traces, MD1, "base", "poisson", 0.3 * 1000 / S_MS, 95, 50 * S_MS,
                    early_stop=False)  # fmt: skip
    assert easy.meets and not easy.stopped and easy == plain
