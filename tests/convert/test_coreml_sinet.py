"""The real SINet through ``export --formats coreml``: fp32, fp16 and int8 ML programs.

One export per session (the pipeline: convert → reference-evaluator gate → publish with a
manifest); every test reads those artifacts. Numbers come from the MIL reference evaluator
(``coreml-reference``), gates from the tolerance registry.
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import CALIB, need

pytest.importorskip("coremltools", reason="the coreml extra (coremltools) is not installed")

from sinet_deploy.runtimes import load_session, torch_reference
from sinet_deploy.runtimes.coreml_rt import CoreMLSession, coreml_available
from sinet_deploy.runtimes.mil_eval import load_program
from sinet_deploy.runtimes.mil_eval.inspect import conv_weight_sources
from sinet_deploy.verify.metrics import aggregate, compare
from sinet_deploy.verify.tolerances import tolerance_for

pytestmark = pytest.mark.slow
PRECISIONS = ("fp32", "fp16", "int8")
N_CALIB = 3


@pytest.fixture(scope="session")
def coreml_artifacts(
    official_weights: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The official SINet exported once to CoreML fp32/fp16/int8 at 224x224."""
    from sinet_deploy.convert.publish import export_artifacts

    out = tmp_path_factory.mktemp("coreml_224")
    report = export_artifacts(
        "official", formats=("coreml",), precisions=PRECISIONS, out_dir=out, input_size=(224, 224)
    )
    report.raise_for_failures()
    return {r.precision: r.path for r in report.results if r.path is not None}


def test_artifacts_and_manifests(coreml_artifacts: dict[str, Path]) -> None:
    assert sorted(coreml_artifacts) == sorted(PRECISIONS)
    for precision, path in coreml_artifacts.items():
        assert path.name == f"sinet_224x224_{precision}.mlpackage" and path.is_dir()
        manifest = json.loads(path.with_suffix(".json").read_text())
        assert (manifest["format"], manifest["precision"]) == ("coreml", precision)
        assert manifest["inputs"][0] == {
            "name": "image",
            "shape": [1, 224, 224, 3],
            "dtype": "uint8",
            "layout": "nhwc",
            "quantization": None,
        }
        assert manifest["outputs"][0]["name"] == "foreground"
        assert manifest["outputs"][0]["shape"] == [1, 224, 224, 1]
        assert manifest["options"]["deployment_target"] == "iOS16"
        assert manifest["parity"]["passed"] is True
        assert manifest["parity"]["runtime"] in ("coreml-reference", "coreml")
        assert manifest["graph"]["conv_ops"] == 61
        assert manifest["graph"]["conv_weights_int8"] == (61 if precision == "int8" else 0)
        assert not list(path.parent.glob(".*"))  # no temporary leftovers


def test_int8_program_every_conv_weight_from_an_int8_constexpr(
    coreml_artifacts: dict[str, Path],
) -> None:
    sources = conv_weight_sources(load_program(coreml_artifacts["int8"]))
    assert len(sources) == 61
    not_int8 = [s for s in sources if not s.int8]
    assert not not_int8, not_int8
    assert {s.producer for s in sources} == {"constexpr_affine_dequantize"}  # iOS16 target


def _calib_stats(paths: dict[str, Path]) -> dict[str, dict[str, Any]]:
    from sinet_deploy.models.preprocessing import list_images, load_input

    images = list_images(need(CALIB))[:N_CALIB]
    reference = torch_reference("official", (224, 224))
    sessions = {p: load_session(path) for p, path in paths.items()}
    rows: dict[str, list[dict[str, float]]] = {p: [] for p in paths}
    for image in images:
        x = load_input(image, 224, 224)
        ref = reference(x)
        for p, s in sessions.items():
            rows[p].append(compare(ref, s(x)))
    return {p: aggregate(r) for p, r in rows.items()}


def test_evaluator_matches_pytorch_on_calibration_images(coreml_artifacts: dict[str, Path]) -> None:
    for precision, stats in _calib_stats(coreml_artifacts).items():
        assert not tolerance_for("coreml", precision).failures(stats), (precision, stats)


def test_corrupted_weights_make_parity_fail_with_exit_3(
    coreml_artifacts: dict[str, Path], tmp_path: Path, cli: Any
) -> None:
    src = coreml_artifacts["fp32"]
    bad = tmp_path / src.name
    shutil.copytree(src, bad)
    shutil.copyfile(src.with_suffix(".json"), bad.with_suffix(".json"))
    weights = bad / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    data = bytearray(weights.read_bytes())
    # Flip one bit (the exponent's top bit) in 16 values of every 8th blob: data, not headers.
    offset, flipped = 64, 0
    while offset + 64 <= len(data):
        sentinel, _, size, data_offset, _ = struct.unpack_from("<IIQQQ", data, offset)
        assert sentinel == 0xDEADBEEF
        if flipped % 8 == 0:
            for i in range(min(16, size // 4)):
                data[data_offset + 4 * i + 3] ^= 0x40
        flipped += 1
        offset = data_offset + ((size + 63) // 64) * 64
    weights.write_bytes(bytes(data))
    result = cli("parity", bad, "--json")
    assert result.code == 3, (result.out, result.err)
    row = json.loads(result.out)["results"][0]
    assert row["passed"] is False and row["runtime"] in ("coreml-reference", "coreml")
    good = cli("parity", src, "--json")
    assert good.code == 0, (good.out, good.err)


def test_coreml_prediction_agrees_with_the_evaluator_on_macos(
    coreml_artifacts: dict[str, Path],
) -> None:
    available, why = coreml_available()
    if not available:
        pytest.skip(f"Core ML prediction needs macOS: {why}")
    from sinet_deploy.models.preprocessing import list_images, load_input

    x = load_input(list_images(need(CALIB))[0], 224, 224)
    for precision, path in coreml_artifacts.items():
        apple = CoreMLSession(path, None, provider="cpu")(x)
        ours = CoreMLSession(path, None, provider="reference")(x)
        stats = aggregate([compare(ours, apple)])
        assert not tolerance_for("coreml", precision).failures(stats), (precision, stats)
        assert np.isfinite(apple).all()
