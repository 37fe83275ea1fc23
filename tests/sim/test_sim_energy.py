"""Energy per image and cloud cost: the RRC state machine by hand, its wiring through a replay,
fair GPU shares."""

import numpy as np
import pytest

from ciarsim.errors import ScenarioError
from ciarsim.scenario.schema import (
    ArrivalConfig, CloudConfig, DeviceConfig, HardwareOverrides, ModelsConfig, NetworkConfig,
    WorkloadConfig,
)  # fmt: skip
from ciarsim.sim import simulate
from ciarsim.sim.energy import power_w, radio_energy, radio_model, resolve_radio, usd_per_hour
from ciarsim.sim.synthetic import ciar_like_traces
from ciarsim.trace import OP_DTYPE, ImageTrace, TraceSet, cloud_op, device_op

LTE = radio_model("lte")
PROMO = 0.26 * 1.21
TAIL = 10.1 * 1.06  # 0.1 s before DRX + 10 s of DRX, both at 1.06 W


def _two_messages(gap_s: float) -> np.ndarray:
    """Phone 0: image 0 sends 1 Mbit up over [0, 0.5] s; image 1 receives 0.2 Mbit over 0.2 s,
    starting ``gap_s`` after the first ended."""
    return radio_energy(
        LTE, np.array([0, 0]), np.array([0, 1]), np.array([0.0, 0.5 + gap_s]),
        np.array([0.5, 0.7 + gap_s]), np.array([1.0, 0.0]), np.array([0.0, 0.2]), 2,
    )[0]  # fmt: skip


def test_lte_tail_cut_short_by_the_next_message():
    e = _two_messages(4.5)  # inside the 10.1 s tail: no second promotion
    assert e[0] == pytest.approx(PROMO + 0.43839 * 1.0 + 1.2 * 0.5 + 1.06 * 4.5)
    assert e[1] == pytest.approx(0.05197 * 0.2 + 1.2 * 0.2 + TAIL)


def test_lte_tail_runs_out_then_the_next_message_pays_a_promotion():
    e = _two_messages(20.0)
    assert e[0] == pytest.approx(PROMO + 0.43839 + 0.6 + TAIL)
    assert e[1] == pytest.approx(PROMO + 0.05197 * 0.2 + 0.24 + TAIL)


def test_overlapping_transfers_merge_and_phones_are_independent():
    # phone 3: two overlapping transfers of one image = one busy spell [0, 2]; phone 1 alone
    e = radio_energy(
        LTE, np.array([3, 3, 1]), np.array([0, 0, 1]), np.array([0.0, 1.0, 0.0]),
        np.array([1.5, 2.0, 1.0]), np.zeros(3), np.zeros(3), 2,
    )[0]  # fmt: skip
    assert e[0] == pytest.approx(PROMO + 1.2 * 2.0 + TAIL)
    assert e[1] == pytest.approx(PROMO + 1.2 * 1.0 + TAIL)


def test_radio_names_and_defaults():
    assert resolve_radio("auto", "ideal") == "none" and resolve_radio("auto", "trace") == "lte"
    assert resolve_radio("wifi", "constant") == "wifi"
    assert radio_model("nr").beta_w == pytest.approx(2.5 * LTE.beta_w)
    with pytest.raises(ScenarioError, match="network.radio"):
        radio_model("6g")
    assert power_w("h100", "cudagraph") == 700 and usd_per_hour("h100") > 0
    assert np.isnan(usd_per_hour("snapdragon-8-gen-3"))


# -- through a replay ------------------------------------------------------------------------

DEVICE = DeviceConfig(
    hardware="snapdragon-8-gen-3", runtime="npu", text_tokens=0, cfg_rows=1,
    overrides=HardwareOverrides(mem_bw_gbps=124.5184, peak_tflops=1e6, t_fixed_ms=1.0,
                                eta_bw=1.0, eta_f=1.0),
)  # fmt: skip
MODELS = ModelsConfig(cloud=CloudConfig(runtime="eager", text_tokens=128, cfg_rows=1), device=DEVICE)


def _hand_pair() -> TraceSet:
    """Two images of one exchange (prompt up, one token down) then three device steps."""
    ops = np.array([cloud_op(steps=1, new_tokens=1, context=0, tokens_down=1, prompt_up=True),
                    device_op(steps=3, context=1)], dtype=OP_DTYPE)  # fmt: skip
    imgs = [ImageTrace(i, ops, np.zeros(4, np.int32), np.zeros(4, np.float32),
                       np.zeros(4, np.uint8)) for i in (0, 1)]  # fmt: skip
    return TraceSet.from_images(imgs, {"policy": "hand"})


def _closed_loop(think_ms: float, network=None):
    net = network or NetworkConfig(capacity="constant", uplink_mbps=8, downlink_mbps=8, rtt_ms=20,
                                   packet_header_bytes=40, tcp="none")  # the plain link model
    work = WorkloadConfig(images=2, token_grid=2, arrival=ArrivalConfig(devices=1, think_time_ms=think_ms))
    return simulate(_hand_pair(), workload=work, models=MODELS, network=net, seed=0,
                    replication=0, policy="p")  # fmt: skip


@pytest.mark.parametrize("think_ms", [3000.0, 20000.0])
def test_two_images_on_one_phone_have_the_hand_computed_radio_energy(think_ms):
    rows = _closed_loop(think_ms).images
    up_bits, down_bits = (64 + 128 + 40) * 8, (64 + 2 + 40) * 8
    up, down = up_bits / 8000 / 1000, down_bits / 8000 / 1000  # s at 8 Mbps
    r = rows.iloc[0]
    inner = (r.latency_ms - r.device_compute_ms) / 1000 - up - down  # uplink end -> downlink start
    after = (r.device_compute_ms + think_ms) / 1000  # downlink end -> next image's uplink
    own = (0.43839 * up_bits + 0.05197 * down_bits) / 1e6 + 1.2 * (up + down) + 1.06 * inner
    cut = think_ms < 10_000
    assert rows.energy_radio_j[0] == pytest.approx(PROMO + own + (1.06 * after if cut else TAIL))
    assert rows.energy_radio_j[1] == pytest.approx((0 if cut else PROMO) + own + TAIL)
    # the tail part: the cut tail between uplink and downlink, then the one after the image
    assert rows.energy_radio_tail_j[0] == pytest.approx(1.06 * inner + (1.06 * after if cut else TAIL))
    assert rows.energy_radio_tail_j[1] == pytest.approx(1.06 * inner + TAIL)


def test_device_and_cloud_energy_and_cost_columns():
    rec = _closed_loop(0.0)
    rows = rec.images
    busy = (rows.device_compute_ms / 1000).to_numpy()  # one device op at a time: no queueing
    assert rows.energy_device_j.to_numpy() == pytest.approx(busy * 3.5)
    assert rows.cloud_gpu_s.sum() == pytest.approx(rec.meta["cloud_busy_ms"] / 1000)
    assert rows.energy_cloud_j.to_numpy() == pytest.approx(rows.cloud_gpu_s.to_numpy() * 700)
    assert rows.cloud_usd.to_numpy() == pytest.approx(rows.cloud_gpu_s.to_numpy() / 3600 * 3.0)
    ideal = _closed_loop(0.0, NetworkConfig(capacity="ideal"))
    assert (ideal.images.energy_radio_j == 0).all()  # radio auto -> none on an ideal network


def test_batched_gpu_time_is_shared_fairly_and_sums_to_the_busy_time():
    traces = ciar_like_traces(6, tokens=64, prefix=4, calls=6)
    work = WorkloadConfig(images=6, token_grid=8, arrival=ArrivalConfig(devices=6))
    cloud = CloudConfig(max_batch=8, usd_per_gpu_hour=2.0)
    rec = simulate(traces, workload=work, models=ModelsConfig(cloud=cloud),
                   network=NetworkConfig(capacity="ideal"), seed=0, replication=0, policy="p")
    rows = rec.images
    assert rows.cloud_gpu_s.sum() == pytest.approx(rec.meta["cloud_busy_ms"] / 1000)
    # six phones start together: batching makes each image's share less than its compute time
    assert (rows.cloud_gpu_s * 1000 < rows.cloud_compute_ms).all()
    assert rows.cloud_usd.to_numpy() == pytest.approx(rows.cloud_gpu_s.to_numpy() / 3600 * 2.0)
