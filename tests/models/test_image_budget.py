"""Images are decoded within a pixel budget; huge ones never cost their float32 size.

A PNG header can claim 65535x65535 in a few dozen bytes: such files are refused from the header
(exit 2, one line that says the limit and how to raise it), a too-large JPEG is decoded at
reduced scale, and everything below the budget is resized in uint8 a block at a time.
"""

from __future__ import annotations

import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sinet_deploy.core.errors import ImageError, UserInputError
from sinet_deploy.models.preprocessing import (
    MAX_PIXELS_ENV,
    check_image,
    decode_image,
    max_pixels,
    resize_bilinear,
)
from tests.conftest import one_line

FAST_EXPORT = ("--weights", "random", "--formats", "onnx", "--input-size", "64x64")


def lying_png(path: Path, width: int = 65535, height: int = 65535) -> Path:
    """A valid PNG signature and IHDR claiming ``width x height`` RGB, then almost no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return path


def test_lying_header_refused_from_the_header(tmp_path: Path) -> None:
    liar = lying_png(tmp_path / "liar.png")
    with pytest.raises(ImageError, match="65535x65535.*decoding limit"):
        check_image(liar)
    with pytest.raises(ImageError) as info:
        decode_image(liar)
    assert MAX_PIXELS_ENV in info.value.one_line()


def test_predict_lying_png_exit_2_writes_nothing(cli: Any, tmp_path: Path) -> None:
    liar = lying_png(tmp_path / "liar.png")
    res = cli("predict", liar, "--weights", "random", "--out", tmp_path / "o")
    one_line(res, 2, "65535x65535", MAX_PIXELS_ENV)
    assert not (tmp_path / "o").exists()


def test_export_images_with_lying_png_exit_2_before_any_work(cli: Any, tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    lying_png(images / "liar.png")
    res = cli("export", *FAST_EXPORT, "--images", images, "--out", tmp_path / "o")
    one_line(res, 2, "liar.png", MAX_PIXELS_ENV)
    assert not (tmp_path / "o" / "onnx").exists()


def test_budget_env_var(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = tmp_path / "small.png"
    Image.fromarray(np.full((100, 120, 3), 90, np.uint8)).save(img)
    monkeypatch.setenv(MAX_PIXELS_ENV, "10000")
    assert max_pixels() == 10000
    res = cli("predict", img, "--weights", "random", "--out", tmp_path / "o")
    one_line(res, 2, "120x100", "0.01 MP", MAX_PIXELS_ENV)
    assert not (tmp_path / "o").exists()
    monkeypatch.setenv(MAX_PIXELS_ENV, "lots")
    with pytest.raises(UserInputError, match="positive whole number"):
        max_pixels()
    one_line(cli("predict", img, "--weights", "random", "--out", tmp_path / "o"), 2, "lots")


def test_large_jpeg_is_decoded_at_reduced_scale(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = tmp_path / "wide.jpg"
    Image.fromarray(np.full((400, 800, 3), 128, np.uint8)).save(img, quality=90)
    monkeypatch.setenv(MAX_PIXELS_ENV, str(100_000))  # 320k pixels: 1/2 scale gives 80k
    decoded = decode_image(img)
    assert decoded.rgb.shape == (200, 400, 3) and decoded.size == (400, 800) and decoded.reduced
    res = cli("predict", img, "--weights", "random", "--out", tmp_path / "o")
    assert res.code == 0, res.err
    with Image.open(tmp_path / "o" / "wide_mask.png") as mask:
        assert mask.size == (800, 400)  # the mask is at the image's own resolution
    monkeypatch.setenv(MAX_PIXELS_ENV, str(4_000))  # even 1/8 (5000 pixels) is too many
    one_line(cli("predict", img, "--weights", "random", "--out", tmp_path / "p"), 2, "800x400")


def test_resize_has_no_full_size_float_copy() -> None:
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, size=(3000, 2000, 3), dtype=np.uint8)  # 18 MB as uint8
    tracemalloc.start()
    try:
        small = resize_bilinear(big, 224, 224)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert small.shape == (224, 224, 3)
    assert peak < 8 * 2**20, peak  # a float32 copy of the input alone would be 72 MB


def test_predict_writes_image_size_mask_within_memory(tmp_path: Path) -> None:
    """Decode + mask + overlay of a 16 MP image allocate about its uint8 size, not 4x it."""
    from sinet_deploy.predictor import OVERLAY_MAX_SIDE, Predictor

    img = tmp_path / "big.png"
    rgb = np.zeros((4000, 4000, 3), np.uint8)
    rgb[1000:3000, 1000:3000] = 200
    Image.fromarray(rgb).save(img, compress_level=1)
    del rgb

    def fake_model(x: np.ndarray) -> np.ndarray:
        return (x[..., :1].astype(np.float32) / 255.0) > 0.5  # bright square = person

    predictor = Predictor(lambda x: fake_model(x).astype(np.float32), (64, 64), "fake")
    tracemalloc.start()
    try:
        (row,) = predictor.predict_files([img], tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 48 MB of decoded pixels + a 16 MB mask; a float32 copy of the image would be 192 MB
    assert peak < 100 * 2**20, peak
    with Image.open(row["mask"]) as mask:
        assert mask.size == (4000, 4000)
    with Image.open(row["overlay"]) as over:
        assert max(over.size) == OVERLAY_MAX_SIDE
    assert 0.2 < row["foreground_fraction"] < 0.3


@pytest.mark.parametrize(
    ("size", "words"),
    [
        ("0x0", ("between 32 and 2048",)),
        ("-32x32", ("between 32 and 2048",)),
        ("4096x224", ("between 32 and 2048",)),
        ("100x100", ("multiple of 32", "96 or 128")),
    ],
)
def test_input_size_range(cli: Any, tmp_path: Path, size: str, words: tuple[str, ...]) -> None:
    img = tmp_path / "a.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(img)
    res = cli(
        "predict", img, "--weights", "random", f"--input-size={size}", "--out", tmp_path / "o"
    )
    one_line(res, 2, *words)
    assert not (tmp_path / "o").exists()
    one_line(cli("export", *FAST_EXPORT[:4], f"--input-size={size}", "--out", tmp_path), 2, *words)
    assert not (tmp_path / "onnx").exists()
