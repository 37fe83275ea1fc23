"""Traces shipped inside a model set: read when the cache lacks them, never written, and the
default set's traces for the README's first command complete and current."""

from pathlib import Path

import numpy as np

from ciarsim.runner.trace_cache import TraceCache
from ciarsim.trace import TraceSet


def _tiny_set(tokens: int) -> TraceSet:
    from ciarsim.sim.synthetic import ciar_like_traces

    ts = ciar_like_traces(2)
    return TraceSet(ts.images, ts.offsets, ts.ops, np.full_like(ts.tokens, tokens), ts.u, ts.source, ts.meta)


def test_cache_reads_a_shipped_trace_and_writes_only_to_its_own_folder(tmp_path):
    shipped, own = tmp_path / "models" / "traces", tmp_path / "cache"
    _tiny_set(7).save(shipped / "k1.npz", compress=True)
    cache = TraceCache(own, (shipped,))
    calls = []
    got = cache.get_or_decode("k1", lambda: calls.append(1) or _tiny_set(9))
    assert not calls and (got.tokens == 7).all() and cache.hits == 1
    made = cache.get_or_decode("k2", lambda: _tiny_set(9))
    assert (made.tokens == 9).all() and (own / "k2.npz").exists() and not (shipped / "k2.npz").exists()
    _tiny_set(5).save(own / "k1.npz")  # the user's own cache wins over a shipped copy
    assert (TraceSet.load(cache.path("k1")).tokens == 5).all()


def test_compressed_save_round_trips(tmp_path):
    ts = _tiny_set(3)
    ts.save(tmp_path / "a.npz", compress=True)
    ts.save(tmp_path / "b.npz")
    assert TraceSet.load(tmp_path / "a.npz").digest() == ts.digest()
    assert (tmp_path / "a.npz").stat().st_size < (tmp_path / "b.npz").stat().st_size


def test_the_default_set_ships_current_traces_for_the_readme_first_command():
    """`ciarsim run scenarios/4g.yaml` replays shipped traces instead of decoding (~3 min) only
    while they match the models, prompts, policies and decision-layer code: a change to any of
    those must refresh them (`python benchmarks/ship_traces.py`) in the same commit."""
    from ciarsim.runner.ship import shipped_status
    from ciarsim.scenario.loader import load_scenario

    missing, stale = shipped_status(load_scenario(Path(__file__).parents[2] / "scenarios" / "4g.yaml"))
    assert not missing and not stale, (
        f"models/shapes-256/traces: {len(missing)} trace sets missing, {len(stale)} stale; "
        "run `python benchmarks/ship_traces.py` and commit the folder")
