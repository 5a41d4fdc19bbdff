"""Per-tensor divergence between an int8 model and its float reference: which block breaks int8.

Both models run on the same images with every intermediate tensor kept; tensors are matched by
name and compared with the SQNR (signal-to-quantization-noise ratio, dB) accumulated over all
images. Two kinds of reference:

- **the dequantized twin** (default): the int8 model itself with every int8 constant turned
  back into float and the activation (de)quantization removed. Same graph, same tensor names,
  so every tensor matches; the SQNR then measures exactly what int8 *activations* cost, layer
  by layer (weights keep their int8 rounding, which is usually negligible next to activations).
  Works for full-integer TFLite (flatbuffer rewrite) and ONNX QDQ (Q/DQ pairs bypassed).
- **a float model you pass** (``--fp32``): tensors with the same name and shape are compared.
  Useful when that model is the float graph the int8 one was quantized from; the fp32 artifact
  of an export is a different (unrewritten) graph, so few names would match.

The SQNR is cumulative (each tensor carries every error made upstream); the *drop* of a tensor
(its SQNR minus the lowest SQNR among its inputs) localises the op that loses the most.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ArtifactError, UserInputError


@dataclass
class TensorStat:
    """One matched tensor.

    Attributes:
        index: position in the int8 graph's execution order.
        name: tensor name in the int8 model.
        op: operator that produces it.
        shape: its shape.
        sqnr_db: cumulative SQNR over all images (``inf`` when identical).
        drop_db: ``sqnr_db`` minus the lowest SQNR of its matched inputs (``None``: no input
            matched); the most negative drops are where int8 loses the most.
        block: the model block (ONNX: the PyTorch module path; TFLite: ``None``).
    """

    index: int
    name: str
    op: str
    shape: tuple[int, ...]
    sqnr_db: float
    drop_db: float | None = None
    block: str | None = None

    def as_dict(self) -> dict[str, Any]:
        def num(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else round(v, 2)

        return {
            "index": self.index,
            "name": self.name,
            "op": self.op,
            "shape": list(self.shape),
            "sqnr_db": num(self.sqnr_db),
            "drop_db": num(self.drop_db),
            "block": self.block,
        }


@dataclass
class LayerReport:
    """All matched tensors plus headline findings."""

    int8_model: str
    reference: str
    runtime: str
    num_images: int
    tensors: list[TensorStat] = field(default_factory=list)

    def worst_drops(self, n: int = 10) -> list[TensorStat]:
        """The ``n`` tensors whose op lost the most SQNR."""
        rows = [t for t in self.tensors if t.drop_db is not None and math.isfinite(t.drop_db)]
        return sorted(rows, key=lambda t: t.drop_db)[:n]  # type: ignore[arg-type,return-value]

    def blocks(self) -> list[dict[str, Any]]:
        """Per block: the SQNR at its last tensor and its worst single-op drop (ONNX only)."""
        out: dict[str, dict[str, Any]] = {}
        for t in self.tensors:
            if t.block is None:
                continue
            row = out.setdefault(t.block, {"block": t.block, "tensors": 0, "worst_drop_db": 0.0})
            row["tensors"] += 1
            row["sqnr_out_db"] = None if not math.isfinite(t.sqnr_db) else round(t.sqnr_db, 2)
            if t.drop_db is not None and t.drop_db < row["worst_drop_db"]:
                row["worst_drop_db"] = round(t.drop_db, 2)
        return list(out.values())

    def as_dict(self) -> dict[str, Any]:
        final = self.tensors[-1].sqnr_db if self.tensors else float("nan")
        return {
            "int8_model": self.int8_model,
            "reference": self.reference,
            "runtime": self.runtime,
            "num_images": self.num_images,
            "matched_tensors": len(self.tensors),
            "output_sqnr_db": None if not math.isfinite(final) else round(final, 2),
            "worst_drops": [t.as_dict() for t in self.worst_drops()],
            "blocks": self.blocks(),
            "tensors": [t.as_dict() for t in self.tensors],
        }


class _Accumulator:
    def __init__(self) -> None:
        self.signal: dict[str, float] = {}
        self.noise: dict[str, float] = {}

    def add(self, key: str, ref: np.ndarray, test: np.ndarray) -> None:
        r = ref.astype(np.float64)
        self.signal[key] = self.signal.get(key, 0.0) + float(np.sum(r * r))
        self.noise[key] = self.noise.get(key, 0.0) + float(np.sum((r - test) ** 2))

    def sqnr(self, key: str) -> float:
        s, n = self.signal.get(key, 0.0), self.noise.get(key, 0.0)
        if n == 0.0:
            return math.inf
        return -math.inf if s == 0.0 else 10.0 * math.log10(s / n)


# --- TFLite ---------------------------------------------------------------------------------


def _resolver(alias: dict[int, int]):  # type: ignore[no-untyped-def]
    def resolve(i: int) -> int:
        while i in alias:
            i = alias[i]
        return i

    return resolve


def dequantized_twin_tflite(data: bytes) -> bytes:
    """The full-integer model with float32 activations and dequantized constants.

    QUANTIZE / DEQUANTIZE ops are bypassed (their consumers read their input), every int8/uint8
    tensor with quantization parameters becomes float32 (constants dequantized per channel),
    and int32 biases become float32 with their own scale. Tensor names are kept.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    tt = schema.TensorType
    np_types = {tt.INT8: np.int8, tt.UINT8: np.uint8, tt.INT32: np.int32, tt.INT16: np.int16}
    source: dict[int, bytes] = {}  # original bytes of each rewritten constant buffer
    for graph in model.subgraphs:
        alias: dict[int, int] = {}
        kept = []
        for op in graph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
            if builtin in (schema.BuiltinOperator.QUANTIZE, schema.BuiltinOperator.DEQUANTIZE):
                alias[int(op.outputs[0])] = int(op.inputs[0])
            else:
                kept.append(op)

        resolve = _resolver(alias)

        for op in kept:
            op.inputs = [resolve(int(i)) if i >= 0 else int(i) for i in op.inputs]
        graph.operators = kept
        graph.outputs = [resolve(int(i)) for i in graph.outputs]
        for t in graph.tensors:
            q = t.quantization
            if q is None or q.scale is None or len(q.scale) == 0 or t.type not in np_types:
                continue
            data = model.buffers[t.buffer].data
            if t.buffer in source or (data is not None and len(data) > 0):
                if t.buffer in source:
                    # The converter deduplicates constant buffers and this one was already
                    # rewritten for another tensor: give this tensor its own buffer.
                    orig = source[t.buffer]
                    model.buffers.append(schema.BufferT())
                    t.buffer = len(model.buffers) - 1
                else:
                    orig = source[t.buffer] = bytes(bytearray(data))
                buf = model.buffers[t.buffer]
                raw = np.frombuffer(orig, dtype=np_types[t.type])
                shape = list(t.shape) if t.shape is not None else [raw.size]
                vals = raw.reshape(shape).astype(np.float64)
                scale = np.asarray(q.scale, dtype=np.float64)
                zero = np.asarray(q.zeroPoint if q.zeroPoint is not None else [0], dtype=np.float64)
                if scale.size > 1:  # per-channel along quantizedDimension
                    bshape = [1] * vals.ndim
                    bshape[q.quantizedDimension] = scale.size
                    scale, zero = scale.reshape(bshape), zero.reshape(bshape)
                buf.data = (
                    np.ascontiguousarray(((vals - zero) * scale).astype(np.float32))
                    .view(np.uint8)
                    .ravel()
                )
            t.type = tt.FLOAT32
            t.quantization = None
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _tflite_interpreter(data: bytes, name: str = "the model") -> Any:
    from sinet_deploy.runtimes.litert_rt import op_by_op_error, reference_interpreter

    # Reference kernels and no delegate: with XNNPACK the intermediate tensors inside a
    # partition are never written back, so there would be nothing to compare.
    try:
        return reference_interpreter(data, num_threads=1, preserve_all_tensors=True)
    except (ValueError, RuntimeError) as exc:
        raise op_by_op_error(
            exc,
            f"cannot run {name} op by op with LiteRT's reference kernels",
            command="diagnose",
            examples="int8 exports",
        ) from None


def _tflite_values(it: Any, image: np.ndarray) -> dict[str, tuple[np.ndarray, int, str]]:
    """name → (float values, producing op index, op name) after running ``image``."""
    inp = it.get_input_details()[0]
    x = image.astype(np.float32)
    if inp["dtype"] != np.float32:
        scale, zero = inp["quantization"]
        info = np.iinfo(inp["dtype"])
        x = np.clip(np.rint(x / (scale or 1.0) + zero), info.min, info.max)
    it.set_tensor(inp["index"], x.astype(inp["dtype"]))
    it.invoke()
    details = it.get_tensor_details()
    out = {}
    for op in it._get_ops_details():
        if op["op_name"] in ("DELEGATE", "QUANTIZE", "DEQUANTIZE"):
            continue
        for t in op["outputs"]:
            d = details[t]
            v = it.get_tensor(t).astype(np.float64)
            scale, zero = d["quantization"]
            if scale:
                v = (v - zero) * scale
            out[d["name"]] = (v, int(op["index"]), op["op_name"])
    return out


def _inputs_by_tensor(it: Any) -> dict[str, list[str]]:
    details = it.get_tensor_details()
    return {
        details[op["outputs"][0]]["name"]: [details[i]["name"] for i in op["inputs"] if i >= 0]
        for op in it._get_ops_details()
        if op["outputs"]
    }


def tflite_layerwise(
    int8_path: Path, images: Sequence[np.ndarray], reference: Path | None = None
) -> LayerReport:
    """Layer-wise SQNR of a full-integer TFLite model (see the module docstring)."""
    data = Path(int8_path).read_bytes()
    q_it = _tflite_interpreter(data, Path(int8_path).name)
    if reference is None:
        f_it = _tflite_interpreter(dequantized_twin_tflite(data), "its dequantized twin")
        ref_name = "dequantized twin (int8 weights, float activations)"
    else:
        f_it = _tflite_interpreter(Path(reference).read_bytes(), Path(reference).name)
        ref_name = str(reference)
    acc = _Accumulator()
    meta: dict[str, tuple[int, str, tuple[int, ...]]] = {}
    for image in images:
        qv, fv = _tflite_values(q_it, image), _tflite_values(f_it, image)
        for name, (val, idx, op) in qv.items():
            ref = fv.get(name)
            if ref is None or ref[0].shape != val.shape:
                continue
            acc.add(name, ref[0], val)
            meta[name] = (idx, op, tuple(int(s) for s in val.shape))
    header = LayerReport(str(int8_path), ref_name, "litert (reference kernels)", len(images))
    return _report(header, acc, meta, _inputs_by_tensor(q_it), {})


# --- ONNX (QDQ) -----------------------------------------------------------------------------


def _onnx_pair(int8_path: Path) -> tuple[Any, Any, dict[str, str]]:
    """(QDQ model exposing every activation, float twin exposing the same, twin→QDQ names)."""
    import onnx
    from onnx import helper

    q = onnx.load(str(int8_path))
    init = {i.name for i in q.graph.initializer}
    twin = onnx.ModelProto()
    twin.CopyFrom(q)
    # Activation Q→DQ pairs: X -Q-> Xq -DQ-> Xdq. The twin feeds X itself to Xdq's consumers.
    producers = {o: n for n in q.graph.node for o in n.output}
    bypass: dict[str, str] = {}
    for node in q.graph.node:
        if node.op_type != "DequantizeLinear":
            continue
        src = producers.get(node.input[0])
        if src is not None and src.op_type == "QuantizeLinear" and src.input[0] not in init:
            bypass[node.output[0]] = src.input[0]
    keep = []
    for node in twin.graph.node:
        if node.op_type == "DequantizeLinear" and node.output[0] in bypass:
            continue
        if node.op_type == "QuantizeLinear" and any(bypass.get(o) == node.input[0] for o in bypass):
            continue
        for i, name in enumerate(node.input):
            if name in bypass:
                node.input[i] = bypass[name]
        keep.append(node)
    del twin.graph.node[:]
    twin.graph.node.extend(keep)
    used = {i for node in keep for i in node.input}
    unused = [i for i in twin.graph.initializer if i.name not in used]
    for i in unused:  # the bypassed Q/DQ pairs' scales and zero points
        twin.graph.initializer.remove(i)
    for out in twin.graph.output:
        out.name = bypass.get(out.name, out.name)
    matched = {float_name: qdq_name for qdq_name, float_name in bypass.items()}
    for model, names in ((q, list(bypass)), (twin, list(bypass.values()))):
        have = {o.name for o in model.graph.output}
        for name in names:
            if name not in have:
                model.graph.output.append(helper.make_empty_tensor_value_info(name))
    return q, twin, matched


def onnx_layerwise(int8_path: Path, images: Sequence[np.ndarray]) -> LayerReport:
    """Layer-wise SQNR of a QDQ ONNX model against its dequantized twin."""
    import onnxruntime as ort

    q_model, twin, matched = _onnx_pair(Path(int8_path))
    if not matched:
        raise ArtifactError(
            f"{Path(int8_path).name} has no QuantizeLinear/DequantizeLinear activation pairs",
            hint="pass a QDQ int8 ONNX model",
        )
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    # No graph optimisation: fusions would remove the intermediate tensors we compare.
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sq = ort.InferenceSession(q_model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    sf = ort.InferenceSession(twin.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    in_name = sq.get_inputs()[0].name
    q_names = [o.name for o in sq.get_outputs()]
    f_names = [o.name for o in sf.get_outputs()]
    order = {n: i for i, node in enumerate(twin.graph.node) for n in node.output}
    op_of = {n: node.op_type for node in twin.graph.node for n in node.output}
    node_of = {n: node.name for node in twin.graph.node for n in node.output}
    inputs_of = {n: list(node.input) for node in twin.graph.node for n in node.output}
    acc = _Accumulator()
    meta: dict[str, tuple[int, str, tuple[int, ...]]] = {}
    for image in images:
        qv = dict(zip(q_names, sq.run(None, {in_name: image}), strict=True))
        fv = dict(zip(f_names, sf.run(None, {in_name: image}), strict=True))
        for float_name, qdq_name in matched.items():
            if float_name not in fv or qdq_name not in qv or float_name not in order:
                continue
            acc.add(float_name, np.asarray(fv[float_name]), np.asarray(qv[qdq_name]))
            meta[float_name] = (
                order[float_name],
                op_of[float_name],
                tuple(np.asarray(fv[float_name]).shape),
            )
    blocks = {n: _block(node_of[n]) for n in meta}
    header = LayerReport(
        str(int8_path),
        "dequantized twin (int8 weights, float activations)",
        "onnxruntime (no graph optimisation)",
        len(images),
    )
    return _report(header, acc, meta, inputs_of, blocks)


def _block(node_name: str) -> str | None:
    """``/core/deploy/level2.1/d1/act/Mul`` → ``level2.1`` (the top-level SINet block)."""
    parts = [p for p in node_name.split("/") if p and p not in ("core", "deploy")]
    if len(parts) < 2:
        return None
    head = parts[0]
    if head in ("level2", "level3") and len(parts) > 2:
        return f"{head}.{parts[1]}"
    return head


def _report(
    report: LayerReport,
    acc: _Accumulator,
    meta: dict[str, tuple[int, str, tuple[int, ...]]],
    inputs_of: dict[str, list[str]],
    blocks: dict[str, str | None],
) -> LayerReport:
    """``report`` (its header filled in) with one :class:`TensorStat` per matched tensor, in
    execution order."""
    if not meta:
        raise UserInputError(
            "no tensor of the int8 model matched the reference by name",
            hint="omit --fp32 to compare against the int8 model's own dequantized twin",
        )
    for name, (idx, op, shape) in sorted(meta.items(), key=lambda kv: kv[1][0]):
        sq = acc.sqnr(name)
        ins = [acc.sqnr(i) for i in inputs_of.get(name, []) if i in meta]
        drop = sq - min(ins) if ins and math.isfinite(min(ins)) and math.isfinite(sq) else None
        report.tensors.append(TensorStat(idx, name, op, shape, sq, drop, blocks.get(name)))
    return report


def layerwise(
    int8_path: str | Path, images: Sequence[np.ndarray], reference: str | Path | None = None
) -> LayerReport:
    """Dispatch on the file type (``.tflite`` or ``.onnx``).

    Args:
        int8_path: a full-integer TFLite or QDQ ONNX model.
        images: model inputs, uint8 RGB ``[1, H, W, 3]`` (preprocessed like inference).
        reference: a float model to match by tensor name (TFLite only); default: the int8
            model's dequantized twin.
    """
    p = Path(int8_path)
    if not p.is_file():
        raise ArtifactError(f"model {p} does not exist", hint="check the path")
    if not images:
        raise UserInputError("layer-wise diagnostics need at least one image")
    if p.suffix == ".tflite":
        return tflite_layerwise(p, images, Path(reference) if reference else None)
    if p.suffix == ".onnx":
        if reference is not None:
            raise UserInputError(
                "--fp32 is only supported for TFLite models",
                hint="QDQ ONNX models are compared with their own twin",
            )
        return onnx_layerwise(p, images)
    raise ArtifactError(
        f"{p.name}: layer-wise diagnostics support .tflite and .onnx", hint="pass an int8 artifact"
    )
