"""The MIL reference evaluator, op by op, against PyTorch (or hand-computed MIL semantics).

Programs are built in memory here (no coremltools, no conversion), so these tests are fast; the
tests in test_coreml_convert.py run the same evaluator on packages that coremltools wrote.
Kernel checks use float32-rounding bounds (these are kernel unit tests, not artifact parity, so
they do not come from the tolerance registry).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sinet_deploy.core.errors import ArtifactError
from sinet_deploy.runtimes.mil_eval import (
    EvaluationError,
    Inline,
    MILEvaluator,
    Op,
    Program,
    TensorType,
    UnsupportedOpError,
    supported_ops,
)
from sinet_deploy.runtimes.mil_eval.blob import BlobFile
from sinet_deploy.runtimes.mil_eval.evaluator import round_fp16

F32 = np.dtype(np.float32)
F16 = np.dtype(np.float16)
RNG = np.random.default_rng(0)


def _program(ops: list[Op], inputs: list[tuple[str, TensorType]], outputs: list[str]) -> Program:
    return Program(
        path=Path("unit.mlpackage"), opset="CoreML6", inputs=inputs, outputs=outputs, ops=ops
    )


def run_op(
    op_type: str,
    out_shape: tuple[int, ...],
    /,
    *,
    x: np.ndarray | None = None,
    out_dtype: np.dtype = F32,
    attributes: dict[str, Any] | None = None,
    **params: Any,
) -> np.ndarray:
    """Evaluate one op: ``x`` is the program input, ``params`` inline constants.

    ``out_shape`` is the declared output shape (the evaluator checks it), ``out_dtype`` the declared
    output dtype (the evaluator rounds to it).
    """
    inputs: dict[str, list[Any]] = {
        k: [Inline(v if isinstance(v, str) else np.asarray(v))] for k, v in params.items()
    }
    prog_inputs = []
    if x is not None:
        inputs["x"] = ["x"]
        prog_inputs = [("x", TensorType(np.asarray(x).dtype, tuple(np.shape(x))))]
    op = Op(op_type, "op0", inputs, [("y", TensorType(out_dtype, out_shape))], attributes or {})
    ev = MILEvaluator(_program([op], prog_inputs, ["y"]))
    return ev({"x": x} if x is not None else {})["y"]


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _close(got: np.ndarray, want: torch.Tensor | np.ndarray, atol: float = 2e-5) -> None:
    want_np = want.detach().numpy() if isinstance(want, torch.Tensor) else np.asarray(want)
    assert got.shape == want_np.shape
    np.testing.assert_allclose(got, want_np, rtol=1e-5, atol=atol)


# -- conv --------------------------------------------------------------------------------------

# (cin, cout, k, stride, dilation, groups, hw, pad_type, pad, expected (top, bottom, left, right))
CONV_CASES = {
    "custom_pad": (4, 6, 3, 1, 1, 1, 9, "custom", [1, 1, 1, 1], (1, 1, 1, 1)),
    "grouped_valid_s2": (4, 6, 3, 2, 1, 2, 9, "valid", None, (0, 0, 0, 0)),
    "depthwise_same_s2_odd": (8, 8, 3, 2, 1, 8, 9, "same", None, (1, 1, 1, 1)),
    "depthwise_same_s2_even": (8, 8, 3, 2, 1, 8, 8, "same", None, (0, 1, 0, 1)),
    "multiplier_same_lower": (4, 8, 3, 2, 1, 4, 8, "same_lower", None, (1, 0, 1, 0)),
    "dilated_asymmetric": (3, 5, 3, 1, 2, 1, 10, "custom", [0, 1, 2, 0], (0, 1, 2, 0)),
    "pointwise_5x5": (6, 4, 5, 1, 1, 1, 7, "custom", [2, 2, 2, 2], (2, 2, 2, 2)),
}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_matches_torch(case: str) -> None:
    cin, cout, k, s, d, g, hw, pad_type, pad, (t, b, left, right) = CONV_CASES[case]
    x = RNG.standard_normal((1, cin, hw, hw)).astype(np.float32)
    w = RNG.standard_normal((cout, cin // g, k, k)).astype(np.float32)
    bias = RNG.standard_normal(cout).astype(np.float32)
    want = F.conv2d(
        F.pad(_t(x), (left, right, t, b)), _t(w), _t(bias), stride=s, dilation=d, groups=g
    )
    params: dict[str, Any] = dict(
        weight=w, bias=bias, strides=[s, s], dilations=[d, d], groups=np.int32(g), pad_type=pad_type
    )
    if pad is not None:
        params["pad"] = np.array(pad, np.int32)
    _close(run_op("conv", tuple(want.shape), x=x, **params), want, atol=1e-4)


def test_conv_defaults_and_no_bias() -> None:
    x = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
    w = RNG.standard_normal((4, 3, 1, 1)).astype(np.float32)
    _close(run_op("conv", (2, 4, 5, 5), x=x, weight=w), F.conv2d(_t(x), _t(w)))


# -- activations, normalisation, pooling -----------------------------------------------------


def test_prelu_per_channel_and_leaky_relu() -> None:
    x = RNG.standard_normal((1, 5, 4, 4)).astype(np.float32)
    alpha = np.linspace(-0.9, 1.3, 5).astype(np.float32)
    _close(run_op("prelu", x.shape, x=x, alpha=alpha), F.prelu(_t(x), _t(alpha)))
    _close(run_op("leaky_relu", x.shape, x=x, alpha=np.float32(0.2)), F.leaky_relu(_t(x), 0.2))


def test_batch_norm() -> None:
    x = RNG.standard_normal((1, 4, 3, 3)).astype(np.float32)
    mean, var, gamma, beta = (RNG.random(4).astype(np.float32) + 0.5 for _ in range(4))
    want = F.batch_norm(_t(x), _t(mean), _t(var), _t(gamma), _t(beta), False, 0.0, 1e-3)
    _close(
        run_op(
            "batch_norm",
            x.shape,
            x=x,
            mean=mean,
            variance=var,
            gamma=gamma,
            beta=beta,
            epsilon=np.float32(1e-3),
        ),
        want,
    )


@pytest.mark.parametrize("exclude", [True, False])
def test_avg_pool_padding_modes(exclude: bool) -> None:
    x = RNG.standard_normal((1, 3, 7, 7)).astype(np.float32)
    want = F.avg_pool2d(_t(x), 3, 2, padding=1, count_include_pad=not exclude)
    got = run_op(
        "avg_pool",
        tuple(want.shape),
        x=x,
        kernel_sizes=[3, 3],
        strides=[2, 2],
        pad_type="custom",
        pad=np.array([1, 1, 1, 1], np.int32),
        exclude_padding_from_average=np.bool_(exclude),
        ceil_mode=np.bool_(False),
    )
    _close(got, want)


def test_avg_pool_sinet_branch_and_max_pool() -> None:
    x = RNG.standard_normal((1, 4, 8, 8)).astype(np.float32)
    want = F.avg_pool2d(_t(x), 4, 4)
    _close(
        run_op(
            "avg_pool",
            tuple(want.shape),
            x=x,
            kernel_sizes=[4, 4],
            strides=[4, 4],
            pad_type="valid",
        ),
        want,
    )
    want = F.max_pool2d(_t(x), 3, 2, padding=1)
    _close(
        run_op(
            "max_pool",
            tuple(want.shape),
            x=x,
            kernel_sizes=[3, 3],
            strides=[2, 2],
            pad_type="custom",
            pad=np.array([1, 1, 1, 1], np.int32),
        ),
        want,
    )


def test_pool_ceil_mode_is_an_error_not_a_guess() -> None:
    x = np.zeros((1, 1, 5, 5), np.float32)
    with pytest.raises(EvaluationError, match="ceil_mode"):
        run_op(
            "avg_pool",
            (1, 1, 3, 3),
            x=x,
            kernel_sizes=[2, 2],
            strides=[2, 2],
            ceil_mode=np.bool_(True),
        )


# -- resizing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [2, 4])
@pytest.mark.parametrize("align", [True, False])
def test_upsample_bilinear(factor: int, align: bool) -> None:
    x = RNG.standard_normal((1, 3, 5, 7)).astype(np.float32)
    want = F.interpolate(_t(x), scale_factor=factor, mode="bilinear", align_corners=align)
    got = run_op(
        "upsample_bilinear",
        tuple(want.shape),
        x=x,
        scale_factor_height=np.float32(factor),
        scale_factor_width=np.float32(factor),
        align_corners=np.bool_(align),
    )
    _close(got, want)


@pytest.mark.parametrize(
    ("mode", "align"),
    [("STRICT_ALIGN_CORNERS", True), ("ALIGN_CORNERS", True), ("UNALIGN_CORNERS", False)],
)
def test_resize_bilinear_matches_torch(mode: str, align: bool) -> None:
    x = RNG.standard_normal((1, 2, 5, 6)).astype(np.float32)
    want = F.interpolate(_t(x), size=(7, 11), mode="bilinear", align_corners=align)
    got = run_op(
        "resize_bilinear",
        (1, 2, 7, 11),
        x=x,
        target_size_height=np.int32(7),
        target_size_width=np.int32(11),
        sampling_mode=mode,
    )
    _close(got, want)


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        # The grids of the MIL documentation's example (Xin = 2, Xout = 5), times 10.
        ("DEFAULT", [0, 4, 8, 10, 10]),
        ("OFFSET_CORNERS", [1, 3, 5, 7, 9]),
        ("UNALIGN_CORNERS", [0, 1, 5, 9, 10]),
    ],
)
def test_resize_bilinear_documented_grids(mode: str, expected: list[float]) -> None:
    x = np.array([[[[0.0, 10.0]]]], np.float32)
    got = run_op(
        "resize_bilinear",
        (1, 1, 1, 5),
        x=x,
        target_size_height=np.int32(1),
        target_size_width=np.int32(5),
        sampling_mode=mode,
    )
    np.testing.assert_allclose(got.reshape(-1), expected, atol=1e-5)


def test_upsample_nearest() -> None:
    x = RNG.standard_normal((1, 2, 3, 4)).astype(np.float32)
    want = F.interpolate(_t(x), scale_factor=2, mode="nearest")
    _close(
        run_op(
            "upsample_nearest_neighbor",
            tuple(want.shape),
            x=x,
            scale_factor_height=np.float32(2),
            scale_factor_width=np.float32(2),
        ),
        want,
    )


# -- elementwise, reductions, shapes -----------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "fn"),
    [
        ("add", np.add),
        ("sub", np.subtract),
        ("mul", np.multiply),
        ("real_div", np.divide),
        ("maximum", np.maximum),
        ("minimum", np.minimum),
    ],
)
def test_binary_broadcasting(op: str, fn: Any) -> None:
    x = RNG.standard_normal((1, 3, 4, 4)).astype(np.float32)
    y = RNG.random((1, 3, 1, 1)).astype(np.float32) + 0.5
    _close(run_op(op, x.shape, x=x, y=y), fn(x, y))


def test_unary_ops() -> None:
    x = RNG.standard_normal((1, 2, 3, 3)).astype(np.float32) * 5
    _close(run_op("sigmoid", x.shape, x=x), torch.sigmoid(_t(x)))
    _close(run_op("relu", x.shape, x=x), torch.relu(_t(x)))
    _close(run_op("tanh", x.shape, x=x), torch.tanh(_t(x)))
    _close(
        run_op("clip", x.shape, x=x, alpha=np.float32(-1), beta=np.float32(2)),
        torch.clamp(_t(x), -1, 2),
    )
    big = np.array([-1000.0, 0.0, 1000.0], np.float32)
    np.testing.assert_array_equal(run_op("sigmoid", (3,), x=big), [0.0, 0.5, 1.0])


def test_softmax_and_reductions() -> None:
    x = RNG.standard_normal((1, 2, 4, 4)).astype(np.float32) * 3
    _close(run_op("softmax", x.shape, x=x, axis=np.int32(1)), torch.softmax(_t(x), 1))
    _close(
        run_op(
            "reduce_max", (1, 1, 4, 4), x=x, axes=np.array([1], np.int32), keep_dims=np.bool_(True)
        ),
        _t(x).amax(1, keepdim=True),
    )
    _close(
        run_op(
            "reduce_mean", (1, 2), x=x, axes=np.array([2, 3], np.int32), keep_dims=np.bool_(False)
        ),
        _t(x).mean((2, 3)),
    )
    _close(run_op("reduce_sum", (), x=x), _t(x).sum(), atol=1e-4)


def test_shape_ops() -> None:
    x = np.arange(24, dtype=np.float32).reshape(1, 2, 3, 4)
    _close(run_op("reshape", (2, 12), x=x, shape=np.array([2, -1], np.int32)), x.reshape(2, 12))
    _close(
        run_op("reshape", (1, 6, 4), x=x, shape=np.array([0, 6, 4], np.int32)), x.reshape(1, 6, 4)
    )
    _close(
        run_op("transpose", (1, 3, 4, 2), x=x, perm=np.array([0, 2, 3, 1], np.int32)),
        x.transpose(0, 2, 3, 1),
    )
    _close(
        run_op("expand_dims", (1, 1, 2, 3, 4, 1), x=x, axes=np.array([0, -1], np.int32)),
        x[None, ..., None],
    )
    _close(run_op("squeeze", (2, 3, 4), x=x, axes=np.array([0], np.int32)), x[0])
    _close(
        run_op("tile", (1, 4, 3, 8), x=x, reps=np.array([1, 2, 1, 2], np.int32)),
        np.tile(x, (1, 2, 1, 2)),
    )


def test_concat_and_interleave() -> None:
    a = np.array([[1.0, 2.0]], np.float32)
    b = np.array([[3.0, 4.0]], np.float32)
    prog_inputs = [("a", TensorType(F32, (1, 2))), ("b", TensorType(F32, (1, 2)))]
    for interleave, want in ((False, [1, 2, 3, 4]), (True, [1, 3, 2, 4])):
        op = Op(
            "concat",
            "cat",
            {
                "values": ["a", "b"],
                "axis": [Inline(np.int32(1))],
                "interleave": [Inline(np.bool_(interleave))],
            },
            [("y", TensorType(F32, (1, 4)))],
            {},
        )
        got = MILEvaluator(_program([op], prog_inputs, ["y"]))({"a": a, "b": b})["y"]
        np.testing.assert_array_equal(got.reshape(-1), want)


def test_linear_and_matmul() -> None:
    x = RNG.standard_normal((2, 5)).astype(np.float32)
    w = RNG.standard_normal((3, 5)).astype(np.float32)
    b = RNG.standard_normal(3).astype(np.float32)
    _close(run_op("linear", (2, 3), x=x, weight=w, bias=b), F.linear(_t(x), _t(w), _t(b)))
    _close(run_op("matmul", (2, 3), x=x, y=w, transpose_y=np.bool_(True)), x @ w.T)


def test_cast_and_declared_fp16_rounding() -> None:
    x = np.array([1.0, 2.7, -3.2], np.float32)
    got = run_op("cast", (3,), x=x, out_dtype=np.dtype(np.int32), dtype="int32")
    np.testing.assert_array_equal(got, [1, 2, -3])
    one = np.array([1.0], np.float32)
    tiny = np.array([1e-4], np.float32)
    # fp16 spacing at 1.0 is 2**-10: 1 + 1e-4 rounds back to 1 when the program says fp16.
    assert run_op("add", (1,), x=one, y=tiny, out_dtype=F16)[0] == np.float16(1.0)
    assert run_op("add", (1,), x=one, y=tiny, out_dtype=F32)[0] == np.float32(1.0001)


def test_fast_fp16_rounding_is_bit_exact() -> None:
    normal = RNG.standard_normal(200_000).astype(np.float32) * np.float32(10.0) ** RNG.integers(
        -9, 6, 200_000
    ).astype(np.float32)
    edges = np.array(
        [
            0.0,
            -0.0,
            65504,
            65519,
            65520,
            -65520,
            1e6,
            np.inf,
            -np.inf,
            np.nan,
            -np.nan,
            2**-14,
            2**-15,
            -(2**-24),
            3e-8,
            1 + 2**-11,
            1 + 3 * 2**-11,
            1.0007324,
        ],
        np.float32,
    )
    x = np.concatenate([normal, edges, -normal[:1000]])
    with np.errstate(over="ignore"):
        want = x.astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(round_fp16(x), want)
    assert np.array_equal(np.signbit(round_fp16(x)), np.signbit(want))


# -- weight decompression and quantization -----------------------------------------------------


def test_constexpr_affine_dequantize_from_attributes() -> None:
    """iOS16's constexpr op carries its operands as attributes."""
    q = RNG.integers(-128, 128, size=(4, 2, 3, 3)).astype(np.int8)
    scale = np.array([0.5, 0.25, 0.0, 2.0], np.float16)
    zp = np.array([0, 3, 0, -1], np.int8)
    attrs = {"quantized_data": q, "scale": scale, "zero_point": zp, "axis": np.int32(0)}
    got = run_op("constexpr_affine_dequantize", q.shape, out_dtype=F16, attributes=attrs)
    want = (q.astype(np.float32) - zp[:, None, None, None]) * scale.astype(np.float32)[
        :, None, None, None
    ]
    np.testing.assert_array_equal(got, want.astype(np.float16))
    assert got.dtype == np.float16


def test_constexpr_blockwise_shift_scale() -> None:
    data = RNG.integers(-128, 128, size=(4, 6)).astype(np.int8)
    scale = RNG.random((2, 3)).astype(np.float32)
    offset = np.array([[1, 0, -2], [0, 5, 0]], np.int8)
    got = run_op(
        "constexpr_blockwise_shift_scale", data.shape, data=data, scale=scale, offset=offset
    )
    full = lambda a: np.repeat(np.repeat(a, 2, axis=0), 2, axis=1)  # noqa: E731
    want = (data.astype(np.float32) - full(offset)) * full(scale)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    per_channel = run_op(
        "constexpr_blockwise_shift_scale", data.shape, data=data, scale=scale[:, :1].repeat(2, 0)
    )
    np.testing.assert_allclose(per_channel, data * scale[:, :1].repeat(2, 0), rtol=1e-6)


def test_quantize_dequantize() -> None:
    x = np.array([-1.0, 0.26, 0.75, 100.0], np.float32)
    q = run_op(
        "quantize",
        (4,),
        x=None,
        input=x,
        scale=np.float32(0.5),
        zero_point=np.int8(0),
        output_dtype="int8",
        out_dtype=np.dtype(np.int8),
    )
    np.testing.assert_array_equal(q, [-2, 1, 2, 127])  # rint: 0.52 → 1, 1.5 → 2, clip
    d = run_op("dequantize", (4,), input=q, scale=np.float32(0.5), zero_point=np.int8(1))
    np.testing.assert_array_equal(d, [-1.5, 0.0, 0.5, 63.0])
    u = run_op(
        "quantize",
        (2,),
        input=np.array([-3.0, 3.0], np.float32),
        scale=np.array([1.0, 2.0], np.float32),
        zero_point=np.array([128, 128], np.uint8),
        axis=np.int32(0),
        output_dtype="uint8",
        out_dtype=np.dtype(np.uint8),
    )
    np.testing.assert_array_equal(u, [125, 130])


# -- the evaluator's own contract --------------------------------------------------------------


def test_unknown_op_is_an_error_naming_it() -> None:
    op = Op("gelu_but_fancier", "g0", {"x": ["x"]}, [("y", TensorType(F32, (2,)))], {})
    with pytest.raises(UnsupportedOpError, match="gelu_but_fancier"):
        MILEvaluator(_program([op], [("x", TensorType(F32, (2,)))], ["y"]))


def test_control_flow_is_an_error() -> None:
    op = Op("relu", "r", {"x": ["x"]}, [("y", TensorType(F32, (2,)))], {}, has_blocks=True)
    with pytest.raises(UnsupportedOpError, match="control flow"):
        MILEvaluator(_program([op], [("x", TensorType(F32, (2,)))], ["y"]))


def test_declared_shape_is_checked() -> None:
    x = np.zeros((1, 2, 3, 3), np.float32)
    with pytest.raises(EvaluationError, match="declares"):
        run_op("relu", (1, 2, 3, 4), x=x)


def test_missing_and_misshapen_inputs() -> None:
    op = Op("relu", "r", {"x": ["x"]}, [("y", TensorType(F32, (2,)))], {})
    ev = MILEvaluator(_program([op], [("x", TensorType(F32, (2,)))], ["y"]))
    with pytest.raises(ArtifactError, match="missing input"):
        ev({})
    with pytest.raises(ArtifactError, match="shape"):
        ev({"x": np.zeros(3, np.float32)})


def test_kernel_failure_names_the_op() -> None:
    with pytest.raises(EvaluationError, match="cast"):
        run_op("cast", (2,), x=np.zeros(2, np.float32), dtype="complex64")


def test_constant_subgraphs_are_folded_once() -> None:
    const = Op("const", "c", {}, [("c", TensorType(F32, (2,)))], {"val": np.ones(2, np.float32)})
    twice = Op("add", "a", {"x": ["c"], "y": ["c"]}, [("c2", TensorType(F32, (2,)))], {})
    use = Op("mul", "m", {"x": ["x"], "y": ["c2"]}, [("y", TensorType(F32, (2,)))], {})
    ev = MILEvaluator(_program([const, twice, use], [("x", TensorType(F32, (2,)))], ["y"]))
    assert "c2" in ev.constants
    np.testing.assert_array_equal(ev({"x": np.array([1.0, 3.0], np.float32)})["y"], [2.0, 6.0])


def test_supported_ops_cover_what_sinet_programs_use() -> None:
    needed = {
        "const",
        "cast",
        "conv",
        "prelu",
        "leaky_relu",
        "batch_norm",
        "avg_pool",
        "upsample_bilinear",
        "resize_bilinear",
        "concat",
        "add",
        "sub",
        "mul",
        "real_div",
        "sigmoid",
        "softmax",
        "reduce_max",
        "reduce_mean",
        "reshape",
        "transpose",
        "expand_dims",
        "squeeze",
        "tile",
        "linear",
        "constexpr_affine_dequantize",
        "constexpr_blockwise_shift_scale",
        "quantize",
        "dequantize",
    }
    assert needed <= set(supported_ops())


# -- weight blob ---------------------------------------------------------------------------------


def _blob_file(
    path: Path, arrays: list[tuple[int, np.ndarray]], *, sentinel: int = 0xDEADBEEF
) -> list[int]:
    """Write a storage-v2 weight blob: 64-byte header, then (metadata, data) per array."""
    out = bytearray(struct.pack("<II", len(arrays), 2).ljust(64, b"\0"))
    offsets = []
    for code, arr in arrays:
        offsets.append(len(out))
        data_offset = len(out) + 64
        out += struct.pack("<IIQQQ", sentinel, code, arr.nbytes, data_offset, 0).ljust(64, b"\0")
        out += arr.tobytes().ljust(-(-arr.nbytes // 64) * 64, b"\0")
    path.write_bytes(bytes(out))
    return offsets


def test_blob_reader_reads_what_was_written(tmp_path: Path) -> None:
    f16 = np.linspace(-2, 2, 7).astype(np.float16)
    i8 = np.arange(-5, 5, dtype=np.int8)
    offs = _blob_file(tmp_path / "weight.bin", [(1, f16), (4, i8)])
    blob = BlobFile(tmp_path / "weight.bin")
    np.testing.assert_array_equal(blob.read(offs[0], F16, 7), f16)
    np.testing.assert_array_equal(blob.read(offs[1], np.dtype(np.int8), 10), i8)


@pytest.mark.parametrize(
    ("problem", "match"),
    [
        ("sentinel", "sentinel"),
        ("dtype", "declares"),
        ("count", "bytes"),
        ("offset", "range"),
        ("truncated", "past the end"),
    ],
)
def test_blob_reader_rejects_inconsistencies(tmp_path: Path, problem: str, match: str) -> None:
    f32 = np.arange(16, dtype=np.float32)
    path = tmp_path / "weight.bin"
    offs = _blob_file(
        path, [(2, f32)], sentinel=0x12345678 if problem == "sentinel" else 0xDEADBEEF
    )
    if problem == "truncated":
        path.write_bytes(path.read_bytes()[:-40])
    blob = BlobFile(path)
    dtype: np.dtype[Any] = F32
    count, offset = 16, offs[0]
    if problem == "dtype":
        dtype = F16
    elif problem == "count":
        count = 15
    elif problem == "offset":
        offset = 1 << 20
    with pytest.raises(ArtifactError, match=match):
        blob.read(offset, dtype, count)
