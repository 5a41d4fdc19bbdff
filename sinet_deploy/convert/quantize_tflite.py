"""Full-integer TFLite (int8 weights and activations) that XNNPACK runs as one partition.

Pipeline, each step exact in fp32 except the last:

1. the deploy form with ``io="image"`` (normalisation inside the graph);
2. activation-range equalization on the calibration set (:mod:`.int8_equalize`);
3. the int8 rewrites (:mod:`.int8_form`): no PRELU / AVERAGE_POOL_2D / SOFTMAX left;
4. ONNX with a float32 NCHW 0..255 input (so the converter sees real pixel values), then
   onnx2tf → a SavedModel (NHWC, no transposes);
5. in a child process (TensorFlow's noise and memory stay out of the caller): TensorFlow's
   calibrator records activation ranges, **the ranges are then recomputed exactly** and the
   model is quantized with the MLIR quantizer (per-channel int8 weights, int8 activations).

Why step 5 recomputes the ranges: TensorFlow 2.21's calibrator logs some tensors after the next
elementwise op has overwritten their buffer in place, so e.g. the BR2 concat was recorded with
its consumer's range (18.3 instead of 4.0); since a CONCATENATION shares one scale with all its
inputs, that inflated the level-2 stem's step 6x. Running the calibrated float model with every
tensor preserved gives the true min/max (measured: mean IoU 0.966 → 0.982 on a calib split).
The input of each LOGISTIC is additionally clipped to ±``logit_clip``: beyond it the sigmoid is
flat to 3e-4, and the final logit otherwise spans -50…31, which would put a 0.3-logit step on
the mask boundary.

The image input is ``uint8`` (or ``int8`` with zero point -128) with scale 1, so pixels map
exactly; the output is the float32 probability (a DEQUANTIZE of the int8 LOGISTIC, 1/256 steps).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sinet_deploy.convert.calibration import CalibrationSet
from sinet_deploy.convert.int8_equalize import EqualizeConfig
from sinet_deploy.convert.int8_form import Int8FormConfig
from sinet_deploy.core.errors import ConversionError, MissingDependencyError, UserInputError

DEFAULT_TIMEOUT_S = 1200.0


@dataclass(frozen=True)
class TFLiteInt8Config:
    """Options of :func:`convert_int8_tflite`.

    Attributes:
        input_dtype: ``uint8`` (pixels as they are) or ``int8`` (pixel − 128); both scale 1.
        form: the exact int8 rewrites.
        equalize: activation-range equalization (``None``: off).
        logit_clip: range limit of every LOGISTIC input (0: off).
        per_channel: per-channel weight scales (per-tensor otherwise).
        float_tail: keep the full-resolution head (the last bilinear upsample, the last
            convolution and the sigmoid) in float: the int8 body's output is dequantized once
            before it (:func:`tail_nodes`).
        timeout_s: limit for each child process (onnx2tf, quantizer).
    """

    input_dtype: Literal["uint8", "int8"] = "uint8"
    # input_conv=False: the image-wide MUL+ADD normalisation runs 2.5% faster overall in int8
    # than the 1×1 depthwise conv (3 channels fill a 16-channel kernel tile poorly); accuracy
    # on the calib split was the same (mean IoU 0.9873 vs 0.9867).
    form: Int8FormConfig = field(
        default_factory=lambda: Int8FormConfig(prelu="combo", input_conv=False)
    )
    equalize: EqualizeConfig | None = field(default_factory=lambda: EqualizeConfig(max_factor=8))
    logit_clip: float = 8.0
    per_channel: bool = True
    # float_tail=True: the int8 head cost 2.3 ms of 9.4 (profile: its 3×3 conv 2→1 at 224² pads
    # both channel counts up to a kernel tile); float, int8 ran 1.52× fp32's time instead of
    # 1.94× (one paired run) and the calib split scored higher (mean IoU 0.9845 vs 0.9837).
    float_tail: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if self.input_dtype not in ("uint8", "int8"):
            raise UserInputError(
                f"unsupported int8 input dtype {self.input_dtype!r}", hint="use uint8 or int8"
            )
        if self.logit_clip < 0:
            raise UserInputError("logit_clip must be ≥ 0")

    def describe(self) -> dict[str, Any]:
        """The options as plain JSON for the manifest."""
        return json.loads(json.dumps(asdict(self)))


@dataclass
class TFLiteInt8Result:
    """What :func:`convert_int8_tflite` produced and measured."""

    path: Path
    equalization: dict[str, Any] | None
    quantizer: dict[str, Any]
    onnx_ops: dict[str, int]


def int8_module(
    weights: str | Path,
    input_size: tuple[int, int],
    calib: CalibrationSet,
    form: Int8FormConfig,
    equalize_cfg: EqualizeConfig | None,
    layout: Literal["nhwc", "nchw"] = "nchw",
    **model_config: Any,
) -> tuple[Any, dict[str, Any] | None]:
    """The equalized, rewritten fp32 module that gets quantized (``io="image"``)."""
    import torch

    from sinet_deploy.convert.int8_equalize import equalize
    from sinet_deploy.convert.int8_form import int8_form
    from sinet_deploy.models import export_module

    module = export_module(
        weights, input_size=input_size, io="image", layout=layout, **model_config
    )
    stats = None
    if equalize_cfg is not None:
        batches = [
            torch.from_numpy(
                np.ascontiguousarray(b.transpose(0, 3, 1, 2) if layout == "nchw" else b)
            )
            for b in calib.batches()
        ]
        stats = equalize(module, batches, equalize_cfg)
    return int8_form(module, form), stats


def convert_int8_tflite(
    weights: str | Path,
    input_size: tuple[int, int],
    calib: CalibrationSet,
    dest: Path,
    work_dir: Path,
    config: TFLiteInt8Config | None = None,
    metadata: dict[str, Any] | None = None,
    **model_config: Any,
) -> TFLiteInt8Result:
    """Build the full-integer TFLite model at ``dest``.

    Args:
        weights: ``"official"``, ``"random"`` or a checkpoint path.
        input_size: ``(H, W)``.
        calib: the calibration set (same input size).
        dest: output ``.tflite`` path (callers pass a temporary name and rename).
        work_dir: scratch folder (ONNX, SavedModel, logs).
        config: see :class:`TFLiteInt8Config`.
        metadata: JSON embedded in the model's ``sinet_deploy`` metadata entry.
        **model_config: SINet config options.

    Raises:
        MissingDependencyError: onnx2tf / TensorFlow / LiteRT missing.
        ConversionError: a converter step failed (its log is kept and named).
    """
    from sinet_deploy.convert.onnx_to_tflite import onnx2tf_version, rewrite_io
    from sinet_deploy.convert.torch_to_onnx import (
        OnnxExportConfig,
        export_onnx,
        graph_op_counts,
    )

    cfg = config or TFLiteInt8Config()
    if onnx2tf_version() is None:
        raise MissingDependencyError(
            "onnx2tf is not installed", hint="pip install 'sinet-deploy[tflite]'"
        )
    h, w = input_size
    if tuple(calib.images.shape[1:3]) != (h, w):
        raise UserInputError(f"calibration set is {calib.images.shape[1:3]}, model is {h}x{w}")
    work = Path(work_dir).resolve() / "tflite_int8"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    module, eq_stats = int8_module(
        weights, input_size, calib, cfg.form, cfg.equalize, **model_config
    )
    onnx_path = work / "int8_form.onnx"
    # float32 input holding 0..255 pixel values: the calibrator sees the real input range, and
    # the quantizer then makes it a scale-1 uint8/int8 input.
    export_onnx(module, onnx_path, OnnxExportConfig((1, 3, h, w), input_dtype="float32"))
    saved_model = _onnx2tf_saved_model(onnx_path, work, cfg.timeout_s)
    calib_npy = work / "calib_uint8.npy"
    np.save(calib_npy, calib.images)
    raw = work / "quantized.tflite"
    spec = {
        "saved_model": str(saved_model),
        "calib": str(calib_npy),
        "out": str(raw),
        "input_dtype": cfg.input_dtype,
        "logit_clip": cfg.logit_clip,
        "per_channel": cfg.per_channel,
        "float_tail": cfg.float_tail,
    }
    report = _run_quantizer(spec, work, cfg.timeout_s)
    data = rewrite_io(
        raw.read_bytes(), ("image",), ("foreground",), {**(metadata or {}), "precision": "int8"}
    )
    Path(dest).write_bytes(data)
    return TFLiteInt8Result(Path(dest), eq_stats, report, graph_op_counts(onnx_path))


def _onnx2tf_saved_model(onnx_path: Path, work: Path, timeout_s: float) -> Path:
    """onnx2tf in a child process, offline (H3's runner), keeping its SavedModel."""
    from sinet_deploy.convert.onnx_to_tflite import run_logged, write_sample_data

    write_sample_data(work)
    out = work / "tf"
    run_logged(
        [sys.executable, "-m", "onnx2tf", "-i", str(onnx_path), "-o", str(out), "-dsm", "-osd"],
        work,
        timeout_s,
    )
    if not (out / "saved_model.pb").is_file():
        raise ConversionError("onnx2tf finished but wrote no SavedModel", hint=f"look in {out}")
    return out


def _run_quantizer(spec: dict[str, Any], work: Path, timeout_s: float) -> dict[str, Any]:
    from sinet_deploy.convert.onnx_to_tflite import keep_log, last_error, subprocess_env

    spec_path = work / "quantize_spec.json"
    spec_path.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "sinet_deploy.convert.quantize_tflite", str(spec_path)]
    try:
        proc = subprocess.run(
            cmd,
            cwd=work,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ConversionError(
            f"the TFLite int8 quantizer did not finish in {timeout_s:.0f} s",
            hint="raise the timeout or use fewer calibration images",
        ) from None
    log = proc.stdout.decode(errors="replace")
    if proc.returncode != 0 or not Path(spec["out"]).is_file():
        raise ConversionError(
            f"TFLite int8 quantization failed: {last_error(log)}",
            hint=f"full log: {keep_log(log)}",
        )
    for line in reversed(log.splitlines()):
        if line.startswith("SINET_QUANT_REPORT "):
            return json.loads(line.split(" ", 1)[1])  # type: ignore[no-any-return]
    return {}


# --- the child process ----------------------------------------------------------------------


def _calibrated(saved_model: str, images: np.ndarray) -> bytes:
    import tensorflow as tf

    conv = tf.lite.TFLiteConverter.from_saved_model(saved_model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]

    def samples():  # type: ignore[no-untyped-def]
        for i in range(len(images)):
            yield [images[i : i + 1].astype(np.float32)]

    conv.representative_dataset = samples
    conv._experimental_calibrate_only = True
    return conv.convert()  # type: ignore[no-any-return]


def exact_ranges(model: bytes, images: np.ndarray) -> dict[str, tuple[float, float]]:
    """True min/max of every float activation over ``images`` (reference kernels, no reuse)."""
    from sinet_deploy.runtimes.litert_rt import reference_interpreter

    it = reference_interpreter(model, num_threads=1, preserve_all_tensors=True)
    inp = it.get_input_details()[0]
    outputs = sorted({int(t) for op in it._get_ops_details() for t in op["outputs"]})
    names = {d["index"]: d["name"] for d in it.get_tensor_details()}
    ranges: dict[str, tuple[float, float]] = {}
    for i in range(len(images)):
        it.set_tensor(inp["index"], images[i : i + 1].astype(np.float32))
        it.invoke()
        for t in outputs:
            v = it.get_tensor(t)
            if v.dtype != np.float32 or v.size == 0:
                continue
            lo, hi = float(v.min()), float(v.max())
            old = ranges.get(names[t])
            ranges[names[t]] = (lo, hi) if old is None else (min(old[0], lo), max(old[1], hi))
    if inp["name"] in names.values():
        ranges[inp["name"]] = (0.0, 255.0)  # the pixel range, whatever the samples hold
    return ranges


def _logistic_inputs(model: bytes) -> list[str]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_content=model,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    details = it.get_tensor_details()
    return [
        details[op["inputs"][0]]["name"]
        for op in it._get_ops_details()
        if op["op_name"] == "LOGISTIC"
    ]


#: The ops of the full-resolution head, walked back from the graph output.
_TAIL_OPS = ("LOGISTIC", "CONV_2D", "RESIZE_BILINEAR")


def tail_nodes(model: bytes) -> list[str]:
    """Output tensor names of the head ops (sigmoid ← last conv ← last bilinear upsample) of a
    float or calibrated model, output first; the quantizer's ``denylisted_nodes`` keeps them
    float. Fewer names when the graph ends otherwise (e.g. a logits model has no sigmoid)."""
    from sinet_deploy.runtimes.litert_rt import reference_interpreter

    it = reference_interpreter(model, num_threads=1)
    ops = it._get_ops_details()
    names = {d["index"]: d["name"] for d in it.get_tensor_details()}
    producer = {int(t): op for op in ops for t in op["outputs"]}
    tensor = int(it.get_output_details()[0]["index"])
    found: list[str] = []
    for wanted in _TAIL_OPS:
        op = producer.get(tensor)
        if op is None or op["op_name"] != wanted:
            continue  # that op is absent: try the next one on the same tensor
        found.append(names[tensor])
        tensor = int(op["inputs"][0])
    return found


def set_ranges(model: bytes, ranges: dict[str, tuple[float, float]]) -> tuple[bytes, int, int]:
    """Write ``ranges`` into the calibrated model; returns (model, tensors set, changed)."""
    from ai_edge_litert.tools import flatbuffer_utils

    obj = flatbuffer_utils.read_model_from_bytearray(bytearray(model))
    written = changed = 0
    for graph in obj.subgraphs:
        for t in graph.tensors:
            name = t.name.decode() if isinstance(t.name, bytes) else t.name
            q = t.quantization
            if name not in ranges or q is None or q.min is None or len(q.min) != 1:
                continue
            lo, hi = ranges[name]
            if abs(q.min[0] - lo) > 1e-6 * max(1.0, abs(lo)) or abs(q.max[0] - hi) > 1e-6 * max(
                1.0, abs(hi)
            ):
                changed += 1
            q.min, q.max = [lo], [hi]
            written += 1
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj)), written, changed


def _worker(spec_path: str) -> None:
    import tensorflow as tf
    from tensorflow.lite.python.convert import mlir_quantize

    spec = json.loads(Path(spec_path).read_text())
    images = np.load(spec["calib"])
    calibrated = _calibrated(spec["saved_model"], images)
    ranges = exact_ranges(calibrated, images)
    clipped = []
    if spec["logit_clip"] > 0:
        limit = float(spec["logit_clip"])
        for name in _logistic_inputs(calibrated):
            lo, hi = ranges[name]
            ranges[name] = (max(lo, -limit), min(hi, limit))
            clipped.append(name)
    fixed, written, changed = set_ranges(calibrated, ranges)
    float_nodes = tail_nodes(calibrated) if spec.get("float_tail") else []
    quantized = mlir_quantize(
        fixed,
        disable_per_channel=not spec["per_channel"],
        input_data_type=getattr(tf, spec["input_dtype"]),
        output_data_type=tf.float32,
        denylisted_nodes=float_nodes or None,
    )
    Path(spec["out"]).write_bytes(quantized)
    report = {
        "calibration_samples": len(images),
        "ranges_written": written,
        "ranges_corrected": changed,
        "logistic_inputs_clipped": len(clipped),
        "float_nodes": float_nodes,
        "quantizer": "TFLite MLIR quantizer (calibrate-only + exact min/max ranges)",
    }
    print("SINET_QUANT_REPORT " + json.dumps(report), flush=True)


if __name__ == "__main__":  # the child process of _run_quantizer
    _worker(sys.argv[1])
