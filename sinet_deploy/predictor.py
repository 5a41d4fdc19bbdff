"""Predict masks for images with the PyTorch reference or an exported artifact."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ArtifactError, ImageError, UserInputError
from sinet_deploy.core.fileio import atomic_write
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
        """Masks and overlays for every file, written only once all of them are computed
        (for a library caller that wants all or nothing; the CLI goes image by image).

        The same file named twice is done once; two files sharing a stem get distinct names
        (:func:`output_stems`). ``before_write`` runs before the first file is written.

        Raises:
            ImageError / UserInputError: an image is unreadable or over the pixel budget.
            ArtifactError: the model's output is not finite (nothing is written).
        """
        unique = list({Path(p).resolve(): Path(p) for p in paths}.values())
        prepared = [prepare_image(p, self.input_size) for p in unique]
        probs = [
            self._checked(np.asarray(self.run(item.model_input))[0, :, :, 0], item.path)
            for item in prepared
        ]
        if before_write is not None:
            before_write()
        return [
            self._write(item, prob, out, stem)
            for item, prob, stem in zip(prepared, probs, output_stems(unique), strict=True)
        ]

    def write(
        self, path: Path, rgb: np.ndarray, out: Path, stem: str | None = None
    ) -> dict[str, Any]:
        """Mask and overlay for one decoded image."""
        item = PreparedImage(
            Path(path), (rgb.shape[0], rgb.shape[1]), image_input(rgb, *self.input_size), rgb
        )
        return self._write(item, self.probability(rgb), out, stem)

    def predict_one(
        self,
        path: Path,
        out: Path,
        stem: str | None = None,
        *,
        before_write: Callable[[], object] | None = None,
    ) -> dict[str, Any]:
        """Decode ``path`` within the pixel budget, run the model, write its mask and overlay
        (``before_write`` runs just before the first file is written).

        Raises:
            ImageError: unreadable or over-budget image (nothing written).
            ArtifactError: non-finite model output (nothing written).
        """
        item = prepare_image(path, self.input_size)
        prob = self._checked(np.asarray(self.run(item.model_input))[0, :, :, 0], item.path)
        if before_write is not None:
            before_write()
        return self._write(item, prob, out, stem)

    def _write(
        self, item: PreparedImage, prob: np.ndarray, out: Path, stem: str | None = None
    ) -> dict[str, Any]:
        mask = mask_from_probability(prob, *item.size)
        stem = stem or item.path.stem
        mask_path = out / f"{stem}_mask.png"
        overlay_path = out / f"{stem}_overlay.jpg"
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


_GLOB_CHARS = frozenset("*?[")


def expand_inputs(args: Sequence[str]) -> list[Path]:
    """Files as given, folders as the images directly in them, and quoted globs expanded
    (sorted). The same file named twice is kept once. A path that does not exist is kept, so
    reading it reports it.

    Raises:
        ImageError: a glob that matches no file, or a folder without images.
    """
    import glob

    from sinet_deploy.models.preprocessing import list_images

    out: list[Path] = []
    for arg in args:
        p = Path(arg).expanduser()
        if p.is_dir():
            out += list_images(p, check=False)  # an unreadable file is skipped, not fatal
        elif not p.exists() and _GLOB_CHARS & set(str(arg)):
            matches = sorted(Path(m) for m in glob.glob(str(p)) if Path(m).is_file())
            if not matches:
                raise ImageError(f"{arg} matches no file", hint="check the pattern")
            out += matches
        else:
            out.append(p)
    unique: dict[Path, Path] = {}
    for p in out:
        unique.setdefault(p.resolve(), p)
    return list(unique.values())


def output_stems(paths: Sequence[Path]) -> list[str]:
    """A distinct output stem per input: its own stem, or ``<folder>_<stem>`` (then a number)
    where two inputs from different folders share one, so no mask overwrites another."""
    from collections import Counter

    counts = Counter(p.stem for p in paths)
    stems: list[str] = []
    for p in paths:
        stem = p.stem if counts[p.stem] == 1 else f"{p.parent.name or 'root'}_{p.stem}"
        base, n = stem, 2
        while stem in stems:
            stem, n = f"{base}_{n}", n + 1
        stems.append(stem)
    return stems
