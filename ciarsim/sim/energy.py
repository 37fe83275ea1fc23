"""Energy per image (device compute, radio) and the cloud's GPU time and cost, computed from a
replay's records after the run (numpy, no SimPy).

Device compute: busy seconds of the image's device ops x the ``power_w`` of the device's
(hardware, runtime) in ``ciarsim/data/hardware.json``.

Radio: one RRC state machine per phone, driven by its transfers (``RadioModel``, numbers per link
technology in ``ciarsim/data/radio.json``; after the AT&T ARO model of Huang et al., MobiSys 2012).
A transfer occupies the phone's radio while its packets leave (uplink: from the end of its wait
behind earlier messages to the end of its serialisation and loss recovery) or arrive (downlink:
the same interval shifted by the propagation delay). Overlapping transfers of one phone merge into
one busy spell. Attribution to images:

- ``alpha_up * Mbit_up + alpha_down * Mbit_down``: to the image of each transfer (the alpha terms
  integrate to alpha x megabits whatever the rate);
- ``beta`` x the spell's length: to the image of the spell's first transfer;
- the promotion (``promotion_s`` at ``promotion_w``), paid by a spell that finds the radio idle
  (the phone's first spell, or one after the whole tail ran out): to that spell's image;
- the tail after a spell: to the spell's image, cut short when the same phone's next spell
  starts. So the tail after an image's last transfer is charged to that image, in full if the
  phone stays silent, else up to the next transfer (the next image's, in a closed loop).

Promotion and tail cost energy only: the promotion delay is not added to the latency.

Cloud: each batching iteration's time is shared equally among the requests running in it
(``ciarsim.sim.cloud``), so an image's ``cloud_gpu_s`` sums to the GPU's busy time over all
images; cost = GPU-hours x the price per GPU-hour, energy = GPU-seconds x the GPU's ``power_w``.
Units: s, W, J, USD.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ciarsim.errors import ScenarioError

RADIOS = ("lte", "nr", "wifi", "umts", "none")


@dataclass(frozen=True)
class RadioModel:
    """An RRC power model: promotion, tail stages ((seconds, watts), in order) and active power
    ``beta_w + alpha_up * Mbps_up + alpha_down * Mbps_down``."""

    name: str
    promotion_s: float
    promotion_w: float
    tail: tuple[tuple[float, float], ...]
    beta_w: float
    alpha_up_w_per_mbps: float
    alpha_down_w_per_mbps: float

    @property
    def tail_s(self) -> float:
        """Length of the whole tail (s): a longer silence finds the radio idle."""
        return float(sum(d for d, _ in self.tail))

    def tail_j(self, gap_s: np.ndarray) -> np.ndarray:
        """Energy of the tail after a busy spell followed by ``gap_s`` seconds of silence (J)."""
        out, start = np.zeros_like(gap_s, dtype=np.float64), 0.0
        for dur, watts in self.tail:
            out += watts * np.clip(gap_s - start, 0.0, dur)
            start += dur
        return out


@functools.lru_cache(maxsize=1)
def _radio_table() -> dict:
    text = resources.files("ciarsim").joinpath("data", "radio.json").read_text()
    return json.loads(text)["radios"]


def radio_model(name: str) -> RadioModel:
    """The radio model ``name`` (one of ``RADIOS``) from ``ciarsim/data/radio.json``."""
    raw = _radio_table().get(name)
    if raw is None:
        raise ScenarioError(f"network.radio: unknown radio {name!r}, expected one of {RADIOS}")
    tail = tuple((float(d), float(w)) for d, w in raw["tail"])
    keys = ("promotion_s", "promotion_w", "beta_w", "alpha_up_w_per_mbps", "alpha_down_w_per_mbps")
    return RadioModel(name, tail=tail, **{k: float(raw[k]) for k in keys})


def resolve_radio(radio: str, capacity: str) -> str:
    """``auto`` -> ``none`` on an ideal network, else ``lte``; other names unchanged."""
    if radio != "auto":
        return radio
    return "none" if capacity == "ideal" else "lte"


def _hardware(name: str) -> dict:
    text = resources.files("ciarsim").joinpath("data", "hardware.json").read_text()
    return json.loads(text)["hardware"][name]


@functools.lru_cache(maxsize=32)
def power_w(hardware: str, runtime: str) -> float:
    """Power drawn while ``hardware`` runs steps under ``runtime`` (W; hardware.json)."""
    return float(_hardware(hardware)["runtimes"][runtime]["power_w"])


@functools.lru_cache(maxsize=32)
def usd_per_hour(hardware: str) -> float:
    """Default price of one GPU-hour of ``hardware`` (USD; hardware.json), NaN if it has none."""
    return float(_hardware(hardware).get("usd_per_hour", np.nan))


def radio_energy(
    model: RadioModel,
    phone: np.ndarray,
    owner: np.ndarray,
    start_s: np.ndarray,
    end_s: np.ndarray,
    mbit_up: np.ndarray,
    mbit_down: np.ndarray,
    n_owners: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Radio energy per owner (J) as (total, tail): transfers ``i`` of ``phone[i]`` occupying the
    radio from ``start_s[i]`` to ``end_s[i]``, charged to ``owner[i]`` in ``0..n_owners-1`` as the
    module docstring says; ``tail`` is the part spent in the tail after busy spells (the rest:
    active transfer and promotions). Vectorised: one sort, no Python loop over transfers."""
    out = np.bincount(
        owner, model.alpha_up_w_per_mbps * mbit_up + model.alpha_down_w_per_mbps * mbit_down,
        minlength=n_owners,
    ).astype(np.float64)
    if len(phone) == 0:
        return out, np.zeros(n_owners)
    order = np.lexsort((end_s, start_s, phone))
    ph, who, s, e = phone[order], owner[order], start_s[order], end_s[order]
    span = max(float(e.max()), 0.0) + model.tail_s + 1.0  # phones laid end to end on one axis
    base = (ph - ph.min()).astype(np.float64) * span
    s_abs, e_abs = s + base, e + base
    reach = np.maximum.accumulate(e_abs)  # furthest end so far (phones never overlap)
    new = np.ones(len(s), bool)
    new[1:] = s_abs[1:] > reach[:-1]
    first = np.flatnonzero(new)  # first transfer of each busy spell
    spell_end = np.maximum.reduceat(e_abs, first)
    spell_start, spell_who, spell_phone = s_abs[first], who[first], ph[first]
    out += np.bincount(spell_who, model.beta_w * (spell_end - spell_start), minlength=n_owners)
    gap = np.full(len(first), np.inf)
    same = spell_phone[1:] == spell_phone[:-1]
    gap[:-1] = np.where(same, spell_start[1:] - spell_end[:-1], np.inf)
    tail = np.bincount(spell_who, model.tail_j(gap), minlength=n_owners).astype(np.float64)
    out += tail
    idle = np.ones(len(first), bool)  # the phone's first spell, or one after a full tail
    idle[1:] = ~same | (gap[:-1] > model.tail_s)
    promo = np.where(idle, model.promotion_s * model.promotion_w, 0.0)
    out += np.bincount(spell_who, promo, minlength=n_owners)
    return out, tail
