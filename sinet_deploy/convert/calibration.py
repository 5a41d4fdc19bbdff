"""Calibration images for full-integer quantization: the user's folder or a built-in set.

Every sample is exactly what the model sees at inference: :func:`read_image` (EXIF, colour
modes) and the same cv2.INTER_LINEAR resize as :func:`~sinet_deploy.models.preprocessing.
load_input`, giving uint8 RGB ``[H, W, 3]``; the int8 model's normalisation happens inside the
graph, so nothing else is applied. Sampling and augmentation are seeded, so the same folder,
size and config give byte-identical tensors, and the sha256 over those tensors (recorded in the
manifest) identifies the calibration set exactly.

Without ``--calib`` the set is made from the two public-domain portraits the package ships
(NASA's astronaut photo, the U.S. Navy portrait of Grace Hopper), augmented with crops, flips
and colour jitter. On a split of the calibration portraits this scored nearly as well as the 73
real ones, but a user's own images are better, so the result carries a warning that recommends
``--calib``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ImageError, UserInputError
from sinet_deploy.models.preprocessing import list_images, read_image, resize_bilinear

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
#: Public-domain portraits shipped in ``sinet_deploy/data`` (see the module docstring).
BUILTIN_PORTRAITS = ("pd_astronaut.png", "pd_grace_hopper.jpg")

BUILTIN_WARNING = (
    "int8 calibrated on the 2 built-in public-domain portraits (augmented); pass --calib DIR "
    "with a few dozen images like the ones you will segment for a more accurate int8 model"
)


@dataclass(frozen=True)
class CalibrationConfig:
    """How the calibration set is drawn.

    Attributes:
        max_images: at most this many folder images are used (a seeded random subset when the
            folder holds more); calibration time grows linearly with it.
        folder_augment: extra augmented variants per folder image (0: the images as they are,
            which is what inference sees).
        builtin_samples: number of augmented samples drawn from the built-in portraits.
        seed: seeds sampling and augmentation.
    """

    max_images: int = 200
    folder_augment: int = 0
    builtin_samples: int = 64
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_images < 1 or self.builtin_samples < 1 or self.folder_augment < 0:
            raise UserInputError(
                "calibration sizes must be positive",
                hint="max_images ≥ 1, builtin_samples ≥ 1, folder_augment ≥ 0",
            )


@dataclass
class CalibrationSet:
    """Preprocessed calibration inputs and where they came from.

    Attributes:
        images: uint8 RGB ``[N, H, W, 3]``, the model input (one sample per row).
        source: ``"folder"`` or ``"builtin"``.
        files: the image files used (before augmentation).
        sha256: hash over the shape and bytes of ``images``.
        config: the :class:`CalibrationConfig` used.
        warnings: messages for the user (the CLI prints them; the library never does).
    """

    images: np.ndarray
    source: str
    files: list[Path]
    sha256: str
    config: CalibrationConfig
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batches(self) -> list[np.ndarray]:
        """The samples as ``[1, H, W, 3]`` arrays (the artifacts' batch size)."""
        return [self.images[i : i + 1] for i in range(len(self))]

    def describe(self) -> dict[str, Any]:
        """What the manifest records about the calibration set."""
        return {
            "source": self.source,
            "folder": str(self.files[0].parent) if self.source == "folder" and self.files else None,
            "files": [p.name for p in self.files] if self.source == "builtin" else len(self.files),
            "num_samples": len(self),
            "input_size": list(self.images.shape[1:3]),
            "sha256": self.sha256,
            "seed": self.config.seed,
            "augmentation": self._augmentation(),
        }

    def _augmentation(self) -> str:
        if self.source == "builtin" or self.config.folder_augment:
            return (
                "random crop (50-100% area, aspect 0.75-1.33), horizontal flip, brightness/"
                "contrast/saturation jitter ±25%, then the inference resize"
            )
        return "none (images resized exactly like inference)"


def tensor_sha256(images: np.ndarray) -> str:
    """sha256 over dtype, shape and bytes: identical tensors ⇔ identical hash."""
    arr = np.ascontiguousarray(images)
    digest = hashlib.sha256()
    digest.update(f"{arr.dtype.str}{list(arr.shape)}".encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()


def augment(rgb: np.ndarray, rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """One augmented sample: crop, flip, colour jitter, then the inference resize.

    Args:
        rgb: uint8 RGB ``[h, w, 3]`` at its original resolution.
        rng: the seeded generator (consumed in a fixed order, so results are reproducible).
        height / width: the model input size.

    Returns:
        uint8 RGB ``[height, width, 3]``.
    """
    h, w = rgb.shape[:2]
    area = rng.uniform(0.5, 1.0) * h * w
    aspect = float(np.exp(rng.uniform(np.log(0.75), np.log(4 / 3))))
    ch = round(min(h, np.sqrt(area / aspect)))
    cw = round(min(w, np.sqrt(area * aspect)))
    y0 = int(rng.integers(0, h - ch + 1))
    x0 = int(rng.integers(0, w - cw + 1))
    crop = rgb[y0 : y0 + ch, x0 : x0 + cw].astype(np.float32)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    brightness, contrast, saturation = rng.uniform(0.75, 1.25, size=3)
    crop = crop * brightness
    mean = crop.mean()
    crop = (crop - mean) * contrast + mean
    gray = crop @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    crop = (crop - gray[..., None]) * saturation + gray[..., None]
    crop8 = np.clip(np.rint(crop), 0, 255).astype(np.uint8)
    return resize_bilinear(np.ascontiguousarray(crop8), height, width)


def builtin_portraits() -> list[Path]:
    """The shipped public-domain portraits; :class:`ImageError` if the install lacks them."""
    paths = [DATA_DIR / name for name in BUILTIN_PORTRAITS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise ImageError(
            f"built-in calibration portraits missing: {', '.join(missing)}",
            hint="reinstall sinet-deploy, or pass --calib DIR",
        )
    return paths


def load_calibration(
    calib_dir: str | Path | None,
    input_size: tuple[int, int],
    config: CalibrationConfig | None = None,
) -> CalibrationSet:
    """Build the calibration set for one input size.

    Args:
        calib_dir: folder of images (``--calib``), or ``None`` for the built-in set.
        input_size: ``(H, W)`` of the model input.
        config: see :class:`CalibrationConfig`.

    Returns:
        A :class:`CalibrationSet`; with the built-in set, ``warnings`` recommends ``--calib``.

    Raises:
        ImageError: the folder is missing, empty of images, or holds an unreadable image.
    """
    cfg = config or CalibrationConfig()
    h, w = input_size
    rng = np.random.default_rng(cfg.seed)
    if calib_dir is None:
        files = builtin_portraits()
        originals = [read_image(p) for p in files]
        samples = [resize_bilinear(img, h, w) for img in originals]  # the plain ones first
        for i in range(cfg.builtin_samples - len(samples)):
            samples.append(augment(originals[i % len(originals)], rng, h, w))
        images = np.stack(samples[: cfg.builtin_samples])
        return CalibrationSet(
            images, "builtin", files, tensor_sha256(images), cfg, [BUILTIN_WARNING]
        )
    files = list_images(calib_dir)
    if len(files) > cfg.max_images:
        keep = np.sort(rng.permutation(len(files))[: cfg.max_images])
        files = [files[i] for i in keep]
    samples = []
    for path in files:
        rgb = read_image(path)
        samples.append(resize_bilinear(rgb, h, w))
        samples.extend(augment(rgb, rng, h, w) for _ in range(cfg.folder_augment))
    images = np.stack(samples)
    warnings = []
    if len(files) < 8:
        warnings.append(
            f"only {len(files)} calibration image(s) in {calib_dir}; a few dozen "
            "varied portraits give int8 ranges that generalise better"
        )
    return CalibrationSet(images, "folder", files, tensor_sha256(images), cfg, warnings)
