"""End to end through the CLI: info and predict on the official weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sinet_deploy.models.inference import resize_probability
from tests.conftest import GOLDEN, need

ROOT = Path(__file__).resolve().parents[1]


def test_info_json_reports_86910(cli, official_weights: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli("info", "--json")
    assert r.code == 0, r.err
    data = r.json()
    assert data["num_parameters"] == 86910
    assert data["official_checkpoint"] is True
    assert 60e6 < data["macs"] < 68e6


@pytest.mark.slow
def test_predict_astronaut_agrees_with_authors_mask(
    cli,
    official_weights: Path,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    img = need(GOLDEN / "astronaut.png")
    r = cli("predict", str(img), "--out", str(tmp_path), "--json")
    assert r.code == 0, r.err
    mask = np.asarray(Image.open(tmp_path / "astronaut_mask.png"))
    assert mask.shape == (512, 512) and set(np.unique(mask)) <= {0, 255}
    assert (tmp_path / "astronaut_overlay.jpg").stat().st_size > 0
    official = np.asarray(Image.open(GOLDEN / "astronaut_mask_official.png"))
    # Compare at the authors' 224x224: our image-resolution mask, resampled back.
    ours_224 = resize_probability((mask > 127).astype(np.float32), 224, 224) > 0.5
    agreement = float((ours_224 == (official > 127)).mean())
    assert agreement >= 0.99, agreement


def test_predict_bad_inputs(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.jpg"
    bad.write_text("nope")
    for args in (
        ["predict", str(bad)],
        ["predict", str(tmp_path / "missing.png")],
        ["predict", str(tmp_path)],
        ["predict", str(bad), "--input-size", "100x100"],
    ):
        r = cli(*args, "--out", str(tmp_path / "o"))
        assert r.code == 2, (args, r.err)
        assert "Traceback" not in r.err and r.err.startswith("error:")
    assert not (tmp_path / "o").exists() or not list((tmp_path / "o").iterdir())


def test_module_entry_point_and_fast_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sinet_deploy", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert out.returncode == 0 and "predict" in out.stdout
    # --help must not import the heavy libraries.
    probe = (
        "import sys; from sinet_deploy.cli import app; "
        "print(sorted(m for m in ('torch','tensorflow','coremltools','onnx','onnxruntime',"
        "'executorch','torchao') if m in sys.modules))"
    )
    heavy = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert heavy.stdout.strip() == "[]", heavy.stdout + heavy.stderr


def test_predict_folders_globs_and_same_stems(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A folder and a quoted glob expand to their images; two inputs named alike from
    different folders get distinct masks; an unreadable one is skipped with a warning and the
    run exits 2 at the end, after writing the others."""
    from PIL import Image

    a, b = tmp_path / "a", tmp_path / "b"
    for folder in (a, b):
        folder.mkdir()
        Image.new("RGB", (40, 30), (200, 120, 90)).save(folder / "me.png")
    Image.new("RGB", (20, 20), (10, 10, 10)).save(a / "other.jpg")
    (b / "broken.jpg").write_text("nope")
    out = tmp_path / "o"
    r = cli(
        "predict",
        str(a),
        str(tmp_path / "b" / "*.png"),
        "--weights",
        "random",
        "--input-size",
        "64x64",
        "--out",
        str(out),
        "--json",
    )
    assert r.code == 0, r.err
    masks = sorted(p.name for p in out.glob("*_mask.png"))
    assert masks == ["a_me_mask.png", "b_me_mask.png", "other_mask.png"]
    assert Image.open(out / "a_me_mask.png").size == (40, 30)
    r = cli(
        "predict",
        str(b),
        "--weights",
        "random",
        "--input-size",
        "64x64",
        "--out",
        str(tmp_path / "o2"),
    )
    assert r.code == 2 and "Traceback" not in r.err
    lines = r.err.strip().splitlines()
    assert lines[0].startswith("warning: skipped") and "broken.jpg" in lines[0]
    assert lines[-1].startswith("error: 1 of 2 image(s)")
    assert (tmp_path / "o2" / "me_mask.png").is_file()
    r = cli("predict", str(tmp_path / "none*.png"), "--weights", "random")
    assert r.code == 2 and "matches no file" in r.err
