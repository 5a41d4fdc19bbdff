"""ONNX QDQ int8, layer-wise diagnostics, registration and the diagnose command."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")


class _TinyImage(nn.Module):
    """uint8 NHWC image → conv/PReLU/concat/sigmoid probability, like SINet's I/O."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.act = nn.PReLU(8)
        self.side = nn.Conv2d(8, 4, 1)
        self.head = nn.Conv2d(12, 1, 3, padding=1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = image.to(torch.float32).permute(0, 3, 1, 2) / 255.0 - 0.5
        y = self.act(self.conv(x))
        z = torch.cat([y, self.side(y) * 0.1], dim=1)
        return torch.sigmoid(self.head(z)).permute(0, 2, 3, 1)


@pytest.fixture(scope="module")
def tiny_qdq(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

    from sinet_deploy.convert.torch_to_onnx import OnnxExportConfig, export_onnx

    out = tmp_path_factory.mktemp("tiny_qdq")
    fp32 = export_onnx(_TinyImage().eval(), out / "fp32.onnx", OnnxExportConfig((1, 16, 16, 3)))
    images = [
        np.random.default_rng(i).integers(0, 256, (1, 16, 16, 3), dtype=np.uint8) for i in range(6)
    ]

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.it = iter(images)

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self.it, None)
            return None if x is None else {"image": x}

    quantize_static(
        str(fp32), str(out / "int8.onnx"), Reader(), quant_format=QuantFormat.QDQ, per_channel=True
    )
    return {"path": out / "int8.onnx", "images": images}


def test_onnx_layerwise_matches_every_activation(tiny_qdq: dict) -> None:  # type: ignore[type-arg]
    from sinet_deploy.verify.layerwise import layerwise

    report = layerwise(tiny_qdq["path"], tiny_qdq["images"][:3]).as_dict()
    assert report["matched_tensors"] >= 5
    assert {"Conv", "Concat", "Sigmoid"} <= {t["op"] for t in report["tensors"]}
    assert report["output_sqnr_db"] is not None and report["output_sqnr_db"] > 15
    assert report["worst_drops"]  # something to act on


def test_layerwise_rejects_bad_inputs(tiny_qdq: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    from sinet_deploy.core.errors import ArtifactError, UserInputError
    from sinet_deploy.verify.layerwise import layerwise

    with pytest.raises(ArtifactError):
        layerwise(tmp_path / "missing.tflite", tiny_qdq["images"])
    with pytest.raises(UserInputError):
        layerwise(tiny_qdq["path"], [])
    with pytest.raises(UserInputError):
        layerwise(tiny_qdq["path"], tiny_qdq["images"], reference=tmp_path / "x.onnx")


def test_diagnose_command(cli, tiny_qdq: dict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def,type-arg]
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, img in enumerate(tiny_qdq["images"][:2]):
        Image.fromarray(img[0]).save(folder / f"p{i}.png")
    res = cli("diagnose", tiny_qdq["path"], "--images", folder, "--json")
    assert res.code == 0, res.err
    data = res.json()
    assert data["num_images"] == 2 and data["matched_tensors"] >= 5 and "tensors" not in data
    res = cli("diagnose", tiny_qdq["path"], "--images", folder, "--top", "3")
    assert res.code == 0 and "lose the most SQNR" in res.out
    assert cli("diagnose", tmp_path / "missing.onnx").code == 2


def test_int8_converters_are_registered_and_refuse_raw_io(tmp_path: Path) -> None:
    from sinet_deploy.convert import onnx_int8, tflite_int8
    from sinet_deploy.convert.registry import ExportContext, Target, registered
    from sinet_deploy.core.errors import UserInputError

    reg = registered()
    assert ("tflite", "int8") in reg and ("onnx", "int8") in reg
    ctx = ExportContext("random", (64, 64), "raw", 17, None, tmp_path)
    for edge, fmt, suffix in ((tflite_int8, "tflite", ".tflite"), (onnx_int8, "onnx", ".onnx")):
        with pytest.raises(UserInputError):
            edge.convert(ctx, Target(fmt, "int8", tmp_path / f"x{suffix}"))


# --- the real SINet (slow) -------------------------------------------------------------------


@pytest.mark.slow
def test_sinet_int8_onnx_is_accurate(official_weights: Path, tmp_path: Path) -> None:
    from sinet_deploy.convert.calibration import CalibrationConfig, CalibrationSet, tensor_sha256
    from sinet_deploy.convert.quantize_onnx import convert_int8_onnx
    from sinet_deploy.runtimes.onnx_rt import OnnxSession
    from sinet_deploy.verify.tolerances import INT8_ACCEPTANCE
    from tests._int8_data import calib_split, score

    split = calib_split()
    calib = CalibrationSet(
        split["calib"], "folder", [], tensor_sha256(split["calib"]), CalibrationConfig()
    )
    dest = tmp_path / "sinet_int8.onnx"
    info = convert_int8_onnx("official", (224, 224), calib, dest, tmp_path)
    assert info["op_counts"].get("QuantizeLinear", 0) > 100
    stats = score(OnnxSession(dest, None), split)
    assert not INT8_ACCEPTANCE[("onnx", "int8")].failures(stats), stats
