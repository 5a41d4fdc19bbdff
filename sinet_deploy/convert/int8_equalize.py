"""Activation-range equalization: exact per-channel rescaling that makes int8 activations fit.

Full-integer TFLite quantizes every activation tensor with *one* scale for all its channels, and
a CONCATENATION shares one scale between all its inputs and its output. In SINet both hurt:
channel ranges inside a tensor differ by 10-100x, and ``BR2``'s concat joins the level-2 stem
(range ~2) with the level-2 output (range ~24), so the stem is quantized with 1/12 of the int8
grid (measured: SQNR 27 → 15 dB at that single tensor).

Every SINet activation is followed, before the next convolution, only by per-channel operations
(PReLU, bias, BatchNorm affine, bilinear resize, average pool, channel concat, the squeeze
block's ``s * x``), all of which commute with a positive per-channel scale ``k``:
``prelu(k*y) = k*prelu(y)``. So a convolution's output channels can be multiplied by ``k`` and
every consumer's input channels divided by ``k`` without changing the function (fp32 outputs
stay equal to float rounding). This module picks ``k`` from calibration statistics so that every
channel of a tensor, and every input of a concat, spans about the same range.

The residual S2 modules constrain the choice: ``cat(d1, d2) + x`` needs both operands scaled
alike, so the branch outputs inherit the scale of the module input; the module's BatchNorm affine
then rescales to the module's own output scale.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from sinet_deploy.core.errors import UserInputError
from sinet_deploy.models.deploy import (
    Affine,
    ImageInput,
    S2ModuleDeploy,
    SESeparableDeploy,
    SINetDeploy,
)


@dataclass(frozen=True)
class EqualizeConfig:
    """How the per-channel scales are chosen.

    Attributes:
        max_factor: no channel is scaled by more than this (or less than its inverse); large
            factors shrink the consumer's weight columns until int8 weights round them away.
        percentile: per channel, the range is this percentile of the per-image maxima of
            ``|activation|`` (100 = the calibration maximum; lower ignores outlier images).
    """

    max_factor: float = 16.0
    percentile: float = 100.0

    def __post_init__(self) -> None:
        if not 1.0 <= self.max_factor <= 1024.0:
            raise UserInputError(
                f"max_factor {self.max_factor} out of range", hint="use a value in 1..1024"
            )
        if not 50.0 <= self.percentile <= 100.0:
            raise UserInputError(
                f"percentile {self.percentile} out of range", hint="use a value in 50..100"
            )


# --- folding helpers ------------------------------------------------------------------------


@torch.no_grad()
def scale_out(conv: nn.Conv2d, k: torch.Tensor) -> None:
    """Multiply the conv's output channel ``c`` (weights and bias) by ``k[c]``."""
    conv.weight.mul_(k.reshape(-1, 1, 1, 1))
    if conv.bias is not None:
        conv.bias.mul_(k)


@torch.no_grad()
def scale_in(conv: nn.Conv2d, k: torch.Tensor) -> None:
    """Divide the conv's weights on input channel ``c`` by ``k[c]`` (any ``groups``)."""
    groups = conv.groups
    cin_g = conv.in_channels // groups
    cout_g = conv.out_channels // groups
    per_group = k.reshape(groups, cin_g)
    rows = per_group[torch.arange(conv.out_channels) // cout_g]  # [out, in/groups]
    conv.weight.div_(rows[:, :, None, None])


@torch.no_grad()
def rescale_affine(affine: Affine, k_in: torch.Tensor, k_out: torch.Tensor) -> None:
    """``x*s + t`` that takes ``k_in``-scaled input and gives ``k_out``-scaled output."""
    affine.scale.mul_((k_out / k_in).reshape(1, -1, 1, 1))
    affine.shift.mul_(k_out.reshape(1, -1, 1, 1))


# --- statistics -----------------------------------------------------------------------------


class _RangeRecorder:
    """Per-channel ``max |output|`` of chosen modules, one row per image."""

    def __init__(self, modules: dict[str, nn.Module]) -> None:
        self.rows: dict[str, list[torch.Tensor]] = {}
        self.handles = []
        for name, m in modules.items():
            self.rows[name] = []
            self.handles.append(m.register_forward_hook(self._hook(name)))
            if isinstance(m, Affine):  # the residual sum feeding a BatchNorm affine
                self.rows[f"{name}_in"] = []
                self.handles.append(m.register_forward_hook(self._hook(f"{name}_in", True)))

    def _hook(self, name: str, use_input: bool = False):  # type: ignore[no-untyped-def]
        def hook(
            _module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor
        ) -> None:
            t = inputs[0] if use_input else output
            self.rows[name].append(t.detach().abs().amax(dim=(0, 2, 3)).double())

        return hook

    def close(self) -> None:
        for h in self.handles:
            h.remove()

    def ranges(self, percentile: float) -> dict[str, torch.Tensor]:
        out = {}
        for name, rows in self.rows.items():
            if not rows:  # e.g. the Identity standing for a non-residual module's BatchNorm
                continue
            stacked = torch.stack(rows)  # [images, channels]
            out[name] = torch.quantile(stacked, percentile / 100.0, dim=0)
        return out


def _watch(core: nn.Module) -> dict[str, nn.Module]:
    """The modules whose outputs define the equalized tensors (names are stable paths)."""
    d = _deploy(core)
    named = dict(d.named_modules())
    keep = {}
    for name, mod in named.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in ("conv", "act", "dw", "c1", "bn", "squeeze", "d1", "d2") or (
            isinstance(mod, nn.Conv2d) and leaf == "pw"
        ):
            keep[name] = mod
    return keep


def _deploy(core: nn.Module) -> Any:
    """The ``SINetDeploy`` inside an int8 form (or the module itself)."""
    return getattr(core, "deploy", core)


# --- choosing and applying the scales -------------------------------------------------------


def _factors(r: torch.Tensor, target: float, cfg: EqualizeConfig) -> torch.Tensor:
    r = torch.clamp(r, min=target / cfg.max_factor)
    return torch.clamp(target / r, 1.0 / cfg.max_factor, cfg.max_factor)


def _joint(*ranges: torch.Tensor) -> torch.Tensor:
    return torch.maximum(ranges[0], ranges[1]) if len(ranges) == 2 else ranges[0]


@torch.no_grad()
def equalize(
    module: nn.Module, images: Iterable[torch.Tensor], config: EqualizeConfig | None = None
) -> dict[str, float]:
    """Rescale ``module``'s channels in place so int8 activation ranges are balanced.

    Args:
        module: the deploy form (``export_module``'s ``ImageInput`` wrapper or a
            ``SINetDeploy``), fp32, eval mode; apply :func:`.int8_form.int8_form` afterwards.
        images: the calibration inputs in the module's own input format (for the image wrapper:
            uint8 ``[1,H,W,3]`` tensors, preprocessed exactly like inference).
        config: see :class:`EqualizeConfig`.

    Returns:
        Summary numbers for the manifest: how many tensors were rescaled and the largest
        factor applied.
    """
    cfg = config or EqualizeConfig()
    core = module.core if isinstance(module, ImageInput) else module
    if not isinstance(core, SINetDeploy):
        raise UserInputError(
            f"equalize expects SINet's deploy form, got {type(core).__name__}",
            hint="equalize first, then apply int8_form",
        )
    d = _deploy(core)
    rec = _RangeRecorder(_watch(core))
    try:
        count = 0
        for x in images:
            module(x)
            count += 1
    finally:
        rec.close()
    if count == 0:
        raise UserInputError("equalization needs at least one calibration image")
    r = rec.ranges(cfg.percentile)
    applied: list[torch.Tensor] = []

    def fac(rng: torch.Tensor, target: float | None = None) -> torch.Tensor:
        k = _factors(rng, float(rng.max()) if target is None else target, cfg).float()
        applied.append(k)
        return k

    # level 1: conv → PReLU → level2_0's depthwise conv.
    k1 = fac(_joint(r["level1.conv"], r["level1.act"]))
    scale_out(d.level1.conv, k1)
    _stem(d.level2_0, "level2_0", k1, r, fac)
    # level 2 stem output and level 2 output meet in BR2's concat: one target for both.
    stem2, out2 = _stem_range(r, "level2_0"), _module_range(r, "level2", d.level2)
    target2 = float(max(stem2.max(), out2.max()))
    k20 = fac(stem2, target2)
    scale_out(d.level2_0.pw.conv, k20)
    k2 = _modules(d.level2, "level2", k20, r, fac, target2)
    k_cat2 = torch.cat([k20, k2])
    scale_in(d.level2_C.conv, k2)
    k_br2 = fac(_joint(r["BR2.bn"], r["BR2.act"]))
    rescale_affine(d.BR2.bn, k_cat2, k_br2)
    # level 3, same shape.
    _stem(d.level3_0, "level3_0", k_br2, r, fac)
    stem3, out3 = _stem_range(r, "level3_0"), _module_range(r, "level3", d.level3)
    target3 = float(max(stem3.max(), out3.max()))
    k30 = fac(stem3, target3)
    scale_out(d.level3_0.pw.conv, k30)
    k3 = _modules(d.level3, "level3", k30, r, fac, target3)
    k_br3 = fac(_joint(r["BR3.bn"], r["BR3.act"]))
    rescale_affine(d.BR3.bn, torch.cat([k30, k3]), k_br3)
    scale_in(d.classifier, k_br3)
    factors = torch.cat(applied)
    return {
        "equalized_tensors": len(applied),
        "max_factor": float(factors.max()),
        "min_factor": float(factors.min()),
        "limit": cfg.max_factor,
        "percentile": cfg.percentile,
        "images": count,
    }


def _stem_range(r: dict[str, torch.Tensor], name: str) -> torch.Tensor:
    return _joint(r[f"{name}.pw.conv"], r[f"{name}.pw.act"])


def _stem(
    block: SESeparableDeploy, name: str, k_prev: torch.Tensor, r: dict[str, torch.Tensor], fac
) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Depthwise conv → squeeze (``s * x``) → pointwise: rescale the depthwise output."""
    k_dw = fac(_joint(r[f"{name}.dw"], r[f"{name}.squeeze"]))
    scale_in(block.dw, k_prev)
    scale_out(block.dw, k_dw)
    first = block.squeeze.dense[0]
    assert isinstance(first, nn.Conv2d)
    scale_in(first, k_dw)  # mean(k*x) = k*mean(x)
    scale_in(block.pw.conv, k_dw)  # s * (k*x) = k * (s*x)
    return k_dw


def _module_range(r: dict[str, torch.Tensor], prefix: str, mods: nn.ModuleList) -> torch.Tensor:
    last = len(mods) - 1
    return _out_range(r, f"{prefix}.{last}", mods[last])  # type: ignore[arg-type]


def _out_range(r: dict[str, torch.Tensor], name: str, m: S2ModuleDeploy) -> torch.Tensor:
    if m.residual:
        return _joint(r[f"{name}.bn"], r[f"{name}.act"])
    return _joint(torch.cat([r[f"{name}.d1"], r[f"{name}.d2"]]), r[f"{name}.act"])


def _modules(
    mods: nn.ModuleList,
    prefix: str,
    k_x: torch.Tensor,
    r: dict[str, torch.Tensor],
    fac,
    last_target: float,
) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Rescale every S2 module; returns the scale of the last module's output."""
    for i, m in enumerate(mods):
        assert isinstance(m, S2ModuleDeploy)
        name = f"{prefix}.{i}"
        scale_in(m.c1, k_x)
        k_c1 = fac(r[f"{name}.c1"])
        scale_out(m.c1, k_c1)
        target = last_target if i == len(mods) - 1 else None
        r_out = _out_range(r, name, m)
        if i + 1 < len(mods) and mods[i + 1].residual:  # type: ignore[union-attr]
            # This output is the next module's residual input x; its branch outputs and the
            # sum cat + x inherit the same scale, so balance all three together.
            nxt = f"{prefix}.{i + 1}"
            r_out = torch.stack(
                [r_out, torch.cat([r[f"{nxt}.d1"], r[f"{nxt}.d2"]]), r[f"{nxt}.bn_in"]]
            ).amax(dim=0)
        k_out = fac(r_out, target)
        n1 = m.d1.pw.out_channels
        k_branch = k_x if m.residual else k_out
        for sub, ks in ((m.d1, k_branch[:n1]), (m.d2, k_branch[n1:])):
            k_dw = fac(
                _joint(
                    r[f"{name}.{'d1' if sub is m.d1 else 'd2'}.dw"],
                    r[f"{name}.{'d1' if sub is m.d1 else 'd2'}.act"],
                )
            )
            scale_in(sub.dw, k_c1)  # avg pool before it commutes with the scale
            scale_out(sub.dw, k_dw)
            scale_in(sub.pw, k_dw)
            scale_out(sub.pw, ks)
        if m.residual:
            assert isinstance(m.bn, Affine)
            rescale_affine(m.bn, k_x, k_out)
        k_x = k_out
    return k_x
