"""Per-operator latency of a ``.tflite`` model under XNNPACK: where the time goes.

LiteRT's own op profiler (``benchmark_model --enable_op_profiling``) sees an XNNPACK-delegated
graph as one ``DELEGATE`` node, so it cannot say which of SINet's 283 int8 ops are slow, and it
is not shipped in the Python wheel. This module cuts the model into **one-op models** instead:
each operator with its own tensors, constant buffers and quantization parameters, its
non-constant inputs turned into model inputs. Every one-op model runs through the same
interpreter and XNNPACK delegate as the whole model, in interleaved rounds (one invoke of every
op, then the whole model, per round), and the median of each is reported.

What this measures and what it does not:

- an op's kernel time plus one ``invoke`` of fixed overhead (a few µs; the difference between
  the sum of the ops and the whole model shows it), on inputs of random values over the
  tensor's whole range (kernel speed here does not depend on the values);
- not XNNPACK's cross-op effects (a real graph may keep data in cache between ops);
- ops whose inputs are all constants (e.g. an fp16 model's weight DEQUANTIZE) run once at load
  under XNNPACK: listed as ``constant`` and not timed; control flow (subgraph calls) is skipped.
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ArtifactError, UserInputError

#: Ops that call other subgraphs: a one-op cut of them would not be the same computation.
_CONTROL_FLOW = {"WHILE", "IF", "CALL_ONCE", "CALL", "STABLEHLO_COMPOSITE"}


@dataclass
class OpModel:
    """One operator of a model, as a runnable one-op ``.tflite``.

    Attributes:
        index: the op's position in the model's execution order.
        op: builtin name (``CONV_2D``) or ``CUSTOM:name``.
        output: shape and dtype of the first output.
        data: the one-op flatbuffer (``None`` when the op is not timed; see ``skipped``).
        skipped: why the op is not timed (``"constant"``, ``"control flow"``), else ``None``.
    """

    index: int
    op: str
    output: tuple[tuple[int, ...], str]
    data: bytes | None
    skipped: str | None = None


@dataclass
class OpTiming:
    """The measured median of one op (``us`` is ``None`` for ops not timed)."""

    index: int
    op: str
    shape: tuple[int, ...]
    dtype: str
    us: float | None
    delegated: bool | None
    skipped: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "op": self.op,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "median_us": None if self.us is None else round(self.us, 2),
            "xnnpack": self.delegated,
            "skipped": self.skipped,
        }


@dataclass
class ModelProfile:
    """Every op of one model, its whole-model median and the per-op-type totals."""

    path: str
    ops: list[OpTiming]
    whole_ms: float
    rounds: int

    @property
    def sum_ms(self) -> float:
        return sum(t.us for t in self.ops if t.us is not None) / 1000.0

    def by_type(self) -> dict[str, dict[str, Any]]:
        """``{op: {"count", "timed", "ms", "share", "undelegated"}}``, slowest type first."""
        acc: dict[str, dict[str, Any]] = defaultdict(
            lambda: {"count": 0, "timed": 0, "ms": 0.0, "undelegated": 0}
        )
        for t in self.ops:
            row = acc[t.op]
            row["count"] += 1
            if t.us is not None:
                row["timed"] += 1
                row["ms"] += t.us / 1000.0
            if t.delegated is False:
                row["undelegated"] += 1
        total = self.sum_ms or 1.0
        out = {}
        for name, row in sorted(acc.items(), key=lambda kv: -kv[1]["ms"]):
            out[name] = {**row, "ms": round(row["ms"], 4), "share": round(row["ms"] / total, 4)}
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.path,
            "whole_model_median_ms": round(self.whole_ms, 4),
            "sum_of_ops_ms": round(self.sum_ms, 4),
            "rounds": self.rounds,
            "by_type": self.by_type(),
            "ops": [t.as_dict() for t in self.ops],
        }


@dataclass
class ProfileReport:
    """One or two model profiles measured in the same interleaved rounds."""

    models: list[ModelProfile]
    threads: int
    machine: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "threads": self.threads,
            "machine": self.machine,
            "models": [m.as_dict() for m in self.models],
        }
        if len(self.models) == 2:
            a, b = self.models
            out["whole_model_ratio"] = round(a.whole_ms / b.whole_ms, 4)
        return out


# --- cutting a model into one-op models ------------------------------------------------------


def _dtype_name(tensor_type: int) -> str:
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k.lower() for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
    return names.get(tensor_type, str(tensor_type))


def _has_data(buffer: Any) -> bool:
    return buffer is not None and (
        (buffer.data is not None and len(buffer.data) > 0) or bool(getattr(buffer, "size", 0))
    )


def split_ops(data: bytes) -> list[OpModel]:
    """Every operator of the main subgraph as its own runnable model.

    Raises:
        ArtifactError: not a TFLite flatbuffer, or no operators.
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    from sinet_deploy.runtimes.litert_rt import op_code_names, read_model_object

    model = read_model_object(data)
    if not model.subgraphs or not model.subgraphs[0].operators:
        raise ArtifactError("the TFLite model has no operators", hint="re-export the model")
    names = op_code_names(model)
    graph = model.subgraphs[0]

    def const(t: int) -> bool:
        buf = graph.tensors[t].buffer
        return bool(buf) and _has_data(model.buffers[buf])

    out: list[OpModel] = []
    for index, op in enumerate(graph.operators):
        name = names[op.opcodeIndex]
        ins = [int(t) for t in (op.inputs if op.inputs is not None else []) if t >= 0]
        outs = [int(t) for t in op.outputs]
        dynamic = [t for t in dict.fromkeys(ins) if not const(t)]
        first = graph.tensors[outs[0]]
        shape = tuple(int(d) for d in (first.shape if first.shape is not None else []))
        entry = OpModel(index, name, (shape, _dtype_name(first.type)), None)
        if name in _CONTROL_FLOW:
            entry.skipped = "control flow"
        elif not dynamic:
            entry.skipped = "constant"
        if entry.skipped:
            out.append(entry)
            continue
        used = list(dict.fromkeys(ins + outs))
        remap = {t: i for i, t in enumerate(used)}
        buffers = [schema.BufferT()]  # buffer 0: the empty sentinel every activation points to
        tensors = []
        for t in used:
            tensor = copy.copy(graph.tensors[t])
            if const(t):
                buffers.append(model.buffers[tensor.buffer])
                tensor.buffer = len(buffers) - 1
            else:
                tensor.buffer = 0
            tensors.append(tensor)
        one = copy.copy(op)
        one.inputs = [remap[int(t)] if t >= 0 else -1 for t in op.inputs]
        one.outputs = [remap[t] for t in outs]
        one.intermediates = []
        sub = schema.SubGraphT()
        sub.tensors = tensors
        sub.operators = [one]
        sub.inputs = [remap[t] for t in dynamic]
        sub.outputs = [remap[t] for t in outs]
        sub.name = f"op{index}"
        single = schema.ModelT()
        single.version = model.version
        single.operatorCodes = model.operatorCodes
        single.subgraphs = [sub]
        single.buffers = buffers
        single.description = f"op {index} of a sinet-deploy profile"
        entry.data = bytes(flatbuffer_utils.convert_object_to_bytearray(single))
        out.append(entry)
    return out


# --- timing ----------------------------------------------------------------------------------


def _random_input(detail: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    dtype = np.dtype(detail["dtype"])
    shape = tuple(int(d) for d in detail["shape"])
    if dtype.kind in "iu" and dtype.itemsize == 1:
        info = np.iinfo(dtype)
        return rng.integers(info.min, int(info.max) + 1, shape, dtype=dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return np.zeros(shape, dtype)  # indices, sizes, flags: zeros are valid for any op


class _Runner:
    """One interpreter with its inputs set once; ``invoke`` is what gets timed."""

    def __init__(self, content: bytes, threads: int, rng: np.random.Generator) -> None:
        from sinet_deploy.runtimes.litert_rt import (
            _without_info_logs,
            delegate_partitions,
            interpreter_class,
        )

        interpreter_cls, _, _ = interpreter_class()
        with _without_info_logs():
            self.it = interpreter_cls(model_content=content, num_threads=threads)
            self.it.allocate_tensors()
        for detail in self.it.get_input_details():
            self.it.set_tensor(detail["index"], _random_input(detail, rng))
        self.delegated = delegate_partitions(self.it)["xnnpack_compute_partitions"] > 0
        self.times: list[float] = []

    def timed_invoke(self) -> None:
        t0 = time.perf_counter_ns()
        self.it.invoke()
        self.times.append((time.perf_counter_ns() - t0) / 1000.0)


def profile(
    paths: Sequence[Path],
    *,
    runs: int = 50,
    warmup: int = 5,
    threads: int = 1,
) -> ProfileReport:
    """Per-op medians of one or two ``.tflite`` models, all in the same interleaved rounds.

    Args:
        paths: one model, or two to compare (e.g. int8 and the fp32 of the same export).
        runs: timed rounds; each round invokes every op of every model once, then each whole
            model once.
        warmup: untimed rounds first.
        threads: interpreter threads (1 = the single-thread latency of the acceptance bench).

    Raises:
        UserInputError: bad ``runs``/``threads``, or more than two models.
        ArtifactError: a path that is missing or not a TFLite model.
    """
    from sinet_deploy.core.machine import machine_info
    from sinet_deploy.runtimes.litert_rt import op_by_op_error

    if runs < 1 or warmup < 0 or threads < 1:
        raise UserInputError("--runs and --threads must be ≥ 1, --warmup ≥ 0")
    if not 1 <= len(paths) <= 2:
        raise UserInputError("profile takes one model, or two to compare")
    rng = np.random.default_rng(0)
    plans = []
    for path in paths:
        path = Path(path)
        if path.suffix != ".tflite":
            raise ArtifactError(f"{path} is not a .tflite model", hint="profile runs LiteRT models")
        if not path.is_file():
            raise ArtifactError(f"model not found: {path}", hint="check the path")
        data = path.read_bytes()
        try:
            ops = split_ops(data)
            whole = _Runner(data, threads, rng)
            runners = [_Runner(o.data, threads, rng) if o.data is not None else None for o in ops]
        except ArtifactError as exc:  # say which of the (up to two) files it is about
            raise ArtifactError(f"{path}: {exc}", hint=exc.hint) from None
        except (ValueError, RuntimeError) as exc:
            raise op_by_op_error(
                exc, f"LiteRT cannot run {path} op by op", command="profile", examples="exports"
            ) from None
        plans.append((path, ops, whole, runners))
    everything = [r for _, _, whole, runners in plans for r in [*runners, whole] if r is not None]
    for round_ in range(warmup + runs):
        for r in everything:
            r.timed_invoke()
        if round_ < warmup:
            for r in everything:
                r.times.clear()
    models = []
    for path, ops, whole, runners in plans:
        timings = [
            OpTiming(
                o.index,
                o.op,
                o.output[0],
                o.output[1],
                None if r is None else float(np.median(r.times)),
                None if r is None else r.delegated,
                o.skipped,
            )
            for o, r in zip(ops, runners, strict=True)
        ]
        models.append(ModelProfile(str(path), timings, float(np.median(whole.times)) / 1000, runs))
    return ProfileReport(models, threads, machine_info())
