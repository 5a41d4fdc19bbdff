"""Kernels for the spatial MIL ops: conv, pooling, batch_norm and bilinear/nearest resizing.

2-D only (``x`` is ``[N, C, H, W]``), which is every convolution and pool a SINet program has;
other ranks raise. Convolutions accumulate in float32, one kernel tap at a time (a contraction
over each group's channels), which keeps depthwise convolutions cheap.

Contractions use ``np.einsum`` (its own single-threaded loops) rather than ``np.matmul``: these
matrices are tiny, and OpenBLAS' thread pool made them 100× slower on a busy 2-core machine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sinet_deploy.runtimes.mil_eval.registry import as_bool, as_float, as_int, as_ints, kernel


def _need_2d(x: np.ndarray, op: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op} on a rank-{x.ndim} tensor: only 2-D (rank 4) is implemented")


def pads_2d(
    pad_type: str,
    pad: Any,
    size: tuple[int, int],
    kernel_hw: tuple[int, int],
    strides: tuple[int, int],
    dilations: tuple[int, int],
) -> list[tuple[int, int]]:
    """``[(top, bottom), (left, right)]`` for MIL's ``pad_type`` (valid/custom/same/same_lower)."""
    if pad_type == "valid":
        return [(0, 0), (0, 0)]
    if pad_type == "custom":
        p = as_ints(pad) if pad is not None else [0, 0, 0, 0]
        return [(p[0], p[1]), (p[2], p[3])]
    if pad_type in ("same", "same_lower"):
        out = []
        for n, k, s, d in zip(size, kernel_hw, strides, dilations, strict=True):
            total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
            small, big = total // 2, total - total // 2
            # "same" puts the odd pixel at the end, "same_lower" at the start.
            out.append((small, big) if pad_type == "same" else (big, small))
        return out
    raise ValueError(f"unknown pad_type {pad_type!r}")


def _taps(
    xp: np.ndarray,
    kh: int,
    kw: int,
    out_hw: tuple[int, int],
    strides: tuple[int, int],
    dilations: tuple[int, int],
) -> Any:
    """Yield ``(i, j, window)``: the strided input slice each kernel tap sees."""
    (ho, wo), (sh, sw), (dh, dw) = out_hw, strides, dilations
    for i in range(kh):
        for j in range(kw):
            r, c = i * dh, j * dw
            yield i, j, xp[..., r : r + sh * (ho - 1) + 1 : sh, c : c + sw * (wo - 1) + 1 : sw]


def _out_size(n: int, pads: tuple[int, int], k: int, s: int, d: int) -> int:
    return (n + pads[0] + pads[1] - d * (k - 1) - 1) // s + 1


@kernel("conv")
def conv(
    x: Any,
    weight: Any,
    bias: Any = None,
    strides: Any = None,
    pad_type: Any = "valid",
    pad: Any = None,
    dilations: Any = None,
    groups: Any = 1,
) -> Any:
    _need_2d(x, "conv")
    n, c, h, w = x.shape
    o, cg, kh, kw = weight.shape
    g = as_int(groups)
    if c != cg * g or o % g:
        raise ValueError(f"conv: {c} input channels, weight {weight.shape}, groups {g}")
    st = tuple(as_ints(strides)) if strides is not None else (1, 1)
    dl = tuple(as_ints(dilations)) if dilations is not None else (1, 1)
    pads = pads_2d(str(pad_type), pad, (h, w), (kh, kw), st, dl)  # type: ignore[arg-type]
    ho = _out_size(h, pads[0], kh, st[0], dl[0])
    wo = _out_size(w, pads[1], kw, st[1], dl[1])
    xp = np.pad(np.asarray(x, np.float32), ((0, 0), (0, 0), *pads)).reshape(
        n, g, cg, *(h + sum(pads[0]), w + sum(pads[1]))
    )
    wg = np.asarray(weight, np.float32).reshape(g, o // g, cg, kh, kw)
    out = np.zeros((n, g, o // g, ho * wo), np.float32)
    depthwise = cg == 1 and o == g
    for i, j, win in _taps(xp, kh, kw, (ho, wo), st, dl):  # type: ignore[arg-type]
        win = win.reshape(n, g, cg, ho * wo)
        if depthwise:
            out += win * wg[None, :, :, 0, i, j, None]
        else:
            out += np.einsum("goc,ngcp->ngop", wg[:, :, :, i, j], win)
    y = out.reshape(n, o, ho, wo)
    return y if bias is None else y + np.asarray(bias, np.float32).reshape(1, -1, 1, 1)


def _pool(
    x: Any, kernel_sizes: Any, strides: Any, pad_type: Any, pad: Any, ceil_mode: Any, op: str
) -> tuple[np.ndarray, list[tuple[int, int]], tuple[int, int], Any, Any]:
    _need_2d(x, op)
    if as_bool(ceil_mode):
        raise ValueError(f"{op} with ceil_mode=True is not implemented")
    kh, kw = as_ints(kernel_sizes)
    st = tuple(as_ints(strides)) if strides is not None else (1, 1)
    pads = pads_2d(str(pad_type), pad, x.shape[2:], (kh, kw), st, (1, 1))  # type: ignore[arg-type]
    ho = _out_size(x.shape[2], pads[0], kh, st[0], 1)
    wo = _out_size(x.shape[3], pads[1], kw, st[1], 1)
    return np.asarray(x, np.float32), pads, (ho, wo), (kh, kw), st


@kernel("avg_pool")
def avg_pool(
    x: Any,
    kernel_sizes: Any,
    strides: Any = None,
    pad_type: Any = "valid",
    pad: Any = None,
    exclude_padding_from_average: Any = False,
    ceil_mode: Any = False,
) -> Any:
    x, pads, out_hw, (kh, kw), st = _pool(
        x, kernel_sizes, strides, pad_type, pad, ceil_mode, "avg_pool"
    )
    padding = ((0, 0), (0, 0), *pads)
    total = sum(win for _, _, win in _taps(np.pad(x, padding), kh, kw, out_hw, st, (1, 1)))
    if as_bool(exclude_padding_from_average):
        ones = np.pad(np.ones((1, 1, *x.shape[2:]), np.float32), padding)
        count = sum(win for _, _, win in _taps(ones, kh, kw, out_hw, st, (1, 1)))
        return total / count
    return total / float(kh * kw)


@kernel("max_pool")
def max_pool(
    x: Any,
    kernel_sizes: Any,
    strides: Any = None,
    pad_type: Any = "valid",
    pad: Any = None,
    ceil_mode: Any = False,
) -> Any:
    x, pads, out_hw, (kh, kw), st = _pool(
        x, kernel_sizes, strides, pad_type, pad, ceil_mode, "max_pool"
    )
    xp = np.pad(x, ((0, 0), (0, 0), *pads), constant_values=-np.inf)
    out = None
    for _, _, win in _taps(xp, kh, kw, out_hw, st, (1, 1)):
        out = win if out is None else np.maximum(out, win)
    return out


@kernel("batch_norm")
def batch_norm(
    x: Any, mean: Any, variance: Any, gamma: Any = None, beta: Any = None, epsilon: Any = 1e-5
) -> Any:
    shape = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - np.reshape(mean, shape)) / np.sqrt(np.reshape(variance, shape) + as_float(epsilon))
    if gamma is not None:
        y = y * np.reshape(gamma, shape)
    if beta is not None:
        y = y + np.reshape(beta, shape)
    return y


# -- resizing: separable interpolation matrices ----------------------------------------------


def _bilinear_matrix(grid: np.ndarray, n_in: int) -> np.ndarray:
    """``[n_out, n_in]`` weights of linear interpolation at sample positions ``grid``."""
    grid = np.clip(grid, 0.0, n_in - 1.0)
    lo = np.floor(grid).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = grid - lo
    m = np.zeros((grid.size, n_in), np.float64)
    rows = np.arange(grid.size)
    np.add.at(m, (rows, lo), 1.0 - frac)
    np.add.at(m, (rows, hi), frac)
    return m


def _resize(x: np.ndarray, mh: np.ndarray, mw: np.ndarray) -> np.ndarray:
    y = np.einsum("oh,...hw->...ow", mh.astype(np.float32), np.asarray(x, np.float32))
    return np.einsum("...hw,ow->...ho", y, mw.astype(np.float32))


def _upsample_grid(n_in: int, n_out: int, align_corners: bool, half_pixel: bool) -> np.ndarray:
    i = np.arange(n_out, dtype=np.float64)
    if align_corners:
        return i * ((n_in - 1) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    spacing = n_in / n_out  # MIL recomputes the scale from the sizes
    return i * spacing + (0.5 * spacing - 0.5 if half_pixel else 0.0)


@kernel("upsample_bilinear")
def upsample_bilinear(
    x: Any,
    scale_factor_height: Any = 1,
    scale_factor_width: Any = 1,
    align_corners: Any = True,
    half_pixel_centers: Any = None,
) -> Any:
    h, w = x.shape[-2:]
    ho = math.floor(h * as_float(scale_factor_height))
    wo = math.floor(w * as_float(scale_factor_width))
    ac = as_bool(align_corners)
    hp = (not ac) if half_pixel_centers is None else as_bool(half_pixel_centers)
    return _resize(
        x,
        _bilinear_matrix(_upsample_grid(h, ho, ac, hp), h),
        _bilinear_matrix(_upsample_grid(w, wo, ac, hp), w),
    )


def _resize_grid(n_in: int, n_out: int, mode: str) -> np.ndarray:
    i = np.arange(n_out, dtype=np.float64)
    if mode in ("STRICT_ALIGN_CORNERS", "ALIGN_CORNERS"):
        if n_out == 1:
            return np.array([(n_in - 1) / 2.0 if mode == "ALIGN_CORNERS" else 0.0])
        return i * ((n_in - 1) / (n_out - 1))
    if mode == "DEFAULT":
        return i * ((n_in - n_in / n_out) / (n_out - 1)) if n_out > 1 else np.zeros(1)
    if mode == "OFFSET_CORNERS":
        delta = max(1, n_in - 1) / n_out
        return 0.5 * delta + i * delta
    if mode == "UNALIGN_CORNERS":
        spacing = n_in / n_out
        return i * spacing + 0.5 * spacing - 0.5
    raise ValueError(f"unknown sampling_mode {mode!r}")


@kernel("resize_bilinear")
def resize_bilinear(
    x: Any, target_size_height: Any = 1, target_size_width: Any = 1, sampling_mode: Any = "DEFAULT"
) -> Any:
    h, w = x.shape[-2:]
    mode = str(sampling_mode)
    return _resize(
        x,
        _bilinear_matrix(_resize_grid(h, as_int(target_size_height), mode), h),
        _bilinear_matrix(_resize_grid(w, as_int(target_size_width), mode), w),
    )


@kernel("upsample_nearest_neighbor")
def upsample_nearest_neighbor(
    x: Any, scale_factor_height: Any = 1, scale_factor_width: Any = 1
) -> Any:
    h, w = x.shape[-2:]
    ho = math.floor(h * as_float(scale_factor_height))
    wo = math.floor(w * as_float(scale_factor_width))
    rows = np.minimum((np.arange(ho) * h) // ho, h - 1)
    cols = np.minimum((np.arange(wo) * w) // wo, w - 1)
    return np.asarray(x)[..., rows[:, None], cols[None, :]]
