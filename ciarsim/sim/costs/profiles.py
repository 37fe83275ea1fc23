"""The package data the cost model reads: hardware profiles (``ciarsim/data/hardware.json``), measured
step tables (``ciarsim/data/gpu_profiles``), and the check that a model / hardware / runtime name
exists. Read once per process (``lru_cache``: the files are package data, fixed for a process).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

import numpy as np

from ciarsim.errors import ScenarioError
from ciarsim.scenario.schema import ModelsConfig
from ciarsim.sim.nominal import NOMINAL_MODELS


@dataclass(frozen=True)
class Hardware:
    name: str
    mem_bw_gbps: float
    peak_tflops: float
    source: str
    runtimes: dict


# --------------------------------------------------------------------------------------------
# package data


@functools.lru_cache(maxsize=1)
def hardware_table() -> dict[str, Hardware]:
    text = resources.files("ciarsim").joinpath("data", "hardware.json").read_text()
    raw = json.loads(text)["hardware"]
    return {
        k: Hardware(k, float(v["mem_bw_gbps"]), float(v["peak_tflops"]), v["source"], v["runtimes"])
        for k, v in raw.items()
    }


@functools.lru_cache(maxsize=8)
def profile_rows(relpath: str) -> dict[str, np.ndarray]:
    """Columns of a measured step table (numpy arrays keyed by column name)."""
    text = resources.files("ciarsim").joinpath("data", *relpath.split("/")).read_text()
    lines = text.strip().splitlines()
    header = lines[0].split(",")
    cols = list(zip(*(ln.split(",") for ln in lines[1:])))
    out = {h: np.array(c) for h, c in zip(header, cols)}
    for h in ("batch", "context", "new_tokens"):
        out[h] = out[h].astype(np.int64)
    out["ms_median"] = out["ms_median"].astype(np.float64)
    return out


def known_models() -> list[str]:
    """Names of the nominal models the cost model can price."""
    return sorted(NOMINAL_MODELS)


def known_hardware() -> list[str]:
    """Names of the hardware profiles in ``ciarsim/data/hardware.json``."""
    return sorted(hardware_table())


def known_runtimes(hardware: str) -> list[str]:
    """Runtime names available on ``hardware``."""
    return sorted(hardware_table()[hardware].runtimes)



def check_names(model: str, hardware: str, runtime: str, path: str) -> None:
    pre = f"{path}." if path else ""
    if model not in NOMINAL_MODELS:
        raise ScenarioError(
            f"{pre}model: unknown nominal model {model!r}, expected one of {known_models()}"
        )
    if hardware not in hardware_table():
        raise ScenarioError(
            f"{pre}hardware: unknown hardware {hardware!r}, expected one of {known_hardware()}"
        )
    if runtime not in hardware_table()[hardware].runtimes:
        raise ScenarioError(
            f"{pre}runtime: unknown runtime {runtime!r} for hardware {hardware!r}, "
            f"expected one of {known_runtimes(hardware)}"
        )


def validate_names(models: ModelsConfig) -> None:
    """Raise ``ScenarioError`` naming the dotted field if a model/hardware/runtime is unknown."""
    check_names(models.cloud.model, models.cloud.hardware, models.cloud.runtime, "models.cloud")
    check_names(
        models.device.model, models.device.hardware, models.device.runtime, "models.device"
    )
