"""The op registry: MIL op type → a NumPy kernel.

A kernel is a plain function whose keyword parameters are the op's MIL input names (``x``,
``weight``, ``axis`` …) with the MIL defaults for optional inputs; it returns one array, or a
tuple for ops with several outputs. The evaluator does the rest — looking values up, computing in
float32, rounding every result to the dtype the program declares, checking shapes — so each
kernel is a few lines::

    @kernel("sigmoid")
    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Kernel:
    """A registered kernel; ``variadic`` names the inputs that take a list (``concat.values``)."""

    op_type: str
    fn: Callable[..., Any]
    variadic: frozenset[str]


KERNELS: dict[str, Kernel] = {}


def kernel(
    *op_types: str, variadic: tuple[str, ...] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` as the kernel of each of ``op_types``."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        for op_type in op_types:
            if op_type in KERNELS:
                raise RuntimeError(f"two kernels for MIL op {op_type!r}")
            KERNELS[op_type] = Kernel(op_type, fn, frozenset(variadic))
        return fn

    return register


def supported_ops() -> list[str]:
    """Every MIL op type the reference evaluator can run (``const`` included)."""
    from sinet_deploy.runtimes.mil_eval import nn_ops, ops  # noqa: F401  (registers kernels)

    return sorted({*KERNELS, "const"})


# -- helpers shared by kernels ---------------------------------------------------------------


def as_int(v: Any) -> int:
    """A scalar MIL constant (0-d array or Python number) as ``int``."""
    return int(np.asarray(v).reshape(()))


def as_bool(v: Any) -> bool:
    return bool(np.asarray(v).reshape(()))


def as_ints(v: Any) -> list[int]:
    return [int(i) for i in np.asarray(v).reshape(-1)]


def as_float(v: Any) -> float:
    return float(np.asarray(v).reshape(()))


def along(v: Any, axis: int | None, rank: int) -> np.ndarray:
    """A scalar or per-axis vector shaped to broadcast along ``axis`` of a rank-``rank`` tensor."""
    arr = np.asarray(v)
    if arr.ndim == 0 or axis is None:
        return arr
    shape = [1] * rank
    shape[axis % rank] = -1
    return arr.reshape(shape)
