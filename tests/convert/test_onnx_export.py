"""PyTorch → ONNX: tiny blocks first, then the real SINet (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sinet_deploy.convert.torch_to_onnx import (
    OnnxExportConfig,
    export_onnx,
    graph_op_counts,
    read_metadata,
    to_fp16_weights,
)
from sinet_deploy.core.errors import UserInputError
from sinet_deploy.verify.tolerances import FP32_LOGIT_DIFF, tolerance_for
from tests._tiny import TinyNet, blocks

ort = pytest.importorskip("onnxruntime")


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})[0]


@pytest.mark.parametrize("name", sorted(blocks()))
def test_each_block_matches_torch(name: str, tmp_path: Path) -> None:
    module = blocks()[name]
    channels = 3 if name == "conv_bn_prelu" else 8
    cfg = OnnxExportConfig((1, channels, 16, 24), "float32", "x", "y")
    path = export_onnx(module, tmp_path / f"{name}.onnx", cfg)
    x = np.random.default_rng(0).normal(size=(1, channels, 16, 24)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(_run(path, x), expected, atol=FP32_LOGIT_DIFF, rtol=0)
    assert "BatchNormalization" not in graph_op_counts(path)  # folded by constant folding


def test_image_model_io_and_metadata(tmp_path: Path) -> None:
    cfg = OnnxExportConfig(
        (1, 3, 32, 32),
        "uint8",
        metadata={"sinet_deploy.io": "image", "sinet_deploy.sizes": [32, 32]},
    )
    path = export_onnx(
        TinyNet(),
        tmp_path / "tiny.onnx",
        cfg,
    )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out,) = sess.get_inputs(), sess.get_outputs()
    assert (inp.name, inp.type, inp.shape) == ("image", "tensor(uint8)", [1, 3, 32, 32])
    assert (out.name, out.shape) == ("foreground", [1, 1, 32, 32])
    meta = read_metadata(path)
    assert meta["sinet_deploy.io"] == "image" and meta["sinet_deploy.sizes"] == "[32, 32]"
    x = np.random.default_rng(0).integers(0, 256, (1, 3, 32, 32), dtype=np.uint8)
    with torch.no_grad():
        expected = TinyNet()(torch.from_numpy(x)).numpy()
    bound = tolerance_for("onnx", "fp32").max_abs_prob_diff
    assert np.abs(_run(path, x) - expected).max() <= bound


def test_fp16_weights_halve_the_file(tmp_path: Path) -> None:
    cfg = OnnxExportConfig((1, 3, 32, 32), "uint8")
    src = export_onnx(TinyNet(), tmp_path / "tiny.onnx", cfg)
    half = to_fp16_weights(src, tmp_path / "tiny16.onnx", min_elements=1)
    import onnx

    model = onnx.load(str(half))
    big = [i for i in model.graph.initializer if np.prod(i.dims) >= 16]
    assert big and all(i.data_type == onnx.TensorProto.FLOAT16 for i in big)
    assert graph_op_counts(half)["Cast"] >= len(big)
    x = np.random.default_rng(2).integers(0, 256, (1, 3, 32, 32), dtype=np.uint8)
    assert np.abs(_run(half, x) - _run(src, x)).max() < 1e-2


def test_opset_is_validated() -> None:
    with pytest.raises(UserInputError, match="opset 7"):
        OnnxExportConfig((1, 3, 32, 32), opset=7)
    with pytest.raises(UserInputError):
        OnnxExportConfig((1, 3, 32, 32), input_dtype="int16")


@pytest.mark.slow
def test_real_sinet_onnx_graph_is_clean(exported_artifacts: dict[str, Path]) -> None:
    path = exported_artifacts["onnx/fp32"]
    counts = graph_op_counts(path)
    assert "BatchNormalization" not in counts
    # the shuffle is folded: the only Transposes are the NHWC image in and mask out
    assert counts.get("Transpose", 0) <= 2 and "Reshape" not in counts
    meta = read_metadata(path)
    assert meta["sinet_deploy.io"] == '"image"' or meta["sinet_deploy.io"] == "image"
    assert "mean_bgr" in meta["sinet_deploy.preprocessing"]


@pytest.mark.slow
def test_real_sinet_other_opset(official_weights: Path, tmp_path: Path) -> None:
    from sinet_deploy.models import export_module

    cfg = OnnxExportConfig((1, 224, 224, 3), "uint8", opset=13)
    path = export_onnx(export_module("official", input_size=(224, 224)), tmp_path / "s.onnx", cfg)
    import onnx

    assert onnx.load(str(path)).opset_import[0].version == 13


@pytest.mark.parametrize(
    "low,high,form",
    [(0.0, 1.0, "Max"), (-0.9, 1.0, "Max"), (1.0, 2.5, "Min"), (-0.7, 1.3, "Sub")],
)
def test_prelu_rewrite_for_onnxruntime_is_exact(
    tmp_path: Path, low: float, high: float, form: str
) -> None:
    """PRelu → Max(x, a*x) (slopes <= 1), Min(x, a*x) (slopes >= 1), else Relu(x) - a*Relu(-x):
    the same values (assert_array_equal: a zero's sign may differ), no PRelu left (onnxruntime's
    per-channel PRelu was half of SINet's time)."""
    from sinet_deploy.convert.onnx_rewrite import prelu_to_max

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.PReLU(8)).eval()
    with torch.no_grad():
        module[1].weight.copy_(torch.linspace(low, high, 8))
    cfg = OnnxExportConfig((1, 3, 16, 24), "float32", "x", "y")
    src = export_onnx(module, tmp_path / "p.onnx", cfg)
    dest = tmp_path / "p_ort.onnx"
    assert prelu_to_max(src, dest) == 1
    counts = graph_op_counts(dest)
    assert "PRelu" not in counts
    assert counts.get(form) == 1
    x = np.random.default_rng(1).normal(size=(1, 3, 16, 24)).astype(np.float32)
    np.testing.assert_array_equal(_run(dest, x), _run(src, x))
