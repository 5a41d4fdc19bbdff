"""The roofline's ceiling: one dense convolution, timed through the same runtime as a row.

A row's effective GMAC/s means little alone: the bench divides it by what the *same runtime*
sustains on *this core* for the kind of work SINet is made of. That ceiling is measured here,
in the same interleaved run as the rows, as a 1×1 convolution ``PEAK_CONV`` (a GEMM of
784 × 256 × 256: 51.4 M multiply-accumulates, weights 256 KiB, so it runs from L2 and its
kernel is the runtime's best case). Each runtime gets the model in its own format, written to
a temporary file and opened with :func:`sinet_deploy.runtimes.load_session` exactly like an
artifact (same session options, the same flush-to-zero settings, the same XNNPACK delegate):

* LiteRT: a one-op ``CONV_2D`` flatbuffer, fp32, or int8 with per-channel weights;
* onnxruntime: a ``Conv``, fp32, or QDQ int8 (which onnxruntime fuses into ``QLinearConv``);
* ExecuTorch: the same ``nn.Conv2d`` lowered to XNNPACK (fp32);
* PyTorch eager: the ``nn.Conv2d`` itself.

Written by hand rather than through onnx2tf: one op needs no TensorFlow (seconds of import per
worker), and LiteRT's own schema module builds the flatbuffer.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.core.errors import UserInputError


@dataclass(frozen=True)
class ConvShape:
    """A stride-1 ``k``×``k`` convolution of a ``h``×``w``×``cin`` map to ``cout`` channels."""

    h: int
    w: int
    cin: int
    cout: int
    k: int = 1

    @property
    def macs(self) -> int:
        return self.h * self.w * self.cin * self.cout * self.k * self.k

    def describe(self) -> str:
        return f"{self.k}×{self.k} conv {self.cin}→{self.cout} at {self.h}×{self.w}"


PEAK_CONV = ConvShape(h=28, w=28, cin=256, cout=256, k=1)

#: Runtimes and precisions with a ceiling model. Rows of other runtimes (Core ML, CUDA) get no
#: share; int8 rows of a runtime without an int8 ceiling get none either (never an fp32 one).
PEAK_KINDS: tuple[tuple[str, str], ...] = (
    ("litert", "fp32"),
    ("litert", "int8"),
    ("onnxruntime", "fp32"),
    ("onnxruntime", "int8"),
    ("executorch", "fp32"),
    ("torch", "fp32"),
)

RunFn = Callable[[], Any]

#: What the roofline columns mean (also written into results.json).
ROOFLINE_COLUMNS = {
    "gmac_per_s": "the model's multiply-accumulates per frame / this row's median time",
    "ceiling_share": "gmac_per_s / the GMAC/s of a dense "
    f"{PEAK_CONV.describe()} in the same runtime, precision class and thread count, "
    "measured in the same interleaved run (1.0 = as efficient as that convolution)",
}


def _weights(shape: ConvShape) -> tuple[np.ndarray, np.ndarray]:
    """Fixed pseudo-random OIHW weights and bias (normal values: no subnormal slowdowns)."""
    rng = np.random.default_rng(7)
    w = rng.normal(
        0, 1 / np.sqrt(shape.cin * shape.k**2), (shape.cout, shape.cin, shape.k, shape.k)
    )
    return w.astype(np.float32), rng.normal(0, 0.1, shape.cout).astype(np.float32)


def tflite_conv(shape: ConvShape, precision: str = "fp32") -> bytes:
    """A one-op LiteRT model: NHWC input → ``CONV_2D`` (SAME padding) → output.

    ``int8``: int8 input and output, per-channel symmetric int8 weights and int32 bias, as a
    full-integer quantized model carries them.
    """
    from ai_edge_litert import schema_py_generated as s
    from ai_edge_litert.tools import flatbuffer_utils

    w, b = _weights(shape)
    w_ohwi = np.ascontiguousarray(w.transpose(0, 2, 3, 1))
    int8 = precision == "int8"
    ttype = s.TensorType.INT8 if int8 else s.TensorType.FLOAT32
    buffers = [s.BufferT()]  # buffer 0 is the empty sentinel

    def buffer(data: np.ndarray) -> int:
        buf = s.BufferT()
        buf.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
        buffers.append(buf)
        return len(buffers) - 1

    def quant(scale: np.ndarray | float, axis: int = 0) -> Any:
        q = s.QuantizationParametersT()
        q.scale = [float(v) for v in np.atleast_1d(scale)]
        q.zeroPoint = [0] * len(q.scale)
        q.quantizedDimension = axis
        return q

    def tensor(name: str, dims: list[int], kind: int, buf: int = 0, q: Any = None) -> Any:
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer, t.quantization = name.encode(), dims, kind, buf, q
        return t

    x_scale, y_scale = 0.02, 0.05
    if int8:
        w_scale = np.abs(w_ohwi).reshape(shape.cout, -1).max(axis=1) / 127.0
        w_q = np.round(w_ohwi / w_scale[:, None, None, None]).astype(np.int8)
        b_q = np.round(b / (x_scale * w_scale)).astype(np.int32)
        weight = tensor("w", list(w_q.shape), s.TensorType.INT8, buffer(w_q), quant(w_scale))
        bias = tensor("b", [shape.cout], s.TensorType.INT32, buffer(b_q), quant(x_scale * w_scale))
    else:
        weight = tensor("w", list(w_ohwi.shape), s.TensorType.FLOAT32, buffer(w_ohwi))
        bias = tensor("b", [shape.cout], s.TensorType.FLOAT32, buffer(b))
    graph = s.SubGraphT()
    graph.tensors = [
        tensor("x", [1, shape.h, shape.w, shape.cin], ttype, q=quant(x_scale) if int8 else None),
        weight,
        bias,
        tensor("y", [1, shape.h, shape.w, shape.cout], ttype, q=quant(y_scale) if int8 else None),
    ]
    opts = s.Conv2DOptionsT()
    opts.padding, opts.strideH, opts.strideW = s.Padding.SAME, 1, 1
    opts.dilationHFactor, opts.dilationWFactor = 1, 1
    op = s.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0, 1, 2], [3]
    op.builtinOptionsType, op.builtinOptions = s.BuiltinOptions.Conv2DOptions, opts
    graph.operators, graph.inputs, graph.outputs = [op], [0], [3]
    code = s.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = s.BuiltinOperator.CONV_2D
    code.version = 3 if int8 else 1  # per-channel int8 weights arrived in CONV_2D version 3
    model = s.ModelT()
    model.version, model.operatorCodes, model.subgraphs = 3, [code], [graph]
    model.buffers, model.description = buffers, b"sinet-deploy roofline ceiling"
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def onnx_conv(shape: ConvShape, precision: str = "fp32") -> bytes:
    """A one-``Conv`` ONNX model on NCHW float input; ``int8`` wraps it in QuantizeLinear /
    DequantizeLinear pairs (QDQ, int8 activations and per-channel weights, as our int8 ONNX)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w, b = _weights(shape)
    nodes = []
    inits = [numpy_helper.from_array(b, "b")]
    x_name, w_name = "x", "w"
    if precision == "int8":
        w_scale = (np.abs(w).reshape(shape.cout, -1).max(axis=1) / 127.0).astype(np.float32)
        w_q = np.round(w / w_scale[:, None, None, None]).astype(np.int8)
        inits += [
            numpy_helper.from_array(w_q, "w_q"),
            numpy_helper.from_array(w_scale, "w_scale"),
            numpy_helper.from_array(np.zeros(shape.cout, np.int8), "w_zero"),
            numpy_helper.from_array(np.array(0.02, np.float32), "x_scale"),
            numpy_helper.from_array(np.array(0.05, np.float32), "y_scale"),
            numpy_helper.from_array(np.array(0, np.int8), "zero"),
        ]
        nodes += [
            helper.make_node("QuantizeLinear", ["x", "x_scale", "zero"], ["x_q"]),
            helper.make_node("DequantizeLinear", ["x_q", "x_scale", "zero"], ["x_dq"]),
            helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w_dq"], axis=0),
        ]
        x_name, w_name = "x_dq", "w_dq"
    else:
        inits.append(numpy_helper.from_array(w, "w"))
    pad = shape.k // 2
    conv_out = "y" if precision != "int8" else "y_f"
    nodes.append(
        helper.make_node("Conv", [x_name, w_name, "b"], [conv_out], pads=[pad] * 4, strides=[1, 1])
    )
    if precision == "int8":
        nodes += [
            helper.make_node("QuantizeLinear", ["y_f", "y_scale", "zero"], ["y_q"]),
            helper.make_node("DequantizeLinear", ["y_q", "y_scale", "zero"], ["y"]),
        ]
    graph = helper.make_graph(
        nodes,
        "roofline_ceiling",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, shape.cin, shape.h, shape.w])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, shape.cout, shape.h, shape.w])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def torch_conv(shape: ConvShape) -> Any:
    """The ceiling convolution as an eval-mode ``nn.Conv2d`` with the fixed weights."""
    import torch
    from torch import nn

    w, b = _weights(shape)
    conv = nn.Conv2d(shape.cin, shape.cout, shape.k, padding=shape.k // 2)
    assert conv.bias is not None
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        conv.bias.copy_(torch.from_numpy(b))
    return conv.eval()


def load_peak(runtime: str, precision: str, threads: int) -> tuple[RunFn, dict[str, Any]]:
    """The ceiling model of ``(runtime, precision)`` loaded for ``threads``, as the bench
    worker's ``(run, info)``.

    Raises:
        UserInputError: no ceiling model for that pair (see :data:`PEAK_KINDS`).
        MissingDependencyError / ConversionError: the runtime is missing or cannot lower it.
    """
    if (runtime, precision) not in PEAK_KINDS:
        raise UserInputError(f"no roofline ceiling model for {runtime} {precision}")
    info: dict[str, Any] = {
        "name": f"ceiling: {runtime} {precision} {PEAK_CONV.describe()}",
        "runtime": runtime,
        "precision": precision,
        "macs": PEAK_CONV.macs,
        "note": "roofline ceiling: a dense 1×1 convolution in this runtime",
    }
    if runtime == "torch":
        return _torch_runner(threads), info
    from sinet_deploy.runtimes import load_session

    if runtime == "executorch":
        return _run(load_session(_cached_pte(), threads=threads)), info
    data = (
        tflite_conv(PEAK_CONV, precision)
        if runtime == "litert"
        else onnx_conv(PEAK_CONV, precision)
    )
    folder = Path(tempfile.mkdtemp(prefix="sinet_ceiling_"))
    path = folder / f"ceiling_{precision}.{'tflite' if runtime == 'litert' else 'onnx'}"
    try:
        path.write_bytes(data)
        session = load_session(path, threads=threads)
    finally:
        # Loaded (read, or mapped: an unlinked mapped file stays readable on POSIX).
        shutil.rmtree(folder, ignore_errors=True)
    return _run(session), info


def _run(session: Any) -> RunFn:
    inputs = session.native_inputs()
    return lambda: session.run_native(inputs)


def _cached_pte() -> Path:
    """The ExecuTorch ceiling program, lowered once per ExecuTorch version and kept in the
    cache folder: lowering imports ``executorch.exir`` (tens of seconds), loading does not."""
    from importlib import metadata

    import torch

    from sinet_deploy.models.weights import cache_dir

    # Keyed by everything that shapes the program: a changed ceiling never reuses a stale one.
    c = PEAK_CONV
    key = f"executorch-{metadata.version('executorch')}-torch-{torch.__version__}"
    name = f"ceiling_fp32_{c.h}x{c.w}x{c.cin}to{c.cout}k{c.k}.pte"
    path = cache_dir() / "ceiling" / key / name
    if not path.is_file():
        from sinet_deploy.convert.torch_to_executorch import lower_to_pte

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        example = torch.zeros(1, PEAK_CONV.cin, PEAK_CONV.h, PEAK_CONV.w)
        try:
            lower_to_pte(torch_conv(PEAK_CONV), example, tmp)
            os.replace(tmp, path)  # atomic: a concurrent bench sees all of it or none
        finally:
            tmp.unlink(missing_ok=True)
    return path


def _torch_runner(threads: int) -> RunFn:
    import torch

    conv = torch_conv(PEAK_CONV)
    x = torch.from_numpy(
        np.random.default_rng(0).random(
            (1, PEAK_CONV.cin, PEAK_CONV.h, PEAK_CONV.w), dtype=np.float32
        )
    )
    torch.set_num_threads(threads)

    def run() -> Any:
        # As TorchSession: flush-to-zero only while the model runs.
        torch.set_flush_denormal(True)
        try:
            with torch.inference_mode():
                return conv(x)
        finally:
            torch.set_flush_denormal(False)

    return run
