"""ExecuTorch (.pte): the converter and the session on tiny models; the real SINet (slow)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sinet_deploy.core.errors import ArtifactError, UserInputError
from sinet_deploy.verify.metrics import aggregate, compare
from sinet_deploy.verify.tolerances import FP32_PROB_DIFF, tolerance_for
from tests.conftest import CALIB, need

pytest.importorskip("executorch", reason="the executorch extra is not installed")

import torch
from torch import nn

from tests._tiny import TinyNet

SIZE = 32


class TinyImage(nn.Module):
    """TinyNet with the artifacts' I/O: uint8 RGB NHWC in, probability NHWC out."""

    def __init__(self) -> None:
        super().__init__()
        self.net = TinyNet()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.net(image.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def _manifest(precision: str) -> dict[str, Any]:
    return {
        "format": "executorch",
        "precision": precision,
        "input_size": [SIZE, SIZE],
        "options": {"io": "image"},
        "inputs": [
            {"name": "image", "shape": [1, SIZE, SIZE, 3], "dtype": "uint8", "layout": "nhwc"}
        ],
        "outputs": [
            {
                "name": "foreground",
                "shape": [1, SIZE, SIZE, 1],
                "dtype": "float32",
                "layout": "nhwc",
            }
        ],
    }


def _images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, SIZE, SIZE, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def tiny_pte(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """fp32 and int8 programs of the tiny model, lowered once for this module."""
    from sinet_deploy.convert.torch_to_executorch import (
        lower_to_pte,
        quantize_int8,
        to_torch_batches,
    )
    from sinet_deploy.core.manifest import write_manifest

    out = tmp_path_factory.mktemp("tiny_pte")
    module = TinyImage().eval()
    example = torch.from_numpy(_images(1))
    fp32 = out / "tiny_fp32.pte"
    facts = {"fp32": lower_to_pte(module, example, fp32)}
    write_manifest(fp32, _manifest("fp32"))
    qmod = quantize_int8(module, example, to_torch_batches(_images(16, seed=1)))
    int8 = out / "tiny_int8.pte"
    facts["int8"] = lower_to_pte(qmod, example, int8)
    write_manifest(int8, _manifest("int8"))
    return {"module": module, "fp32": fp32, "int8": int8, "facts": facts}


def test_fp32_program_matches_torch_through_load_session(tiny_pte: dict[str, Any]) -> None:
    from sinet_deploy.runtimes import load_session

    session = load_session(tiny_pte["fp32"])
    assert session.runtime == "executorch" and session.input_size == (SIZE, SIZE)
    assert [s.name for s in session.contract.inputs] == ["image"]
    assert session.contract.inputs[0].dtype == "uint8"
    assert session.contract.outputs[0].dtype == "float32"
    for image in _images(3, seed=2):
        x = image[None]
        want = tiny_pte["module"](torch.from_numpy(x)).detach().numpy()
        got = session(x)
        assert got.shape == (1, SIZE, SIZE, 1)
        assert float(np.abs(got - want).max()) <= FP32_PROB_DIFF


def test_fp32_delegation_is_recorded(tiny_pte: dict[str, Any]) -> None:
    facts = tiny_pte["facts"]["fp32"]
    assert facts["backend"] == "XnnpackBackend" and facts["delegated_subgraphs"] >= 1
    assert facts["delegated_ops"] == sum(facts["delegated_op_counts"].values()) > 0
    assert facts["portable_ops"] == sum(facts["portable_op_counts"].values())
    # the convolutions are XNNPACK's, never the portable reference kernels
    assert any("convolution" in op for op in facts["delegated_op_counts"])
    assert not any("convolution" in op for op in facts["portable_op_counts"])


def test_int8_program_keeps_the_io_contract(tiny_pte: dict[str, Any]) -> None:
    """The uint8 image and float probability stay as they are around the quantized body, and
    the mask stays within the int8 gate's pixel agreement of the float module."""
    from sinet_deploy.runtimes import load_session

    facts = tiny_pte["facts"]["int8"]
    assert any("convolution" in op for op in facts["delegated_op_counts"])
    assert not any("convolution" in op for op in facts["portable_op_counts"])
    session = load_session(tiny_pte["int8"])
    assert session.contract.inputs[0].dtype == "uint8"
    assert session.contract.outputs[0].dtype == "float32"
    images = _images(8, seed=1)  # calibration images: ranges cover them
    stats = []
    for image in images:
        x = image[None]
        want = tiny_pte["module"](torch.from_numpy(x)).detach().numpy()
        got = session(x)
        assert np.isfinite(got).all() and got.min() >= 0.0 and got.max() <= 1.0
        stats.append(compare(want, got))
    bound = tolerance_for("executorch", "int8").pixel_agreement
    assert bound is not None and aggregate(stats)["pixel_agreement"] >= bound


class TinyLogit(nn.Module):
    """A 1x1 conv whose logits span about ±40, then the sigmoid (SINet's probability head)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 1, 1)
        with torch.no_grad():
            self.conv.weight.fill_(13.0)
            self.conv.bias.fill_(0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.conv(x))


def test_logit_clip_limits_the_sigmoid_input_range_and_refines_the_mask_boundary() -> None:
    """Clipping the observer before the sigmoid to ±8 saturates only where the sigmoid is flat
    and gives the boundary a finer step: the int8 probability error drops."""
    from sinet_deploy.convert.torch_to_executorch import ExecuTorchConfig, quantize_int8

    gen = torch.Generator().manual_seed(0)
    calib = [torch.rand(1, 3, 8, 8, generator=gen) * 2 - 1 for _ in range(8)]
    module = TinyLogit().eval()
    errors = {}
    for clip in (0.0, 8.0):
        report: dict[str, Any] = {}
        q = quantize_int8(module, calib[0], calib, logit_clip=clip, report=report)
        assert report["sigmoid_inputs_clipped"] == (1 if clip else 0)
        with torch.no_grad():
            errors[clip] = max(float((q(x) - module(x)).abs().max()) for x in calib)
    # (the input's own int8 step limits the gain: measured 0.045 -> 0.026)
    assert errors[8.0] < 0.7 * errors[0.0], errors
    with pytest.raises(UserInputError, match="logit_clip"):
        ExecuTorchConfig(precision="int8", logit_clip=-1.0)
    with pytest.raises(UserInputError, match="precision"):
        ExecuTorchConfig(precision="fp16")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="observer"):
        ExecuTorchConfig(precision="int8", observer="percentile")  # type: ignore[arg-type]


def test_threads_and_provider_are_checked(tiny_pte: dict[str, Any]) -> None:
    from executorch.extension.pybindings import portable_lib

    from sinet_deploy.runtimes import load_session

    # The pool is per process and sized by the first session (resizing it under a loaded
    # program crashes ExecuTorch 1.5.1): a later session reports the pool's real size.
    session = load_session(tiny_pte["fp32"], threads=2)
    assert session.threads == portable_lib._threadpool_get_thread_count()  # type: ignore[attr-defined]
    with pytest.raises(UserInputError, match="provider"):
        load_session_provider(tiny_pte["fp32"], "gpu")


def load_session_provider(path: Path, provider: str) -> Any:
    from sinet_deploy.runtimes import load_session

    return load_session(path, provider=provider)


@pytest.mark.parametrize(
    "content",
    [
        b"not an executorch program at all" * 4,
        b"\x3c\x00\x00\x00ET12" + b"\x00" * 60,  # right header, nothing behind it
    ],
    ids=["garbage", "header-only"],
)
def test_corrupt_program_is_an_artifact_error(tmp_path: Path, content: bytes) -> None:
    from sinet_deploy.runtimes import load_session

    bad = tmp_path / "broken.pte"
    bad.write_bytes(content)
    with pytest.raises(ArtifactError, match=r"broken\.pte"):
        load_session(bad)


def test_truncated_program_is_an_artifact_error(tiny_pte: dict[str, Any], tmp_path: Path) -> None:
    from sinet_deploy.runtimes import load_session

    data = tiny_pte["fp32"].read_bytes()
    cut = tmp_path / "cut.pte"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match=r"cut\.pte"):
        load_session(cut)


def test_corrupt_pte_on_the_cli_is_one_line_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "broken.pte"
    bad.write_bytes(b"\x00" * 256)
    for args in (
        ("parity", bad),
        ("predict", need_image(), "--model", bad, "--out", tmp_path / "o"),
        ("bench", bad, "--no-torch", "--no-cuda", "--runs", "1"),
    ):
        res = cli(*args)
        assert res.code == 2, (args, res.err)
        assert "broken.pte" in res.err and "Traceback" not in res.err
        assert len(res.err.strip().splitlines()) == 1, res.err


def need_image() -> Path:
    from sinet_deploy.convert.calibration import builtin_portraits

    return builtin_portraits()[0]


def test_export_lists_executorch() -> None:
    from sinet_deploy.convert.registry import FORMATS, registered
    from sinet_deploy.core.manifest import artifact_name

    assert "executorch" in FORMATS
    assert {("executorch", "fp32"), ("executorch", "int8")} <= set(registered())
    assert artifact_name(224, 224, "fp32", "executorch") == "sinet_224x224_fp32.pte"


# --- the real SINet (slow) --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sinet_pte(official_weights: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``export --formats executorch --precisions fp32,int8`` on 8 calibration portraits."""
    from sinet_deploy.cli.app import main

    calib = tmp_path_factory.mktemp("calib8")
    for src in sorted(need(CALIB).glob("*.jpg"))[:8]:
        os.symlink(src, calib / src.name)
    out = tmp_path_factory.mktemp("pte_out")
    try:
        main(
            [
                "export",
                "--formats",
                "executorch",
                "--precisions",
                "fp32,int8",
                "--calib",
                str(calib),
                "--out",
                str(out),
                "--json",
            ]
        )
    except SystemExit as exc:
        assert exc.code in (0, None), f"export exited {exc.code}"
    return {p: out / "executorch" / f"sinet_224x224_{p}.pte" for p in ("fp32", "int8")}


@pytest.mark.slow
def test_real_export_writes_two_programs_with_manifests(sinet_pte: dict[str, Path]) -> None:
    for precision, path in sinet_pte.items():
        assert path.is_file(), path
        manifest = json.loads(path.with_suffix(".json").read_text())
        assert manifest["format"] == "executorch" and manifest["precision"] == precision
        assert manifest["parity"]["passed"]
        graph = manifest["graph"]
        assert graph["delegated_ops"] > 0 and graph["delegated_subgraphs"] >= 1
        assert manifest["tools"]["executorch"]
        assert manifest["inputs"][0]["dtype"] == "uint8"
        assert manifest["outputs"][0]["dtype"] == "float32"
    options = json.loads(sinet_pte["int8"].with_suffix(".json").read_text())["options"]
    assert "calibration" in options
    # the final logit (the one sigmoid input not behind an upsample) is the clipped range
    assert options["activation_observer"] == "minmax" and options["sigmoid_inputs_clipped"] == 1
    leftovers = [p.name for p in sinet_pte["fp32"].parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.slow
def test_real_fp32_program_matches_the_official_model(sinet_pte: dict[str, Path]) -> None:
    from sinet_deploy import load_model
    from sinet_deploy.models.preprocessing import load_input, normalize_rgb
    from sinet_deploy.runtimes import load_session

    model = load_model("official")
    session = load_session(sinet_pte["fp32"])
    for path in sorted(CALIB.glob("*.jpg"))[8:12]:
        image = load_input(path, 224, 224)
        with torch.no_grad():
            logits = model(torch.from_numpy(normalize_rgb(image)))
        want = torch.softmax(logits, dim=1)[:, 1:2].permute(0, 2, 3, 1).numpy()
        got = session(image)
        assert float(np.abs(got - want).max()) <= FP32_PROB_DIFF


@pytest.mark.slow
def test_real_parity_and_bench_beside_tflite(
    cli,
    sinet_pte: dict[str, Path],
    exported_artifacts: dict[str, Path],
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    res = cli("parity", sinet_pte["fp32"], sinet_pte["int8"], "--json")
    assert res.code == 0, res.err
    rows = res.json()["results"]
    assert [r["runtime"] for r in rows] == ["executorch", "executorch"]
    assert all(r["passed"] for r in rows)
    res = cli(
        "bench",
        sinet_pte["fp32"],
        exported_artifacts["tflite/fp32"],
        "--no-torch",
        "--no-cuda",
        "--threads",
        "1",
        "--runs",
        "4",
        "--warmup",
        "1",
        "--json",
    )
    assert res.code == 0, res.err
    measured = {r["name"]: r for r in res.json()["results"] if not r["skipped"]}
    assert measured["sinet_224x224_fp32.pte"]["runtime"] == "executorch"
    assert measured["sinet_224x224_fp32.tflite"]["runtime"] == "litert"
    assert all(r["median_ms"] > 0 for r in measured.values())
    # The roofline: each runtime's ceiling measured beside, and SINet's share of it.
    ceilings = {c["runtime"]: c for c in res.json()["ceilings"]}
    assert set(ceilings) == {"executorch", "litert"}
    assert all(c["gmac_per_s"] > 0 for c in ceilings.values())
    assert all(r["ceiling_share"] > 0 for r in measured.values())
