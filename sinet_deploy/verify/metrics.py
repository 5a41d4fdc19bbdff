"""How close an artifact's foreground probability is to the PyTorch reference.

Every function takes probabilities in ``[0, 1]`` of the same shape (``[1, H, W, 1]`` from a
session, but any shape works). The mask of a probability map is ``prob > 0.5``, the threshold the
``predict`` command uses.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

#: Probability above which a pixel counts as foreground.
MASK_THRESHOLD = 0.5


def mask_iou(ref_mask: np.ndarray, test_mask: np.ndarray) -> float:
    """Intersection over union of two boolean masks; two empty masks agree perfectly (1.0)."""
    inter = np.logical_and(ref_mask, test_mask).sum()
    union = np.logical_or(ref_mask, test_mask).sum()
    return 1.0 if union == 0 else float(inter) / float(union)


def sqnr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """Signal-to-quantization-noise ratio in dB; ``inf`` when ``test`` equals ``ref`` exactly."""
    ref64 = np.asarray(ref, dtype=np.float64)
    noise = float(np.sum((ref64 - np.asarray(test, dtype=np.float64)) ** 2))
    signal = float(np.sum(ref64**2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def compare(ref_prob: np.ndarray, test_prob: np.ndarray) -> dict[str, float]:
    """Per-image agreement of a test probability map with the reference one.

    Args:
        ref_prob: reference foreground probability (PyTorch fp32).
        test_prob: the artifact's probability, same shape.

    Returns:
        ``max_abs_prob_diff``, ``mean_abs_prob_diff``, ``sqnr_db``, ``iou`` (of the
        ``prob > 0.5`` masks) and ``pixel_agreement`` (fraction of pixels with the same mask
        value).

    Raises:
        ValueError: the shapes differ (a shape mismatch is a bug, never a tolerance question).
    """
    ref = np.asarray(ref_prob, dtype=np.float64)
    test = np.asarray(test_prob, dtype=np.float64)
    if ref.shape != test.shape:
        raise ValueError(f"shape mismatch: reference {ref.shape} vs test {test.shape}")
    diff = np.abs(ref - test)
    ref_mask = ref > MASK_THRESHOLD
    test_mask = test > MASK_THRESHOLD
    return {
        "max_abs_prob_diff": float(diff.max()) if diff.size else 0.0,
        "mean_abs_prob_diff": float(diff.mean()) if diff.size else 0.0,
        "sqnr_db": sqnr_db(ref, test),
        "iou": mask_iou(ref_mask, test_mask),
        "pixel_agreement": float(np.mean(ref_mask == test_mask)) if diff.size else 1.0,
    }


def aggregate(per_image: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Summarise :func:`compare` results over a set of images.

    Returns ``num_images``, ``mean_iou``, ``min_iou``, ``pixel_agreement`` (mean),
    ``min_pixel_agreement``, ``max_abs_prob_diff`` (worst image), ``mean_abs_prob_diff`` (mean),
    ``sqnr_db`` (mean over images, finite values only; ``inf`` when every image matched exactly)
    and ``min_sqnr_db``.
    """
    rows = list(per_image)
    if not rows:
        raise ValueError("aggregate() needs at least one image")
    ious = np.array([r["iou"] for r in rows])
    agree = np.array([r["pixel_agreement"] for r in rows])
    sqnr = np.array([r["sqnr_db"] for r in rows], dtype=np.float64)
    finite = sqnr[np.isfinite(sqnr)]
    return {
        "num_images": len(rows),
        "mean_iou": float(ious.mean()),
        "min_iou": float(ious.min()),
        "pixel_agreement": float(agree.mean()),
        "min_pixel_agreement": float(agree.min()),
        "max_abs_prob_diff": float(max(r["max_abs_prob_diff"] for r in rows)),
        "mean_abs_prob_diff": float(np.mean([r["mean_abs_prob_diff"] for r in rows])),
        "sqnr_db": float(finite.mean()) if finite.size else float(sqnr.min()),
        "min_sqnr_db": float(sqnr.min()),
    }


def format_metrics(metrics: Mapping[str, Any]) -> str:
    """One line with every statistic, for error messages and logs."""
    parts = []
    for key, value in metrics.items():
        if isinstance(value, float):
            parts.append(f"{key}={value:.6g}")
        elif isinstance(value, int):
            parts.append(f"{key}={value}")
    return ", ".join(parts)
