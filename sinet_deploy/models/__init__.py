"""What SINet is: architecture, checkpoint loading, deploy form, pre/post-processing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sinet_deploy.models.config import OFFICIAL_CONFIG, SINetConfig, check_input_size

if TYPE_CHECKING:
    from torch import nn

RANDOM_SEED = 0


def build_model(config: SINetConfig = OFFICIAL_CONFIG) -> nn.Module:
    from sinet_deploy.models.sinet import SINet

    return SINet(config)


def _randomize(model: nn.Module) -> None:
    """Seeded non-trivial parameters *and* BatchNorm statistics, so folding is really tested."""
    import torch

    gen = torch.Generator().manual_seed(RANDOM_SEED)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) * 1.5 + 0.25)
            elif name.endswith(("running_mean", "bias")):
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1)
            elif name.endswith("weight") and t.dim() == 1:  # BN gamma, PReLU slopes
                t.copy_(torch.rand(t.shape, generator=gen) * 1.2 - 0.2)
            else:
                fan_in = max(1, t[0].numel())
                t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / fan_in) ** 0.5)


def load_model(
    weights: str | Path = "official", *, deploy: bool = False, **config: Any
) -> nn.Module:
    """The reference SINet in eval mode.

    Args:
        weights: ``"official"`` (cached/downloaded released checkpoint), ``"random"`` (seeded,
            for pipeline tests only) or a checkpoint path.
        deploy: return the export-ready form (BN and shuffle folded), same outputs.
        **config: SINet options (``classes``, ``p``, ``q``, ``chnn``, ``branches``).

    Returns:
        An ``nn.Module``: normalised BGR NCHW float32 in, class logits NCHW out.
    """
    from sinet_deploy.models.checkpoint import check_fits, load_state_dict
    from sinet_deploy.models.deploy import to_deploy
    from sinet_deploy.models.weights import resolve_checkpoint

    cfg = SINetConfig.from_kwargs(**config)
    model = build_model(cfg)
    if str(weights) == "random":
        _randomize(model)
    else:
        path = resolve_checkpoint(weights)
        state = load_state_dict(path)
        check_fits(state, model.state_dict(), cfg, path)
        model.load_state_dict(state, strict=True)
    model.eval()
    if deploy:
        return to_deploy(model)  # type: ignore[arg-type]
    return model


def export_module(
    weights: str | Path = "official",
    *,
    input_size: tuple[int, int] = (224, 224),
    io: Literal["image", "raw"] = "image",
    layout: Literal["nhwc", "nchw"] = "nhwc",
    **config: Any,
) -> nn.Module:
    """The deploy form with the artifact I/O of CONTRACTS.md.

    ``io="image"``: uint8 RGB ``[1, H, W, 3]`` (``layout="nhwc"``) in, foreground probability
    ``[1, H, W, 1]`` out. ``io="raw"``: the checkpoint's contract (normalised BGR NCHW in,
    logits out). ``input_size`` is validated (multiples of 32); the module itself is size-free.
    """
    from sinet_deploy.models.deploy import ImageInput, to_deploy

    check_input_size(*input_size)
    model = load_model(weights, **config)
    if io == "raw":
        return to_deploy(model, head="logits")  # type: ignore[arg-type]
    return ImageInput(to_deploy(model, head="probability"), layout=layout).eval()  # type: ignore[arg-type]


__all__ = ["OFFICIAL_CONFIG", "SINetConfig", "build_model", "export_module", "load_model"]
