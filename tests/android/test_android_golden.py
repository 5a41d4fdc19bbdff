"""Golden data for the Android demo's JVM-tested core (``sinet_deploy.android.golden``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sinet_deploy.android import golden as ag
from sinet_deploy.models.preprocessing import image_input
from sinet_deploy.verify.tolerances import FP32_PROB_DIFF, quant_steps, ulps
from tests.conftest import GOLDEN, SHARED, SHARED_WEIGHTS, need

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "android_demo" / "core" / "src" / "test" / "resources" / "golden"


def test_to_display_turns_clockwise_then_mirrors() -> None:
    # The same 2x3 frame as the Kotlin CoreUnitTest: pixel value = index.
    frame = np.arange(6).reshape(2, 3)
    assert ag.to_display(frame, 0, False).ravel().tolist() == [0, 1, 2, 3, 4, 5]
    assert ag.to_display(frame, 90, False).ravel().tolist() == [3, 0, 4, 1, 5, 2]
    assert ag.to_display(frame, 180, False).ravel().tolist() == [5, 4, 3, 2, 1, 0]
    assert ag.to_display(frame, 270, False).ravel().tolist() == [2, 5, 1, 4, 0, 3]
    assert ag.to_display(frame, 90, True).ravel().tolist() == [0, 3, 1, 4, 2, 5]
    with pytest.raises(ValueError):
        ag.to_display(frame, 45, False)


def test_input_tensor_quantizes_half_to_even_and_clamps() -> None:
    levels = np.array([[[1, 3, 5], [0, 255, 200]]], dtype=np.uint8)  # [H=1, W=2, 3]
    q = ag.input_tensor(levels, "uint8", {"scale": 2.0, "zero_point": 3})
    # rint(0.5)=0, rint(1.5)=2, rint(2.5)=2 (half to even), then + 3; 255/2 -> 128 + 3 = 131
    assert q[0, 0, 0].tolist() == [3, 5, 5]
    assert q[0, 0, 1].tolist() == [3, 131, 103]
    s8 = ag.input_tensor(levels, "int8", ag.INT8_PIXELS)
    assert s8.dtype == np.int8 and s8[0, 0, 1].tolist() == [-128, 127, 72]
    nchw = ag.input_tensor(levels, "uint8", None, "nchw")
    assert nchw.shape == (1, 3, 1, 2) and nchw[0, :, 0, 1].tolist() == [0, 255, 200]
    f = ag.input_tensor(levels, "float32", None)
    assert f.dtype == np.float32 and f[0, 0, 1, 1] == 255.0
    with pytest.raises(ValueError):
        ag.input_tensor(levels, "int8", None)


@pytest.mark.parametrize(
    "dtype,quant",
    [("uint8", ag.UINT8_PROB), ("int8", ag.INT8_PROB), ("float16", None), ("float32", None)],
)
def test_quantized_outputs_dequantize_within_half_a_step(dtype: str, quant: Any) -> None:
    prob = np.random.default_rng(0).random((5, 7), dtype=np.float32)
    raw = ag.quantize_probability(prob, dtype, quant)
    assert raw.dtype == np.dtype(dtype)
    back = ag.dequantize(raw, quant)
    assert back.dtype == np.float32
    # Half a step of the output's own resolution: a quantization step, or half an ulp of the
    # float dtype at the value (0 for float32, which is stored as is).
    half = quant_steps(quant["scale"], 0.5) if quant else ulps(prob, dtype, 0.5)
    assert (np.abs(back.astype(np.float64) - prob) <= half + ulps(prob, np.float32)).all()


def test_smoothing_and_alpha() -> None:
    frames = [np.full((2, 2), 1.0, np.float32), np.zeros((2, 2), np.float32)]
    out = ag.smooth(frames, 0.25)
    assert out[0].tolist() == frames[0].tolist()  # the first frame is taken as is
    assert np.allclose(out[1], 0.75)
    alpha = ag.alpha_from_probability(np.array([-0.1, 0.0, 0.5, 1.0, 1.3], np.float32))
    assert alpha.tolist() == [0, 0, 128, 255, 255]  # 127.5 rounds half to even


def test_manifest_summary_reads_the_exporters_lower_case_layout() -> None:
    m = ag.demo_manifest(
        64,
        32,
        in_dtype="int8",
        in_quant=ag.INT8_PIXELS,
        out_dtype="uint8",
        out_quant=ag.UINT8_PROB,
        layout="nchw",
    )
    s = ag.manifest_summary(m)
    assert (s["input_height"], s["input_width"], s["input_layout"]) == (64, 32, "NCHW")
    assert s["input_quantization"] == [1.0, -128]
    assert s["output_quantization"] == [pytest.approx(1 / 255), 0]


def _check_index(out: Path, index: dict[str, Any]) -> None:
    """Every file named in cases.json exists with the size its dtype and shape say."""
    listed = json.loads((out / "cases.json").read_text())
    assert listed["schema"] == ag.SCHEMA

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node and "shape" in node:
                size = int(np.prod(node["shape"])) * np.dtype(node["dtype"]).itemsize
                assert (out / node["file"]).stat().st_size == size, node
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(listed)
    for case in listed["manifests"]:
        assert (out / case["manifest"]).is_file()
    assert {k: len(index[k]) for k in ("preprocess", "pipeline")} == {
        "preprocess": len(listed["preprocess"]),
        "pipeline": len(listed["pipeline"]),
    }


def test_compact_set_is_consistent_and_small(tmp_path: Path) -> None:
    index = ag.generate(tmp_path, profile="compact", reference=False)
    _check_index(tmp_path, index)
    assert index["total_bytes"] < 1_000_000  # the committed fallback must stay small
    assert "synthetic" in index["probability_source"]
    # The end-to-end frame really is a front-camera portrait frame: rotated and mirrored, its
    # display is upright, and the stored model input is image_input of that display.
    e2e = index["frames"]["e2e"]
    w, h, stride = e2e["width"], e2e["height"], e2e["rgba"]["row_stride"]
    rows = np.fromfile(tmp_path / e2e["rgba"]["file"], np.uint8).reshape(h, stride)
    sensor = rows[:, : w * 4].reshape(h, w, 4)[..., :3]
    display = ag.to_display(sensor, 90, True)
    stored = np.fromfile(tmp_path / e2e["display"]["file"], np.uint8)
    assert np.array_equal(stored.reshape(display.shape), display)
    case = index["pipeline"][0]
    levels = np.fromfile(tmp_path / case["levels"]["file"], np.uint8)
    assert np.array_equal(levels, image_input(display, 64, 64).ravel())


def test_cli_prints_a_summary(tmp_path: Path, cli: Any) -> None:
    res = cli("android-golden", tmp_path / "g", "--profile", "compact", "--weights", "none")
    assert res.code == 0
    summary = json.loads(res.out)
    assert summary["profile"] == "compact" and summary["cases"]["preprocess"] == 15


def test_cli_reports_a_missing_artifact_in_one_line(tmp_path: Path, cli: Any) -> None:
    res = cli(
        "android-golden",
        tmp_path / "g",
        "--profile",
        "compact",
        "--weights",
        "none",
        "--artifact",
        tmp_path / "nope.tflite",
    )
    err = res.err.strip()
    assert res.code == 2 and len(err.splitlines()) == 1 and "nope" in err


def test_committed_fallback_matches_the_generator(tmp_path: Path) -> None:
    """android_demo's committed golden set is what the generator makes today.

    Inputs, tensors and manifests must be byte-identical; files derived from the PyTorch output
    may differ by float rounding across CPUs, so they are compared with a tolerance.
    """
    need(GOLDEN / "astronaut.png")
    need(SHARED_WEIGHTS)
    if not (COMMITTED / "cases.json").is_file():
        pytest.fail(
            f"{COMMITTED} is missing: run sinet-deploy android-golden {COMMITTED} --profile compact"
        )
    fresh = tmp_path / "fresh"
    ag.generate(fresh, profile="compact", shared=SHARED, weights=SHARED_WEIGHTS)
    fresh_index = json.loads((fresh / "cases.json").read_text())
    committed_index = json.loads((COMMITTED / "cases.json").read_text())
    assert fresh_index == committed_index, "cases.json changed: regenerate the committed set"
    dtypes: dict[str, str] = {}

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                dtypes[node["file"]] = node["dtype"]
            for v in node.values():
                collect(v)
        elif isinstance(node, list):
            for v in node:
                collect(v)

    collect(fresh_index)
    model_derived = ("e2e_", "post_", "ema_")
    for path in sorted(fresh.iterdir()):
        old = COMMITTED / path.name
        assert old.is_file(), f"{path.name} missing from the committed set"
        if not path.name.startswith(model_derived) or path.suffix in (".levels", ".tensor"):
            assert path.read_bytes() == old.read_bytes(), path.name
            continue
        dtype = np.dtype(dtypes[path.name])
        a, b = np.fromfile(path, dtype), np.fromfile(old, dtype)
        if dtype.kind == "f":
            # The generator's float32 probability may move by the fp32 bound between CPUs; a
            # case whose model output is fp16 then rounds it, which can land one fp16 ulp (at
            # the value) further, and every file derived from that output inherits the ulp. A
            # bilinear upscale mixes neighbours of up to twice the value's binade: 2 ulps.
            a64, b64 = a.astype(np.float64), b.astype(np.float64)
            resolution = np.float16 if "float16" in path.name else dtype
            bound = FP32_PROB_DIFF + ulps(np.maximum(np.abs(a64), np.abs(b64)), resolution, 2)
            assert (np.abs(a64 - b64) <= bound).all(), path.name
        else:  # alpha and quantized outputs: at most one level
            assert np.abs(a.astype(int) - b.astype(int)).max() <= 1, path.name
    assert sorted(p.name for p in COMMITTED.iterdir()) == sorted(p.name for p in fresh.iterdir())


@pytest.mark.slow
def test_real_artifact_becomes_a_pipeline_case(
    tmp_path: Path, exported_artifacts: dict[str, Path]
) -> None:
    """LiteRT on the exported model, through the generator: its mask agrees with PyTorch's."""
    need(GOLDEN / "astronaut.png")
    art = exported_artifacts["tflite/fp32"]
    index = ag.generate(
        tmp_path, profile="full", shared=SHARED, weights=SHARED_WEIGHTS, artifacts=(art,)
    )
    _check_index(tmp_path, index)
    cases = {c["name"]: c for c in index["pipeline"]}
    real = cases[f"artifact_{art.stem}"]
    assert "LiteRT" in real["source"]
    assert any(m["real"] for m in index["manifests"])
    torch_alpha = np.fromfile(tmp_path / cases["e2e_float32"]["alpha"]["file"], np.uint8)
    litert_alpha = np.fromfile(tmp_path / real["alpha"]["file"], np.uint8)
    # Same input bytes; fp32 TFLite vs PyTorch differ by float rounding only.
    assert np.abs(torch_alpha.astype(int) - litert_alpha.astype(int)).max() <= 2
