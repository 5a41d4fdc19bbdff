"""The ONNX edge: deploy form → simplified ONNX, fp32 or fp16 weights (fp32 compute)."""

from __future__ import annotations

import shutil
from pathlib import Path

from sinet_deploy.convert.registry import Artifact, ExportContext, Target, register_converter
from sinet_deploy.core.environment import versions
from sinet_deploy.runtimes.base import TensorSpec


def _specs(ctx: ExportContext) -> tuple[list[TensorSpec], list[TensorSpec]]:
    if ctx.io == "image":
        return ctx.image_specs()
    h, w = ctx.input_size
    return (
        [TensorSpec("input", (1, 3, h, w), "float32", "nchw")],
        [TensorSpec("logits", (1, 2, h, w), "float32", "nchw")],
    )


def _onnx_for_ort(ctx: ExportContext) -> Path:
    """The simplified ONNX with onnxruntime-friendly exact rewrites (cached)."""
    if "onnx:ort" not in ctx.cache:
        from sinet_deploy.convert.onnx_rewrite import prelu_to_max

        path = ctx.work_dir / "sinet_ort.onnx"
        ctx.cache["onnx:ort:prelu"] = prelu_to_max(ctx.onnx_model("nhwc"), path)
        ctx.cache["onnx:ort"] = path
    return Path(ctx.cache["onnx:ort"])


def convert(ctx: ExportContext, target: Target) -> Artifact:
    """ONNX fp32 (as exported and simplified) or fp16 (float16 initializers + Cast)."""
    from sinet_deploy.convert.torch_to_onnx import graph_op_counts, to_fp16_weights

    src = _onnx_for_ort(ctx)
    options = {
        "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
        "simplified": "onnxsim",
        "weights": "float32",
        "rewrites": (
            f"{ctx.cache['onnx:ort:prelu']} PRelu as Max(x, a*x), Min(x, a*x) or "
            "Relu(x) - a*Relu(-x) by their slopes (exact)"
        ),
    }
    if target.precision == "fp16":
        to_fp16_weights(src, target.dest)
        options["weights"] = "float16 initializers + Cast to float32 (compute in float32)"
    else:
        shutil.copyfile(src, target.dest)
    inputs, outputs = _specs(ctx)
    counts = graph_op_counts(target.dest)
    return Artifact(
        inputs,
        outputs,
        options=options,
        tools=versions("torch", "onnx", "onnxsim", "onnxruntime"),
        graph={"op_counts": counts, "transpose_ops": counts.get("Transpose", 0)},
    )


register_converter("onnx", "fp32", convert, description="ONNX fp32 (torch.onnx + onnxsim)")
register_converter("onnx", "fp16", convert, description="ONNX with fp16 weights, fp32 compute")
