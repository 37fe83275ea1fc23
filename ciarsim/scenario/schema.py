"""The scenario schema: frozen pydantic v2 models, units in every field name, unknown keys refused.

A scenario is one YAML file. Its sections map one-to-one onto the classes below; each simulator
component receives only its own section (``NetworkConfig`` for links, ``CloudConfig`` for the GPU
server, ...). Numbers that come from measurements or publications are cited in the shipped
scenario files and in ``ciarsim/data``; defaults here are labelled where they are assumptions.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
# Physical quantities get a plausible range, so a typo (1e300, 1e-300) is an error, not a result.
Mbps = Annotated[float, Field(ge=0.001, le=100_000)]  # 1 kbit/s .. 100 Gbit/s
DelayMs = Annotated[float, Field(ge=0, lt=60_000)]  # a network delay: under a minute
WaitMs = Annotated[float, Field(ge=0, le=3_600_000)]  # a pause or interval: at most an hour
Tokens = Annotated[int, Field(ge=0, le=65_536)]
# A gate threshold: 0 sends every token to the cloud, .inf (YAML) none.
Threshold = Annotated[float, Field(ge=0, allow_inf_nan=True)]


class Frozen(BaseModel):
    """Base: immutable, unknown keys are errors, no infinite or NaN numbers. Files are validated in
    strict mode by the loader (no coercion of strings into numbers); Python callers may pass lax
    values."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", strict=False, validate_default=True, allow_inf_nan=False
    )


# --------------------------------------------------------------------------------------------
# workload


class ArrivalConfig(Frozen):
    """How image requests arrive.

    ``closed_loop``: ``devices`` phones each generate their share of the images back to back,
    waiting ``think_time_ms`` between images. ``poisson``: requests arrive as a Poisson process of
    ``rate_per_s`` (all devices together), each served by its own phone.
    """

    kind: Literal["closed_loop", "poisson"] = "closed_loop"
    devices: Annotated[int, Field(ge=1, le=100_000)] = 1
    think_time_ms: WaitMs = 0.0
    rate_per_s: Annotated[float, Field(gt=0, le=100_000)] | None = None

    @model_validator(mode="after")
    def _rate_matches_kind(self) -> "ArrivalConfig":
        if self.kind == "poisson" and self.rate_per_s is None:
            raise ValueError("rate_per_s is required when kind is 'poisson'")
        if self.kind == "closed_loop" and self.rate_per_s is not None:
            raise ValueError("rate_per_s applies only to kind 'poisson'")
        return self


class WorkloadConfig(Frozen):
    """What is generated: ``images`` prompts from the held-out prompt set, starting at
    ``prompt_start``, on a ``token_grid`` x ``token_grid`` token grid."""

    images: Annotated[int, Field(ge=1, le=100_000)] = 64
    prompt_start: Annotated[int, Field(ge=0, le=1_000_000_000)] = 0
    token_grid: Annotated[int, Field(ge=2, le=64)] = 16
    prompt_bytes: Annotated[int, Field(ge=0, le=1_000_000)] = 128
    arrival: ArrivalConfig = ArrivalConfig()

    @property
    def tokens_per_image(self) -> int:
        return self.token_grid * self.token_grid


# --------------------------------------------------------------------------------------------
# models: decision models (trained here) and nominal models (simulated cost)


class HardwareOverrides(Frozen):
    """Optional overrides of a hardware profile's numbers (for sweeps over hypothetical chips)."""

    mem_bw_gbps: Annotated[float, Field(gt=0, le=100_000)] | None = None  # <= 100 TB/s
    peak_tflops: Annotated[float, Field(gt=0, le=1_000_000)] | None = None  # <= 1 EFLOP/s
    t_fixed_ms: DelayMs | None = None
    eta_bw: Annotated[float, Field(gt=0, le=1)] | None = None
    eta_f: Annotated[float, Field(gt=0, le=1)] | None = None


class CloudConfig(Frozen):
    """The shared cloud GPU server: nominal model, hardware, runtime, batching."""

    model: str = "llamagen-xl"
    hardware: str = "h100"
    runtime: str = "cudagraph"
    max_batch: Annotated[int, Field(ge=1, le=1024)] = 8
    text_tokens: Tokens = 120
    cfg_rows: Annotated[int, Field(ge=1, le=2)] = 2
    overrides: HardwareOverrides = HardwareOverrides()
    # price of one GPU-hour (USD); None: the hardware's default in ciarsim/data/hardware.json
    usd_per_gpu_hour: PositiveFloat | None = None


class DeviceConfig(Frozen):
    """The phone or board: nominal model and hardware it is costed on."""

    model: str = "ciar-device-xl"
    hardware: str = "snapdragon-8-gen-3"
    runtime: str = "npu"
    text_tokens: Tokens = 120
    cfg_rows: Annotated[int, Field(ge=1, le=2)] = 2
    overrides: HardwareOverrides = HardwareOverrides()


class PayloadConfig(Frozen):
    """How messages are encoded. ``None`` widths take the nominal cloud model's numbers."""

    feature_dtype: Literal["fp32", "fp16", "bf16", "int8"] = "fp16"
    feature_dim: Annotated[int, Field(ge=1, le=65_536)] | None = None
    dist_dtype: Literal["fp32", "fp16", "bf16"] = "fp16"
    token_bits: Annotated[int, Field(ge=1, le=32)] | None = None


class ModelsConfig(Frozen):
    checkpoints: str = "models/shapes-256"
    cloud: CloudConfig = CloudConfig()
    device: DeviceConfig = DeviceConfig()
    payload: PayloadConfig = PayloadConfig()


# --------------------------------------------------------------------------------------------
# network


# Fields an ideal link cannot honour: set (non-zero, non-null) together with capacity 'ideal' they
# are refused rather than silently dropped.
_IDEAL_IGNORES = ("uplink_mbps", "downlink_mbps", "uplink_trace", "downlink_trace", "rtt_ms",
                  "backhaul_rtt_ms", "jitter_ms", "loss_rate")  # fmt: skip


class NetworkConfig(Frozen):
    """Uplink and downlink between one phone and the cloud.

    ``capacity`` picks the capacity model, the same for both directions:
      - ``ideal``: transfers take no time at all (the paper's compute-only accounting); setting
        a rate, a trace, an RTT, jitter or loss with it is an error (they would be ignored);
      - ``constant``: ``uplink_mbps`` / ``downlink_mbps``;
      - ``random``: piecewise-constant capacity redrawn every ``capacity_interval_ms`` from a
        lognormal with mean ``*_mbps`` and coefficient of variation ``capacity_cv`` (seeded);
      - ``trace``: capacity follows ``uplink_trace`` / ``downlink_trace`` (``trace_format``); if
        ``*_mbps`` is also given, the trace is rescaled to that mean. Each phone enters each trace
        at a random offset; ``align_traces`` gives its downlink the uplink's offset (traces of
        one recording stay aligned).
    One-way delay = (``rtt_ms`` + ``backhaul_rtt_ms``) / 2 per message plus jitter drawn from
    ``jitter_dist`` with mean ``jitter_ms`` (messages never overtake each other). Each MTU packet is
    lost with probability ``loss_rate``; a loss costs ``rto_ms`` and a resend.
    ``tcp``: ``linux`` (default) adds what kernel TCP does (``ciarsim.sim.tcp``, validated in
    docs/validation.md): the congestion window (initial 10 packets, slow start, restart after an
    idle RTO) and loss recovery timed from the RTT (Linux's RTO = RTT + 200 ms) instead of
    ``rto_ms``; ``none`` is the plain model. Under ``linux``, three rules have a second option,
    each a documented kernel mechanism measured against the kernel in docs/validation.md:
    ``tcp_recovery`` ``rto`` (every loss waits the RTO) or ``rack`` (Linux's RACK-TLP: a loss with
    a later packet behind it is repaired after 1.25 RTT); ``tcp_window`` ``slow-start`` (a
    message's rounds double the window) or ``aimd`` (slow start until the first loss, then
    congestion avoidance adds a packet per round trip, and a loss cuts the window in the round
    it happens); ``tcp_rto_rtt`` ``path`` (the RTO counts the path's RTT) or ``srtt`` (the kernel's
    smoothed RTT: plus both directions' mean jitter and the 40 ms delayed-ACK timer).
    ``packet_header_bytes`` defaults to 52: IPv4 (20) + TCP (20) + the timestamp option (12) that
    Linux sends on every segment.

    Ranges (a value outside is an error): capacities 0.001-100,000 Mbit/s (1 kbit/s-100 Gbit/s);
    ``rtt_ms``, ``backhaul_rtt_ms``, ``jitter_ms`` and ``rto_ms`` under 60,000 ms; ``loss_rate``
    in [0, 1); ``capacity_cv`` <= 10; ``capacity_interval_ms`` <= 1 hour; header bytes <= 1024
    per packet and <= 1,000,000 per message.
    ``radio``: the phone's radio technology for energy (``ciarsim/data/radio.json``); ``auto`` is
    ``none`` on an ideal network, else ``lte``.
    """

    capacity: Literal["ideal", "constant", "random", "trace"] = "constant"
    uplink_mbps: Mbps | None = None
    downlink_mbps: Mbps | None = None
    capacity_cv: Annotated[float, Field(ge=0, le=10)] = 0.5
    capacity_interval_ms: Annotated[float, Field(gt=0, le=3_600_000)] = 1000.0
    uplink_trace: str | None = None
    downlink_trace: str | None = None
    trace_format: Literal["mahimahi", "pensieve", "canonical"] = "mahimahi"
    align_traces: bool = False
    rtt_ms: DelayMs = 0.0
    backhaul_rtt_ms: DelayMs = 0.0
    jitter_ms: DelayMs = 0.0
    jitter_dist: Literal["exponential", "uniform", "halfnormal"] = "exponential"
    loss_rate: Annotated[float, Field(ge=0, lt=1)] = 0.0
    rto_ms: Annotated[float, Field(gt=0, lt=60_000)] = 200.0
    mtu_bytes: Annotated[int, Field(ge=64, le=65_535)] = 1500
    packet_header_bytes: Annotated[int, Field(ge=0, le=1024)] = 52
    tcp: Literal["none", "linux"] = "linux"
    tcp_recovery: Literal["rto", "rack"] = "rto"
    tcp_window: Literal["slow-start", "aimd"] = "slow-start"
    tcp_rto_rtt: Literal["path", "srtt"] = "path"
    message_header_bytes: Annotated[int, Field(ge=0, le=1_000_000)] = 64
    radio: Literal["auto", "lte", "nr", "wifi", "umts", "none"] = "auto"

    @model_validator(mode="after")
    def _capacity_fields(self) -> "NetworkConfig":
        if self.capacity in ("constant", "random"):
            for name in ("uplink_mbps", "downlink_mbps"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name} is required when capacity is '{self.capacity}'")
        if self.capacity == "trace":
            for name in ("uplink_trace", "downlink_trace"):
                if getattr(self, name) is None:
                    raise ValueError(f"{name} is required when capacity is 'trace'")
        if self.capacity == "ideal":
            ignored = [name for name in _IDEAL_IGNORES if getattr(self, name)]
            if ignored:
                raise ValueError(
                    f"capacity 'ideal' takes no network time, so {', '.join(ignored)} would be "
                    "ignored; remove them (or set them to 0) or choose capacity constant, random "
                    "or trace"
                )
        if self.packet_header_bytes >= self.mtu_bytes:
            raise ValueError("packet_header_bytes must be smaller than mtu_bytes")
        return self

    @property
    def one_way_ms(self) -> float:
        return (self.rtt_ms + self.backhaul_rtt_ms) / 2.0


# --------------------------------------------------------------------------------------------
# policies (decision rules; implementations live in ciarsim.policies)


class PolicyBase(Frozen):
    label: str | None = None
    greedy: bool = False
    temperature: PositiveFloat = 1.0
    top_k: Annotated[int, Field(ge=0)] = 0
    cfg_scale: Annotated[float, Field(ge=1)] = 3.0

    @property
    def display(self) -> str:
        return self.label or self.default_label()

    def default_label(self) -> str:
        return self.name  # type: ignore[attr-defined]


class BasePolicy(PolicyBase):
    name: Literal["base"]


class DeviceOnlyPolicy(PolicyBase):
    name: Literal["device_only"]


class SDPolicy(PolicyBase):
    name: Literal["sd"]
    gamma: Annotated[int, Field(ge=1, le=64)] = 4
    upload_full_q: bool = False


class LanternPolicy(PolicyBase):
    name: Literal["lantern"]
    gamma: Annotated[int, Field(ge=1, le=64)] = 4
    k: Annotated[int, Field(ge=1)] = 1000
    delta: Annotated[float, Field(ge=0, le=1)] = 0.1


class CodeSplitPolicy(PolicyBase):
    name: Literal["code_split"]
    cloud_fraction: Annotated[float, Field(ge=0, le=1)] = 0.3


Signal = Literal["random", "entropy", "max_prob", "topk_set", "uhlm", "interval"]


class GatedPolicy(PolicyBase):
    name: Literal["gated"]
    signal: Signal = "interval"
    tau: Threshold = 0.3
    rho: Annotated[float, Field(ge=0, le=1)] = 0.06
    inject_features: bool = False
    acceptance: Literal["speculative", "cloud_argmax", "always_resample"] = "speculative"
    k: Annotated[int, Field(ge=1)] = 100
    samples: Annotated[int, Field(ge=1)] = 20

    def default_label(self) -> str:
        return f"gated-{self.signal}"


class CiarPolicy(PolicyBase):
    name: Literal["ciar"]
    tau: Threshold = 0.3
    rho: Annotated[float, Field(ge=0, le=1)] = 0.06
    acceptance: Literal["speculative", "cloud_argmax", "always_resample"] = "speculative"


class CiarPipelinedPolicy(CiarPolicy):
    """CIAR drafting ahead of the outstanding verification (``ciarsim.policies.ciar_pipelined``)."""

    name: Literal["ciar_pipelined"]  # type: ignore[assignment]
    window: Annotated[int, Field(ge=0, le=4096)] = 8


class CiarBatchedPolicy(CiarPolicy):
    """CIAR with one message per window of drafts (``ciarsim.policies.ciar_batched``)."""

    name: Literal["ciar_batched"]  # type: ignore[assignment]
    window: Annotated[int, Field(ge=0, le=4096)] = 0  # 0: the rest of the current grid row
    mode: Literal["exact", "relaxed"] = "exact"
    lag: Annotated[int, Field(ge=0, le=4096)] = 0  # relaxed: drafts past a window before its answer
    lag_check: bool = False  # relaxed, lag > 0: check the blind drafts against the corrected device
    lag_delta: Annotated[float, Field(ge=0, le=1)] = 0.0  # lag_check: LANTERN's delta (0: exact check)
    lag_k: Annotated[int, Field(ge=1)] = 64  # lag_check with lag_delta > 0: codebook neighbours

    def default_label(self) -> str:
        return f"ciar_batched-{self.mode}"

    @model_validator(mode="after")
    def _lag_needs_relaxed(self) -> "CiarBatchedPolicy":
        if self.lag and self.mode != "relaxed":
            raise ValueError("lag applies to mode 'relaxed' only (exact mode redrafts after a "
                             "replaced token, so it cannot draft on past an unanswered window)")
        if self.lag_delta and not self.lag_check:
            raise ValueError("lag_delta applies with lag_check only (it relaxes that check)")
        if self.lag_check and not self.lag:
            raise ValueError("lag_check needs lag > 0 (it checks the drafts made past a window "
                             "while its answer is in flight)")
        return self


class CloudBurstPolicy(CiarPolicy):
    """CIAR whose answers carry the cloud's next k tokens (``ciarsim.policies.cloud_burst``)."""

    name: Literal["cloud_burst"]  # type: ignore[assignment]
    k: Annotated[int, Field(ge=0, le=4096)] = 4


class PluginPolicy(PolicyBase):
    """A protocol written outside the package (``ciarsim.policies.plugin``). Scenarios usually
    name it directly, ``{name: "module:Class", ...params}``; the loader rewrites that to this."""

    name: Literal["plugin"]
    protocol: Annotated[str, Field(min_length=1)]
    params: dict[str, Union[int, float, str, bool, None, list[Union[int, float, str, bool]]]] = {}

    def default_label(self) -> str:
        return self.protocol.rsplit(":", 1)[-1]


class OraclePolicy(PolicyBase):
    name: Literal["oracle"]
    rho: Annotated[float, Field(ge=0, le=1)] = 0.06


CandidatePolicy = Annotated[
    Union[
        BasePolicy, DeviceOnlyPolicy, SDPolicy, LanternPolicy, CodeSplitPolicy,
        GatedPolicy, CiarPolicy, CiarPipelinedPolicy, CiarBatchedPolicy, CloudBurstPolicy,
        OraclePolicy, PluginPolicy,
    ],
    Field(discriminator="name"),
]  # fmt: skip


class AdaptivePolicy(PolicyBase):
    """Per sweep point, the candidate with the lowest predicted latency among those whose
    caption consistency on validation prompts is within ``max_quality_drop`` of the reference
    (``base`` if a candidate, else the best candidate) (``ciarsim.runner.adaptive``)."""

    name: Literal["adaptive"]
    candidates: Annotated[list[CandidatePolicy], Field(min_length=1)]
    max_quality_drop: Annotated[float, Field(ge=0, le=1)] = 0.05
    validation_images: Annotated[int, Field(ge=1, le=10_000)] = 32

    @model_validator(mode="after")
    def _unique_candidates(self) -> "AdaptivePolicy":
        labels = [c.display for c in self.candidates]
        if len(set(labels)) != len(labels):
            raise ValueError(f"candidates need unique labels, got {labels}; set 'label'")
        return self


PolicyConfig = Annotated[
    Union[
        BasePolicy, DeviceOnlyPolicy, SDPolicy, LanternPolicy, CodeSplitPolicy,
        GatedPolicy, CiarPolicy, CiarPipelinedPolicy, CiarBatchedPolicy, CloudBurstPolicy,
        OraclePolicy, PluginPolicy, AdaptivePolicy,
    ],
    Field(discriminator="name"),
]  # fmt: skip

POLICY_NAMES = ("base", "device_only", "sd", "lantern", "code_split", "gated", "ciar",
                "ciar_pipelined", "ciar_batched", "cloud_burst", "oracle", "plugin", "adaptive")


def external_protocol(name: Any) -> bool:
    """Whether a policy name refers to a protocol outside the package (``module:Class`` or an
    entry point of the ``ciarsim.policies`` group)."""
    if not isinstance(name, str) or name in POLICY_NAMES:
        return False
    return ":" in name or any(ep.name == name for ep in entry_points(group="ciarsim.policies"))


def _as_plugin(item: Any) -> Any:
    if not (isinstance(item, dict) and external_protocol(item.get("name"))):
        return item
    common = {k: item[k] for k in PolicyBase.model_fields if k in item}
    params = {k: v for k, v in item.items() if k != "name" and k not in common}
    return {**common, "name": "plugin", "protocol": item["name"], "params": params}


def _with_plugin_candidates(item: Any) -> Any:
    """An ``adaptive`` entry with its ``module:Class`` candidates rewritten by ``_as_plugin``."""
    if not (isinstance(item, dict) and item.get("name") == "adaptive"
            and isinstance(item.get("candidates"), list)):  # fmt: skip
        return item
    cands = [_as_plugin(c) for c in item["candidates"]]
    return {**item, "candidates": cands} if cands != item["candidates"] else item


class GroupConfig(Frozen):
    """One group of a mixed population (``ciarsim.scenario.population``): its ``share`` of the
    arrivals and, optionally, its own device and network blocks (default: the scenario's)."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$",
                               description="Group name, the value of the results' group column.")]
    share: Annotated[float, Field(gt=0, le=1, description=(
        "Fraction of the arrivals (Poisson: images; closed loop: devices) drawn into this group."))]
    device: Annotated[DeviceConfig | None, Field(
        description="The group's device block (default: models.device).")] = None
    network: Annotated[NetworkConfig | None, Field(
        description="The group's network block (default: the scenario's network).")] = None
    policy: Annotated[str | None, Field(description=(
        "The label of one of the scenario's policies that this group always runs (default: the "
        "policy under test), so different protocols share the one cloud."))] = None


# --------------------------------------------------------------------------------------------
# the scenario


class Scenario(Frozen):
    """One experiment: workload x models x network x policies, swept over ``sweep``."""

    name: str = "scenario"
    description: str = ""
    seed: Annotated[int, Field(ge=0)] = 0
    replications: Annotated[int, Field(ge=1, le=1000)] = 1
    output_dir: str | None = None
    workload: WorkloadConfig = WorkloadConfig()
    models: ModelsConfig = ModelsConfig()
    network: NetworkConfig = NetworkConfig(capacity="ideal")
    policies: Annotated[list[PolicyConfig], Field(min_length=1)] = [
        BasePolicy(name="base")
    ]
    sweep: dict[str, list[Union[int, float, str, bool, None]]] = {}
    zip: list[dict[str, list[Union[int, float, str, bool, None]]]] = []
    population: list[GroupConfig] = []  # a mixed population (ciarsim.scenario.population)

    @model_validator(mode="after")
    def _population(self) -> "Scenario":
        from ciarsim.scenario.population import check_population  # noqa: PLC0415

        check_population(self.population)
        labels = {p.display for p in self.policies if p.name != "adaptive"}
        for i, g in enumerate(self.population):
            if g.policy is not None and g.policy not in labels:
                raise ValueError(f"population[{i}] ({g.name}): policy {g.policy!r} is not the label of "
                                 f"one of the scenario's policies (adaptive excluded): {sorted(labels)}")
        return self

    @model_validator(mode="before")
    @classmethod
    def _external_protocols(cls, data: Any) -> Any:
        """``{name: "module:Class", ...}`` (or an entry-point name) -> a ``plugin`` policy."""
        items = data.get("policies") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return data
        out = [_as_plugin(_with_plugin_candidates(item)) for item in items]
        return {**data, "policies": out} if out != items else data

    @model_validator(mode="after")
    def _zip_groups(self) -> "Scenario":
        seen = set(self.sweep)
        for i, group in enumerate(self.zip):
            lengths = {path: len(values) for path, values in group.items()}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"zip[{i}]: the lists of a group move together and must have "
                                 f"equal lengths, got {lengths}")
            for path in group:
                if path in seen:
                    raise ValueError(f"zip[{i}]: '{path}' is swept twice")
                seen.add(path)
        return self

    @model_validator(mode="after")
    def _unique_policy_labels(self) -> "Scenario":
        labels = [p.display for p in self.policies]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            raise ValueError(
                f"policy labels must be unique, {dupes} appear twice; set 'label' to tell them apart"
            )
        return self
