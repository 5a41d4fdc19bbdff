"""Predict masks for images with the PyTorch reference or an exported artifact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.errors import ArtifactError, ImageError
from sinet_deploy.fileio import atomic_write
from sinet_deploy.models.inference import mask_from_probability, overlay
from sinet_deploy.models.preprocessing import image_input


@dataclass
class Predictor:
    """A probability function for uint8 RGB NHWC input at ``input_size``, plus file output."""

    run: Callable[[np.ndarray], np.ndarray]
    input_size: tuple[int, int]
    runtime: str

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        h, w = self.input_size
        return np.asarray(self.run(image_input(rgb, h, w)))[0, :, :, 0]

    def write(
        self, path: Path, rgb: np.ndarray, out: Path, stem: str | None = None
    ) -> dict[str, Any]:
        from PIL import Image

        prob = self.probability(rgb)
        if not np.isfinite(prob).all():
            raise ArtifactError(
                f"the model returned non-finite probabilities for {path}",
                hint="its weights are broken (NaN/inf): re-export or re-train it",
            )
        mask = mask_from_probability(prob, rgb.shape[0], rgb.shape[1])
        stem = stem or path.stem
        mask_path = out / f"{stem}_mask.png"
        overlay_path = out / f"{stem}_overlay.jpg"
        atomic_write(mask_path, lambda tmp: Image.fromarray(mask).save(tmp, format="PNG"))
        blend = Image.fromarray(overlay(rgb, mask))
        atomic_write(overlay_path, lambda tmp: blend.save(tmp, format="JPEG"))
        return {
            "image": str(path),
            "mask": str(mask_path),
            "overlay": str(overlay_path),
            "foreground_fraction": float((mask > 0).mean()),
        }


def make_predictor(
    *, model: Path | None, weights: str, input_size: tuple[int, int], config: dict[str, Any]
) -> Predictor:
    """PyTorch reference (``weights``) or an artifact session (``model``)."""
    if model is not None:
        from sinet_deploy.runtimes import load_session

        session = load_session(Path(model))
        return Predictor(session, tuple(session.input_size), session.runtime)  # type: ignore[arg-type]
    from sinet_deploy.models import load_model
    from sinet_deploy.models.inference import reference_probability

    net = load_model(weights, **config)
    return Predictor(lambda x: reference_probability(net, x), input_size, "torch")


_GLOB_CHARS = frozenset("*?[")


def expand_inputs(args: list[str]) -> list[Path]:
    """Files as given, folders as the images directly in them, and quoted globs expanded
    (sorted, duplicates removed). A path that does not exist is kept, so reading it reports it.

    Raises:
        ImageError: a glob or a folder that matches no image.
    """
    import glob

    from sinet_deploy.models.preprocessing import list_images

    out: list[Path] = []
    for arg in args:
        p = Path(arg).expanduser()
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise ImageError(f"folder {p} holds no images", hint="use jpg, png, bmp, webp")
            out += found
        elif not p.exists() and _GLOB_CHARS & set(arg):
            matches = sorted(Path(m) for m in glob.glob(str(p)) if Path(m).is_file())
            if not matches:
                raise ImageError(f"{arg} matches no file", hint="check the pattern")
            out += matches
        else:
            out.append(p)
    return list(dict.fromkeys(out))


def output_stems(paths: list[Path]) -> list[str]:
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
