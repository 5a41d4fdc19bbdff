"""The ExecuTorch edge: deploy form → ``.pte`` program, XNNPACK-delegated (fp32 and int8).

Imported by :mod:`sinet_deploy.convert.registry` (``EDGE_MODULES``); registering is all it does
at import time (executorch and torchao are imported only when a conversion runs). The gate then
opens the program with :mod:`sinet_deploy.runtimes.executorch_rt`. The steps are in
:mod:`.torch_to_executorch`.
"""

from __future__ import annotations

from typing import Any

from sinet_deploy.convert.int8_edge import calibration_for, calibration_options, check_io
from sinet_deploy.convert.registry import Artifact, ExportContext, Target, register_converter
from sinet_deploy.convert.torch_to_executorch import (
    WEIGHTS,
    ExecuTorchConfig,
    executorch_installed,
    fp32_form,
    int8_program,
    lower_to_pte,
    require_executorch,
)
from sinet_deploy.core.environment import versions
from sinet_deploy.runtimes.base import TensorSpec

_CONVERTER = (
    "torch.export → executorch.exir to_edge_transform_and_lower (XnnpackPartitioner) "
    "→ to_executorch"
)


def _specs(ctx: ExportContext) -> tuple[list[TensorSpec], list[TensorSpec]]:
    if ctx.io == "image":
        return ctx.image_specs()
    h, w = ctx.input_size
    return (
        [TensorSpec("input", (1, 3, h, w), "float32", "nchw")],
        [TensorSpec("logits", (1, 2, h, w), "float32", "nchw")],
    )


def _example(ctx: ExportContext) -> Any:
    import torch

    h, w = ctx.input_size
    if ctx.io == "image":
        return torch.zeros((1, h, w, 3), dtype=torch.uint8)
    return torch.zeros((1, 3, h, w), dtype=torch.float32)


def convert(ctx: ExportContext, target: Target) -> Artifact:
    """One ``.pte`` at ``target.dest``: fp32, or int8 (PT2E w8a8 on the int8 form's body)."""
    require_executorch()
    cfg = ExecuTorchConfig(precision=target.precision)  # type: ignore[arg-type]
    module, rewrites = fp32_form(ctx.module("nhwc"))
    options: dict[str, Any] = {
        "converter": _CONVERTER,
        "method": "forward",
        "delegate": "XNNPACK",
        "weights": WEIGHTS[cfg.precision],
        "rewrites": rewrites,
    }
    if cfg.precision == "int8":
        check_io(ctx)
        calib = calibration_for(ctx)
        module, int8 = int8_program(ctx.weights, ctx.input_size, calib, cfg, **ctx.config)
        options.update(int8)
        options["calibration"] = calibration_options(calib)
    graph = lower_to_pte(module, _example(ctx), target.dest)
    inputs, outputs = _specs(ctx)
    return Artifact(
        inputs,
        outputs,
        options=options,
        tools=versions("executorch", "torch", "torchao"),
        graph=graph,
    )


# Registered only where executorch is installed (located, not imported), so a machine without
# the executorch extra neither lists it as available nor fails the end-to-end run on it.
if executorch_installed():
    register_converter("executorch", "fp32", convert, description="ExecuTorch .pte (XNNPACK) fp32")
    register_converter(
        "executorch", "int8", convert, description="ExecuTorch .pte (XNNPACK) int8 (PT2E w8a8)"
    )
