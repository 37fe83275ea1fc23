"""JSON Schema export of scenario files, with one line of help on every class and field
(``CLASS_HELP``, ``FIELD_HELP``) and the numeric range spelled out.
"""

from __future__ import annotations

from pydantic import BaseModel

from ciarsim.scenario.dotted import POLICY_CLASSES, section_class
from ciarsim.scenario.messages import number_text
from ciarsim.scenario.schema import Scenario

def scenario_json_schema() -> dict:
    """JSON Schema (draft 2020-12) of scenario files, with a description on every field."""
    generated = Scenario.model_json_schema(mode="validation")
    generated.pop("title", None)
    generated.pop("description", None)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "ciarsim scenario",
        "description": (
            "One ciarsim experiment: workload x models x network x policies, swept over 'sweep'. "
            "Units are in the field names (_ms, _mbps, _bytes). See docs/scenario-format.md."
        ),
        **generated,
    }
    classes = {c.__name__: c for c in all_models()}
    _describe(schema, Scenario)
    for name, sub in schema.get("$defs", {}).items():
        if name in classes:
            _describe(sub, classes[name])
    return schema


def _describe(node: dict, cls: type[BaseModel]) -> None:
    if cls is not Scenario:
        node.setdefault("description", CLASS_HELP.get(cls.__name__, ""))
    for field, prop in node.get("properties", {}).items():
        text = field_help(cls, field)
        if text:
            prop["description"] = text + _range_text(prop)


_RANGE_KEYS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="),
               ("exclusiveMaximum", "<"))  # fmt: skip


def _range_text(prop: dict) -> str:
    """`` Range: >= 0, < 60000.`` from a property's bounds (also inside ``anyOf``), else ''."""
    for option in [prop, *prop.get("anyOf", [])]:
        bounds = [f"{op} {number_text(option[k])}" for k, op in _RANGE_KEYS if k in option]
        if bounds:
            return f" Range: {', '.join(bounds)}."
    return ""


def field_help(cls: type[BaseModel], field: str) -> str | None:
    """The one-line help of ``cls.field`` (looked up along the class hierarchy)."""
    for klass in cls.__mro__:
        text = FIELD_HELP.get(f"{klass.__name__}.{field}")
        if text:
            return text
    return None


def all_models() -> list[type[BaseModel]]:
    """Every schema class reachable from ``Scenario``."""
    found: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [Scenario, *POLICY_CLASSES.values()]
    while todo:
        cls = todo.pop()
        if cls in found:
            continue
        found.append(cls)
        todo.extend(c for f in cls.model_fields if (c := section_class(cls, f)) is not None)
    return found


CLASS_HELP = {
    "WorkloadConfig": "What is generated and how requests arrive.",
    "ArrivalConfig": "How image requests arrive: closed_loop (phones back to back) or poisson.",
    "ModelsConfig": "Decision-model checkpoints and the nominal (real-scale) models that set costs.",
    "CloudConfig": "The shared cloud GPU server: nominal model, hardware, runtime, batching.",
    "DeviceConfig": "The phone or board: nominal model and the hardware it is costed on.",
    "PayloadConfig": "How messages are encoded (sets bytes on the wire).",
    "HardwareOverrides": "Replace numbers of the hardware profile (hypothetical chips).",
    "NetworkConfig": "The uplink and downlink between one phone and the cloud.",
    "BasePolicy": "Cloud only: the device sends the prompt, the cloud generates every token.",
    "DeviceOnlyPolicy": "Every token on the device, no network (quality lower bound).",
    "SDPolicy": "Speculative decoding: the device drafts gamma tokens, the cloud verifies them.",
    "LanternPolicy": "LANTERN: speculative decoding with relaxed (latent-neighbourhood) acceptance.",
    "CodeSplitPolicy": "CoDe-style split: the cloud makes the first tokens, the device the rest.",
    "GatedPolicy": "CIAR's flow with another uncertainty signal deciding which tokens go to the cloud.",
    "CiarPolicy": "CIAR: cloud prefix, Inter-Head intervals on the device, uncertain tokens verified.",
    "CiarPipelinedPolicy": "CIAR whose device keeps drafting while a verification is in flight (same tokens).",
    "CiarBatchedPolicy": "CIAR with one message per window of drafts (exact: same tokens; relaxed: lossy).",
    "CloudBurstPolicy": "CIAR whose answers also carry the cloud's next k tokens.",
    "PluginPolicy": "A protocol outside the package; usually written {name: 'module:Class', ...params}.",
    "AdaptivePolicy": "Picks, per sweep point, the fastest candidate (predicted on validation prompts) within a quality floor.",
    "OraclePolicy": "Upper bound: exactly the tokens the cloud would change are sent to it.",
}

FIELD_HELP = {
    # scenario
    "Scenario.name": "Scenario name; used for the default output folder reports/<name>.",
    "Scenario.description": "Free text shown in the report.",
    "Scenario.seed": "Root seed of every random draw (decoding and network).",
    "Scenario.replications": "Independent timing replications per point (network/arrival draws).",
    "Scenario.output_dir": "Output folder (relative to the scenario file's folder); null: reports/<name> in the working directory.",
    "Scenario.workload": "What is generated and how requests arrive.",
    "Scenario.models": "Decision-model checkpoints and nominal models/hardware for costs.",
    "Scenario.network": "Link between phone and cloud (default: ideal, transfers take no time).",
    "Scenario.policies": "Decoding policies to compare; each needs 'name', labels must be unique.",
    "Scenario.sweep": "Grid sweep: dotted field path -> list of values (e.g. network.rtt_ms: [20, 80]).",
    "Scenario.zip": "Groups of paths whose equal-length value lists move together (one grid axis per group).",
    "Scenario.population": "Mixed population on the one cloud: groups with a share of the arrivals and their own device/network (shares sum to 1).",
    # workload
    "WorkloadConfig.images": "Images (prompts) per policy and point.",
    "WorkloadConfig.prompt_start": "Index of the first prompt in the held-out prompt set.",
    "WorkloadConfig.token_grid": "Token grid side: token_grid^2 image tokens (16 -> 256 = 256 px).",
    "WorkloadConfig.prompt_bytes": "Bytes of the text prompt uploaded with a request.",
    "WorkloadConfig.arrival": "Arrival process of image requests.",
    "ArrivalConfig.kind": "closed_loop: each phone generates back to back; poisson: open arrivals.",
    "ArrivalConfig.devices": "closed_loop: number of phones sharing the images and the cloud GPU.",
    "ArrivalConfig.think_time_ms": "closed_loop: pause between a phone's images, ms.",
    "ArrivalConfig.rate_per_s": "poisson: request rate of all phones together, images/s (required).",
    # models
    "ModelsConfig.checkpoints": "Folder of the trained decision models (relative to the scenario file's folder; the default and --set values: to the working directory).",
    "ModelsConfig.cloud": "The cloud server.",
    "ModelsConfig.device": "The phone or board.",
    "ModelsConfig.payload": "Message encoding.",
    "CloudConfig.model": "Nominal cloud model: llamagen-b, -l, -xl, -xxl, -3b.",
    "CloudConfig.hardware": "Cloud GPU: h100, h200, a100.",
    "CloudConfig.runtime": "eager (plain PyTorch) or cudagraph (tuned server).",
    "CloudConfig.max_batch": "Most requests the server runs in one batched step.",
    "CloudConfig.text_tokens": "Text-conditioning tokens before the image tokens (LlamaGen T2I: 120).",
    "CloudConfig.cfg_rows": "Sequences per image per step: 2 with classifier-free guidance (LlamaGen T2I samples with CFG), 1 without.",
    "CloudConfig.overrides": "Replace hardware-profile numbers.",
    "CloudConfig.usd_per_gpu_hour": "Price of one GPU-hour in USD for the cost columns; null: the hardware's default (ciarsim/data/hardware.json, an assumption).",
    "DeviceConfig.model": "Nominal device model (ciar-device-xl: CIAR's one-layer model at XL width).",
    "DeviceConfig.hardware": "snapdragon-8-gen-3, apple-a17-pro, apple-m4, jetson-orin-nano, "
                             "jetson-agx-orin, or a GPU (h100, h200, a100).",
    "DeviceConfig.runtime": "npu (phones, boards) or eager / cudagraph (GPUs).",
    "DeviceConfig.text_tokens": "Text-conditioning tokens in the device model's context.",
    "DeviceConfig.cfg_rows": "Sequences per image per device step: 2 with classifier-free guidance, 1 without.",
    "DeviceConfig.overrides": "Replace hardware-profile numbers.",
    "PayloadConfig.feature_dtype": "Dtype of the interval features uploaded per token.",
    "PayloadConfig.feature_dim": "Width of an uploaded feature vector; null: the cloud model's width.",
    "PayloadConfig.dist_dtype": "Dtype of full probability vectors uploaded (SD upload_full_q).",
    "PayloadConfig.token_bits": "Bits per token id; null: ceil(log2(vocabulary)).",
    "HardwareOverrides.mem_bw_gbps": "Memory bandwidth, GB/s.",
    "HardwareOverrides.peak_tflops": "Peak compute, TFLOP/s (or TOPS for NPUs).",
    "HardwareOverrides.t_fixed_ms": "Fixed cost per step (launch/runtime overhead), ms.",
    "HardwareOverrides.eta_bw": "Achieved fraction of memory bandwidth, (0, 1].",
    "HardwareOverrides.eta_f": "Achieved fraction of peak compute, (0, 1].",
    # network
    "NetworkConfig.capacity": "Capacity model: ideal, constant, random (lognormal) or trace.",
    "NetworkConfig.uplink_mbps": "Uplink capacity, Mbit/s (mean for random, rescale for trace).",
    "NetworkConfig.downlink_mbps": "Downlink capacity, Mbit/s (mean for random, rescale for trace).",
    "NetworkConfig.capacity_cv": "random: coefficient of variation of the lognormal capacity.",
    "NetworkConfig.capacity_interval_ms": "random: capacity is redrawn every this many ms.",
    "NetworkConfig.uplink_trace": "trace: uplink capacity trace file (relative to the scenario file's folder).",
    "NetworkConfig.downlink_trace": "trace: downlink capacity trace file (relative to the scenario file's folder).",
    "NetworkConfig.trace_format": "trace: mahimahi (replayed as mm-link does), pensieve or canonical.",
    "NetworkConfig.align_traces": "trace: each phone's downlink enters its trace at the uplink's offset (both from one recording).",
    "NetworkConfig.rtt_ms": "Base round-trip time phone <-> cloud, ms (radio + distance).",
    "NetworkConfig.backhaul_rtt_ms": "Extra round-trip time to a farther server, ms.",
    "NetworkConfig.jitter_ms": "Mean extra one-way delay per message, ms (no overtaking).",
    "NetworkConfig.jitter_dist": "Distribution of the jitter: exponential, uniform, halfnormal.",
    "NetworkConfig.loss_rate": "Probability that one MTU packet is lost, [0, 1).",
    "NetworkConfig.rto_ms": "Time a lost packet costs before its resend, ms.",
    "NetworkConfig.mtu_bytes": "Packet size on the wire, bytes.",
    "NetworkConfig.packet_header_bytes": "Header bytes per packet (IPv4 + TCP + timestamps: 52).",
    "NetworkConfig.tcp": "Kernel-TCP terms of the link: linux (congestion window, RTO from the RTT, per-packet jitter) or none.",
    "NetworkConfig.tcp_recovery": "Loss recovery under tcp: linux: rto (every loss waits the RTO) or rack (Linux's RACK-TLP: a loss with a later packet behind it is repaired after 1.25 RTT).",
    "NetworkConfig.tcp_window": "Window rule under tcp: linux: slow-start (a message's rounds double the window) or aimd (slow start until the first loss, then congestion avoidance; a loss cuts the window in its round).",
    "NetworkConfig.tcp_rto_rtt": "The RTT the RTO counts under tcp: linux: path (the path's RTT) or srtt (the kernel's smoothed RTT: + 2 x mean jitter + the 40 ms delayed-ACK timer).",
    "NetworkConfig.message_header_bytes": "Header bytes per application message.",
    "NetworkConfig.radio": "The phone's radio technology for energy (lte, nr, wifi, umts, none; ciarsim/data/radio.json); auto: none on an ideal network, else lte.",
    # policies
    "PolicyBase.name": "Policy: base, device_only, sd, lantern, code_split, gated, ciar, oracle.",
    "PolicyBase.label": "Name shown in results; null: the policy name (gated: gated-<signal>).",
    "PolicyBase.greedy": "Take the most likely token instead of sampling.",
    "PolicyBase.temperature": "Sampling temperature.",
    "PolicyBase.top_k": "Sample from the k most likely tokens; 0: all.",
    "PolicyBase.cfg_scale": "Classifier-free guidance scale; 1: no guidance.",
    "SDPolicy.gamma": "Tokens drafted per verification round.",
    "SDPolicy.upload_full_q": "Upload the draft's full distribution (exact residual resampling).",
    "LanternPolicy.gamma": "Tokens drafted per verification round.",
    "LanternPolicy.k": "Latent neighbours of a drafted token considered for acceptance.",
    "LanternPolicy.delta": "Probability mass of neighbours that may be accepted instead (0.1; fast: 0.4).",
    "CodeSplitPolicy.cloud_fraction": "Fraction of each image's tokens generated by the cloud first.",
    "GatedPolicy.signal": "Uncertainty signal: random, entropy, max_prob, topk_set, uhlm, interval.",
    "GatedPolicy.tau": "Threshold: a token with uncertainty >= tau goes to the cloud.",
    "GatedPolicy.rho": "Fraction of tokens the cloud generates first as a prefix.",
    "GatedPolicy.inject_features": "Upload interval features with the unsynced tokens (as CIAR).",
    "GatedPolicy.acceptance": "Cloud rule: speculative, cloud_argmax or always_resample.",
    "GatedPolicy.k": "topk_set: size of the discrete solution set.",
    "GatedPolicy.samples": "uhlm: temperature samples per token.",
    "CiarPipelinedPolicy.window": "Tokens the device drafts past an uncertain token while its verification is in flight.",
    "CiarBatchedPolicy.window": "Tokens per message window; 0 = the rest of the current row of the token grid.",
    "CiarBatchedPolicy.mode": "exact: drafts after a replaced token are redrafted (same tokens as ciar); relaxed: kept (lossy).",
    "CiarBatchedPolicy.lag": "relaxed: positions drafted past a window, uncorrected, while its answer is in flight.",
    "CiarBatchedPolicy.lag_delta": "lag_check: LANTERN's relaxed acceptance delta for the check (0: the exact speculative test, lossless w.r.t. lag 0; > 0: lossy, fewer redrafts).",
    "CiarBatchedPolicy.lag_k": "lag_check with lag_delta > 0: VQ codebook neighbours LANTERN's check may count.",
    "CiarBatchedPolicy.lag_check": "relaxed, lag > 0: when the answer arrives the device checks its blind drafts against its corrected distribution (speculative test) and redrafts from the first rejected one; same output distribution as lag 0.",
    "AdaptivePolicy.candidates": "The policies it chooses from, each as in 'policies' (unique labels).",
    "AdaptivePolicy.max_quality_drop": "Largest allowed drop of validation caption consistency below the reference.",
    "AdaptivePolicy.validation_images": "Validation prompts each candidate is decoded on to predict its latency and quality.",
    "PluginPolicy.protocol": "'module:Class' or an entry point of the group ciarsim.policies.",
    "PluginPolicy.params": "Keyword arguments for the protocol's class.",
    "CloudBurstPolicy.k": "Cloud tokens sent down after each verified position (k = 0 is ciar).",
    "CiarPolicy.tau": "Threshold on U: a token with U >= tau goes to the cloud (paper: 0.30).",
    "CiarPolicy.rho": "Fraction of tokens the cloud generates first as anchors (paper: 0.06).",
    "CiarPolicy.acceptance": "Cloud rule: speculative, cloud_argmax or always_resample.",
    "OraclePolicy.rho": "Fraction of tokens the cloud generates first as a prefix.",
}  # fmt: skip
