"""Predict masks for images with the PyTorch reference or an exported artifact."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.errors import ArtifactError, UserInputError
from sinet_deploy.fileio import atomic_write
from sinet_deploy.models.inference import mask_from_probability, overlay
from sinet_deploy.models.preprocessing import decode_image, image_input, resize_bilinear

#: Longest side of ``<stem>_overlay.jpg``: a visual check needs no 144 MP JPEG, and the
#: overlay of a huge photo would otherwise be the largest allocation of the whole command.
OVERLAY_MAX_SIDE = 2048


@dataclass
class PreparedImage:
    """What ``predict`` keeps of a decoded image: the model input, a preview for the overlay
    (at most :data:`OVERLAY_MAX_SIDE`), and the image's size for the mask. The full-size
    pixels are dropped as soon as these are made."""

    path: Path
    size: tuple[int, int]
    model_input: np.ndarray
    preview: np.ndarray


def prepare_image(path: Path, input_size: tuple[int, int]) -> PreparedImage:
    """Decode ``path`` (within the pixel budget) into a :class:`PreparedImage`."""
    decoded = decode_image(path)
    rgb = decoded.rgb
    h, w = rgb.shape[:2]
    side = max(h, w)
    if side > OVERLAY_MAX_SIDE:
        scale = OVERLAY_MAX_SIDE / side
        preview = resize_bilinear(rgb, max(1, round(h * scale)), max(1, round(w * scale)))
    else:
        preview = rgb
    return PreparedImage(Path(path), decoded.size, image_input(rgb, *input_size), preview)


def output_names(paths: Sequence[Path]) -> list[Path]:
    """The inputs with repeats of one file dropped; :class:`UserInputError` when two different
    files share a stem (``a/x.png`` and ``b/x.jpg`` would both write ``x_mask.png``, the second
    silently replacing the first)."""
    seen: dict[Path, Path] = {}
    by_stem: dict[str, Path] = {}
    unique: list[Path] = []
    for p in paths:
        key = Path(p).resolve()
        if key in seen:
            continue
        seen[key] = Path(p)
        other = by_stem.get(Path(p).stem)
        if other is not None:
            raise UserInputError(
                f"{other} and {p} would both write {Path(p).stem}_mask.png",
                hint="rename one of them, or predict them in separate runs with different --out",
            )
        by_stem[Path(p).stem] = Path(p)
        unique.append(Path(p))
    return unique


@dataclass
class Predictor:
    """A probability function for uint8 RGB NHWC input at ``input_size``, plus file output."""

    run: Callable[[np.ndarray], np.ndarray]
    input_size: tuple[int, int]
    runtime: str

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        h, w = self.input_size
        return self._checked(np.asarray(self.run(image_input(rgb, h, w)))[0, :, :, 0], "image")

    def _checked(self, prob: np.ndarray, what: object) -> np.ndarray:
        # A NaN compares false with 0.5 and would pass as a confident all-background mask.
        if not np.isfinite(prob).all():
            raise ArtifactError(
                f"the {self.runtime} model gave non-finite probabilities (NaN/inf) for {what}; "
                "no mask written",
                hint="check the model with `sinet-deploy parity`, or re-export it",
            )
        return prob

    def predict_files(
        self, paths: Sequence[Path], out: Path, *, before_write: Callable[[], object] | None = None
    ) -> list[dict[str, Any]]:
        """Masks and overlays for every file, written only once all of them are computed.

        ``before_write`` runs after that and before the first file is written (the CLI creates
        ``--out`` there, so a failed run leaves no empty folder behind).

        Raises:
            UserInputError: two inputs would write the same names, or an image is unreadable.
            ArtifactError: the model's output is not finite (nothing is written).
        """
        prepared = [prepare_image(p, self.input_size) for p in output_names(paths)]
        probs = [
            self._checked(np.asarray(self.run(item.model_input))[0, :, :, 0], item.path)
            for item in prepared
        ]
        if before_write is not None:
            before_write()
        return [self._write(item, prob, out) for item, prob in zip(prepared, probs, strict=True)]

    def write(self, path: Path, rgb: np.ndarray, out: Path) -> dict[str, Any]:
        """Mask and overlay for one decoded image."""
        item = PreparedImage(
            Path(path), (rgb.shape[0], rgb.shape[1]), image_input(rgb, *self.input_size), rgb
        )
        return self._write(item, self.probability(rgb), out)

    def _write(self, item: PreparedImage, prob: np.ndarray, out: Path) -> dict[str, Any]:
        mask = mask_from_probability(prob, *item.size)
        mask_path = out / f"{item.path.stem}_mask.png"
        overlay_path = out / f"{item.path.stem}_overlay.jpg"
        _save(mask_path, mask, "PNG")
        fraction = float(np.count_nonzero(mask)) / mask.size
        del mask  # a 144 MP photo's mask is 144 MB: free it before the overlay
        small = mask_from_probability(prob, *item.preview.shape[:2])
        _save(overlay_path, overlay(item.preview, small), "JPEG")
        return {
            "image": str(item.path),
            "mask": str(mask_path),
            "overlay": str(overlay_path),
            "foreground_fraction": fraction,
        }


def _save(path: Path, pixels: np.ndarray, fmt: str) -> None:
    from PIL import Image

    image = Image.fromarray(pixels)
    atomic_write(path, lambda tmp: image.save(tmp, format=fmt))


def make_predictor(
    *,
    model: Path | None,
    weights: str | None,
    input_size: tuple[int, int] | None,
    config: dict[str, Any],
) -> Predictor:
    """PyTorch reference (``weights``) or an artifact session (``model``).

    ``weights=None`` means ``"official"`` and ``input_size=None`` 224x224, for PyTorch. With
    ``model`` the artifact's own weights and size apply, so giving ``weights``, ``config`` or
    ``input_size`` too is refused rather than silently ignored.
    """
    if model is not None:
        ignored = [
            name
            for name, given in (
                ("--weights", weights is not None),
                ("--config", bool(config)),
                ("--input-size", input_size is not None),
            )
            if given
        ]
        if ignored:
            raise UserInputError(
                f"{', '.join(ignored)} cannot be combined with --model: the artifact fixes its "
                "own weights and input size",
                hint="drop them, or drop --model to run PyTorch with them",
            )
        from sinet_deploy.runtimes import load_session

        session = load_session(Path(model))
        return Predictor(session, tuple(session.input_size), session.runtime)  # type: ignore[arg-type]
    from sinet_deploy.models import load_model
    from sinet_deploy.models.inference import reference_probability

    net = load_model(weights or "official", **config)
    size = input_size or (224, 224)
    return Predictor(lambda x: reference_probability(net, x), size, "torch")
