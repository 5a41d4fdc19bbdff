"""Evaluate an ML program's ops in order with NumPy: a reference, not Apple's runtime.

Numerics, stated once: every op computes in float32 (fp16 operands are widened first) and its
result is rounded to the dtype the program declares for it. An fp16 program (the Core ML default
``compute_precision``) therefore rounds every intermediate tensor to fp16, as Core ML's fp16
engines store them; an fp32 program stays in fp32. (fp16 values are *held* as float32 arrays of
fp16-rounded numbers, so each is converted once, not at every use; outputs are returned in their
declared dtype.) What this cannot show is how a particular device accumulates inside an op
(the Neural Engine's internal precision, fused kernels), so its results are labelled
``coreml-reference`` wherever they appear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ArtifactError, ConversionError
from sinet_deploy.runtimes.mil_eval.program import Op, Program, TensorType
from sinet_deploy.runtimes.mil_eval.registry import KERNELS, Kernel, supported_ops

#: How results of this evaluator are labelled (``Session.runtime``, reports, manifests).
LABEL = "coreml-reference"


class UnsupportedOpError(ArtifactError):
    """The program contains an op the reference evaluator has no kernel for."""


class EvaluationError(ConversionError):
    """A kernel failed or produced a result that disagrees with the program's declared type."""


_FP16_MIN_NORMAL = 2.0**-14
_FP16_MAX = 65504.0


def round_fp16(a: np.ndarray) -> np.ndarray:
    """``a.astype(float16).astype(float32)``, bit for bit, about 4× faster.

    Rounds the float32 mantissa to fp16's 10 bits (to nearest, ties to even) with integer
    arithmetic; values outside fp16's normal range (subnormals, overflow, inf, nan) take the
    exact NumPy path. Rounding every intermediate of an fp16 program dominated its evaluation.
    """
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32)
    lsb = (u >> np.uint32(13)) & np.uint32(1)
    r = ((u + np.uint32(0x0FFF) + lsb) & np.uint32(0xFFFFE000)).view(np.float32)
    m = np.abs(a)
    # NaN compares False both ways, so it lands in `odd` too.
    odd = (~(m >= _FP16_MIN_NORMAL) & (m != 0)) | ~(np.abs(r) <= _FP16_MAX)
    if odd.any():
        with np.errstate(over="ignore"):
            r[odd] = a[odd].astype(np.float16).astype(np.float32)
    return r


def _widen(v: Any) -> Any:
    if isinstance(v, np.ndarray) and v.dtype == np.float16:
        return v.astype(np.float32)
    if isinstance(v, list):
        return [_widen(i) for i in v]
    return v


class MILEvaluator:
    """Runs a :class:`~sinet_deploy.runtimes.mil_eval.program.Program`.

    Ops whose inputs are all constants (``const``, the ``constexpr_*`` weight decompression ops
    and anything computed only from them) are evaluated once, at construction.

    Raises:
        UnsupportedOpError: at construction, naming every op type without a kernel; an
            unknown op is never skipped.
    """

    label = LABEL

    def __init__(self, program: Program) -> None:
        self.program = program
        known = set(supported_ops())
        unknown = sorted({op.type for op in program.ops if op.type not in known})
        nested = sorted({op.type for op in program.ops if op.has_blocks})
        if unknown or nested:
            names = ", ".join(unknown + [f"{t} (control flow)" for t in nested])
            raise UnsupportedOpError(
                f"{program.path.name} contains MIL ops the reference evaluator cannot run: {names}",
                hint="export with sinet-deploy, or add a kernel in sinet_deploy/runtimes/mil_eval",
            )
        self.constants: dict[str, Any] = {}
        self._runtime_ops: list[Op] = []
        for op in program.ops:
            if all(
                not isinstance(b, str) or b in self.constants
                for binds in op.inputs.values()
                for b in binds
            ):
                self._run_op(op, self.constants)
            else:
                self._runtime_ops.append(op)

    @property
    def input_types(self) -> dict[str, TensorType]:
        return dict(self.program.inputs)

    def __call__(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Evaluate the program; returns its outputs by name, in their declared dtypes."""
        types = {name: t for op in self.program.ops for name, t in op.outputs}
        types.update(self.program.inputs)
        out = {}
        for name, value in self.run(feeds, keep_all=False).items():
            dtype = types[name].dtype if name in types else None
            out[name] = np.asarray(value).astype(dtype) if isinstance(dtype, np.dtype) else value
        return out

    def run(self, feeds: Mapping[str, np.ndarray], *, keep_all: bool = True) -> dict[str, Any]:
        """Evaluate and return every named value (``keep_all``) or just the outputs."""
        env: dict[str, Any] = dict(self.constants)
        for name, t in self.program.inputs:
            if name not in feeds:
                raise ArtifactError(
                    f"missing input {name!r} for {self.program.path.name}",
                    hint=f"inputs: {', '.join(n for n, _ in self.program.inputs)}",
                )
            env[name] = self._conform(
                np.asarray(feeds[name]), t, f"input {name!r}", cast_input=True
            )
        for op in self._runtime_ops:
            self._run_op(op, env)
        missing = [o for o in self.program.outputs if o not in env]
        if missing:
            raise EvaluationError(f"program outputs never computed: {', '.join(missing)}")
        return env if keep_all else {o: env[o] for o in self.program.outputs}

    def _run_op(self, op: Op, env: dict[str, Any]) -> None:
        if op.type == "const":
            name, t = op.outputs[0]
            env[name] = self._conform(op.attributes["val"], t, f"const {name!r}")
            return
        k: Kernel = KERNELS[op.type]
        args: dict[str, Any] = {}
        for key, binds in op.inputs.items():
            vals = [env[b] if isinstance(b, str) else b.value for b in binds]
            if key in k.variadic:
                args[key] = _widen(vals)
            elif len(vals) == 1:
                args[key] = _widen(vals[0])
            else:
                raise EvaluationError(
                    f"{op.type} {op.name!r}: input {key!r} has {len(vals)} "
                    "values, the kernel takes one"
                )
        # iOS16's constexpr ops carry their operands as attributes rather than inputs.
        for key, val in op.attributes.items():
            if key != "name" and key not in args:
                args[key] = _widen(val)
        try:
            # A corrupt or extreme program may overflow: its inf/nan results are the finding
            # (parity reports them), not a reason for NumPy to print warnings.
            with np.errstate(all="ignore"):
                result = k.fn(**args)
        except (ValueError, TypeError, IndexError, KeyError) as exc:
            raise EvaluationError(
                f"MIL op {op.type} {op.name!r} failed in the reference evaluator: {exc}"
            ) from exc
        results = result if isinstance(result, tuple) else (result,)
        if len(results) != len(op.outputs):
            raise EvaluationError(
                f"{op.type} {op.name!r}: {len(results)} results for {len(op.outputs)} outputs"
            )
        for (name, t), r in zip(op.outputs, results, strict=True):
            env[name] = self._conform(r, t, f"{op.type} {op.name!r}")

    @staticmethod
    def _conform(value: Any, t: TensorType, where: str, cast_input: bool = False) -> Any:
        """Round to the declared dtype and check the declared shape (unknown dims pass)."""
        if t.shape is None or t.dtype == "str":
            return value
        arr = np.asarray(value)
        if t.dtype == np.float16:  # round to fp16, hold as float32 (see the module docstring)
            if arr.dtype == np.float32:
                arr = round_fp16(arr)
            else:  # fp16 already (exact widening), or float64/int: round once, directly
                arr = arr.astype(np.float16).astype(np.float32)
        elif arr.dtype != t.dtype:
            arr = arr.astype(t.dtype)
        if len(arr.shape) != len(t.shape) or any(
            d is not None and d != a for d, a in zip(t.shape, arr.shape, strict=True)
        ):
            err = ArtifactError if cast_input else EvaluationError
            raise err(
                f"{where}: shape {list(arr.shape)} but the program declares "
                f"{[d if d is not None else '?' for d in t.shape]}"
            )
        return arr
