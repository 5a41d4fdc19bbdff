"""Image reading and the checkpoint's preprocessing contract (SINET_SPEC.md).

The released checkpoint was trained on OpenCV images: BGR, resized whole with
``cv2.resize(..., INTER_LINEAR)`` (half-pixel centres, no antialiasing), then
``((bgr - mean) / std) / 255``. Everything here is NumPy + Pillow so the device runner and the
Android golden data use exactly the same code without importing torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.errors import ImageError

#: The checkpoint's normalisation, in its own (B, G, R) channel order.
MEAN_BGR = (107.304565, 115.69884, 132.35703)
STD_BGR = (63.97182, 65.1337, 68.29726)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")


def preprocessing_contract() -> dict[str, Any]:
    """What the checkpoint expects, as recorded in every manifest."""
    return {
        "checkpoint_input": "BGR, NCHW float32, x = ((bgr - mean) / std) / 255",
        "mean_bgr": list(MEAN_BGR),
        "std_bgr": list(STD_BGR),
        "resize": "whole image to HxW, bilinear with half-pixel centres and no antialiasing "
        "(cv2.INTER_LINEAR), no crop",
        "image_input": "uint8 RGB NHWC 0..255; normalisation inside the graph",
    }


def read_image(path: str | Path) -> np.ndarray:
    """Decode any common image into uint8 RGB HxWx3, honouring the EXIF orientation.

    Grayscale, palette, CMYK, RGBA (alpha dropped) and 16-bit images are converted; anything
    unreadable raises :class:`ImageError` with one line that says why.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise ImageError(f"image {p} does not exist", hint="check the path")
    if p.is_dir():
        raise ImageError(f"{p} is a directory, not an image", hint="pass image files")
    if p.stat().st_size == 0:
        raise ImageError(f"image {p} is empty (0 bytes)", hint="re-copy or re-export the file")
    try:
        with Image.open(p) as im:
            return _to_rgb8(ImageOps.exif_transpose(im))
    except UnidentifiedImageError:
        raise ImageError(
            f"{p} is not an image Pillow can read", hint="use JPEG, PNG, BMP, WebP or TIFF"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(
            f"cannot decode image {p}: {exc}", hint="the file may be truncated or corrupt"
        ) from None


def _to_rgb8(im: Any) -> np.ndarray:
    from PIL import Image

    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit int) grayscale: scale the full range to 0..255, not a clip.
        arr = np.asarray(im).astype(np.float64)
        peak = 65535.0 if arr.max() > 255 or im.mode.startswith("I;16") else 255.0
        gray = np.clip(np.rint(arr * (255.0 / peak)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.mode == "F":
        arr = np.asarray(im).astype(np.float64)
        gray = np.clip(np.rint(arr * 255.0 if arr.max() <= 1.0 else arr), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if im.mode == "P":
        im = im.convert("RGBA")
    if im.mode in ("RGBA", "LA", "PA"):
        # Composite on black would darken hair edges; alpha is simply dropped, like cv2.imread.
        im = im.convert("RGB")
    elif im.mode != "RGB":
        im = im.convert("RGB")
    if not isinstance(im, Image.Image):  # pragma: no cover - defensive
        raise ImageError("decoded object is not an image")
    arr = np.asarray(im, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"decoded image has unexpected shape {arr.shape}")
    return np.ascontiguousarray(arr)


def resize_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """cv2.INTER_LINEAR semantics (half-pixel centres, edge clamp, no antialias), uint8 out.

    Written in NumPy rather than calling OpenCV so the package does not need opencv-python and
    the Android demo's Kotlin core can mirror it line by line.
    """
    src = np.asarray(img)
    if src.ndim == 2:
        src = src[:, :, None]
    in_h, in_w = src.shape[:2]
    y0, y1, wy = _axis(in_h, height)
    x0, x1, wx = _axis(in_w, width)
    f = src.astype(np.float32)
    top = f[y0][:, x0] * (1 - wx)[None, :, None] + f[y0][:, x1] * wx[None, :, None]
    bot = f[y1][:, x0] * (1 - wx)[None, :, None] + f[y1][:, x1] * wx[None, :, None]
    out = top * (1 - wy)[:, None, None] + bot * wy[:, None, None]
    res = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return res if np.asarray(img).ndim == 3 else res[:, :, 0]


def _axis(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = n_in / n_out
    pos = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = (pos - i0).astype(np.float32)
    return i0, i1, w


def image_input(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    """The artifacts' default input: uint8 RGB NHWC [1, H, W, 3]."""
    return resize_bilinear(rgb, height, width)[None]


def normalize_rgb(image_nhwc: np.ndarray) -> np.ndarray:
    """uint8 RGB NHWC -> the checkpoint's normalised BGR NCHW float32 (the raw contract)."""
    bgr = np.asarray(image_nhwc, dtype=np.float64)[..., ::-1]
    x = ((bgr - np.array(MEAN_BGR)) / np.array(STD_BGR)) / 255.0
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=np.float32)


def load_input(path: str | Path, height: int, width: int) -> np.ndarray:
    """Read an image file and return the uint8 RGB NHWC model input."""
    return image_input(read_image(path), height, width)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted; :class:`ImageError` if there are none."""
    d = Path(folder)
    if not d.is_dir():
        raise ImageError(
            f"image folder {d} does not exist or is not a directory",
            hint="pass a folder of JPEG/PNG images",
        )
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ImageError(
            f"no images in {d}", hint=f"expected files ending {', '.join(IMAGE_SUFFIXES)}"
        )
    return files
