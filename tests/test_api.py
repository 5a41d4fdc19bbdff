"""The Python API (``sinet_deploy.predictor/export/load_session/parity/bench``) and the example
in docs/api.md, executed as written."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sinet_deploy
from sinet_deploy.core.errors import ImageError
from tests.conftest import CALIB, GOLDEN, need

ROOT = Path(__file__).resolve().parents[1]


def test_api_names_are_lazy_and_listed() -> None:
    for name in ("predict", "export", "load_session", "parity", "bench", "Prediction"):
        assert name in sinet_deploy.__all__ and callable(getattr(sinet_deploy, name))
    with pytest.raises(AttributeError):
        sinet_deploy.no_such_thing  # noqa: B018


def test_api_names_are_not_shadowed_by_modules() -> None:
    """Importing ``sinet_deploy.<name>`` would replace the function ``sinet_deploy.<name>``."""
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(sinet_deploy.__path__, "sinet_deploy."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    for name in ("load_model", *sinet_deploy._API):
        assert callable(getattr(sinet_deploy, name)), name


def test_as_rgb_takes_paths_pil_and_uint8_arrays_and_refuses_floats() -> None:
    from sinet_deploy.api import as_rgb

    path = ROOT / "sinet_deploy" / "data" / "pd_astronaut.png"
    rgb = as_rgb(path)
    assert rgb.dtype == np.uint8 and rgb.shape == (512, 512, 3)
    assert np.array_equal(as_rgb(Image.open(path)), rgb)
    assert np.array_equal(as_rgb(rgb[None]), rgb)
    assert as_rgb(rgb[:, :, 0]).shape == (512, 512, 3)
    rgba = np.concatenate([rgb, np.full((512, 512, 1), 7, np.uint8)], axis=2)
    assert np.array_equal(as_rgb(rgba), rgb)
    with pytest.raises(ImageError, match="dtype float32"):
        as_rgb(rgb.astype(np.float32))
    with pytest.raises(ImageError, match="shape"):
        as_rgb(np.zeros((3, 8, 8), np.uint8))


@pytest.mark.slow
def test_predict_matches_the_authors_mask(official_weights: Path) -> None:
    result = sinet_deploy.predict(need(GOLDEN / "astronaut.png"))
    assert result.mask.shape == (512, 512) and result.mask.dtype == np.uint8
    assert result.probability.shape == (512, 512) and result.probability.dtype == np.float32
    assert set(np.unique(result.mask)) <= {0, 255} and result.runtime == "torch"
    official = np.asarray(Image.open(need(GOLDEN / "astronaut_mask_official.png")).convert("L"))
    small = np.asarray(Image.fromarray(result.mask).resize((224, 224), Image.NEAREST))
    assert ((small > 127) == (official > 127)).mean() >= 0.99


@pytest.mark.slow
def test_predict_with_an_artifact_agrees_with_pytorch(
    official_weights: Path, exported_artifacts: dict[str, Path]
) -> None:
    image = need(GOLDEN / "astronaut.png")
    torch_result = sinet_deploy.predict(image)
    tflite = sinet_deploy.predict(image, model=exported_artifacts["tflite/fp32"])
    assert tflite.runtime == "litert" and tflite.mask.shape == (512, 512)
    assert (tflite.mask == torch_result.mask).mean() >= 0.999
    session = sinet_deploy.load_session(exported_artifacts["onnx/fp32"])
    wide = np.asarray(Image.open(image).convert("RGB").resize((300, 180)))
    assert session.predict(wide).mask.shape == (180, 300)


@pytest.mark.slow
def test_docs_api_example_runs_as_written(
    official_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    block = re.search(r"```python\n(.*?)```", text, re.S)
    assert block
    calib = sorted(p for p in need(CALIB).iterdir() if p.suffix.lower() in (".jpg", ".png"))
    (tmp_path / "my_portraits").mkdir()
    for p in calib[:2]:
        (tmp_path / "my_portraits" / p.name).symlink_to(p.resolve())
    shutil.copy(ROOT / "sinet_deploy" / "data" / "pd_grace_hopper.jpg", tmp_path / "photo.jpg")
    monkeypatch.chdir(tmp_path)
    exec(compile(block.group(1), "docs/api.md", "exec"), {"__name__": "docs_api"})
    assert (tmp_path / "photo_mask.png").is_file()
    assert (tmp_path / "models" / "onnx" / "sinet_224x224_fp32.onnx").is_file()
    assert os.listdir(tmp_path / "models" / "onnx")
