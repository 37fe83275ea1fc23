"""Tiny, untrained but peaked decision models (T = 16 tokens) for fast policy tests."""

import pytest
import torch

from ciarsim.nn.checkpoints import ModelSet
from ciarsim.nn.data import CaptionTokenizer
from ciarsim.nn.device import DeviceConfig, DeviceModel
from ciarsim.nn.gpt import GPT, GPTConfig
from ciarsim.nn.vq import VQConfig, VQModel


@pytest.fixture(scope="session")
def tiny_models() -> ModelSet:
    tok = CaptionTokenizer()
    with torch.random.fork_rng():
        torch.manual_seed(1234)
        vq = VQModel(VQConfig(image_size=16, channels=8, codebook_size=64, code_dim=4))
        cfg = GPTConfig(vocab_size=64, text_vocab_size=tok.vocab_size, cap_len=tok.max_len,
                        grid=4, dim=32, n_layer=2, n_head=2, ffn_hidden=64)
        cloud = GPT(cfg)
        device = DeviceModel(DeviceConfig(cloud=cfg, summary_dim=8, phi_hidden=16))
        device.init_from_cloud(cloud)
        with torch.no_grad():
            cloud.lm_head.weight.mul_(60.0)  # peaked, so device and cloud disagree visibly
            device.trunk.lm_head.weight.mul_(40.0)
            device.trunk.lm_head.weight.add_(torch.randn_like(device.trunk.lm_head.weight))
            device.head_r.bias.fill_(0.0)
            device.phi.w2.weight.normal_(0, 0.5)  # non-zero phi: injection changes the cloud
    for m in (vq, cloud, device):
        m.eval()
    return ModelSet(vq, cloud, device, card={})
