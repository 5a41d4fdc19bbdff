"""Pictures of where two masks disagree, for the parity report's worst images.

Red: foreground for the reference only; blue: for the artifact only; a green tint: both. A zoom
on the densest disagreement sits beside the whole image, since a few flipped boundary pixels
are invisible at full size.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def overlay_image(
    rgb: np.ndarray, ref_mask: np.ndarray, test_mask: np.ndarray, min_side: int = 336
) -> Any:
    """The image with mask disagreements painted in, plus a zoom on where they are.

    Red: foreground for the reference only (the artifact missed it); blue: foreground for the
    artifact only; a light green tint: both say foreground. Left panel: the whole image, with a
    yellow box around the quarter-size window holding the most disagreeing pixels; right panel
    (when the masks differ): that window enlarged, so a few flipped boundary pixels are visible.
    Nearest-neighbour scaling keeps single pixels sharp.

    Returns:
        A ``PIL.Image`` (RGB).
    """
    from PIL import Image, ImageDraw

    base = rgb.astype(np.float32) * 0.7 + 30
    both = ref_mask & test_mask
    base[both] = base[both] * 0.75 + np.array([70, 190, 70]) * 0.25
    base[ref_mask & ~test_mask] = (230, 25, 25)
    base[test_mask & ~ref_mask] = (30, 90, 255)
    painted = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    h, w = ref_mask.shape
    scale = max(1, int(np.ceil(min_side / min(h, w))))
    full = painted.resize((w * scale, h * scale), Image.Resampling.NEAREST)
    diff = ref_mask != test_mask
    if not diff.any():
        return full
    top, left, side = densest_window(diff, max(8, min(h, w) // 4))
    # The frame goes just outside the window, so it never hides a pixel it points at.
    ImageDraw.Draw(full).rectangle(
        [left * scale - 2, top * scale - 2, (left + side) * scale + 1, (top + side) * scale + 1],
        outline=(255, 210, 0),
        width=2,
    )
    zoom = painted.crop((left, top, left + side, top + side)).resize(
        (full.height, full.height), Image.Resampling.NEAREST
    )
    out = Image.new("RGB", (full.width + 8 + zoom.width, full.height), (255, 255, 255))
    out.paste(full, (0, 0))
    out.paste(zoom, (full.width + 8, 0))
    # A yellow bar in the gap ties the enlargement to the yellow box.
    ImageDraw.Draw(out).rectangle(
        [full.width + 3, 0, full.width + 4, out.height - 1], fill=(255, 210, 0)
    )
    return out


def densest_window(mask: np.ndarray, side: int) -> tuple[int, int, int]:
    """``(top, left, side)`` of the ``side``×``side`` window with the most ``True`` pixels
    (summed-area table: every window in one pass)."""
    h, w = mask.shape
    side = min(side, h, w)
    table = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    sums = table[side:, side:] - table[:-side, side:] - table[side:, :-side] + table[:-side, :-side]
    top, left = (int(v) for v in np.unravel_index(int(np.argmax(sums)), sums.shape))
    # Centre the window on the pixels it holds (argmax picks the first, often off-centre, one).
    ys, xs = np.nonzero(mask[top : top + side, left : left + side])
    top = min(max(0, top + round(ys.mean()) - side // 2), h - side)
    left = min(max(0, left + round(xs.mean()) - side // 2), w - side)
    return top, left, side
