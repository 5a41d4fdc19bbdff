"""Predict masks for images with the PyTorch reference or an exported artifact."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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

    def write(self, path: Path, rgb: np.ndarray, out: Path) -> dict[str, Any]:
        from PIL import Image

        prob = self.probability(rgb)
        mask = mask_from_probability(prob, rgb.shape[0], rgb.shape[1])
        mask_path = out / f"{path.stem}_mask.png"
        overlay_path = out / f"{path.stem}_overlay.jpg"
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
