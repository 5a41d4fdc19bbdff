"""Kernels for elementwise, activation, reduction, shape and quantization MIL ops.

Semantics follow the MIL op reference (``coremltools.converters.mil.mil.ops.defs``, opsets
iOS15–iOS18). Inputs arrive as float32 (fp16 values are widened by the evaluator) or in their
integer dtype; outputs are rounded to the program's declared dtype by the evaluator.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sinet_deploy.runtimes.mil_eval.registry import (
    along,
    as_bool,
    as_float,
    as_int,
    as_ints,
    kernel,
)

# MIL dtype strings used by ``cast`` and ``quantize``.
DTYPE_NAMES = {
    "fp16": np.float16,
    "fp32": np.float32,
    "fp64": np.float64,
    "bool": np.bool_,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
}


# -- elementwise binary (NumPy broadcasting is MIL's broadcasting) ---------------------------


@kernel("add")
def add(x: Any, y: Any) -> Any:
    return np.add(x, y)


@kernel("sub")
def sub(x: Any, y: Any) -> Any:
    return np.subtract(x, y)


@kernel("mul")
def mul(x: Any, y: Any) -> Any:
    return np.multiply(x, y)


@kernel("real_div")
def real_div(x: Any, y: Any) -> Any:
    return np.true_divide(x, y)


@kernel("floor_div")
def floor_div(x: Any, y: Any) -> Any:
    return np.floor_divide(x, y)


@kernel("maximum")
def maximum(x: Any, y: Any) -> Any:
    return np.maximum(x, y)


@kernel("minimum")
def minimum(x: Any, y: Any) -> Any:
    return np.minimum(x, y)


@kernel("pow")
def power(x: Any, y: Any) -> Any:
    return np.power(x, y)


@kernel("equal")
def equal(x: Any, y: Any) -> Any:
    return np.equal(x, y)


@kernel("not_equal")
def not_equal(x: Any, y: Any) -> Any:
    return np.not_equal(x, y)


@kernel("less")
def less(x: Any, y: Any) -> Any:
    return np.less(x, y)


@kernel("less_equal")
def less_equal(x: Any, y: Any) -> Any:
    return np.less_equal(x, y)


@kernel("greater")
def greater(x: Any, y: Any) -> Any:
    return np.greater(x, y)


@kernel("greater_equal")
def greater_equal(x: Any, y: Any) -> Any:
    return np.greater_equal(x, y)


@kernel("select")
def select(cond: Any, a: Any, b: Any) -> Any:
    return np.where(cond, a, b)


# -- unary and activations -------------------------------------------------------------------


@kernel("identity")
def identity(x: Any) -> Any:
    return np.asarray(x)


@kernel("sigmoid")
def sigmoid(x: Any) -> Any:
    # exp of a large negative argument overflows to inf, and 1 / inf is the right limit (0).
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


@kernel("relu")
def relu(x: Any) -> Any:
    return np.maximum(x, 0)


@kernel("relu6")
def relu6(x: Any) -> Any:
    return np.clip(x, 0, 6)


@kernel("tanh")
def tanh(x: Any) -> Any:
    return np.tanh(x)


@kernel("exp")
def exp(x: Any) -> Any:
    return np.exp(x)


@kernel("sqrt")
def sqrt(x: Any) -> Any:
    return np.sqrt(x)


@kernel("rsqrt")
def rsqrt(x: Any, epsilon: Any = 1e-12) -> Any:
    return 1.0 / np.sqrt(x + as_float(epsilon))


@kernel("abs")
def absolute(x: Any) -> Any:
    return np.abs(x)


@kernel("square")
def square(x: Any) -> Any:
    return np.square(x)


@kernel("clip")
def clip(x: Any, alpha: Any, beta: Any) -> Any:
    return np.minimum(np.maximum(x, alpha), beta)


@kernel("leaky_relu")
def leaky_relu(x: Any, alpha: Any = 0.01) -> Any:
    return np.where(x >= 0, x, x * as_float(alpha))


@kernel("prelu")
def prelu(x: Any, alpha: Any) -> Any:
    # MIL prelu: x is [B, C, *spatial], one slope per channel (axis 1).
    a = along(alpha, 1, x.ndim)
    return np.where(x >= 0, x, x * a)


@kernel("softmax")
def softmax(x: Any, axis: Any = -1) -> Any:
    ax = as_int(axis)
    z = np.exp(x - np.max(x, axis=ax, keepdims=True))
    return z / np.sum(z, axis=ax, keepdims=True)


# -- reductions ------------------------------------------------------------------------------


def _axes(axes: Any) -> tuple[int, ...] | None:
    return None if axes is None else tuple(as_ints(axes))


@kernel("reduce_mean")
def reduce_mean(x: Any, axes: Any = None, keep_dims: Any = False) -> Any:
    return np.mean(x, axis=_axes(axes), keepdims=as_bool(keep_dims))


@kernel("reduce_sum")
def reduce_sum(x: Any, axes: Any = None, keep_dims: Any = False) -> Any:
    return np.sum(x, axis=_axes(axes), keepdims=as_bool(keep_dims))


@kernel("reduce_max")
def reduce_max(x: Any, axes: Any = None, keep_dims: Any = False) -> Any:
    return np.max(x, axis=_axes(axes), keepdims=as_bool(keep_dims))


@kernel("reduce_min")
def reduce_min(x: Any, axes: Any = None, keep_dims: Any = False) -> Any:
    return np.min(x, axis=_axes(axes), keepdims=as_bool(keep_dims))


# -- shape manipulation ----------------------------------------------------------------------


@kernel("reshape")
def reshape(x: Any, shape: Any) -> Any:
    # 0 copies the input's dimension at that position (iOS17 reshape); -1 is inferred.
    dims = [x.shape[i] if d == 0 else d for i, d in enumerate(as_ints(shape))]
    return np.reshape(x, dims)


@kernel("transpose")
def transpose(x: Any, perm: Any) -> Any:
    return np.transpose(x, as_ints(perm))


@kernel("expand_dims")
def expand_dims(x: Any, axes: Any) -> Any:
    return np.expand_dims(x, tuple(as_ints(axes)))


@kernel("squeeze")
def squeeze(x: Any, axes: Any = None) -> Any:
    return np.squeeze(x, axis=_axes(axes))


@kernel("tile")
def tile(x: Any, reps: Any) -> Any:
    return np.tile(x, as_ints(reps))


@kernel("concat", variadic=("values",))
def concat(values: list[Any], axis: Any, interleave: Any = False) -> Any:
    ax = as_int(axis)
    if not as_bool(interleave):
        return np.concatenate(values, axis=ax)
    # interleave: [a0, b0, a1, b1, ...] along axis (all inputs have the same shape).
    ax = ax % values[0].ndim
    stacked = np.stack(values, axis=ax + 1)
    shape = list(values[0].shape)
    shape[ax] *= len(values)
    return stacked.reshape(shape)


@kernel("cast")
def cast(x: Any, dtype: Any) -> Any:
    try:
        target = DTYPE_NAMES[str(dtype)]
    except KeyError:
        raise ValueError(f"cast to unknown dtype {dtype!r}") from None
    return np.asarray(x).astype(target)


# -- dense -----------------------------------------------------------------------------------


@kernel("linear")
def linear(x: Any, weight: Any, bias: Any = None) -> Any:
    y = np.matmul(x, np.swapaxes(weight, -1, -2))
    return y if bias is None else y + bias


@kernel("matmul")
def matmul(x: Any, y: Any, transpose_x: Any = False, transpose_y: Any = False) -> Any:
    a = np.swapaxes(x, -1, -2) if as_bool(transpose_x) else x
    b = np.swapaxes(y, -1, -2) if as_bool(transpose_y) else y
    return np.matmul(a, b)


# -- quantization ----------------------------------------------------------------------------


@kernel("constexpr_affine_dequantize")
def constexpr_affine_dequantize(quantized_data: Any, zero_point: Any, scale: Any, axis: Any) -> Any:
    """iOS16: ``scale * (q - zero_point)``, scale/zero point scalar or per ``axis``."""
    ax, rank = as_int(axis), quantized_data.ndim
    q = quantized_data.astype(np.float32)
    zp = along(np.asarray(zero_point, dtype=np.float32), ax, rank)
    return (q - zp) * along(scale, ax, rank)


def _blocks(v: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Repeat each entry of ``v`` over its block: block size = data dim / ``v`` dim."""
    arr = np.asarray(v)
    for ax, (n, m) in enumerate(zip(shape, arr.shape, strict=True)):
        if n != m:
            if m == 0 or n % m:
                raise ValueError(f"block shape {arr.shape} does not divide data shape {shape}")
            arr = np.repeat(arr, n // m, axis=ax)
    return arr


@kernel("constexpr_blockwise_shift_scale")
def constexpr_blockwise_shift_scale(data: Any, scale: Any, offset: Any = None) -> Any:
    """iOS18: ``scale * (data - offset)`` with block-wise scale and offset."""
    q = data.astype(np.float32)
    if offset is not None:
        q = q - _blocks(np.asarray(offset, dtype=np.float32), data.shape)
    return q * _blocks(scale, data.shape)


@kernel("quantize")
def quantize(
    input: Any, scale: Any, output_dtype: Any, zero_point: Any = None, axis: Any = None
) -> Any:
    """iOS17: ``clip(round(x / scale) + zero_point)``; ties round to even, as NumPy does."""
    ax = None if axis is None else as_int(axis)
    dtype = DTYPE_NAMES[str(output_dtype)]
    info = np.iinfo(dtype)
    q = np.rint(input / along(scale, ax, input.ndim))
    if zero_point is not None:
        q = q + along(np.asarray(zero_point, dtype=np.float32), ax, input.ndim)
    return np.clip(q, info.min, info.max).astype(dtype)


@kernel("dequantize")
def dequantize(input: Any, scale: Any, zero_point: Any = None, axis: Any = None) -> Any:
    """iOS17: ``(q - zero_point) * scale``."""
    ax = None if axis is None else as_int(axis)
    q = input.astype(np.float32)
    if zero_point is not None:
        q = q - along(np.asarray(zero_point, dtype=np.float32), ax, input.ndim)
    return q * along(scale, ax, input.ndim)
