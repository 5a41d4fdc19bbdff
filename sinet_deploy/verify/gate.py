"""The parity gate: an artifact's session against the PyTorch fp32 reference.

Two kinds of input, both run through the artifact's own runtime and through PyTorch:
- random uint8 images (seeded): they exercise every pixel value and catch numeric drift;
- real portraits: the two public-domain images shipped in ``sinet_deploy/data`` (``pd_*``) plus
  any folder the user passes (``--images``). Mask statistics are meaningful only on these.

The registry's ``max_abs_prob_diff`` bound applies to both kinds; IoU / pixel agreement bounds
to the portraits (a noise image's mask is a few scattered pixels, where one flip moves IoU a lot
without meaning anything).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.core.jsonsafe import json_safe
from sinet_deploy.models.preprocessing import list_images, load_input
from sinet_deploy.runtimes.base import Session
from sinet_deploy.verify.metrics import aggregate, compare, format_metrics
from sinet_deploy.verify.tolerances import Tolerance, tolerance_for

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
#: Portraits shipped with the package (public domain: NASA's astronaut photo as published by
#: scikit-image, and the U.S. Navy photo of Grace Hopper from matplotlib's sample data).
BUILTIN_IMAGES = ("pd_astronaut.png", "pd_grace_hopper.jpg")
DEFAULT_RANDOM_INPUTS = 2


def builtin_images() -> list[Path]:
    """The packaged public-domain portraits."""
    return [DATA_DIR / name for name in BUILTIN_IMAGES if (DATA_DIR / name).is_file()]


@dataclass
class GateResult:
    """Outcome of one parity gate.

    Attributes:
        artifact / runtime / format / precision: what was checked.
        images: aggregate metrics over the portraits (``None`` if there were none).
        random: aggregate metrics over random inputs (``None`` if none were used).
        per_image: per-portrait metrics with the file name.
        tolerance: the registry entry applied.
        failures: violated bounds (empty when passed).
    """

    artifact: str
    runtime: str
    format: str
    precision: str
    tolerance: Tolerance
    images: dict[str, Any] | None
    random: dict[str, Any] | None
    per_image: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, Any]:
        """Headline numbers (the ``parity --json`` row fields, CONTRACTS.md)."""
        stats = self.images or self.random or {}
        worst = max(
            (s["max_abs_prob_diff"] for s in (self.images, self.random) if s), default=float("nan")
        )
        return json_safe(
            {
                "artifact": self.artifact,
                "runtime": self.runtime,
                "format": self.format,
                "precision": self.precision,
                "mean_iou": stats.get("mean_iou"),
                "min_iou": stats.get("min_iou"),
                "pixel_agreement": stats.get("pixel_agreement"),
                "max_abs_prob_diff": worst,
                "mean_abs_prob_diff": stats.get("mean_abs_prob_diff"),
                "sqnr_db": stats.get("sqnr_db"),
                "passed": self.passed,
            }
        )

    def as_dict(self) -> dict[str, Any]:
        """Everything, JSON-safe (for manifests and ``--json``)."""
        return {
            **self.summary(),
            "tolerance": self.tolerance.as_dict(),
            "images": json_safe(self.images or {}) or None,
            "random": json_safe(self.random or {}) or None,
            "per_image": [json_safe(r) for r in self.per_image],
            "failures": list(self.failures),
            "reference": "PyTorch fp32 (reference form)",
        }

    def message(self) -> str:
        """One line: which artifact failed which bound, with the full statistics."""
        stats = self.images or self.random or {}
        return (
            f"{self.artifact} ({self.runtime}) failed the {self.format}/{self.precision} "
            f"parity gate: {'; '.join(self.failures)} [{format_metrics(stats)}]"
        )


def random_images(size: tuple[int, int], count: int, seed: int = 0) -> list[np.ndarray]:
    """Seeded uniform uint8 RGB images ``[1, H, W, 3]``."""
    rng = np.random.default_rng(seed)
    h, w = size
    return [rng.integers(0, 256, size=(1, h, w, 3), dtype=np.uint8) for _ in range(count)]


def _worst(per_image: list[dict[str, Any]], failure: str) -> str:
    """`` (worst: NAME IoU X)`` for a failed IoU/agreement/diff bound: the image to look at."""
    for key, pick in (
        ("min_iou", "iou"),
        ("mean_iou", "iou"),
        ("pixel_agreement", "pixel_agreement"),
        ("max |Δ prob|", "max_abs_prob_diff"),
    ):
        if failure.startswith(key):
            rows = [r for r in per_image if pick in r]
            if not rows:
                return ""
            fn = max if pick == "max_abs_prob_diff" else min
            row = fn(rows, key=lambda r: float(r[pick]))
            return f" (worst: {row['image']} {pick} {float(row[pick]):.5g})"
    return ""


def gate_images(extra: Path | None = None) -> list[Path]:
    """The built-in portraits plus the images of ``extra`` (a folder), if given."""
    paths = builtin_images()
    if extra is not None:
        paths += list_images(extra)
    return paths


def run_gate(
    session: Session,
    reference: Session,
    *,
    fmt: str,
    precision: str,
    images: list[Path] | None = None,
    num_random: int = DEFAULT_RANDOM_INPUTS,
    seed: int = 0,
    tolerance: Tolerance | None = None,
) -> GateResult:
    """Compare ``session`` with ``reference`` and apply the registered tolerance.

    Args:
        session: the artifact under test.
        reference: usually :func:`sinet_deploy.runtimes.torch_reference` at the same size.
        fmt / precision: registry key (see :mod:`sinet_deploy.verify.tolerances`).
        images: portrait files; ``None`` → the built-in public-domain portraits.
        num_random: how many seeded random images to add.
        seed: seed of the random images.
        tolerance: override the registry (tests of the gate itself).

    Returns:
        A :class:`GateResult`; it does not raise on failure (callers decide).
    """
    if tuple(session.input_size) != tuple(reference.input_size):
        raise ValueError(
            f"size mismatch: {session.name} is {session.input_size}, "
            f"reference is {reference.input_size}"
        )
    tol = tolerance or tolerance_for(fmt, precision)
    h, w = session.input_size
    paths = builtin_images() if images is None else list(images)
    per_image: list[dict[str, Any]] = []
    for path in paths:
        x = load_input(path, h, w)
        per_image.append({"image": Path(path).name, **compare(reference(x), session(x))})
    per_random = [
        compare(reference(x), session(x)) for x in random_images((h, w), num_random, seed)
    ]
    img_stats = aggregate(per_image) if per_image else None
    rnd_stats = aggregate(per_random) if per_random else None
    failures = _failures(tol, per_image, img_stats, rnd_stats)
    return GateResult(
        session.name,
        session.runtime,
        fmt,
        precision,
        tol,
        img_stats,
        rnd_stats,
        [{k: v for k, v in r.items()} for r in per_image],
        failures,
    )


def _failures(
    tol: Tolerance,
    per_image: list[dict[str, Any]],
    img_stats: dict[str, Any] | None,
    rnd_stats: dict[str, Any] | None,
) -> list[str]:
    """The violated bounds: every bound on the portraits, only ``max |Δ prob|`` on the random
    inputs (a noise image's mask statistics mean nothing)."""
    failures: list[str] = []
    if img_stats is not None:
        failures += [f"portraits: {f}{_worst(per_image, f)}" for f in tol.failures(img_stats)]
    if rnd_stats is not None and tol.max_abs_prob_diff is not None:
        only_diff = Tolerance(tol.why, max_abs_prob_diff=tol.max_abs_prob_diff)
        failures += [f"random inputs: {f}" for f in only_diff.failures(rnd_stats)]
    return failures
