"""Image reading and the checkpoint's preprocessing contract (SINET_SPEC.md).

The released checkpoint was trained on OpenCV images: BGR, resized whole with
``cv2.resize(..., INTER_LINEAR)`` (half-pixel centres, no antialiasing), then
``((bgr - mean) / std) / 255``. Everything here is NumPy + Pillow so the device runner and the
Android golden data use exactly the same code without importing torch.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ImageError, UserInputError

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


#: Decoding budget in pixels (width x height), overridable by :data:`MAX_PIXELS_ENV`. Decoded,
#: an image costs 3 bytes a pixel (4 inside Pillow), so 50 MP stays around half a gigabyte.
DEFAULT_MAX_PIXELS = 50_000_000
MAX_PIXELS_ENV = "SINET_DEPLOY_MAX_PIXELS"
#: Rows of output a resize computes at once: bounds its float32 temporaries (~4 MiB each).
_RESIZE_CHUNK_ELEMENTS = 1 << 20


def max_pixels() -> int:
    """The decoding budget: ``$SINET_DEPLOY_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`."""
    import os

    text = os.environ.get(MAX_PIXELS_ENV, "").strip().replace("_", "")
    if not text:
        return DEFAULT_MAX_PIXELS
    if not text.isdigit() or int(text) <= 0:
        raise UserInputError(
            f"{MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV]!r} is not a positive whole number",
            hint=f"set it to a pixel count such as {DEFAULT_MAX_PIXELS} or unset it",
        )
    return int(text)


@dataclass(frozen=True)
class DecodedImage:
    """An image as decoded: uint8 RGB ``rgb`` and the ``size`` (H, W) the file really has.

    ``rgb`` is smaller than ``size`` only for a JPEG above the pixel budget, which is decoded
    at 1/2, 1/4 or 1/8 scale (``Image.draft``) instead of being refused.
    """

    rgb: np.ndarray
    size: tuple[int, int]

    @property
    def reduced(self) -> bool:
        return tuple(self.rgb.shape[:2]) != self.size


_BOMB_LOCK = threading.Lock()


def _open_unchecked(path: Path) -> Any:
    """``Image.open`` without Pillow's own decompression-bomb check (it raises an uncaught
    ``DecompressionBombError`` above 2 x 89 MP and only warns below): :func:`decode_image`
    applies its own budget from the header, and can still read a huge JPEG at reduced scale.
    """
    from PIL import Image

    with _BOMB_LOCK:  # MAX_IMAGE_PIXELS is process-global; restore it for other users
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            return Image.open(path)
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _over_budget(path: Path, width: int, height: int, budget: int) -> ImageError:
    return ImageError(
        f"image {path} is {width}x{height} ({width * height / 1e6:.0f} MP), above the "
        f"{budget / 1e6:g} MP decoding limit",
        hint=f"downscale it, or raise the limit with {MAX_PIXELS_ENV}=<pixels>",
    )


def decode_image(path: str | Path, *, budget: int | None = None) -> DecodedImage:
    """Decode an image within a pixel budget; see :func:`read_image`.

    The size is read from the header before any pixel is decoded: above ``budget`` (default
    :func:`max_pixels`) a JPEG is decoded at the largest of 1/2, 1/4, 1/8 scale that fits, any
    other format is refused with :class:`ImageError` (a header may claim 65535x65535 in a few
    bytes). Below the budget the image is decoded as is.
    """
    from PIL import ImageOps

    with _opened(path, budget) as (im, size):
        # in place: the default returns a full copy even when nothing is rotated
        ImageOps.exif_transpose(im, in_place=True)
        return DecodedImage(_to_rgb8(im), size)


def check_image(path: str | Path, *, budget: int | None = None) -> tuple[int, int]:
    """Read only the header: the image's (H, W), or the :class:`ImageError` that decoding
    would raise for a missing, unreadable or over-budget file. Cheap enough to run on a whole
    folder before any work starts."""
    with _opened(path, budget) as (_, size):
        return size


@contextmanager
def _opened(path: str | Path, budget: int | None) -> Iterator[tuple[Any, tuple[int, int]]]:
    """The opened image (drafted to the budget when it is a large JPEG) and its real (H, W)
    after EXIF rotation; decoding errors inside the block become :class:`ImageError`."""
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.exists():
        raise ImageError(f"image {p} does not exist", hint="check the path")
    if p.is_dir():
        raise ImageError(f"{p} is a directory, not an image", hint="pass image files")
    if p.stat().st_size == 0:
        raise ImageError(f"image {p} is empty (0 bytes)", hint="re-copy or re-export the file")
    limit = max_pixels() if budget is None else budget
    try:
        with _open_unchecked(p) as im:
            width, height = im.size
            if width <= 0 or height <= 0:
                raise ImageError(f"image {p} has no pixels ({width}x{height})")
            if width * height > limit:
                if im.format != "JPEG":
                    raise _over_budget(p, width, height, limit)
                scale = next(
                    (d for d in (2, 4, 8) if -(-width // d) * -(-height // d) <= limit), None
                )
                if scale is None:
                    raise _over_budget(p, width, height, limit)
                # JPEG decodes DCT blocks at 1/scale directly: memory and time shrink too.
                im.draft(im.mode, (-(-width // scale), -(-height // scale)))
                if im.size[0] * im.size[1] > limit:
                    raise _over_budget(p, width, height, limit)
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated by 90 degrees
                width, height = height, width
            yield im, (height, width)
    except UnidentifiedImageError:
        raise ImageError(
            f"{p} is not an image Pillow can read", hint="use JPEG, PNG, BMP, WebP or TIFF"
        ) from None
    except Image.DecompressionBombError as exc:  # e.g. a frame inside a container
        raise ImageError(
            f"image {p} is too large to decode ({exc})",
            hint=f"downscale it, or raise the limit with {MAX_PIXELS_ENV}=<pixels>",
        ) from None
    except MemoryError:
        raise ImageError(
            f"not enough memory to decode image {p}",
            hint=f"downscale it, or lower {MAX_PIXELS_ENV}",
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(
            f"cannot decode image {p}: {exc}", hint="the file may be truncated or corrupt"
        ) from None


def read_image(path: str | Path) -> np.ndarray:
    """Decode any common image into uint8 RGB HxWx3, honouring the EXIF orientation.

    Grayscale, palette, CMYK, RGBA (alpha dropped) and 16-bit images are converted; anything
    unreadable raises :class:`ImageError` with one line that says why. Images above the pixel
    budget (:func:`max_pixels`) are refused, except JPEGs, which come back at reduced scale
    (:func:`decode_image`).
    """
    return decode_image(path).rgb


def _row_blocks(height: int, row_elements: int) -> Iterator[slice]:
    """Slices of rows, each about :data:`_RESIZE_CHUNK_ELEMENTS` elements."""
    rows = max(1, _RESIZE_CHUNK_ELEMENTS // max(1, row_elements))
    for r0 in range(0, height, rows):
        yield slice(r0, min(height, r0 + rows))


def _pil_blocks(im: Any, channels: int) -> Iterator[tuple[slice, Any]]:
    """``(rows, crop)`` pairs covering ``im`` a block of rows at a time.

    ``np.asarray(im)`` goes through ``Image.tobytes``, which joins a list of chunks: two full
    copies beside Pillow's own 4-bytes-a-pixel one, the peak that made a 144 MP decode cost
    1.7 GB. Converting crops straight into a preallocated array costs one copy.
    """
    width, height = im.size
    for rows in _row_blocks(height, width * channels):
        yield rows, im.crop((0, rows.start, width, rows.stop))


def _to_rgb8(im: Any) -> np.ndarray:
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _gray_to_rgb8(im)
    width, height = im.size
    if width == 0 or height == 0:
        raise ImageError(f"decoded image has no pixels ({width}x{height})")
    out = np.empty((height, width, 3), dtype=np.uint8)
    for rows, block in _pil_blocks(im, 3):
        if block.mode == "P":
            block = block.convert("RGBA")
        # RGBA/LA/PA: alpha is simply dropped, like cv2.imread (compositing on black would
        # darken hair edges); CMYK, L, YCbCr… convert to RGB.
        if block.mode != "RGB":
            block = block.convert("RGB")
        arr = np.asarray(block, dtype=np.uint8)
        if arr.shape != (rows.stop - rows.start, width, 3):
            raise ImageError(f"decoded image has unexpected shape {arr.shape}")
        out[rows] = arr
    return out


def _gray_to_rgb8(im: Any) -> np.ndarray:
    """16-bit (or 32-bit int) grayscale: the full range scaled to 0..255, not a clip; float
    images in 0..1 scaled by 255, otherwise clipped. Converted a block of rows at a time, so a
    large image never gets a full-size float64 copy."""
    _lo, hi = im.getextrema()
    if im.mode == "F":
        scale = 255.0 if float(hi) <= 1.0 else 1.0
    else:
        scale = 255.0 / 65535.0 if float(hi) > 255 or im.mode.startswith("I;16") else 1.0
    width, height = im.size
    gray = np.empty((height, width), dtype=np.uint8)
    for rows, block in _pil_blocks(im, 8):
        values = np.asarray(block).astype(np.float64)
        gray[rows] = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)


def resize_bilinear(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """cv2.INTER_LINEAR semantics (half-pixel centres, edge clamp, no antialias), uint8 out.

    Written in NumPy rather than calling OpenCV so the package does not need opencv-python and
    the Android demo's Kotlin core can mirror it line by line. The source rows and columns each
    output pixel reads are gathered in uint8 first and converted to float32 a block of output
    rows at a time: a 144 MP photo resized to 224x224 never gets a float copy of itself.
    """
    src = np.asarray(img)
    if src.ndim == 2:
        src = src[:, :, None]
    in_h, in_w = src.shape[:2]
    y0, y1, wy = _axis(in_h, height)
    x0, x1, wx = _axis(in_w, width)
    wx_ = wx[None, :, None]
    res = np.empty((height, width, src.shape[2]), dtype=np.uint8)
    for rows in _row_blocks(height, width * src.shape[2]):
        r0, r1 = src[y0[rows]], src[y1[rows]]  # uint8, only the rows this block reads
        top = r0[:, x0].astype(np.float32) * (1 - wx_) + r0[:, x1].astype(np.float32) * wx_
        bot = r1[:, x0].astype(np.float32) * (1 - wx_) + r1[:, x1].astype(np.float32) * wx_
        wyb = wy[rows][:, None, None]
        out = top * (1 - wyb) + bot * wyb
        res[rows] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
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


def list_images(folder: str | Path, *, check: bool = True) -> list[Path]:
    """Image files directly in ``folder``, sorted; :class:`ImageError` if there are none, or
    (with ``check``) if one is unreadable or above the pixel budget (its header says so).
    ``predict`` passes ``check=False``: it skips such a file with a warning instead."""
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
    for f in files if check else ():  # headers only: a bad file fails before any work
        check_image(f)
    return files
