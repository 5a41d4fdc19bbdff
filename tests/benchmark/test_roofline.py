"""The roofline: ceiling models compute their convolution, MAC counts, the columns' arithmetic,
and the bench CLI end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sinet_deploy.benchmark.peak import (
    PEAK_KINDS,
    ConvShape,
    load_peak,
    onnx_conv,
    tflite_conv,
    torch_conv,
)
from sinet_deploy.benchmark.roofline import (
    add_roofline,
    ceiling_candidates,
    finish_ceilings,
    precision_class,
    runtime_of,
    sinet_macs,
)
from sinet_deploy.benchmark.timing import Row
from sinet_deploy.core.errors import UserInputError
from tests.conftest import PEERS, need

SHAPES = [ConvShape(h=5, w=6, cin=8, cout=4, k=1), ConvShape(h=5, w=6, cin=3, cout=5, k=3)]
X_SCALE, Y_SCALE = 0.02, 0.05  # the ceiling models' activation scales (see tflite_conv)


def _weights(shape: ConvShape) -> tuple[np.ndarray, np.ndarray]:
    from sinet_deploy.benchmark.peak import _weights

    return _weights(shape)


def reference_conv(x_nchw: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Zero-padded stride-1 'same' convolution in float64, NCHW."""
    k = w.shape[-1]
    p = k // 2
    xp = np.pad(x_nchw.astype(np.float64), ((0, 0), (0, 0), (p, p), (p, p)))
    _, _, h, wd = x_nchw.shape
    out = np.zeros((1, w.shape[0], h, wd))
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("nchw,oc->nohw", xp[:, :, dy : dy + h, dx : dx + wd], w[:, :, dy, dx])
    return out + b[None, :, None, None]


def _fp32_atol(shape: ConvShape) -> float:
    # Summation order differs between kernels: at most K roundings of terms of magnitude ≤ 1
    # (inputs in [0, 1), |weights| a few / sqrt(K)), each ≤ one fp32 ulp of the running sum.
    return shape.cin * shape.k**2 * float(np.finfo(np.float32).eps) * 8


def _litert_run(model: bytes, x: np.ndarray) -> np.ndarray:
    from sinet_deploy.runtimes.litert_rt import interpreter_class

    interpreter, _, _ = interpreter_class()
    it = interpreter(model_content=model, num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    return np.asarray(it.get_tensor(it.get_output_details()[0]["index"]))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"k{s.k}")
def test_litert_fp32_ceiling_is_the_convolution(shape: ConvShape) -> None:
    w, b = _weights(shape)
    x = np.random.default_rng(1).random((1, shape.h, shape.w, shape.cin), dtype=np.float32)
    got = _litert_run(tflite_conv(shape, "fp32"), x)
    want = reference_conv(x.transpose(0, 3, 1, 2), w, b).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(got, want, rtol=0, atol=_fp32_atol(shape))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"k{s.k}")
def test_litert_int8_ceiling_is_the_quantized_convolution(shape: ConvShape) -> None:
    w, b = _weights(shape)
    xq = np.random.default_rng(2).integers(-128, 128, (1, shape.h, shape.w, shape.cin), np.int8)
    got = _litert_run(tflite_conv(shape, "int8"), xq).astype(np.float64) * Y_SCALE
    w_scale = np.abs(w).reshape(shape.cout, -1).max(axis=1) / 127.0
    wq = np.round(w / w_scale[:, None, None, None]) * w_scale[:, None, None, None]
    bq = np.round(b / (X_SCALE * w_scale)) * X_SCALE * w_scale
    x = xq.astype(np.float64).transpose(0, 3, 1, 2) * X_SCALE
    want = np.clip(reference_conv(x, wq, bq), -128 * Y_SCALE, 127 * Y_SCALE).transpose(0, 2, 3, 1)
    # One output step: the kernel's fixed-point requantization may round the other way.
    np.testing.assert_allclose(got, want, rtol=0, atol=Y_SCALE * 1.001)


@pytest.mark.parametrize("precision", ["fp32", "int8"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"k{s.k}")
def test_onnxruntime_ceiling_is_the_convolution(shape: ConvShape, precision: str) -> None:
    import onnxruntime as ort

    w, b = _weights(shape)
    x = np.random.default_rng(3).random((1, shape.cin, shape.h, shape.w), dtype=np.float32)
    session = ort.InferenceSession(onnx_conv(shape, precision), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x})
    want = reference_conv(x, w, b)
    if precision == "fp32":
        np.testing.assert_allclose(got, want, rtol=0, atol=_fp32_atol(shape))
    else:
        # Input and weights each within half a step of the float values; the output within
        # one output step of the float convolution plus what those input/weight errors add.
        w_step = np.abs(w).reshape(shape.cout, -1).max() / 127.0
        k = shape.cin * shape.k**2
        bound = Y_SCALE + k * (X_SCALE / 2 * np.abs(w).max() + w_step / 2 * 1.0)
        assert np.abs(got - np.clip(want, -128 * Y_SCALE, 127 * Y_SCALE)).max() <= bound


def test_torch_ceiling_is_the_convolution() -> None:
    import torch

    shape = SHAPES[1]
    w, b = _weights(shape)
    x = np.random.default_rng(4).random((1, shape.cin, shape.h, shape.w), dtype=np.float32)
    with torch.no_grad():
        got = torch_conv(shape)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, reference_conv(x, w, b), rtol=0, atol=_fp32_atol(shape))


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"k{s.k}")
def test_graph_macs_of_a_conv_model_is_its_shape(shape: ConvShape) -> None:
    from sinet_deploy.runtimes.litert_rt import graph_macs

    assert (
        graph_macs(tflite_conv(shape)) == shape.macs == 5 * 6 * shape.cin * shape.cout * shape.k**2
    )


def test_graph_macs_counts_mediapipes_transpose_convolutions() -> None:
    from sinet_deploy.runtimes.litert_rt import graph_macs, integer_convolutions

    peer = need(PEERS / "selfie_segmentation.tflite")
    # 59.2 M at 256×256, of which the custom Convolution2DTransposeBias decoder ops are part
    assert round(graph_macs(peer) / 1e6, 1) == 59.2
    assert not integer_convolutions(peer)
    assert integer_convolutions(tflite_conv(SHAPES[0], "int8"))
    assert not integer_convolutions(tflite_conv(SHAPES[0], "fp32"))


def test_a_ceiling_that_cannot_load_is_a_skipped_row_not_an_error() -> None:
    from sinet_deploy.benchmark.timing import Candidate, run_benchmark

    res = run_benchmark([Candidate("ceiling", ceiling="coreml:fp32")], runs=1, warmup=0)
    (row,) = res.ceilings
    assert row.skipped and "coreml" in row.skipped and res.rows == []


def test_sinet_macs_is_the_papers_figure() -> None:
    # SINet: 63.9 M multiply-accumulates per 224×224 frame. The convolutions' share scales
    # with the pixel count; the squeeze blocks' linear layers (on pooled vectors) do not.
    assert round(sinet_macs("", 224, 224) / 1e6, 1) == 63.9
    assert 3.99 < sinet_macs("", 448, 448) / sinet_macs("", 224, 224) < 4.0


def test_unknown_ceiling_is_a_user_error() -> None:
    with pytest.raises(UserInputError, match="coreml"):
        load_peak("coreml", "fp32", 1)


def test_ceiling_candidates_one_per_known_runtime_and_precision() -> None:
    pairs = [("litert", "fp32"), ("litert", "fp32"), ("litert", "int8"), ("coreml", "fp32")]
    got = [c.ceiling for c in ceiling_candidates(pairs, threads=2)]
    assert got == ["litert:fp32", "litert:int8"]
    assert all(c.threads == 2 and c.role == "ceiling" for c in ceiling_candidates(pairs, 2))
    assert {f"{r}:{p}" for r, p in PEAK_KINDS} >= set(got)
    assert runtime_of("m.TFLITE") == "litert" and runtime_of("x.mlpackage") is None
    assert precision_class("int8") == "int8"
    assert {precision_class(p) for p in ("fp32", "fp16", "int8w", None)} == {"fp32"}


def _row(name: str, runtime: str, precision: str | None, median: float, **kw: object) -> Row:
    row = Row(
        name=name,
        runtime=runtime,
        kind="torch",
        role="reference",
        threads=1,
        provider="cpu",
        precision=precision,
        input_size=[224, 224],
        median_ms=median,
    )
    for key, value in kw.items():
        setattr(row, key, value)
    return row


def test_roofline_columns_divide_by_the_matching_ceiling() -> None:
    ceilings = [
        _row("c32", "litert", "fp32", 1.0, kind="ceiling", macs=40_000_000),
        _row("c8", "litert", "int8", 0.1, kind="ceiling", macs=40_000_000),
        _row("t", "torch", "fp32", 2.0, kind="ceiling", macs=40_000_000, threads=2),
    ]
    finish_ceilings(ceilings)
    assert [c.gmac_per_s for c in ceilings] == pytest.approx([40.0, 400.0, 20.0])
    macs = sinet_macs("", 224, 224)
    torch1 = _row("pytorch-eager", "torch", None, 10.0)  # no 1-thread torch ceiling
    cuda = _row("pytorch-eager", "torch", None, 1.0, provider="cuda", threads=2)
    add_roofline([torch1, cuda], ceilings)
    assert torch1.macs == macs and torch1.gmac_per_s == pytest.approx(macs / 10e6)
    assert torch1.ceiling_share is None and cuda.ceiling_share is None


def test_roofline_reads_the_artifact_manifest_and_matches_int8(tmp_path: Path) -> None:
    from sinet_deploy.core.manifest import write_manifest

    fp32, int8, foreign = tmp_path / "a.tflite", tmp_path / "b.tflite", tmp_path / "c.tflite"
    for path, precision in ((fp32, "fp32"), (int8, "int8")):
        path.write_bytes(b"")
        write_manifest(path, {"precision": precision, "source": {"config": "official"}})
    foreign.write_bytes(b"")
    write_manifest(foreign, {"precision": "fp32"})  # not a SINet export: MACs unknown
    ceilings = [
        _row("c32", "litert", "fp32", 1.0, kind="ceiling", macs=50_000_000),
        _row("c8", "litert", "int8", 0.25, kind="ceiling", macs=50_000_000),
    ]
    finish_ceilings(ceilings)
    rows = [
        _row(p.name, "litert", prec, 8.0, kind="artifact", role="sinet", path=str(p))
        for p, prec in ((fp32, "fp32"), (int8, "int8"), (foreign, "fp32"))
    ]
    add_roofline(rows, ceilings)
    gmacs = sinet_macs("", 224, 224) / 8e6
    assert rows[0].gmac_per_s == pytest.approx(gmacs)
    assert rows[0].ceiling_share == pytest.approx(gmacs / 50.0)
    assert rows[1].ceiling_share == pytest.approx(gmacs / 200.0)
    assert rows[2].macs is None and rows[2].ceiling_share is None


def test_bench_cli_reports_gmacs_and_the_ceiling_of_a_peer(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    shape = ConvShape(h=16, w=16, cin=16, cout=16, k=3)
    peer = tmp_path / "conv.tflite"
    peer.write_bytes(tflite_conv(shape))
    args = ("bench", "--peer", peer, "--no-torch", "--no-cuda", "--runs", "3", "--warmup", "1")
    res = cli(*args, "--json")
    assert res.code == 0, res.err
    data = res.json()
    (row,) = data["results"]
    assert row["macs"] == shape.macs
    assert row["gmac_per_s"] == pytest.approx(shape.macs / (row["median_ms"] * 1e6))
    (ceiling,) = data["ceilings"]
    assert ceiling["name"].startswith("ceiling: litert fp32") and ceiling["gmac_per_s"] > 0
    assert row["ceiling_share"] == pytest.approx(row["gmac_per_s"] / ceiling["gmac_per_s"])
    assert {"gmac_per_s", "ceiling_share"} <= data["roofline_columns"].keys()
    text = cli(*args)
    assert text.code == 0, text.err
    assert "GMAC/s" in text.out and "ceiling: litert fp32 1×1 conv 256→256" in text.out
    plain = cli(*args, "--no-roofline", "--json")
    assert plain.code == 0 and plain.json()["ceilings"] == []
    assert plain.json()["results"][0]["ceiling_share"] is None
