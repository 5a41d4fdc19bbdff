"""Registers full-integer int8 export: ``("tflite", "int8")`` and ``("onnx", "int8")``.

Imported lazily by :mod:`sinet_deploy.export.publish` (``PLUGIN_MODULES``); importing it
costs nothing heavy. Both converters share one calibration set per export (cached in the
context), built from ``--calib DIR`` or, without it, from the packaged public-domain portraits
(with a warning, recorded in the manifest, that recommends ``--calib``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from sinet_deploy.core.environment import versions
from sinet_deploy.core.errors import UserInputError
from sinet_deploy.export.publish import Converted, ExportContext, register_converter
from sinet_deploy.runtimes.base import TensorSpec


def calibration_for(ctx: ExportContext) -> Any:
    """The export's :class:`~.calibration.CalibrationSet`, built once and cached."""
    from sinet_deploy.export.calibration import load_calibration

    key = "int8:calibration"
    if key not in ctx.cache:
        ctx.cache[key] = load_calibration(ctx.calib, ctx.input_size)
    return ctx.cache[key]


def _check_io(ctx: ExportContext) -> None:
    if ctx.io != "image":
        raise UserInputError(
            "full-integer int8 export needs --io image",
            hint="the raw contract's float logits have no int8 form here; "
            "use --io image, or int8w for weight-only int8",
        )


def _calibration_options(calib: Any) -> dict[str, Any]:
    return {**calib.describe(), "warnings": list(calib.warnings)}


def tflite_int8(ctx: ExportContext, precision: str, dest: Path) -> Converted:
    """Full-integer TFLite (see :mod:`.quantize_tflite`)."""
    from sinet_deploy.export.quantize_tflite import TFLiteInt8Config, convert_int8_tflite
    from sinet_deploy.runtimes.litert_rt import analyze

    _check_io(ctx)
    calib = calibration_for(ctx)
    cfg = TFLiteInt8Config()
    res = convert_int8_tflite(
        ctx.weights,
        ctx.input_size,
        calib,
        dest,
        ctx.work_dir,
        cfg,
        metadata=ctx.metadata(),
        **ctx.config,
    )
    graph = analyze(dest)
    h, w = ctx.input_size
    from sinet_deploy.runtimes.litert_rt import LiteRTSession

    session = LiteRTSession(dest, None)
    inp, out = session.contract.inputs[0], session.contract.outputs[0]
    del session
    return Converted(
        [TensorSpec("image", (1, h, w, 3), inp.dtype, "nhwc", inp.quantization)],
        [TensorSpec("foreground", (1, h, w, 1), out.dtype, "nhwc", out.quantization)],
        options={
            "converter": "int8 form → onnx2tf SavedModel → TFLite MLIR quantizer",
            "weights": "int8 per-channel" if cfg.per_channel else "int8 per-tensor",
            "activations": "int8 per-tensor, exact calibration min/max",
            "int8": {
                **cfg.describe(),
                "equalization": res.equalization,
                "quantizer": res.quantizer,
            },
            "calibration": _calibration_options(calib),
        },
        tools=versions("onnx2tf", "tensorflow", "onnx", "onnxsim", "ai-edge-litert", "torch"),
        graph=graph,
    )


def onnx_int8(ctx: ExportContext, precision: str, dest: Path) -> Converted:
    """QDQ int8 ONNX (see :mod:`.quantize_onnx`)."""
    from sinet_deploy.export.quantize_onnx import OnnxInt8Config, convert_int8_onnx

    _check_io(ctx)
    calib = calibration_for(ctx)
    cfg = OnnxInt8Config(opset=ctx.opset)
    info = convert_int8_onnx(
        ctx.weights,
        ctx.input_size,
        calib,
        dest,
        ctx.work_dir,
        cfg,
        metadata=ctx.metadata(),
        **ctx.config,
    )
    h, w = ctx.input_size
    return Converted(
        [TensorSpec("image", (1, h, w, 3), "uint8", "nhwc")],
        [TensorSpec("foreground", (1, h, w, 1), "float32", "nhwc")],
        options={
            "converter": "int8 form → torch.onnx → onnxruntime quantize_static (QDQ)",
            "weights": "int8 per-channel",
            "activations": "int8 per-tensor (QDQ)",
            "int8": {
                "form": asdict(cfg.form),
                "equalization": info["equalization"],
                "quantizer": info["quantizer"],
            },
            "calibration": _calibration_options(calib),
        },
        tools=versions("torch", "onnx", "onnxsim", "onnxruntime"),
        graph={"op_counts": info["op_counts"]},
    )


register_converter(
    "tflite", "int8", tflite_int8, description="TFLite full-integer int8 (one XNNPACK partition)"
)
register_converter("onnx", "int8", onnx_int8, description="ONNX static int8 (QDQ)")
