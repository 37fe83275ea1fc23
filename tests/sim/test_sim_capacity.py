"""Capacity traces: importers, looping integration, errors that name the field and line."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ciarsim.errors import TraceFormatError
from ciarsim.sim.capacity import (
    CapacityTable, ConstantCapacity, RandomCapacity, TraceCapacity, load_trace, read_canonical,
    read_mahimahi, read_pensieve, write_canonical,
)  # fmt: skip

MAHIMAHI = Path("../shared/data/traces/mahimahi")  # relative to the repo root (pytest's cwd)
FIELD = "network.uplink_trace"


def _write(tmp_path, text, name="t.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_mahimahi_tiny_file_mean_and_exact_timing(tmp_path):
    p = _write(tmp_path, "1\n1\n3\n4\n4\n4\n10\n")
    t = read_mahimahi(p, FIELD)
    assert t.period_ms == 10
    assert t.mean_mbps == pytest.approx(1504 * 8 * 7 / 10 / 1000)  # mm-link: 1504 B each
    cap = t.capacity()
    assert cap.finish(0.0, 2 * 1504 * 8) == 1.0  # two opportunities at t = 1 ms
    assert cap.finish(0.0, 3 * 1504 * 8) == 3.0  # the third is at t = 3 ms
    assert cap.finish(0.0, 8 * 1504 * 8) == 11.0  # loops: the 8th is the first of loop 2
    assert cap.finish(0.5, 1504 * 8) == 1.0  # both of ms 1 are still ahead at 0.5 ms
    assert cap.finish(1.0, 1504 * 8) == 3.0  # handed over at 1 ms: too late for ms 1


@pytest.mark.skipif(not (MAHIMAHI / "TMobile-LTE-short.up").exists(), reason="shared traces absent")
def test_mahimahi_real_tmobile_lte_uplink_mean():
    t = load_trace(MAHIMAHI / "TMobile-LTE-short.up", "mahimahi", FIELD)
    assert t.mean_mbps == pytest.approx(13.32 * 1504 / 1500, abs=0.05)  # README: 13.32 at 1500 B
    assert t.period_ms == 140000


def test_pensieve_and_canonical_importers(tmp_path):
    pen = read_pensieve(_write(tmp_path, "0.0 2.0\n1.0 4.0\n2.0 6.0\n"), FIELD)
    assert pen.edges_ms.tolist() == [0, 1000, 2000, 3000] and pen.mean_mbps == 4.0
    can = read_canonical(_write(tmp_path, "t_ms,mbps\n100,2\n600,4\n"), FIELD)
    assert can.edges_ms.tolist() == [0, 500, 1000] and can.mean_mbps == 3.0
    out = tmp_path / "round.csv"
    write_canonical(pen, out)
    back = read_canonical(out, FIELD)
    np.testing.assert_array_equal(back.edges_ms, pen.edges_ms)
    np.testing.assert_array_equal(back.mbps, pen.mbps)


@pytest.mark.parametrize(
    "fmt, text, match",
    [
        ("mahimahi", "1\n2\nabc\n", r"line 3: expected an integer timestamp in ms, got 'abc'"),
        ("mahimahi", "5\n3\n", r"line 2: expected a timestamp >= 5"),
        ("mahimahi", "0\n", r"line 1: expected a last timestamp > 0"),
        ("mahimahi", "\n\n", r"the trace is empty"),
        ("pensieve", "0 1\n1 x\n", r"line 2: expected two numbers 'seconds Mbps'"),
        ("pensieve", "0 0\n1 0\n", r"carries no bytes"),
        ("canonical", "time,rate\n0,1\n", r"line 1: expected the header 't_ms,mbps'"),
        ("canonical", "t_ms,mbps\n0,1\n0,2\n", r"line 3: expected a time after 0 ms"),
        ("canonical", "t_ms,mbps\n0,-1\n", r"line 2: expected a finite rate >= 0 Mbps"),
    ],
)
def test_bad_traces_name_the_field_and_line(tmp_path, fmt, text, match):
    p = _write(tmp_path, text)
    with pytest.raises(TraceFormatError, match=r"^network\.uplink_trace: .*" + match):
        load_trace(p, fmt, FIELD)


def test_missing_file_names_the_field(tmp_path):
    match = r"^network\.uplink_trace: .*nope: the trace file does not exist"
    with pytest.raises(TraceFormatError, match=match):
        load_trace(tmp_path / "nope", "mahimahi", FIELD)


def _reference_finish(edges, mbps, offset, start, bits):
    """Brute force: walk the looped bins one at a time (loop index and bin kept separately)."""
    period, left = edges[-1], bits
    k, tau = divmod(start + offset, period)
    i = min(int(np.searchsorted(edges, tau, side="right")) - 1, len(mbps) - 1)
    while True:
        rate = mbps[i] * 1000.0
        span = edges[i + 1] - tau
        if rate > 0 and rate * span >= left:
            return k * period + tau + left / rate - offset
        left -= rate * span
        i, tau = i + 1, edges[i + 1]
        if i == len(mbps):
            i, tau, k = 0, 0.0, k + 1


tables = st.lists(
    st.tuples(st.floats(0.5, 50), st.sampled_from([0.0, 0.5, 3.0, 20.0])), min_size=1, max_size=8
).filter(lambda rows: any(r[1] > 0 for r in rows))


@settings(max_examples=60, deadline=None)
@given(tables, st.floats(0, 500), st.floats(0, 1000), st.floats(1, 2e5))
def test_trace_integration_matches_brute_force(rows, offset, start, bits):
    edges = np.concatenate([[0.0], np.cumsum([w for w, _ in rows])])
    mbps = np.array([r for _, r in rows])
    cap = TraceCapacity(CapacityTable(edges, mbps), offset)
    expect = _reference_finish(edges, mbps, offset, start, bits)
    assert cap.finish(start, bits) == pytest.approx(expect, rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.1, 1000), st.floats(1, 5000), st.floats(0, 1e5), st.floats(0, 1e7))
def test_constant_rate_trace_equals_constant_link(mbps, period, start, bits):
    table = CapacityTable(np.array([0.0, period]), np.array([mbps]))
    got = TraceCapacity(table, 0.0).finish(start, bits)
    assert got == pytest.approx(ConstantCapacity(mbps).finish(start, bits), rel=1e-9, abs=1e-9)


def test_random_capacity_is_seeded_and_has_the_mean():
    a = RandomCapacity(10.0, 0.5, 100.0, np.random.default_rng(7))
    b = RandomCapacity(10.0, 0.5, 100.0, np.random.default_rng(7))
    ends = [a.finish(t, 50_000) for t in range(0, 100_000, 997)]
    assert ends == [b.finish(t, 50_000) for t in range(0, 100_000, 997)]
    bits_in_100s = 100_000 * 10_000  # 10 Mbps for 100 s
    assert a.finish(0.0, bits_in_100s) == pytest.approx(100_000, rel=0.1)
    flat = RandomCapacity(10.0, 0.0, 100.0, np.random.default_rng(0))
    assert flat.finish(5.0, 10_000) == pytest.approx(6.0)
