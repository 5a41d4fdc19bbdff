"""ONNX → TFLite (onnx2tf, offline) and the LiteRT runtime: a tiny net, then the real SINet.

Every onnx2tf run costs tens of seconds on a small machine, so the tiny net is converted once
per module and the real SINet once per session (``exported_artifacts`` in conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sinet_deploy.convert.onnx_to_tflite import (
    SAMPLE_DATA_NAME,
    TFLiteConvertConfig,
    convert_onnx_to_tflite,
    read_embedded_metadata,
    run_logged,
    subprocess_env,
    write_sample_data,
)
from sinet_deploy.core.errors import ConversionError, UserInputError
from sinet_deploy.core.manifest import read_manifest
from sinet_deploy.models.preprocessing import list_images
from sinet_deploy.runtimes import load_session, torch_reference
from sinet_deploy.runtimes.litert_rt import analyze
from sinet_deploy.verify.gate import run_gate
from sinet_deploy.verify.tolerances import FP32_PROB_DIFF, tolerance_for
from tests._tiny import TinyNet
from tests.conftest import CALIB, need

pytest.importorskip("ai_edge_litert")


# --- fast: the offline machinery ---------------------------------------------------------


def test_child_env_is_offline_and_finds_onnxsim() -> None:
    env = subprocess_env()
    assert env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env["HTTPS_PROXY"].startswith("http://127.0.0.1:")
    code = (
        "import urllib.request as u\n"
        "try:\n u.urlopen('https://github.com', timeout=5)\nexcept Exception as e:\n"
        " print('blocked', type(e).__name__)\nelse:\n print('online')"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.startswith("blocked")


def test_sample_data_is_what_onnx2tf_expects(tmp_path: Path) -> None:
    path = write_sample_data(tmp_path)
    assert path.name == SAMPLE_DATA_NAME
    data = np.load(path)
    assert data.shape == (20, 128, 128, 3) and data.dtype == np.float32
    assert data.min() >= 0.0 and data.max() <= 1.0


def test_failed_tool_gives_one_line_and_keeps_the_log(tmp_path: Path) -> None:
    cmd = [sys.executable, "-c", "print('lots of output\\nERROR: the real reason'); exit(3)"]
    with pytest.raises(ConversionError, match="exit 3.*the real reason") as info:
        run_logged(cmd, tmp_path, 60)
    log = Path(str(info.value.hint).split("full log: ")[1])
    assert "lots of output" in log.read_text()
    log.unlink()


def test_config_rejects_unknown_precision() -> None:
    with pytest.raises(UserInputError, match="int4"):
        TFLiteConvertConfig(precisions=("fp32", "int4"))


# --- slow: one onnx2tf run on a tiny net with SINet's blocks --------------------------------


@pytest.fixture(scope="module")
def tiny_tflite(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from sinet_deploy.convert.torch_to_onnx import OnnxExportConfig, export_onnx

    folder = tmp_path_factory.mktemp("tiny_tflite")
    onnx_path = export_onnx(
        TinyNet(), folder / "tiny.onnx", OnnxExportConfig((1, 3, 32, 32), "uint8")
    )
    cfg = TFLiteConvertConfig(precisions=("fp32", "fp16", "int8w"), metadata={"hello": "world"})
    return convert_onnx_to_tflite(onnx_path, folder, cfg)


@pytest.mark.slow
def test_tiny_net_converts_to_clean_nhwc_graph(tiny_tflite: dict[str, Path]) -> None:
    assert set(tiny_tflite) == {"fp32", "fp16", "int8w"}
    x = np.random.default_rng(0).integers(0, 256, (1, 32, 32, 3), dtype=np.uint8)
    with torch.no_grad():
        expected = TinyNet()(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    expected = expected.transpose(0, 2, 3, 1)
    for precision, path in tiny_tflite.items():
        sess = load_session(path)
        spec_in, spec_out = sess.contract.inputs[0], sess.contract.outputs[0]
        assert (spec_in.name, spec_in.shape, spec_in.dtype) == ("image", (1, 32, 32, 3), "uint8")
        assert (spec_out.name, spec_out.shape) == ("foreground", (1, 32, 32, 1))
        assert sess.contract.io == "image"  # recognised from the signature alone
        facts = analyze(path)
        assert facts["transpose_ops"] == 0, facts["op_counts"]
        assert facts["xnnpack_compute_partitions"] == 1
        assert read_embedded_metadata(path) == {"hello": "world", "precision": precision}
        sig = sess.interpreter.get_signature_list()  # type: ignore[attr-defined]
        assert sig == {"serving_default": {"inputs": ["image"], "outputs": ["foreground"]}}
        diff = np.abs(sess(x) - expected).max()
        if precision == "fp32":
            bound = tolerance_for("tflite", "fp32").max_abs_prob_diff
            assert bound is not None and diff <= bound
        else:
            assert diff < 0.05  # reduced-precision weights: close, not exact


# --- slow: the real SINet (exported once per session) -------------------------------------


@pytest.mark.slow
def test_sinet_manifests(exported_artifacts: dict[str, Path]) -> None:
    for key, path in exported_artifacts.items():
        fmt, precision = key.split("/")
        assert path.name == f"sinet_224x224_{precision}.{fmt}"
        m = read_manifest(path)
        assert (m["format"], m["precision"]) == (fmt, precision)
        assert m["inputs"][0] == {
            "name": "image",
            "shape": [1, 224, 224, 3],
            "dtype": "uint8",
            "layout": "nhwc",
            "quantization": None,
        }
        assert m["outputs"][0]["name"] == "foreground"
        assert m["outputs"][0]["shape"] == [1, 224, 224, 1]
        assert m["source"]["checkpoint_sha256"].startswith("d164a964")
        assert m["preprocessing"]["mean_bgr"][0] == pytest.approx(107.304565)
        assert m["parity"]["passed"] is True and m["parity"]["images"]["num_images"] >= 2
        assert m["tools"]["onnx"] and m["options"]["io"] == "image"
        assert len(m["artifact_sha256"]) == 64
        json.dumps(m, allow_nan=False)  # strict JSON


@pytest.mark.slow
def test_sinet_tflite_graph_is_mobile_clean(exported_artifacts: dict[str, Path]) -> None:
    graph = read_manifest(exported_artifacts["tflite/fp32"])["graph"]
    assert graph["transpose_ops"] == 0
    assert graph["xnnpack_partitions"] == 1
    assert graph["undelegated_ops"] == {"CAST": 1}  # uint8 → float32 of the input only
    assert "BATCH_NORMALIZATION" not in graph["op_counts"]
    fp16 = read_manifest(exported_artifacts["tflite/fp16"])["graph"]
    assert fp16["transpose_ops"] == 0 and fp16["xnnpack_compute_partitions"] == 1


@pytest.mark.slow
def test_sinet_parity_on_calibration_portraits(exported_artifacts: dict[str, Path]) -> None:
    images = list_images(need(CALIB))[:4]
    ref = torch_reference("official", (224, 224))
    for key, path in exported_artifacts.items():
        fmt, precision = key.split("/")
        result = run_gate(load_session(path), ref, fmt=fmt, precision=precision, images=images)
        assert result.passed, result.message()
        if precision == "fp32":
            assert result.summary()["max_abs_prob_diff"] <= FP32_PROB_DIFF


@pytest.mark.slow
def test_sinet_non_square_size(official_weights: Path, tmp_path: Path) -> None:
    from sinet_deploy.convert.publish import export_artifacts

    report = export_artifacts(
        "official", formats=["tflite"], precisions=["fp32"], out_dir=tmp_path, input_size=(256, 320)
    )
    report.raise_for_failures()
    path = report.results[0].path
    assert path is not None and path.name == "sinet_256x320_fp32.tflite"
    sess = load_session(path)
    assert sess.input_size == (256, 320)
    m = read_manifest(path)
    assert m["inputs"][0]["shape"] == [1, 256, 320, 3]
    assert m["graph"]["transpose_ops"] == 0 and m["graph"]["xnnpack_partitions"] == 1
    assert m["parity"]["max_abs_prob_diff"] <= FP32_PROB_DIFF
