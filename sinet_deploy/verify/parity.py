"""The parity matrix: every artifact against the PyTorch fp32 reference, over a set of images.

For each image, each artifact's foreground probability is compared with the reference's
(:func:`sinet_deploy.verify.metrics.compare`); per-image numbers are aggregated
(:func:`~sinet_deploy.verify.metrics.aggregate`) and checked against the tolerance
registered for the artifact's ``(format, precision)``. With ``pairs=True`` every two artifacts of
the same input size are also compared with each other (informational: no gate). With an overlay
folder, the worst images of each artifact are drawn: where the two masks disagree.
"""

from __future__ import annotations

import heapq
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sinet_deploy.core.errors import ImageError, UserInputError
from sinet_deploy.core.fileio import atomic_write
from sinet_deploy.core.jsonsafe import json_safe
from sinet_deploy.verify.metrics import MASK_THRESHOLD, aggregate, compare
from sinet_deploy.verify.tolerances import Tolerance, tolerance_for

#: How many worst images per artifact get an overlay.
OVERLAYS_PER_ARTIFACT = 3


class ProbSession(Protocol):
    """What parity needs from a session (``sinet_deploy.runtimes``)."""

    @property
    def name(self) -> str: ...

    @property
    def runtime(self) -> str: ...

    @property
    def input_size(self) -> tuple[int, int]: ...

    @property
    def manifest(self) -> dict[str, Any] | None: ...

    def __call__(self, image: np.ndarray) -> np.ndarray: ...


ProgressFn = Callable[[str, int, int], None]


@dataclass
class _Worst:
    """The ``k`` worst images of one comparison: lowest IoU, then largest mean |Δ prob| (the
    same order as ``worst_image``). A min-heap on that badness keeps the least bad on top."""

    k: int
    heap: list[tuple[float, float, int, str, np.ndarray, np.ndarray]] = field(default_factory=list)

    def offer(
        self, metrics: dict[str, float], idx: int, image: str, ref: np.ndarray, test: np.ndarray
    ) -> None:
        if self.k <= 0 or metrics["iou"] >= 1.0:
            return  # identical masks have nothing to show
        item = (
            -metrics["iou"],
            metrics["mean_abs_prob_diff"],
            idx,
            image,
            ref > MASK_THRESHOLD,
            test > MASK_THRESHOLD,
        )
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, item)
        elif item[:3] > self.heap[0][:3]:
            heapq.heapreplace(self.heap, item)

    def worst_first(self) -> list[tuple[float, float, int, str, np.ndarray, np.ndarray]]:
        return sorted(self.heap, key=lambda t: (t[0], t[1], -t[2]), reverse=True)


@dataclass
class Comparison:
    """One row of the matrix: ``test`` against ``against`` over every image."""

    artifact: str
    path: str | None
    runtime: str
    format: str | None
    precision: str | None
    input_size: tuple[int, int]
    against: str
    tolerance: Tolerance | None
    per_image: list[dict[str, Any]] = field(default_factory=list)
    worst: _Worst = field(default_factory=lambda: _Worst(0))
    overlays: list[dict[str, Any]] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        return aggregate(self.per_image)

    def failures(self) -> list[str]:
        return self.tolerance.failures(self.stats()) if self.tolerance else []

    @property
    def passed(self) -> bool | None:
        return None if self.tolerance is None else not self.failures()

    def to_dict(self, *, per_image: bool = True) -> dict[str, Any]:
        stats = self.stats()
        # Lowest IoU; among equal IoUs (often all 1.0) the largest mean |Δ prob|.
        worst = min(self.per_image, key=lambda m: (m["iou"], -m["mean_abs_prob_diff"]))
        data: dict[str, Any] = {
            "artifact": self.artifact,
            "path": self.path,
            "runtime": self.runtime,
            "format": self.format,
            "precision": self.precision,
            "input_size": list(self.input_size),
            "file_size_bytes": _file_size(self.path),
            "against": self.against,
            "images": stats["num_images"],
            **{k: v for k, v in stats.items() if k != "num_images"},
            "worst_image": worst["image"],
            "passed": self.passed,
            "failures": self.failures(),
            "tolerance": self.tolerance.as_dict() if self.tolerance else None,
            "overlays": self.overlays,
        }
        safe: dict[str, Any] = json_safe(data)
        if per_image:
            # The rows as measured (an exact match keeps its ``inf`` SQNR); ``results.json``
            # makes them JSON-safe when a report is written.
            safe["per_image"] = self.per_image
        return safe


@dataclass
class ParityReport:
    """The whole matrix."""

    reference: str
    images_source: str
    images: list[str]
    results: list[Comparison]
    pairs: list[Comparison]

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.results)

    @property
    def failed(self) -> list[str]:
        return [c.artifact for c in self.results if c.passed is False]

    def to_dict(self, *, per_image: bool = True) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "images_source": self.images_source,
            "n_images": len(self.images),
            "passed": self.passed,
            "failed": self.failed,
            "results": [c.to_dict(per_image=per_image) for c in self.results],
            "pairs": [c.to_dict(per_image=per_image) for c in self.pairs],
        }


def tolerance_of(session: ProbSession) -> tuple[str | None, str | None, Tolerance]:
    """The registered tolerance of an artifact, from its manifest's format and precision.

    Raises:
        UserInputError: the artifact has no manifest format/precision, or nothing is registered.
    """
    manifest = session.manifest or {}
    fmt, precision = manifest.get("format"), manifest.get("precision")
    if not fmt or not precision:
        raise UserInputError(
            f"{session.name} has no format/precision in its manifest",
            hint="parity gates need an artifact made by `sinet-deploy export`",
        )
    return fmt, precision, tolerance_for(str(fmt), str(precision))


def run_parity(
    sessions: Sequence[ProbSession],
    images: Sequence[Path],
    reference: Callable[[tuple[int, int]], ProbSession],
    *,
    reference_name: str = "PyTorch fp32",
    images_source: str = "",
    pairs: bool = False,
    overlay_dir: Path | None = None,
    overlays_per_artifact: int = OVERLAYS_PER_ARTIFACT,
    paths: Sequence[str | None] | None = None,
    progress: ProgressFn | None = None,
) -> ParityReport:
    """Compare every session with the reference on every image.

    Args:
        sessions: the artifacts' sessions (``__call__(uint8 [1,H,W,3]) -> prob [1,H,W,1]``).
        images: image files; each is resized to every input size in play.
        reference: ``input_size -> session`` of the PyTorch fp32 reference (built once per size).
        reference_name: how the reference is named in the report.
        images_source: where the images came from, for the report.
        pairs: also compare every two artifacts of the same input size.
        overlay_dir: write the worst disagreements there (PNG); ``None``: no overlays.
        overlays_per_artifact: how many worst images per artifact to draw.
        paths: the artifact paths, parallel to ``sessions`` (recorded in the report).
        progress: optional ``(description, done, total)`` callback.

    Returns:
        A :class:`ParityReport`; ``report.passed`` is False when any artifact fails its gate.
    """
    from sinet_deploy.models.preprocessing import image_input, read_image

    if not sessions:
        raise UserInputError("no artifacts to check", hint="pass at least one artifact path")
    if not images:
        raise UserInputError("no images to check parity on", hint="pass --images DIR")
    paths = list(paths) if paths is not None else [None] * len(sessions)
    k = overlays_per_artifact if overlay_dir is not None else 0
    rows = []
    for s, p in zip(sessions, paths, strict=True):
        fmt, precision, tol = tolerance_of(s)
        rows.append(
            Comparison(
                s.name,
                p,
                s.runtime,
                fmt,
                precision,
                _size(s),
                "PyTorch",
                tol,
                worst=_Worst(k),
            )
        )
    pair_rows: list[tuple[int, int, Comparison]] = []
    if pairs:
        for i, j in itertools.combinations(range(len(sessions)), 2):
            a, b = sessions[i], sessions[j]
            if _size(a) == _size(b):
                pair_rows.append(
                    (
                        i,
                        j,
                        Comparison(
                            b.name,
                            paths[j],
                            b.runtime,
                            rows[j].format,
                            rows[j].precision,
                            _size(b),
                            a.name,
                            None,
                        ),
                    )
                )
    sizes = sorted({_size(s) for s in sessions})
    refs = {size: reference(size) for size in sizes}

    for n, img_path in enumerate(images):
        if progress:
            progress(f"parity {img_path.name}", n, len(images))
        rgb = read_image(img_path)  # decode once, resize to every input size in play
        inputs = {size: image_input(rgb, *size) for size in sizes}
        ref_probs = {size: np.asarray(refs[size](x)) for size, x in inputs.items()}
        probs = [np.asarray(s(inputs[_size(s)])) for s in sessions]
        for row, prob in zip(rows, probs, strict=True):
            ref = ref_probs[row.input_size]
            m = compare(ref, prob)
            row.per_image.append({"image": img_path.name, **m})
            row.worst.offer(m, n, img_path.name, ref, prob)
        for i, j, row in pair_rows:
            row.per_image.append({"image": img_path.name, **compare(probs[i], probs[j])})
    if progress:
        progress("parity done", len(images), len(images))

    if overlay_dir is not None:
        for row in rows:
            row.overlays = _write_overlays(row, images, overlay_dir)
    return ParityReport(
        reference_name, images_source, [p.name for p in images], rows, [r for _, _, r in pair_rows]
    )


def _file_size(path: str | None) -> int | None:
    from sinet_deploy.core.fileio import path_size

    return path_size(path) if path and Path(path).exists() else None


def _size(session: ProbSession) -> tuple[int, int]:
    h, w = session.input_size
    return int(h), int(w)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


#: An overlay is drawn only where at least this fraction of the mask differs (0.2%: 100 pixels
#: at 224x224), or for an artifact that failed its gate. Below it the difference is a thin line
#: of boundary pixels, as fp16 rounding makes, and a picture of it only hides the ones that
#: matter.
OVERLAY_MIN_DIFF = 0.002


def _write_overlays(row: Comparison, images: Sequence[Path], out_dir: Path) -> list[dict[str, Any]]:
    from sinet_deploy.models.preprocessing import load_input

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for neg_iou, _, idx, name, ref_mask, test_mask in row.worst.worst_first():
        differ = int((ref_mask != test_mask).sum())
        if differ < OVERLAY_MIN_DIFF * ref_mask.size and row.passed is not False:
            continue  # a few boundary pixels (fp16 rounding): nothing to look at
        rgb = load_input(images[idx], *row.input_size)[0]
        png = overlay_image(
            rgb, ref_mask.reshape(row.input_size), test_mask.reshape(row.input_size)
        )
        fname = f"{_slug(row.artifact)}__{_slug(Path(name).stem)}.png"
        atomic_write(out_dir / fname, partial(png.save, format="PNG"))
        iou = -neg_iou
        written.append(
            {
                "file": f"{out_dir.name}/{fname}",
                "image": name,
                "iou": iou,
                "caption": f"{row.artifact} vs {row.against} on {name}: IoU {iou:.4f}, "
                f"{differ} pixels differ",
            }
        )
    return written


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


def default_images() -> tuple[list[Path], str]:
    """The public-domain portraits shipped in ``sinet_deploy/data`` and a label for them.

    Raises:
        ImageError: the package was installed without its data files.
    """
    from sinet_deploy.verify.gate import builtin_images

    images = builtin_images()
    if not images:
        raise ImageError(
            "the built-in portraits are missing from sinet_deploy/data",
            hint="pass --images DIR with a few portraits",
        )
    return images, "built-in public-domain portraits (sinet_deploy/data)"
