"""Run a policy over a batch of prompts in lockstep with KV caches; collect decode traces.

The lockstep decoder advances every image one position per step: one batched device pass and one
batched cloud pass (both with classifier-free guidance, so 2N rows each). The cloud pass is a
*shadow*: it computes the cloud's next-token distribution for every image at every position,
teacher-forced on the tokens decided so far, and the policy uses it only where its protocol
actually consults the cloud. That is exact, not an approximation: a causal transformer's output at
position t depends only on its inputs up to t, and those inputs (tokens, and for CIAR the interval
features added to tokens the device kept locally) are final when the step runs. Which tokens
travel, when, and how many the cloud processes is recorded separately by the policy's flow, so
the traces price the real protocol while the decode costs one pass per position.

Images are decoded in fixed chunks of ``CHUNK`` prompts, so an image's trace does not depend on
how many images a scenario asks for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ciarsim.errors import ScenarioError
from ciarsim.nn import gpt
from ciarsim.nn.device import device_prefill, device_step, guide, new_device_cache
from ciarsim.trace import ImageTrace, TraceSet

CHUNK = 64


@dataclass
class StepView:
    """What one lockstep position offers the policy, guided by CFG. Arrays are (N, ...)."""

    cloud_logits: torch.Tensor | None  # guided cloud logits for this position
    device_logits: torch.Tensor | None  # guided centre logits c
    u_interval: np.ndarray | None  # CIAR's U for this position
    features: torch.Tensor | None  # f_I of the input just processed (2N, 1, D), for injection
    device_cond_logits: torch.Tensor | None = None  # the caption branch's centre logits (N, V)


class Lockstep:
    """The device and the shadow cloud, advanced together one image position at a time."""

    def __init__(self, models, captions: torch.Tensor, cfg_scale: float, *, use_device: bool,
                 use_cloud: bool, inject: bool) -> None:  # fmt: skip
        self.m, self.scale = models, cfg_scale
        self.u_variant = getattr(models, "cfg_variants", {}).get("interval", "conditional")
        self.use_device, self.use_cloud, self.inject = use_device, use_cloud, inject
        ids = gpt.with_null(captions, models.cloud.cfg.null_id)  # (2N, Lc)
        n2 = ids.shape[0]
        self._cloud_cache = gpt.new_cache(models.cloud, n2) if use_cloud else None
        self._dev_cache = new_device_cache(models.device, n2) if use_device else None
        self._ids = ids
        self._dev_base = ids.shape[1]  # device cache position of image token 0

    @torch.no_grad()
    def first(self) -> StepView:
        """Prefill the captions; the view for image position 0."""
        cloud = gpt.prefill(self.m.cloud, self._ids, self._cloud_cache) if self.use_cloud else None
        dev = device_prefill(self.m.device, self._ids, self._dev_cache) if self.use_device else None
        return self._view(cloud, dev, None)

    @torch.no_grad()
    def next(self, tokens: np.ndarray, inject_mask: np.ndarray | None = None,
             device_tokens: np.ndarray | None = None) -> StepView:
        """Feed the tokens just decided (N,); ``inject_mask`` (N,) marks device-kept tokens whose
        interval features the cloud adds to their embeddings (CIAR). ``device_tokens`` (N,): feed
        the device these instead (its own drafts, where its stream differs from the final one)."""
        x = _pair(tokens)
        dev = feats = None
        if self.use_device:
            dx = x if device_tokens is None else _pair(device_tokens)
            dev = device_step(self.m.device, dx, self._dev_cache)
            if self.inject:
                feats = self.m.device.features(dev)  # (2N, 1, D): f_I of input x
        cloud = None
        if self.use_cloud:
            inj = None
            if self.inject and inject_mask is not None and inject_mask.any():
                mask = torch.from_numpy(np.concatenate([inject_mask, inject_mask]))
                inj = feats * mask[:, None, None].to(feats.dtype)
            cloud = gpt.decode_step(self.m.cloud, x, self._cloud_cache, inj)[:, -1]
        return self._view(cloud, dev, feats)

    @torch.no_grad()
    def resync(self, start: int, tokens: np.ndarray) -> StepView:
        """Rewind the device to image position ``start`` and feed ``tokens`` (N, k) in one pass
        (its KV cache held drafts the cloud replaced); the device's view of the next position."""
        self._dev_cache.pos = self._dev_base + start
        dev = device_step(self.m.device, _pair(tokens), self._dev_cache).positions(-1)
        return self._view(None, dev, None)

    def _view(self, cloud, dev, feats) -> StepView:
        cl = gpt.cfg_mix(cloud, self.scale) if cloud is not None else None
        if dev is None:
            return StepView(cl, None, None, feats)
        g = guide(dev, self.scale, self.u_variant)  # (N, 1, V); U in the model set's chosen CFG variant
        return StepView(cl, g.c[:, -1], g.U[:, -1].double().numpy(), feats, g.c_cond[:, -1])


def _pair(tokens: np.ndarray) -> torch.Tensor:
    """(N,) or (N, k) token ids -> (2N, k) int64 for the CFG pair (conditional, unconditional)."""
    t = np.asarray(tokens)
    t = t[:, None] if t.ndim == 1 else t
    return torch.from_numpy(np.concatenate([t, t]).astype(np.int64))


@dataclass(frozen=True)
class Prompts:
    """The prompts of a workload: indices into a prompt split, captions and token ids.

    ``folder``: the user folder the prompts come from (None: the procedural scenes of ``split``)."""

    images: np.ndarray  # (N,) prompt indices
    captions: list[str]
    cap_ids: torch.Tensor  # (N, Lc) int64
    folder: str | None = None
    split: str = "test"  # ciarsim.nn.splits


def load_prompts(start: int, count: int, cap_len: int, tok=None, data: dict | None = None,
                 split: str = "test") -> Prompts:
    """Captions ``start .. start + count`` of the prompt ``split`` (``ciarsim.nn.splits``: every
    workload reads ``test``; calibration reads ``validation``) encoded with ``tok`` (the model
    set's caption tokenizer; the grammar's by default). ``data`` is the cloud card's training-data
    record: for a model set trained on a user folder the prompts are that folder's held-out rows of
    the split, otherwise the generator's scenes of the split's seed."""
    from ciarsim.nn import splits  # noqa: PLC0415
    from ciarsim.nn.data import CaptionTokenizer  # noqa: PLC0415

    data = data or {}
    folder = data.get("path") if data.get("source") == "folder" else None
    if folder is None:
        captions = splits.scenes(split, count, start).captions
    else:
        captions = _folder_captions(folder, data.get("captions_csv_sha256"), start, count, split)
    tok = tok or CaptionTokenizer()
    ids = [tok.encode(c)[:cap_len] for c in captions]
    ids = [row + [0] * (cap_len - len(row)) for row in ids]
    return Prompts(np.arange(start, start + count), list(captions), torch.tensor(ids), folder, split)


def _folder_captions(folder: str, csv_sha256: str | None, start: int, count: int, split: str = "test") -> list[str]:
    """Held-out captions (of ``split``) of the user folder a model set was trained on, checked against its card."""
    from ciarsim.nn.splits import folder_rows  # noqa: PLC0415

    if not Path(folder).is_dir():
        raise ScenarioError(f"models.checkpoints: the model set was trained on the folder {folder}, which "
                            "is gone; its held-out captions are the workload's prompts")
    csv = Path(folder) / "captions.csv"
    if csv_sha256 and csv.is_file() and hashlib.sha256(csv.read_bytes()).hexdigest() != csv_sha256:
        raise ScenarioError(f"models.checkpoints: {csv} changed since the models were trained on it "
                            f"(sha256 {csv_sha256[:12]}… in the cloud card); retrain or restore the file")
    held = folder_rows(split, folder).captions
    if start + count > len(held):
        raise ScenarioError(f"workload: images={count} from prompt_start={start} needs {start + count} "
                            f"prompts; the model set's folder {folder} holds {len(held)} held-out captions in its {split} split")
    return held[start:start + count]


def load_decision_models(checkpoints: str):
    """The trained decision models under ``checkpoints``, loaded and verified now (no cache: a
    caller that decodes many times keeps a ``ModelCache``)."""
    from ciarsim.nn.checkpoints import load_models  # noqa: PLC0415

    return load_models(checkpoints)


class ModelCache:
    """Decision model sets loaded once per content of their folder's files (a set retrained in
    place is loaded again). Owned by the caller that decodes (the runner's decode phase), so two
    runs, or two model sets, in one process never share state."""

    def __init__(self) -> None:
        self._sets: dict[str, tuple[dict, object]] = {}  # resolved folder -> (file digests, models)

    def get(self, checkpoints: str):
        """The models under ``checkpoints``, loaded on first use or when a file changed."""
        from ciarsim.nn.digests import checkpoint_digests  # noqa: PLC0415

        key, digests = str(Path(checkpoints).resolve()), checkpoint_digests(checkpoints)
        if key not in self._sets or self._sets[key][0] != digests:
            self._sets[key] = (digests, load_decision_models(checkpoints))
        return self._sets[key][1]

    def __getstate__(self) -> dict:
        return {"_sets": {}}  # a copy sent to a worker process starts empty (models are not pickled)


def decode_with(flow_factory: Callable, policy, workload, models_cfg, seed: int,
                models=None, quality: bool = True, split: str = "test") -> TraceSet:  # fmt: skip
    """Decode ``workload``'s prompts with the flow ``flow_factory(policy, images, T, seed, models)``
    in chunks of CHUNK and pack the traces. ``models`` defaults to the scenario's checkpoints.
    With ``quality`` the images are decoded and scored (see ``attach_quality``). Runs under
    ``torch.inference_mode()``: no autograd state outlives the call."""
    models = models if models is not None else load_decision_models(models_cfg.checkpoints)
    with torch.inference_mode():
        return _decode(flow_factory, policy, workload, seed, models, quality, split)


def _decode(flow_factory: Callable, policy, workload, seed: int, models, quality: bool, split: str) -> TraceSet:
    T = models.cloud.cfg.n_image
    if workload.tokens_per_image != T:
        raise ScenarioError(
            f"workload.token_grid: the decision models generate a {models.cloud.cfg.grid}x"
            f"{models.cloud.cfg.grid} grid, got {workload.token_grid}"
        )
    prompts = load_prompts(workload.prompt_start, workload.images, models.cloud.cfg.cap_len, models.captions,
                           models.data, split)
    traces: list[ImageTrace] = []
    head = "interval"  # the scenario's nominal device, unless the flow says it runs a plain head
    for lo in range(0, len(prompts.images), CHUNK):
        images = prompts.images[lo:lo + CHUNK]
        flow = flow_factory(policy, images, T, seed, models)
        head = getattr(flow, "device_head", head)
        traces.extend(flow.run(prompts.cap_ids[lo:lo + CHUNK]))
    meta = {"policy": policy.model_dump(mode="json"), "seed": seed,
            "prompt_start": workload.prompt_start, "images": workload.images, "prompt_split": split,
            "device_head": head,
            "card": {k: v for k, v in models.card.items() if k in ("sha256", "hashes")}}  # fmt: skip
    ts = TraceSet.from_images(traces, meta)
    return attach_quality(ts, prompts, models) if quality else ts


def attach_quality(ts: TraceSet, prompts: Prompts, models) -> TraceSet:
    """Decode the token grids to images and record caption consistency (per image) and FD against
    the real held-out images of the same prompts (sample sizes recorded with it). Prompts from a
    user folder get the images but no scores: the attribute classifier knows only the procedural
    scenes."""
    from ciarsim.nn import quality  # noqa: PLC0415
    from ciarsim.nn import splits  # noqa: PLC0415

    with torch.no_grad():
        imgs = models.tokenizer.decode_code(torch.from_numpy(ts.tokens.astype(np.int64)))
    imgs = imgs.numpy() if isinstance(imgs, torch.Tensor) else np.asarray(imgs)
    meta = dict(ts.meta)
    meta["captions"] = list(prompts.captions)
    preview = np.ascontiguousarray(imgs.astype(np.uint8))
    if prompts.folder is not None:
        meta["quality_note"] = ("not measured: prompts from the user folder the models were trained on; the "
                                "attribute classifier scores only the procedural scenes")
        return TraceSet(ts.images, ts.offsets, ts.ops, ts.tokens, ts.u, ts.source, meta, preview=preview)
    # the model set's own classifier (so an installed package or a set elsewhere scores with its own)
    clf = quality.load_classifier(models.classifier_path) if getattr(models, "classifier_path", None) else None
    per_image = quality.caption_consistency_per_image(imgs, prompts.captions, clf)
    ref = splits.scenes(prompts.split, len(prompts.images), int(prompts.images[0]))  # the same prompts' real images
    fd = quality.frechet_distance(imgs, ref.images, clf)
    meta["quality"] = {
        "caption_consistency": [round(float(x), 6) for x in per_image],
        "fd": round(float(fd.fd), 6), "fd_n_gen": fd.n_gen, "fd_n_ref": fd.n_ref,
    }  # fmt: skip
    return TraceSet(ts.images, ts.offsets, ts.ops, ts.tokens, ts.u, ts.source, meta, preview=preview)
