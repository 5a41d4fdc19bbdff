"""Any image a user has becomes the checkpoint's input; unreadable ones get one clear line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sinet_deploy.core.errors import ImageError
from sinet_deploy.models.preprocessing import (
    image_input,
    list_images,
    normalize_rgb,
    read_image,
    resize_bilinear,
)
from sinet_deploy.verify.tolerances import ulps
from tests.conftest import GOLDEN, need


def _gradient(h: int = 40, w: int = 60) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 4 % 256, y * 6 % 256, (x + y) * 3 % 256], -1).astype(np.uint8)


def test_matches_the_authors_opencv_preprocessing() -> None:
    golden = np.load(need(GOLDEN / "sinet_official_outputs.npz"))
    rgb = read_image(GOLDEN / "astronaut.png")
    ours = image_input(rgb, 224, 224)[0]
    # cv2.resize uses 11-bit fixed-point weights: at most 1 level apart from exact arithmetic.
    assert np.abs(ours[..., ::-1].astype(int) - golden["bgr_astronaut_224"]).max() <= 1
    x = normalize_rgb(golden["bgr_astronaut_224"][None, :, :, ::-1].copy())
    # Same float32 formula, maybe another operation order: a few fp32 ulps, at the largest
    # value, since (v - mean) * scale cancels and its rounding error is relative to the range.
    want = golden["x_astronaut_224"]
    assert np.abs(x - want).max() <= ulps(np.abs(want).max(), np.float32, 4)


def test_resize_identity_and_constant() -> None:
    img = _gradient()
    assert np.array_equal(resize_bilinear(img, 40, 60), img)
    flat = np.full((17, 33, 3), 77, np.uint8)
    assert (resize_bilinear(flat, 64, 32) == 77).all()


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "LA"])
def test_modes_become_rgb8(tmp_path: Path, mode: str) -> None:
    base = Image.fromarray(_gradient())
    if mode == "I;16":
        arr = np.asarray(base.convert("L")).astype(np.uint16) * 257
        im = Image.fromarray(arr)
        assert im.mode.startswith("I;16")
    else:
        im = base.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    im.save(path)
    out = read_image(path)
    assert out.dtype == np.uint8 and out.shape == (40, 60, 3)
    if mode == "I;16":
        assert np.abs(out[..., 0].astype(int) - np.asarray(base.convert("L"))).max() <= 1


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    im = Image.fromarray(_gradient(40, 60))
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    path = tmp_path / "rot.jpg"
    im.save(path, exif=exif)
    assert read_image(path).shape == (60, 40, 3)


def test_bad_images(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.touch()
    text = tmp_path / "text.png"
    text.write_text("not an image")
    good = tmp_path / "good.jpg"
    Image.fromarray(_gradient()).save(good)
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes(good.read_bytes()[:300])
    for path, msg in [
        (empty, "empty"),
        (text, "not an image"),
        (tmp_path, "directory"),
        (tmp_path / "nope.jpg", "does not exist"),
        (trunc, "cannot decode"),
    ]:
        with pytest.raises(ImageError, match=msg):
            read_image(path)


def test_list_images(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no images"):
        list_images(tmp_path)
    Image.fromarray(_gradient()).save(tmp_path / "b.png")
    Image.fromarray(_gradient()).save(tmp_path / "a.JPG")
    assert [p.name for p in list_images(tmp_path)] == ["a.JPG", "b.png"]
