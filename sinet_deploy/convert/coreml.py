"""The CoreML edge: deploy form → ML program (fp32, fp16, int8 weights).

Imported by :mod:`sinet_deploy.convert.registry` (``EDGE_MODULES``); registering is all it does
at import time (coremltools is imported only when a conversion runs). The gate then
opens the package with :mod:`sinet_deploy.runtimes.coreml_rt`: on Linux that is the NumPy
reference evaluator (``coreml-reference``), on macOS Core ML itself.

Export options beyond the pipeline's own come from ``ctx.cache["coreml:options"]`` (a dict with
``deployment_target`` and ``frontend``), defaulting to iOS 16 and ``torch.jit.trace``.
"""

from __future__ import annotations

import importlib.util

from sinet_deploy.convert.registry import Artifact, ExportContext, Target, register_converter
from sinet_deploy.convert.torch_to_coreml import (
    DEFAULT_TARGET,
    PRECISIONS,
    ConversionNotes,
    CoreMLConfig,
    convert_coreml,
)
from sinet_deploy.core.environment import versions
from sinet_deploy.runtimes.base import TensorSpec

_WEIGHTS = {
    "fp32": "float32 weights, float32 compute (compute_precision=FLOAT32)",
    "fp16": "float16 weights, float16 compute (the ML program default)",
    "int8": "int8 weights on every conv (linear symmetric, per output channel; "
    "dequantized by constexpr ops), float16 compute",
}


_FRONTENDS = {"trace": "torch.jit.trace", "export": "torch.export"}


def convert(ctx: ExportContext, target: Target) -> Artifact:
    """One CoreML ML program; its parity runtime off macOS is the NumPy reference evaluator."""
    dest, precision = target.dest, target.precision
    from sinet_deploy.runtimes.mil_eval import LABEL, load_program
    from sinet_deploy.runtimes.mil_eval.inspect import summary

    opts = dict(ctx.cache.get("coreml:options", {}))
    config = CoreMLConfig(
        out=dest,
        precision=precision,
        input_size=ctx.input_size,
        io=ctx.io,
        deployment_target=opts.get("deployment_target", DEFAULT_TARGET),
        frontend=opts.get("frontend", "trace"),
        user_metadata=ctx.metadata(),
    )
    notes = ConversionNotes()
    convert_coreml(ctx.module("nhwc"), config, notes)
    h, w = ctx.input_size
    if ctx.io == "image":
        inputs = [TensorSpec("image", (1, h, w, 3), "uint8", "nhwc")]
        outputs = [TensorSpec("foreground", (1, h, w, 1), "float32", "nhwc")]
        input_type = (
            "ImageType RGB, scale 1, bias 0 (Core ML hands the program float pixels "
            "0..255, NCHW); the per-channel normalisation is inside the program"
        )
    else:
        inputs = [TensorSpec("input", (1, 3, h, w), "float32", "nchw")]
        outputs = [TensorSpec("logits", (1, 2, h, w), "float32", "nchw")]
        input_type = "MultiArray float32 [1, 3, H, W], normalised BGR"
    graph = summary(load_program(dest))
    graph["zero_scale_channels"] = notes.zero_scale_channels
    return Artifact(
        inputs,
        outputs,
        options={
            "converter": f"coremltools ct.convert via {_FRONTENDS[config.frontend]}",
            "program": "mlprogram",
            "deployment_target": config.deployment_target,
            "weights": _WEIGHTS[precision],
            "coreml_input": input_type,
            "output_layout": "NHWC [1, H, W, 1]" if ctx.io == "image" else "NCHW logits",
            "parity_runtime_off_macos": (
                f"{LABEL}: NumPy reference evaluation of the saved ML program, not Apple's runtime"
            ),
            "tool_warnings": notes.warnings,
        },
        tools=versions("coremltools", "torch"),
        graph=graph,
        runtime_provider="cpu",
    )


# Registered only where coremltools is installed (located, not imported), so a machine without
# the coreml extra neither lists CoreML as available nor fails the end-to-end run on it.
if importlib.util.find_spec("coremltools") is not None:
    for _precision in PRECISIONS:
        register_converter(
            "coreml", _precision, convert, description=f"CoreML ML program, {_WEIGHTS[_precision]}"
        )
