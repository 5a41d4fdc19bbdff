"""The reference SINet (Park et al., WACV 2020), written from SINET_SPEC.md.

State-dict keys, shapes and dtypes are exactly those of the authors' checkpoint, so any checkpoint
trained with their code loads with ``strict=True``. Unlike the authors' code it is export-friendly
by construction: every tensor is 4-D, no ``.data``, no Python ints read from tensor sizes, global
pooling is a mean, and the channel shuffle is a constant-index gather instead of a 5-D view.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sinet_deploy.models.config import OFFICIAL_CONFIG, SINetConfig

BN_EPS = 1e-3


def up(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Bilinear upsampling with align_corners=True, as everywhere in SINet."""
    return F.interpolate(x, scale_factor=float(factor), mode="bilinear", align_corners=True)


def shuffle_permutation(channels: int, groups: int = 2) -> list[int]:
    """Source index of each output channel of a channel shuffle.

    The authors view [B, g, C/g, H, W], swap the two group axes and flatten back, so output
    channel ``j * g + i`` is input channel ``i * (C/g) + j``.
    """
    per = channels // groups
    return [i * per + j for j in range(per) for i in range(groups)]


class CBR(nn.Module):
    """conv k×k/stride (no bias) → BN → PReLU."""

    def __init__(self, n_in: int, n_out: int, k: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, k, stride, (k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(n_out, eps=BN_EPS)
        self.act = nn.PReLU(n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class BR(nn.Module):
    """BN → PReLU."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(n, eps=BN_EPS)
        self.act = nn.PReLU(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class C(nn.Module):
    """A bias-free convolution (optionally grouped)."""

    def __init__(self, n_in: int, n_out: int, k: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(n_in, n_out, k, stride, (k - 1) // 2, groups=groups, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def linear_4d(x: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
    """Apply a Linear to a [B, C, 1, 1] tensor as a 1×1 convolution, keeping the tensor 4-D."""
    return F.conv2d(x, layer.weight[:, :, None, None], layer.bias)


class SqueezeBlock(nn.Module):
    """s = mean over H, W → dense layers with PReLU (no sigmoid) → s × x."""

    def __init__(self, channels: int, divide: int) -> None:
        super().__init__()
        if divide > 1:
            hidden = channels // divide
            self.dense = nn.Sequential(
                nn.Linear(channels, hidden),
                nn.PReLU(hidden),
                nn.Linear(hidden, channels),
                nn.PReLU(channels),
            )
        else:
            self.dense = nn.Sequential(nn.Linear(channels, channels), nn.PReLU(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.mean(dim=(2, 3), keepdim=True)
        for layer in self.dense:
            s = linear_4d(s, layer) if isinstance(layer, nn.Linear) else layer(s)
        return s * x


class SESeparableCBR(nn.Module):
    """depthwise k×k/stride → squeeze block → pointwise 1×1 → BN → PReLU."""

    def __init__(self, n_in: int, n_out: int, k: int, stride: int, divide: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(n_in, n_in, k, stride, (k - 1) // 2, groups=n_in, bias=False),
            SqueezeBlock(n_in, divide),
            nn.Conv2d(n_in, n_out, 1, 1, 0, bias=False),
        )
        self.bn = nn.BatchNorm2d(n_out, eps=BN_EPS)
        self.act = nn.PReLU(n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class S2Block(nn.Module):
    """[avg-pool a] → depthwise k → BN → PReLU → 1×1 → [bilinear ×a] → BN."""

    def __init__(self, n_in: int, n_out: int, k: int, a: int) -> None:
        super().__init__()
        self.a = a
        self.pool = nn.AvgPool2d(a, a) if a > 1 else nn.Identity()
        self.conv = nn.Sequential(
            nn.Conv2d(n_in, n_in, k, 1, (k - 1) // 2, groups=n_in, bias=False),
            nn.BatchNorm2d(n_in, eps=BN_EPS),
        )
        self.act_conv1x1 = nn.Sequential(
            nn.PReLU(n_in), nn.Conv2d(n_in, n_out, 1, 1, 0, bias=False)
        )
        self.bn = nn.BatchNorm2d(n_out, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.act_conv1x1(self.conv(self.pool(x)))
        if self.a > 1:
            y = up(y, self.a)
        return self.bn(y)


class S2Module(nn.Module):
    """grouped 1×1 → channel shuffle → two S2 blocks on the same tensor → concat → (+x) → BR."""

    shuffle: torch.Tensor

    def __init__(
        self,
        n_in: int,
        n_out: int,
        residual: bool,
        branches: tuple[tuple[int, int], tuple[int, int]],
    ) -> None:
        super().__init__()
        n = n_out // 2
        extra = n_out - 2 * n
        (k1, a1), (k2, a2) = branches
        self.residual = residual
        self.c1 = C(n_in, n, 1, 1, groups=2)
        self.d1 = S2Block(n, n + extra, k1, a1)
        self.d2 = S2Block(n, n, k2, a2)
        self.BR = BR(n_out)
        # A constant gather is the channel shuffle without 5-D views or sizes read from tensors.
        self.register_buffer("shuffle", torch.tensor(shuffle_permutation(n)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c1(x).index_select(1, self.shuffle)
        out = torch.cat([self.d1(y), self.d2(y)], dim=1)
        if self.residual:
            out = out + x
        return self.BR(out)


class Encoder(nn.Module):
    def __init__(self, cfg: SINetConfig) -> None:
        super().__init__()
        d1, d2, d3 = cfg.d1, cfg.d2, cfg.d3
        self.level1 = CBR(3, 12, 3, 2)
        self.level2_0 = SESeparableCBR(12, d1, 3, 2, divide=1)
        self.level2 = nn.ModuleList(
            S2Module(d1 if i == 0 else d2, d2, residual=i > 0, branches=cfg.branches[i])
            for i in range(cfg.p)
        )
        self.BR2 = BR(d1 + d2)
        self.level3_0 = SESeparableCBR(d1 + d2, d2, 3, 2, divide=2)
        self.level3 = nn.ModuleList(
            S2Module(d2 if i == 0 else d3, d3, residual=i > 0, branches=cfg.branches[cfg.p + i])
            for i in range(cfg.q)
        )
        self.BR3 = BR(d2 + d3)
        self.classifier = C(d2 + d3, cfg.classes, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder logits at 1/8 and the level-2 output (the decoder's skip connection)."""
        out2_0 = self.level2_0(self.level1(x))
        out2 = out2_0
        for layer in self.level2:
            out2 = layer(out2)
        out3_0 = self.level3_0(self.BR2(torch.cat([out2_0, out2], dim=1)))
        out3 = out3_0
        for layer in self.level3:
            out3 = layer(out3)
        logits = self.classifier(self.BR3(torch.cat([out3_0, out3], dim=1)))
        return logits, out2


class SINet(nn.Module):
    """SINet with the information-blocking decoder; normalised BGR NCHW in, logits out."""

    def __init__(self, cfg: SINetConfig = OFFICIAL_CONFIG) -> None:
        super().__init__()
        self.config = cfg
        self.encoder = Encoder(cfg)
        self.bn_3 = nn.BatchNorm2d(cfg.classes, eps=BN_EPS)
        self.level2_C = CBR(cfg.d2, cfg.classes, 1, 1)
        self.bn_2 = nn.BatchNorm2d(cfg.classes, eps=BN_EPS)
        # classifier.0 is the parameter-free bilinear ×2 of the authors' nn.Sequential.
        self.classifier = nn.Sequential(
            nn.UpsamplingBilinear2d(scale_factor=2),
            nn.Conv2d(cfg.classes, cfg.classes, 3, 1, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc, out2 = self.encoder(x)
        stage1 = self.bn_3(up(enc, 2))
        confidence = torch.softmax(stage1, dim=1).amax(dim=1, keepdim=True)
        gate = 1.0 - confidence  # broadcast over the class channels
        stage2 = self.bn_2(up(self.level2_C(out2) * gate + stage1, 2))
        return self.classifier[1](up(stage2, 2))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, height: int, width: int) -> int:
    """Multiply-accumulates of convolutions and linear layers for one HxW image (hooks)."""
    total = 0

    def conv_hook(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(mod, nn.Conv2d)
        k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
        total += int(out.numel()) * k

    def linear_conv_hook(mod: nn.Module, _inp: object, out: torch.Tensor) -> None:
        nonlocal total
        for layer in mod.modules():
            if isinstance(layer, nn.Linear):
                total += layer.in_features * layer.out_features

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, SqueezeBlock):
            handles.append(m.register_forward_hook(linear_conv_hook))
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, height, width))
    finally:
        for h in handles:
            h.remove()
    return total
