"""The full-integer TFLite edge: int8 form → onnx2tf SavedModel → TFLite MLIR quantizer."""

from __future__ import annotations

from sinet_deploy.convert.int8_edge import calibration_for, calibration_options, check_io
from sinet_deploy.convert.registry import Artifact, ExportContext, Target, register_converter
from sinet_deploy.core.environment import versions
from sinet_deploy.runtimes.base import TensorSpec


def convert(ctx: ExportContext, target: Target) -> Artifact:
    """Full-integer TFLite (see :mod:`.quantize_tflite`)."""
    from sinet_deploy.convert.quantize_tflite import TFLiteInt8Config, convert_int8_tflite
    from sinet_deploy.runtimes.litert_rt import LiteRTSession, analyze

    check_io(ctx)
    calib = calibration_for(ctx)
    cfg = TFLiteInt8Config()
    res = convert_int8_tflite(
        ctx.weights,
        ctx.input_size,
        calib,
        target.dest,
        ctx.work_dir,
        cfg,
        metadata=ctx.metadata(),
        **ctx.config,
    )
    graph = analyze(target.dest)
    h, w = ctx.input_size
    session = LiteRTSession(target.dest, None)  # the quantization the quantizer chose
    inp, out = session.contract.inputs[0], session.contract.outputs[0]
    del session
    return Artifact(
        [TensorSpec("image", (1, h, w, 3), inp.dtype, "nhwc", inp.quantization)],
        [TensorSpec("foreground", (1, h, w, 1), out.dtype, "nhwc", out.quantization)],
        options={
            "converter": "int8 form → onnx2tf SavedModel → TFLite MLIR quantizer",
            "weights": "int8 per-channel" if cfg.per_channel else "int8 per-tensor",
            "activations": "int8 per-tensor, exact calibration min/max"
            + (
                f"; float32 head ({len(res.quantizer['float_nodes'])} ops before the output)"
                if res.quantizer.get("float_nodes")
                else ""
            ),
            "int8": {
                **cfg.describe(),
                "equalization": res.equalization,
                "quantizer": res.quantizer,
            },
            "calibration": calibration_options(calib),
        },
        tools=versions("onnx2tf", "tensorflow", "onnx", "onnxsim", "ai-edge-litert", "torch"),
        graph=graph,
    )


register_converter(
    "tflite", "int8", convert, description="TFLite full-integer int8 (one XNNPACK partition)"
)
