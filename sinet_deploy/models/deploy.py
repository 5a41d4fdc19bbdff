"""The deploy form of SINet: same outputs, a graph that mobile converters map one-to-one.

What changes against the reference (each rewrite is exact up to float rounding):
- every BatchNorm that follows a convolution is folded into it, also across a bilinear
  upsample (its weights sum to 1, so a per-channel affine commutes with it); the BatchNorms that
  follow an add or a concat of non-foldable inputs stay as a per-channel ``Affine`` (mul + add);
- the channel shuffle disappears: everything between it and the next 1×1 convolution is
  per-channel, so those parameters and that convolution's input columns are permuted instead;
- the squeeze block's Linear layers become 1×1 convolutions, so every tensor stays 4-D;
- optional heads: the foreground probability (for two classes ``softmax(l)[1] = sigmoid(l1 - l0)``
  and ``l1 - l0`` folds into the last convolution) and uint8 RGB NHWC image input with the
  checkpoint's normalisation inside the graph (the RGB→BGR swap folds into the first conv).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from sinet_deploy.models import sinet as ref
from sinet_deploy.models.preprocessing import MEAN_BGR, STD_BGR

Head = Literal["logits", "probability"]


def _bn_affine(bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    assert bn.running_var is not None and bn.running_mean is not None
    scale = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias.detach() - bn.running_mean * scale
    return scale, shift


def _conv(src: nn.Conv2d, weight: torch.Tensor, bias: torch.Tensor | None) -> nn.Conv2d:
    """A new conv with ``src``'s geometry and the given (folded) parameters."""
    out = nn.Conv2d(
        weight.shape[1] * src.groups,
        weight.shape[0],
        src.kernel_size,  # type: ignore[arg-type]  # always 2-tuples for Conv2d
        src.stride,  # type: ignore[arg-type]
        src.padding,  # type: ignore[arg-type]
        groups=src.groups,
        bias=bias is not None,
    )
    out.weight = nn.Parameter(weight.detach().clone())
    if bias is not None:
        out.bias = nn.Parameter(bias.detach().clone())
    return out


def _fold(
    conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor, bias: torch.Tensor | None = None
) -> nn.Conv2d:
    b = shift if bias is None else bias * scale + shift
    return _conv(conv, conv.weight.detach() * scale[:, None, None, None], b)


def _prelu(slopes: torch.Tensor) -> nn.PReLU:
    act = nn.PReLU(slopes.numel())
    act.weight = nn.Parameter(slopes.detach().clone())
    return act


class Affine(nn.Module):
    """Per-channel ``x * scale + shift``: a BatchNorm that nothing before it can absorb."""

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, scale: torch.Tensor, shift: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().reshape(1, -1, 1, 1).clone())
        self.register_buffer("shift", shift.detach().reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.shift


class ConvAct(nn.Module):
    """conv (+ bias) → optional PReLU."""

    def __init__(self, conv: nn.Conv2d, act: nn.PReLU | None) -> None:
        super().__init__()
        self.conv = conv
        self.act = act if act is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class SqueezeDeploy(nn.Module):
    def __init__(self, block: ref.SqueezeBlock) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for layer in block.dense:
            if isinstance(layer, nn.Linear):
                conv = nn.Conv2d(layer.in_features, layer.out_features, 1)
                conv.weight = nn.Parameter(layer.weight.detach()[:, :, None, None].clone())
                conv.bias = nn.Parameter(layer.bias.detach().clone())
                layers.append(conv)
            else:
                layers.append(_prelu(layer.weight))  # type: ignore[arg-type]
        self.dense = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x.mean(dim=(2, 3), keepdim=True)) * x


class SESeparableDeploy(nn.Module):
    def __init__(self, block: ref.SESeparableCBR) -> None:
        super().__init__()
        dw, squeeze, pw = block.conv[0], block.conv[1], block.conv[2]
        assert isinstance(dw, nn.Conv2d) and isinstance(pw, nn.Conv2d)
        assert isinstance(squeeze, ref.SqueezeBlock)
        self.dw = _conv(dw, dw.weight.detach(), None)
        self.squeeze = SqueezeDeploy(squeeze)
        self.pw = ConvAct(_fold(pw, *_bn_affine(block.bn)), _prelu(block.act.weight))  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.squeeze(self.dw(x)))


class S2BlockDeploy(nn.Module):
    """[avg-pool] → depthwise (+BN) → PReLU → 1×1 (+BN, +BR's BN when exact) → [upsample]."""

    def __init__(
        self,
        block: ref.S2Block,
        inv_perm: torch.Tensor,
        post: tuple[torch.Tensor, torch.Tensor] | None,
    ) -> None:
        super().__init__()
        self.a = block.a
        self.pool = nn.AvgPool2d(self.a, self.a) if self.a > 1 else nn.Identity()
        dw, bn1 = block.conv[0], block.conv[1]
        act, pw = block.act_conv1x1[0], block.act_conv1x1[1]
        assert isinstance(dw, nn.Conv2d) and isinstance(bn1, nn.BatchNorm2d)
        assert isinstance(act, nn.PReLU) and isinstance(pw, nn.Conv2d)
        s1, t1 = _bn_affine(bn1)
        # The shuffle is gone: channel `old` of the unshuffled tensor is channel inv_perm[old]
        # of the shuffled one, so take that channel's parameters.
        self.dw = _conv(dw, (dw.weight.detach() * s1[:, None, None, None])[inv_perm], t1[inv_perm])
        self.act = _prelu(act.weight.detach()[inv_perm])
        s2, t2 = _bn_affine(block.bn)
        w = pw.weight.detach()[:, inv_perm] * s2[:, None, None, None]
        b = t2
        if post is not None:  # the module's BR BatchNorm, exact when there is no residual add
            w, b = w * post[0][:, None, None, None], b * post[0] + post[1]
        self.pw = _conv(pw, w, b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.act(self.dw(self.pool(x))))
        return ref.up(y, self.a) if self.a > 1 else y


class S2ModuleDeploy(nn.Module):
    def __init__(self, module: ref.S2Module) -> None:
        super().__init__()
        perm = module.shuffle
        inv_perm = torch.argsort(perm)
        self.residual = module.residual
        c1 = module.c1.conv
        self.c1 = _conv(c1, c1.weight.detach(), None)
        s, t = _bn_affine(module.BR.bn)
        n1 = module.d1.bn.num_features
        post1 = None if self.residual else (s[:n1], t[:n1])
        post2 = None if self.residual else (s[n1:], t[n1:])
        self.d1 = S2BlockDeploy(module.d1, inv_perm, post1)
        self.d2 = S2BlockDeploy(module.d2, inv_perm, post2)
        self.bn = Affine(s, t) if self.residual else nn.Identity()
        self.act = _prelu(module.BR.act.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c1(x)
        out = torch.cat([self.d1(y), self.d2(y)], dim=1)
        if self.residual:
            out = self.bn(out + x)
        return self.act(out)


class BRDeploy(nn.Module):
    def __init__(self, br: ref.BR) -> None:
        super().__init__()
        self.bn = Affine(*_bn_affine(br.bn))
        self.act = _prelu(br.act.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


def _cbr(block: ref.CBR) -> ConvAct:
    return ConvAct(_fold(block.conv, *_bn_affine(block.bn)), _prelu(block.act.weight))  # type: ignore[arg-type]


class SINetDeploy(nn.Module):
    """Export-ready SINet. Input: normalised NCHW (BGR, or RGB after :meth:`rgb_input`)."""

    #: How many subnormal weights :func:`to_deploy` set to zero.
    subnormals_flushed: int = 0

    def __init__(self, model: ref.SINet, head: Head = "logits") -> None:
        super().__init__()
        cfg = model.config
        enc = model.encoder
        self.config = cfg
        self.head = head
        self.level1 = _cbr(enc.level1)
        self.level2_0 = SESeparableDeploy(enc.level2_0)
        self.level2 = nn.ModuleList(S2ModuleDeploy(m) for m in enc.level2)  # type: ignore[arg-type]
        self.BR2 = BRDeploy(enc.BR2)
        self.level3_0 = SESeparableDeploy(enc.level3_0)
        self.level3 = nn.ModuleList(S2ModuleDeploy(m) for m in enc.level3)  # type: ignore[arg-type]
        self.BR3 = BRDeploy(enc.BR3)
        # bn_3 follows up2(classifier): fold it into the classifier across the upsample.
        self.classifier = _fold(enc.classifier.conv, *_bn_affine(model.bn_3))
        self.level2_C = _cbr(model.level2_C)
        self.bn_2 = Affine(*_bn_affine(model.bn_2))
        last = model.classifier[1]
        assert isinstance(last, nn.Conv2d)
        w = last.weight.detach()
        if head == "probability" and cfg.classes == 2:
            # softmax(l)[1] = sigmoid(l1 - l0), and l1 - l0 is itself a convolution.
            w = (w[1] - w[0])[None]
        self.last = _conv(last, w, None)

    @torch.no_grad()
    def rgb_input(self) -> SINetDeploy:
        """Make the first convolution take RGB instead of BGR (exact: a channel permutation)."""
        conv = self.level1.conv
        conv.weight.copy_(conv.weight.flip(1))
        return self

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's features at 1/8 (before its classifier) and the level-2 output."""
        out2_0 = self.level2_0(self.level1(x))
        out2 = out2_0
        for layer in self.level2:
            out2 = layer(out2)
        out3_0 = self.level3_0(self.BR2(torch.cat([out2_0, out2], dim=1)))
        out3 = out3_0
        for layer in self.level3:
            out3 = layer(out3)
        return self.BR3(torch.cat([out3_0, out3], dim=1)), out2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat, out2 = self.encode(x)
        stage1 = ref.up(self.classifier(feat), 2)
        confidence = torch.softmax(stage1, dim=1).amax(dim=1, keepdim=True)
        stage2 = self.bn_2(ref.up(self.level2_C(out2) * (1.0 - confidence) + stage1, 2))
        y = self.last(ref.up(stage2, 2))
        if self.head == "logits":
            return y
        if self.config.classes <= 2:
            return torch.sigmoid(y)
        return torch.softmax(y, dim=1)[:, 1:2]


class ImageInput(nn.Module):
    """uint8 RGB NHWC image → the checkpoint's normalised NCHW (channel order of ``core``).

    ``((bgr - mean) / std) / 255`` is a per-channel ``x * a + b``; it cannot fold into the first
    conv because that conv zero-pads in the normalised space.
    """

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, core: SINetDeploy, layout: Literal["nhwc", "nchw"] = "nhwc") -> None:
        super().__init__()
        self.layout = layout
        self.core = core.rgb_input()
        mean = torch.tensor(MEAN_BGR[::-1], dtype=torch.float64)
        std = torch.tensor(STD_BGR[::-1], dtype=torch.float64)
        self.register_buffer("scale", (1.0 / (std * 255.0)).float().reshape(1, 3, 1, 1))
        self.register_buffer("shift", (-mean / (std * 255.0)).float().reshape(1, 3, 1, 1))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32)
        if self.layout == "nhwc":
            x = x.permute(0, 3, 1, 2)
        # The constants are made as wide as the image ([1,3,1,W] instead of [1,3,1,1]): in the
        # NHWC graph XNNPACK then merges W and C into one contiguous run of W·3 elements per
        # row instead of calling its kernel once per pixel on 3 elements. Same products, same
        # result; the fp32 TFLite normalisation went from 0.61 ms to 0.05 ms (measured).
        width = x.shape[3]
        scale = self.scale.expand(-1, -1, 1, width)
        shift = self.shift.expand(-1, -1, 1, width)
        y = self.core(x * scale + shift)
        return y.permute(0, 2, 3, 1) if self.layout == "nhwc" else y


#: The smallest normal float32 (2**-126). Below it a value is subnormal: x86 CPUs handle
#: those in microcode, tens of times slower per operation, unless the runtime flushes them.
FP32_TINY = 2.0**-126


def flush_subnormals(module: nn.Module) -> int:
    """Set every subnormal float32 parameter and buffer of ``module`` to zero, in place.

    Their magnitude is below 1.2e-38: as weights they change no output a float32 graph can
    resolve, yet each multiply with one costs a microcode assist on x86. The released
    checkpoint's deploy form holds 2,315 of them. Returns how many were flushed.
    """
    flushed = 0
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            if t.dtype != torch.float32:
                continue
            # Found by their bits (exponent 0, mantissa not 0), not by comparing values: with
            # torch.set_flush_denormal(True) on, the CPU reads subnormals as zero and a
            # comparison would miss them, though the exported file would still carry them.
            bits = t.detach().contiguous().view(torch.int32)
            tiny = ((bits & 0x7F800000) == 0) & ((bits & 0x007FFFFF) != 0)
            n = int(tiny.sum())
            if n:
                t.masked_fill_(tiny, 0.0)
                flushed += n
    return flushed


def to_deploy(model: ref.SINet, head: Head = "logits") -> SINetDeploy:
    """Build the deploy form of a reference SINet (in eval mode, on CPU), with subnormal
    weights flushed to zero (:func:`flush_subnormals`; the count is ``subnormals_flushed``)."""
    deploy = SINetDeploy(model.eval(), head=head).eval()
    object.__setattr__(deploy, "subnormals_flushed", flush_subnormals(deploy))
    return deploy
