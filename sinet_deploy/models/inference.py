"""Running the PyTorch reference on the artifacts' image contract, and turning outputs to masks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sinet_deploy.models.preprocessing import normalize_rgb

if TYPE_CHECKING:
    from torch import nn

MASK_THRESHOLD = 0.5


def logits_to_probability(logits: np.ndarray) -> np.ndarray:
    """2-class (or 1-class) NCHW logits → foreground probability NHWC ``[N, H, W, 1]``."""
    x = logits.astype(np.float64)
    if x.shape[1] == 1:
        p = 1.0 / (1.0 + np.exp(-x[:, 0]))
    else:
        e = np.exp(x - x.max(axis=1, keepdims=True))
        p = e[:, 1] / e.sum(axis=1)
    return p[..., None].astype(np.float32)


def reference_probability(model: nn.Module, image_nhwc: np.ndarray) -> np.ndarray:
    """The reference model's foreground probability for uint8 RGB NHWC input."""
    import torch

    with torch.no_grad():
        logits = model(torch.from_numpy(normalize_rgb(image_nhwc))).numpy()
    return logits_to_probability(logits)


def resize_probability(prob: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear (half-pixel) resize of an HxW float map, for masks at the image's resolution."""
    from sinet_deploy.models.preprocessing import _axis

    src = np.asarray(prob, dtype=np.float32)
    y0, y1, wy = _axis(src.shape[0], height)
    x0, x1, wx = _axis(src.shape[1], width)
    top = src[y0][:, x0] * (1 - wx) + src[y0][:, x1] * wx
    bot = src[y1][:, x0] * (1 - wx) + src[y1][:, x1] * wx
    return (top * (1 - wy)[:, None] + bot * wy[:, None]).astype(np.float32)


def mask_from_probability(prob_hw: np.ndarray, height: int, width: int) -> np.ndarray:
    """uint8 0/255 mask at ``height x width`` (probability > 0.5 is the person).

    The same arithmetic as :func:`resize_probability`, a block of rows at a time: the mask of
    a 144 MP photo costs its 144 MB, not a 576 MB float32 map first.
    """
    from sinet_deploy.models.preprocessing import _axis, _row_blocks

    src = np.asarray(prob_hw, dtype=np.float32)
    y0, y1, wy = _axis(src.shape[0], height)
    x0, x1, wx = _axis(src.shape[1], width)
    left, right = src[:, x0], src[:, x1]  # model-sized rows, full-width columns
    mask = np.empty((height, width), dtype=np.uint8)
    for rows in _row_blocks(height, width):
        a, b = y0[rows], y1[rows]
        top = left[a] * (1 - wx) + right[a] * wx
        bot = left[b] * (1 - wx) + right[b] * wx
        p = (top * (1 - wy[rows])[:, None] + bot * wy[rows][:, None]).astype(np.float32)
        mask[rows] = np.where(p > MASK_THRESHOLD, 255, 0).astype(np.uint8)
    return mask


def overlay(rgb: np.ndarray, mask: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image with the background dimmed and the person tinted, for a quick visual check.

    Computed a block of rows at a time (no full-size float32 copy of the image).
    """
    from sinet_deploy.models.preprocessing import _row_blocks

    tint = np.array([40.0, 200.0, 120.0], dtype=np.float32)
    out = np.empty(rgb.shape, dtype=np.uint8)
    for rows in _row_blocks(rgb.shape[0], rgb.shape[1] * 3):
        img = rgb[rows].astype(np.float32)
        fg = mask[rows][..., None] > 127
        blended = np.where(fg, img * (1 - alpha) + tint * alpha, img * 0.35)
        out[rows] = np.clip(blended, 0, 255).astype(np.uint8)
    return out
