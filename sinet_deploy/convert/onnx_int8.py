"""The full-integer ONNX edge: int8 form → torch.onnx → onnxruntime static QDQ quantization."""

from __future__ import annotations

from dataclasses import asdict

from sinet_deploy.convert.int8_edge import calibration_for, calibration_options, check_io
from sinet_deploy.convert.registry import Artifact, ExportContext, Target, register_converter
from sinet_deploy.core.environment import versions


def convert(ctx: ExportContext, target: Target) -> Artifact:
    """QDQ int8 ONNX (see :mod:`.quantize_onnx`)."""
    from sinet_deploy.convert.quantize_onnx import OnnxInt8Config, convert_int8_onnx

    check_io(ctx)
    calib = calibration_for(ctx)
    cfg = OnnxInt8Config(opset=ctx.opset)
    info = convert_int8_onnx(
        ctx.weights,
        ctx.input_size,
        calib,
        target.dest,
        ctx.work_dir,
        cfg,
        metadata=ctx.metadata(),
        **ctx.config,
    )
    inputs, outputs = ctx.image_specs()
    return Artifact(
        inputs,
        outputs,
        options={
            "converter": "int8 form → torch.onnx → onnxruntime quantize_static (QDQ)",
            "weights": "int8 per-channel",
            "activations": "int8 per-tensor (QDQ)",
            "int8": {
                "form": asdict(cfg.form),
                "equalization": info["equalization"],
                "quantizer": info["quantizer"],
            },
            "calibration": calibration_options(calib),
        },
        tools=versions("torch", "onnx", "onnxsim", "onnxruntime"),
        graph={"op_counts": info["op_counts"]},
    )


register_converter("onnx", "int8", convert, description="ONNX static int8 (QDQ)")
