"""Exact rewrites of SINet's deploy form into ops that XNNPACK runs in int8.

Measured with LiteRT 2.3.0: XNNPACK's int8 path takes CONV_2D, DEPTHWISE_CONV_2D, ADD,
MUL, SUB, CONCATENATION, RESIZE_BILINEAR, MEAN, LEAKY_RELU and LOGISTIC, but not PRELU,
AVERAGE_POOL_2D, SOFTMAX, MINIMUM/MAXIMUM, ABS or an unfused RELU. Every one of those left in the
graph splits the model into another partition with a reference kernel in between (the naive
int8 SINet ran as 34 partitions, 5x slower than fp32). Each rewrite here is an identity in real
arithmetic, so the fp32 outputs stay those of the deploy form (tested to 1e-5):

- a PReLU with one slope ``a`` for every channel (1/64 <= |a| <= 16, a != 1) is
  ``leaky_relu(y, a)``: one op;
- per-channel PReLU(y) = A*y + B*leaky_relu(y, s) with A = (a - s)/(1 - s), B = (1 - a)/(1 - s):
  ``leaky_relu(y, s) = relu(y) + s*min(y, 0)`` and ``y = relu(y) + min(y, 0)``, so two
  per-channel weights recover any slope ``a`` from one scalar-slope LEAKY_RELU (4 ops);
- ``fold``: when every ``A > 0`` the ``A`` folds into whatever produced ``y`` (a convolution's
  rows, or a BatchNorm affine), because ``leaky_relu(A*y) = A*leaky_relu(y)`` for ``A > 0``:
  PReLU(y) = z + (B/A)*leaky_relu(z, s) with ``z = A*y`` (3 ops: LEAKY_RELU, MUL, ADD);
- an a×a average pool with stride a is a depthwise convolution with constant weights 1/a²;
- a per-channel affine ``x*scale + shift`` (an unfoldable BatchNorm, the input normalisation) is
  a 1×1 depthwise convolution with a bias: one int8 op instead of a broadcast MUL and ADD;
- for two classes the decoder's gate ``1 - max(softmax(l))`` is ``sigmoid(-|l1 - l0|)``, and
  ``|d| = leaky_relu(d, -1)``; ``l1 - l0`` is a 1-channel convolution (the classifier's rows
  subtracted) taken before the bilinear upsample, which commutes with it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from sinet_deploy.core.errors import UserInputError
from sinet_deploy.models import sinet as ref
from sinet_deploy.models.deploy import (
    Affine,
    BRDeploy,
    ConvAct,
    ImageInput,
    S2BlockDeploy,
    S2ModuleDeploy,
    SINetDeploy,
    SqueezeDeploy,
)

PReLUMode = Literal["keep", "combo", "fold"]

# XNNPACK's int8 LEAKY_RELU refuses a negative-side scale below 2^-8 (slope times the input/output
# scale ratio): slope 0 or a tiny one would leave the op outside the delegate. 1/64 keeps a 4x
# margin for that ratio; smaller shared slopes take the general form.
_LEAKY_MIN = 1.0 / 64.0


@dataclass(frozen=True)
class Int8FormConfig:
    """Which rewrites to apply (the defaults are what the int8 export uses).

    Attributes:
        prelu: ``"fold"`` (3 ops where the producer can absorb ``A``, else 4), ``"combo"``
            (the 4-op form) or ``"keep"`` (PReLU stays; XNNPACK will not take it). With fold
            or combo, a PReLU whose slopes are all equal is one LEAKY_RELU instead.
        leaky_slope: the scalar slope ``s`` of the LEAKY_RELU (any value but 1).
        avg_pool: rewrite average pools as depthwise convolutions.
        affine_conv: rewrite per-channel affines as 1×1 depthwise convolutions.
        input_conv: the input normalisation too (else it stays the deploy form's image-wide
            MUL and ADD, see :class:`~sinet_deploy.models.deploy.ImageInput`).
        gate: rewrite the decoder's softmax confidence gate as ``sigmoid(-|l1 - l0|)``.
    """

    prelu: PReLUMode = "fold"
    leaky_slope: float = -1.0
    avg_pool: bool = True
    affine_conv: bool = True
    input_conv: bool = True
    gate: bool = True

    def __post_init__(self) -> None:
        if self.prelu not in ("keep", "combo", "fold"):
            raise UserInputError(
                f"unknown PReLU rewrite {self.prelu!r}", hint="use fold, combo or keep"
            )
        if not -16.0 <= self.leaky_slope <= 16.0 or abs(1.0 - self.leaky_slope) < 1e-3:
            raise UserInputError(
                f"leaky_slope {self.leaky_slope} is unusable",
                hint="pick a slope away from 1, e.g. -1 (|x|) or 0.25",
            )


def _coefficients(prelu: nn.PReLU, s: float) -> tuple[torch.Tensor, torch.Tensor]:
    a = prelu.weight.detach().double()
    return (a - s) / (1.0 - s), (1.0 - a) / (1.0 - s)


class PReLUAsLeaky(nn.Module):
    """Per-channel PReLU as ``A*x + B*leaky_relu(x, s)`` (LEAKY_RELU, 2 MUL, ADD)."""

    a_coef: torch.Tensor
    b_coef: torch.Tensor

    def __init__(self, prelu: nn.PReLU, slope: float) -> None:
        super().__init__()
        a_coef, b_coef = _coefficients(prelu, slope)
        self.slope = float(slope)
        self.register_buffer("a_coef", a_coef.float().reshape(1, -1, 1, 1))
        self.register_buffer("b_coef", b_coef.float().reshape(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.a_coef + F.leaky_relu(x, self.slope) * self.b_coef


class FoldedPReLU(nn.Module):
    """``z + R*leaky_relu(z, s)`` where the producer already multiplied ``z`` by ``A``."""

    ratio: torch.Tensor

    def __init__(self, ratio: torch.Tensor, slope: float) -> None:
        super().__init__()
        self.slope = float(slope)
        self.register_buffer("ratio", ratio.float().reshape(1, -1, 1, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + F.leaky_relu(z, self.slope) * self.ratio


class AvgPoolAsDepthwise(nn.Module):
    """``a×a`` average pooling with stride ``a`` as a depthwise conv with weights ``1/a²``."""

    def __init__(self, channels: int, a: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, a, a, groups=channels, bias=False)
        with torch.no_grad():
            self.conv.weight.fill_(1.0 / (a * a))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def affine_conv(scale: torch.Tensor, shift: torch.Tensor) -> nn.Conv2d:
    """``x*scale + shift`` (per channel) as a 1×1 depthwise convolution with a bias."""
    c = scale.numel()
    conv = nn.Conv2d(c, c, 1, groups=c, bias=True)
    with torch.no_grad():
        conv.weight.copy_(scale.reshape(c, 1, 1, 1))
        conv.bias.copy_(shift.reshape(c))  # type: ignore[union-attr]
    return conv


class ImageInputAsConv(nn.Module):
    """:class:`ImageInput` with its normalisation as one depthwise 1×1 conv (same outputs)."""

    def __init__(self, wrapper: ImageInput) -> None:
        super().__init__()
        self.layout = wrapper.layout
        self.norm = affine_conv(wrapper.scale, wrapper.shift)
        self.core = wrapper.core

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32)
        if self.layout == "nhwc":
            x = x.permute(0, 3, 1, 2)
        y = self.core(self.norm(x))
        return y.permute(0, 2, 3, 1) if self.layout == "nhwc" else y


class SINetInt8Form(nn.Module):
    """The deploy form's encoder and decoder, with the two-class gate written as a sigmoid.

    Reuses the deploy module's (already rewritten) children; only ``forward`` differs, and only
    in how ``1 - max(softmax(stage1))`` is computed.
    """

    def __init__(self, deploy: SINetDeploy) -> None:
        super().__init__()
        if deploy.config.classes != 2:
            raise UserInputError(
                f"the int8 gate rewrite needs 2 classes, the model has {deploy.config.classes}",
                hint="export int8 with the rewrite switched off (gate=False)",
            )
        self.deploy = deploy
        cls = deploy.classifier
        assert cls.bias is not None
        # d = l1 - l0 of the encoder logits: one output row, computed at 1/8 before upsampling.
        self.diff = nn.Conv2d(cls.in_channels, 1, 1, bias=True)
        with torch.no_grad():
            self.diff.weight.copy_(cls.weight[1:2] - cls.weight[0:1])
            self.diff.bias.copy_(cls.bias[1:2] - cls.bias[0:1])  # type: ignore[union-attr]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.deploy
        feat, out2 = d.encode(x)
        stage1 = ref.up(d.classifier(feat), 2)
        # 1 - max(softmax(l0, l1)) = 1 - sigmoid(|l1 - l0|) = sigmoid(-|l1 - l0|).
        gate = torch.sigmoid(-F.leaky_relu(ref.up(self.diff(feat), 2), -1.0))
        stage2 = d.bn_2(ref.up(d.level2_C(out2) * gate + stage1, 2))
        y = d.last(ref.up(stage2, 2))
        if d.head == "logits":
            return y
        return torch.sigmoid(y)


# --- the PReLU rewrite, producer by producer -------------------------------------------------


class _PReLURewriter:
    """Replaces each PReLU, folding ``A`` into the module that produced its input if allowed."""

    def __init__(self, config: Int8FormConfig) -> None:
        self.cfg = config
        self.folded = 0
        self.unfolded = 0

    def __call__(self, prelu: nn.PReLU, producers: list[tuple[object, slice]]) -> nn.Module:
        """``producers``: (conv or Affine, channel slice of this PReLU it feeds) pairs."""
        slopes = prelu.weight.detach()
        first = float(slopes.flatten()[0])
        if bool((slopes == first).all()) and _LEAKY_MIN <= abs(first) <= 16.0 and first != 1.0:
            # One slope for every channel (a model trained with an int8-friendly activation):
            # exactly a LEAKY_RELU, one int8 op instead of three or four.
            return nn.LeakyReLU(first)
        s = self.cfg.leaky_slope
        a_coef, b_coef = _coefficients(prelu, s)
        if self.cfg.prelu == "fold" and producers and bool((a_coef > 1e-3).all()):
            with torch.no_grad():
                for prod, sl in producers:
                    k = a_coef[sl].float()
                    if isinstance(prod, nn.Conv2d):
                        prod.weight.mul_(k.reshape(-1, 1, 1, 1))
                        if prod.bias is not None:
                            prod.bias.mul_(k)
                    else:
                        assert isinstance(prod, Affine)
                        prod.scale.mul_(k.reshape(1, -1, 1, 1))
                        prod.shift.mul_(k.reshape(1, -1, 1, 1))
            self.folded += 1
            return FoldedPReLU(b_coef / a_coef, s)
        self.unfolded += 1
        return PReLUAsLeaky(prelu, s)


def _rewrite_prelus(root: nn.Module, rw: _PReLURewriter) -> None:
    """Visit every PReLU of a deploy-form SINet together with its producer."""
    for module in list(root.modules()):
        if isinstance(module, ConvAct) and isinstance(module.act, nn.PReLU):
            module.act = rw(module.act, [(module.conv, slice(None))])  # type: ignore[assignment]
        elif isinstance(module, SqueezeDeploy):
            layers = list(module.dense)
            for i, layer in enumerate(layers):
                if isinstance(layer, nn.PReLU):
                    prev = layers[i - 1]
                    layers[i] = rw(
                        layer, [(prev, slice(None))] if isinstance(prev, nn.Conv2d) else []
                    )
            module.dense = nn.Sequential(*layers)
        elif isinstance(module, S2BlockDeploy) and isinstance(module.act, nn.PReLU):
            module.act = rw(module.act, [(module.dw, slice(None))])  # type: ignore[assignment]
        elif isinstance(module, S2ModuleDeploy) and isinstance(module.act, nn.PReLU):
            if module.residual:
                module.act = rw(module.act, [(module.bn, slice(None))])  # type: ignore[assignment]
            else:  # cat(d1, d2) → PReLU: fold into both branches' last convolutions
                n1 = module.d1.pw.out_channels
                module.act = rw(
                    module.act, [(module.d1.pw, slice(0, n1)), (module.d2.pw, slice(n1, None))]
                )  # type: ignore[assignment]
        elif isinstance(module, BRDeploy) and isinstance(module.act, nn.PReLU):
            module.act = rw(module.act, [(module.bn, slice(None))])  # type: ignore[assignment]
    _rewrite_leftover(root, rw)  # anything not covered above: the unfolded 4-op form


def _rewrite_leftover(root: nn.Module, rw: _PReLURewriter) -> None:
    for name, child in list(root.named_children()):
        if isinstance(child, nn.PReLU):
            setattr(root, name, rw(child, []))
        else:
            _rewrite_leftover(child, rw)


def _replace_structural(root: nn.Module, config: Int8FormConfig) -> None:
    for name, child in list(root.named_children()):
        if config.affine_conv and isinstance(child, Affine):
            setattr(root, name, affine_conv(child.scale, child.shift))
            continue
        if config.avg_pool and isinstance(child, S2BlockDeploy) and child.a > 1:
            child.pool = AvgPoolAsDepthwise(child.dw.in_channels, child.a)  # type: ignore[assignment]
        _replace_structural(child, config)


def int8_form(module: nn.Module, config: Int8FormConfig | None = None) -> nn.Module:
    """A copy of a deploy-form SINet (or its ``ImageInput`` wrapper) rewritten for int8 runtimes.

    Args:
        module: what :func:`sinet_deploy.models.export_module` returns (``io="image"``), or a
            ``SINetDeploy``; already equalized if that is wanted (see :mod:`.int8_equalize`).
        config: which rewrites to apply.

    Returns:
        A new module in eval mode with the same inputs and outputs (equal in fp32 up to float
        rounding) whose graph converts to XNNPACK-delegated int8 ops.
    """
    config = config or Int8FormConfig()
    out = copy.deepcopy(module).eval()
    if isinstance(out, ImageInput):
        core: nn.Module = out.core
    elif isinstance(out, SINetDeploy):
        core = out
    else:
        raise UserInputError(
            f"int8_form expects a SINet deploy module, got {type(module).__name__}",
            hint="pass sinet_deploy.models.export_module(...)",
        )
    if config.prelu != "keep":
        _rewrite_prelus(core, _PReLURewriter(config))
    if config.gate:
        core = SINetInt8Form(core)  # type: ignore[arg-type]
    _replace_structural(core, config)
    if isinstance(out, ImageInput):
        out.core = core  # type: ignore[assignment]
        if config.affine_conv and config.input_conv:
            return ImageInputAsConv(out).eval()
        return out.eval()
    return core.eval()
