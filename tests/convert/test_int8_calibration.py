"""Calibration sets: preprocessed like inference, deterministic, checksummed (fast)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sinet_deploy.convert.calibration import (
    BUILTIN_WARNING,
    CalibrationConfig,
    augment,
    load_calibration,
    tensor_sha256,
)
from sinet_deploy.core.errors import ImageError, UserInputError
from sinet_deploy.models.preprocessing import load_input

SIZE = (64, 96)


def _folder(tmp_path: Path, n: int = 5) -> Path:
    rng = np.random.default_rng(3)
    folder = tmp_path / "calib"
    folder.mkdir()
    for i in range(n):
        arr = rng.integers(0, 256, size=(40 + i, 70, 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"img_{i}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_folder_images_are_exactly_the_inference_input(tmp_path: Path) -> None:
    folder = _folder(tmp_path, n=8)
    calib = load_calibration(folder, SIZE)
    assert calib.source == "folder" and len(calib) == 8 and not calib.warnings
    expected = np.concatenate([load_input(p, *SIZE) for p in sorted(folder.glob("*.png"))])
    np.testing.assert_array_equal(calib.images, expected)
    assert calib.images.dtype == np.uint8
    assert calib.sha256 == tensor_sha256(expected)
    described = calib.describe()
    assert described["num_samples"] == 8 and described["sha256"] == calib.sha256


def test_same_inputs_same_checksum_and_changes_are_detected(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    cfg = CalibrationConfig(folder_augment=2, seed=7)
    a, b = load_calibration(folder, SIZE, cfg), load_calibration(folder, SIZE, cfg)
    assert len(a) == 15 and a.sha256 == b.sha256
    np.testing.assert_array_equal(a.images, b.images)
    assert (
        load_calibration(folder, SIZE, CalibrationConfig(folder_augment=2, seed=8)).sha256
        != a.sha256
    )
    Image.fromarray(np.zeros((40, 70, 3), np.uint8)).save(folder / "img_0.png")
    assert load_calibration(folder, SIZE, cfg).sha256 != a.sha256


def test_subsampling_is_seeded(tmp_path: Path) -> None:
    folder = _folder(tmp_path, n=6)
    cfg = CalibrationConfig(max_images=3, seed=1)
    a, b = load_calibration(folder, SIZE, cfg), load_calibration(folder, SIZE, cfg)
    assert len(a) == 3 and [p.name for p in a.files] == [p.name for p in b.files]


def test_builtin_set_is_augmented_and_warns() -> None:
    calib = load_calibration(None, SIZE, CalibrationConfig(builtin_samples=10))
    assert calib.source == "builtin" and len(calib) == 10
    assert calib.images.shape == (10, *SIZE, 3)
    assert calib.warnings == [BUILTIN_WARNING] and "--calib" in calib.warnings[0]
    assert len({tensor_sha256(x) for x in calib.images}) == 10  # all samples differ
    assert (
        load_calibration(None, SIZE, CalibrationConfig(builtin_samples=10)).sha256 == calib.sha256
    )


def test_augment_keeps_the_contract() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, size=(50, 80, 3), dtype=np.uint8)
    out = augment(rgb, np.random.default_rng(1), *SIZE)
    assert out.shape == (*SIZE, 3) and out.dtype == np.uint8


def test_few_images_warn_and_bad_folders_are_user_errors(tmp_path: Path) -> None:
    assert load_calibration(_folder(tmp_path, n=2), SIZE).warnings
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ImageError):
        load_calibration(empty, SIZE)
    with pytest.raises(ImageError):
        load_calibration(tmp_path / "missing", SIZE)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ImageError):
        load_calibration(bad, SIZE)
    with pytest.raises(UserInputError):
        CalibrationConfig(max_images=0)


def test_export_cli_prints_the_calibration_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from sinet_deploy.cli.export_cmd import _print_warnings

    manifest = tmp_path / "sinet_224x224_int8.json"
    manifest.write_text(json.dumps({"options": {"calibration": {"warnings": [BUILTIN_WARNING]}}}))
    rows = [
        {"manifest": str(manifest), "failed_report": None},
        {"manifest": None, "failed_report": str(manifest)},
        {"manifest": None, "failed_report": None},
    ]
    _print_warnings({"results": rows})
    err = capsys.readouterr().err
    assert err.count("--calib") == 1  # printed once, on stderr
