"""The TFLite edge: ONNX → TFLite with onnx2tf (fp32, fp16 weights, weight-only int8)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sinet_deploy.convert.registry import Artifact, ExportContext, Target, register_converter
from sinet_deploy.core.environment import versions
from sinet_deploy.core.errors import UserInputError
from sinet_deploy.runtimes.base import TensorSpec

_WEIGHTS = {
    "fp32": "float32",
    "fp16": "float16 (dequantized at load)",
    "int8w": "int8 per-channel, float activations (dynamic range)",
}


def _onnx2tf_outputs(ctx: ExportContext, precision: str) -> dict[str, Path]:
    """Every requested TFLite precision from one onnx2tf run (cached in the context)."""
    from sinet_deploy.convert.onnx_to_tflite import TFLiteConvertConfig, convert_onnx_to_tflite

    key = "tflite:onnx2tf"
    if key not in ctx.cache:
        # One onnx2tf run makes fp32, fp16 and weight-only int8 together: convert once for all
        # requested precisions. The NCHW-input ONNX is the one onnx2tf turns into a pure NHWC
        # graph; an NHWC-input ONNX leaves a TRANSPOSE and a wrongly permuted input.
        wanted = tuple(p for p in _WEIGHTS if p in ctx.cache.get("tflite:precisions", (precision,)))
        names = (("image",), ("foreground",)) if ctx.io == "image" else (("input",), ("logits",))
        cfg = TFLiteConvertConfig(
            precisions=wanted, input_names=names[0], output_names=names[1], metadata=ctx.metadata()
        )
        out = ctx.work_dir / "tflite"
        out.mkdir(exist_ok=True)
        ctx.cache[key] = convert_onnx_to_tflite(ctx.onnx_model("nchw"), out, cfg)
    produced: dict[str, Path] = ctx.cache[key]
    return produced


def _specs(ctx: ExportContext) -> tuple[list[TensorSpec], list[TensorSpec]]:
    if ctx.io == "image":
        return ctx.image_specs()
    h, w = ctx.input_size  # onnx2tf turns the checkpoint's NCHW contract into NHWC
    return (
        [TensorSpec("input", (1, h, w, 3), "float32", "nhwc")],
        [TensorSpec("logits", (1, h, w, 2), "float32", "nhwc")],
    )


def convert(ctx: ExportContext, target: Target) -> Artifact:
    """One TFLite precision, copied from the shared onnx2tf run."""
    from sinet_deploy.runtimes.litert_rt import analyze

    produced = _onnx2tf_outputs(ctx, target.precision)
    if target.precision not in produced:
        raise UserInputError(f"internal: onnx2tf run did not include {target.precision}")
    shutil.copyfile(produced[target.precision], target.dest)
    inputs, outputs = _specs(ctx)
    return Artifact(
        inputs,
        outputs,
        options={
            "converter": "onnx2tf -dsm (strict mode off)",
            "onnx_intermediate": "NCHW-input ONNX from the deploy form",
            "weights": _WEIGHTS[target.precision],
        },
        tools=versions("onnx2tf", "tensorflow", "onnx", "onnxsim", "ai-edge-litert"),
        graph=analyze(target.dest),
    )


for _p, _d in (
    ("fp32", "TFLite fp32"),
    ("fp16", "TFLite fp16 weights"),
    ("int8w", "TFLite weight-only int8 (dynamic range)"),
):
    register_converter("tflite", _p, convert, description=f"{_d} via onnx2tf")
