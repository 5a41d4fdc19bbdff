"""Tiny inline modules with SINet's building blocks, for fast converter tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def up(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=True)


class ConvBNPReLU(nn.Module):
    def __init__(self, cin: int = 3, cout: int = 8, stride: int = 2) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Depthwise(nn.Module):
    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False)
        self.act = nn.PReLU(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.dw(x))


class PoolUp(nn.Module):
    """avg-pool 2 → bilinear ×2 align_corners (an S2 branch's spatial path)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return up(F.avg_pool2d(x, 2, 2), 2)


class DecoderGate(nn.Module):
    """SINet's information-blocking gate: side × (1 − max softmax) + coarse."""

    def __init__(self, c: int = 8, classes: int = 2) -> None:
        super().__init__()
        self.coarse = nn.Conv2d(c, classes, 1, bias=False)
        self.side = nn.Conv2d(c, classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coarse = up(self.coarse(F.avg_pool2d(x, 2, 2)), 2)
        confidence = torch.softmax(coarse, dim=1).amax(dim=1, keepdim=True)
        return self.side(x) * (1.0 - confidence) + coarse


class TinyNet(nn.Module):
    """uint8 image (NCHW) → normalise → all the blocks → probability [1,1,H,W] (NCHW)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.block = ConvBNPReLU()
        self.dw = Depthwise()
        self.pool_up = PoolUp()
        self.gate = DecoderGate()
        bn = self.block.bn
        assert bn.running_mean is not None and bn.running_var is not None
        with torch.no_grad():  # non-trivial BN statistics so BN folding is exercised
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            self.block.bn.weight.uniform_(0.5, 1.5)
            self.block.act.weight.uniform_(-0.5, 0.5)
        self.register_buffer("scale", torch.tensor([0.017, 0.018, 0.019]).reshape(1, 3, 1, 1))
        self.register_buffer("shift", torch.tensor([-2.0, -1.9, -1.8]).reshape(1, 3, 1, 1))
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        scale, shift = self.get_buffer("scale"), self.get_buffer("shift")
        x = image.to(torch.float32) * scale + shift
        y = self.dw(self.block(x))
        y = y + self.pool_up(y)
        logits = up(self.gate(y), 2)
        return torch.sigmoid(logits[:, 1:2] - logits[:, 0:1])


def blocks() -> dict[str, nn.Module]:
    """Each block alone (float NCHW input with the channels it expects)."""
    torch.manual_seed(1)
    mods: dict[str, nn.Module] = {
        "conv_bn_prelu": ConvBNPReLU(),
        "depthwise": Depthwise(),
        "pool_bilinear_align_corners": PoolUp(),
        "decoder_gate": DecoderGate(),
    }
    for m in mods.values():
        m.eval()
    return mods
