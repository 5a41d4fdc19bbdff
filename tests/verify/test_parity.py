"""The parity matrix: aggregation, gates from the registry, pairs, overlays, the CLI's exit 3."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sinet_deploy.core.errors import UserInputError
from sinet_deploy.verify.overlays import densest_window, overlay_image
from sinet_deploy.verify.parity import default_images, run_parity
from sinet_deploy.verify.tolerances import FP32_PROB_DIFF, tolerance_for
from tests.benchmark.test_bench import tiny_onnx
from tests.fake_sessions import ProbSession, brightness


def _ref(size: tuple[int, int]) -> ProbSession:
    return ProbSession("ref", brightness, size)


def _images() -> list[Path]:
    images, _ = default_images()
    assert len(images) >= 2
    return images


def test_identical_session_passes_and_a_wrong_one_fails_naming_itself(tmp_path: Path) -> None:
    good = ProbSession("good.onnx", brightness)
    bad = ProbSession("bad.onnx", lambda x: 1.0 - brightness(x))
    rep = run_parity(
        [good, bad],
        _images(),
        _ref,
        overlay_dir=tmp_path / "overlays",
        paths=["/a/good.onnx", "/a/bad.onnx"],
    )
    assert not rep.passed and rep.failed == ["bad.onnx"]
    data = rep.to_dict()
    g, b = data["results"]
    assert g["passed"] is True and g["mean_iou"] == 1.0 and g["max_abs_prob_diff"] == 0.0
    assert g["sqnr_db"] is None  # infinite SQNR (identical) is null in JSON
    assert g["overlays"] == []  # nothing differs: nothing to draw
    assert b["passed"] is False and b["failures"] and "max |Δ prob|" in b["failures"][0]
    assert b["tolerance"] == tolerance_for("onnx", "fp32").as_dict()
    assert b["images"] == len(_images()) == len(b["per_image"])
    assert b["min_iou"] <= b["mean_iou"] < 1.0
    assert b["worst_image"] in {p.name for p in _images()}
    assert b["path"] == "/a/bad.onnx"
    # overlays of the worst images, worst first, as real PNG files
    assert 1 <= len(b["overlays"]) <= 3
    ious = [o["iou"] for o in b["overlays"]]
    assert ious == sorted(ious) and b["overlays"][0]["image"] == b["worst_image"]
    for o in b["overlays"]:
        png = tmp_path / o["file"]
        assert png.is_file() and Image.open(png).format == "PNG"
    assert not list((tmp_path / "overlays").glob(".*"))  # no temp files left behind


def test_precision_picks_its_own_tolerance() -> None:
    # A small mask change fails fp32's max |Δp| bound but passes a looser int8 mask bound.
    def nudged(x: np.ndarray) -> np.ndarray:
        return np.clip(brightness(x) + 0.002, 0, 1)

    fp32 = ProbSession("a_fp32.tflite", nudged, fmt="tflite", precision="fp32")
    int8 = ProbSession("a_int8.tflite", nudged, fmt="tflite", precision="int8")
    rep = run_parity([fp32, int8], _images(), _ref)
    assert rep.failed == ["a_fp32.tflite"]


def test_pairs_compare_artifacts_of_the_same_size_without_a_gate() -> None:
    a = ProbSession("a.onnx", brightness)
    b = ProbSession("b.onnx", lambda x: 1.0 - brightness(x))
    c = ProbSession("c.onnx", brightness, size=(64, 64))
    rep = run_parity([a, b, c], _images()[:1], _ref, pairs=True)
    pairs = rep.to_dict()["pairs"]
    assert [(p["against"], p["artifact"]) for p in pairs] == [("a.onnx", "b.onnx")]
    assert pairs[0]["passed"] is None and pairs[0]["mean_iou"] < 1.0
    assert rep.failed == ["b.onnx"]  # pairs never fail the command


def test_sizes_are_respected_per_artifact() -> None:
    seen: list[tuple[int, ...]] = []

    def record(x: np.ndarray) -> np.ndarray:
        seen.append(x.shape)
        return brightness(x)

    run_parity([ProbSession("s.onnx", record, size=(64, 96))], _images()[:1], _ref)
    assert seen == [(1, 64, 96, 3)]


def test_artifact_without_a_registered_tolerance_is_a_user_error() -> None:
    with pytest.raises(UserInputError, match="format/precision"):
        run_parity([ProbSession("peer.tflite", brightness, fmt=None)], _images(), _ref)
    with pytest.raises(UserInputError, match="no parity tolerance"):
        run_parity([ProbSession("x.onnx", brightness, precision="fp7")], _images(), _ref)
    with pytest.raises(UserInputError):
        run_parity([ProbSession("x.onnx", brightness)], [], _ref)


def test_overlay_colours_say_who_saw_foreground() -> None:
    rgb = np.full((32, 32, 3), 128, np.uint8)
    ref = np.zeros((32, 32), bool)
    test = np.zeros((32, 32), bool)
    ref[10, 10] = True  # the artifact missed it → red
    test[20, 20] = True  # only the artifact → blue
    ref[27, 4] = test[27, 4] = True  # both → green tint, neither red nor blue
    im = np.asarray(overlay_image(rgb, ref, test, min_side=32))
    assert im.shape == (32, 32 + 8 + 32, 3)  # the image, a gap, the enlarged box
    full = im[:, :32]
    assert tuple(full[10, 10]) == (230, 25, 25)
    assert tuple(full[20, 20]) == (30, 90, 255)
    assert full[27, 4, 1] > full[27, 4, 0] and full[27, 4, 1] > full[27, 4, 2]
    assert tuple(full[0, 0]) == tuple(full[31, 31]) != (255, 210, 0)  # plain background
    assert (full == (255, 210, 0)).all(axis=-1).any()  # the box around them is outlined
    zoom = im[:, 40:]
    flipped = (zoom == (230, 25, 25)).all(axis=-1) | (zoom == (30, 90, 255)).all(axis=-1)
    assert flipped.sum() >= 4 * 4  # one 8x8 window of the 32x32 image, enlarged 4x
    same = np.asarray(overlay_image(rgb, ref, ref, min_side=32))
    assert same.shape == (32, 32, 3)  # nothing differs: no zoom panel


def test_zoom_window_finds_the_densest_cluster_of_disagreements() -> None:
    mask = np.zeros((64, 80), bool)
    mask[3, 70] = True  # a stray pixel
    mask[40:46, 20:25] = True  # the cluster
    top, left, side = densest_window(mask, 16)
    assert side == 16
    assert top <= 40 and top + side >= 46 and left <= 20 and left + side >= 25
    assert densest_window(mask, 500)[2] == 64  # never larger than the image


# --- the CLI --------------------------------------------------------------------------------


def test_parity_cli_exit_3_names_the_failing_artifact(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A tiny ONNX 'artifact' that is not SINet fails against the (random-weights) reference."""
    art = tiny_onnx(tmp_path / "tiny_32.onnx", size=32)
    images = tmp_path / "imgs"
    images.mkdir()
    for p in _images():
        shutil.copy(p, images / p.name)
    res = cli(
        "parity",
        art,
        "--images",
        images,
        "--weights",
        "random",
        "--json",
        "--report",
        tmp_path / "rep",
    )
    assert res.code == 3, res.err
    data = res.json()
    (row,) = data["results"]
    assert row["artifact"] == "tiny_32.onnx" and row["passed"] is False
    assert {
        "artifact",
        "runtime",
        "mean_iou",
        "min_iou",
        "pixel_agreement",
        "max_abs_prob_diff",
        "passed",
    } <= row.keys()
    assert data["failed"] == ["tiny_32.onnx"] and "per_image" not in row
    assert "tiny_32.onnx" in res.err and len(res.err.strip().splitlines()) <= 2
    assert (tmp_path / "rep" / "report.html").is_file()
    assert list((tmp_path / "rep" / "overlays").glob("*.png"))


@pytest.mark.parametrize(
    "args, needle",
    [
        (["{missing}"], "does not exist"),
        (["{art}", "--images", "{missing}"], "not a folder"),
        (["{art}", "--report", "{art}"], "is a file"),
    ],
)
def test_parity_cli_user_errors_exit_2(
    cli,
    tmp_path: Path,
    args: list[str],
    needle: str,  # type: ignore[no-untyped-def]
) -> None:
    art = tiny_onnx(tmp_path / "tiny.onnx")
    args = [a.format(art=art, missing=tmp_path / "nope") for a in args]
    res = cli("parity", *args, "--weights", "random")
    assert res.code == 2, res.err
    assert needle in res.err and "Traceback" not in res.err


@pytest.mark.slow
def test_parity_cli_real_artifacts_one_bad_one_good(
    cli,
    exported_artifacts,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    """The official artifacts pass; a copy whose output is flipped (loads fine, computes the
    wrong thing) fails: exit 3, and the JSON says which one."""
    good = [exported_artifacts["tflite/fp32"], exported_artifacts["onnx/fp16"]]
    res = cli("parity", *good, "--json", "--pairs")
    assert res.code == 0, res.err
    data = res.json()
    assert [r["passed"] for r in data["results"]] == [True, True]
    assert data["results"][0]["max_abs_prob_diff"] <= FP32_PROB_DIFF
    assert len(data["pairs"]) == 1

    wrong = tmp_path / "sinet_224x224_fp32.onnx"  # official weights, but with one output flipped
    shutil.copy(exported_artifacts["onnx/fp32"], wrong)
    shutil.copy(exported_artifacts["onnx/fp32"].with_suffix(".json"), wrong.with_suffix(".json"))
    _flip_output(wrong)
    res = cli("parity", exported_artifacts["tflite/fp32"], wrong, "--json")
    assert res.code == 3, res.err
    data = res.json()
    assert [(Path(r["path"]).parent == tmp_path, r["passed"]) for r in data["results"]] == [
        (False, True),
        (True, False),
    ]
    assert "sinet_224x224_fp32.onnx" in res.err


def _flip_output(path: Path) -> None:
    """Rewrite an ONNX artifact so its output is 1 − p (a wrong artifact that still loads)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(path)
    out = model.graph.output[0].name
    for node in model.graph.node:
        for i, name in enumerate(node.output):
            if name == out:
                node.output[i] = out + "_raw"
    model.graph.initializer.append(helper.make_tensor("one__", TensorProto.FLOAT, [], [1.0]))
    model.graph.node.append(helper.make_node("Sub", ["one__", out + "_raw"], [out]))
    onnx.save(model, path)
