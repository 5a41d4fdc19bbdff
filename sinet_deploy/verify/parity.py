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
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sinet_deploy.core.errors import ImageError, UserInputError
from sinet_deploy.core.fileio import atomic_write
from sinet_deploy.core.jsonsafe import json_safe
from sinet_deploy.verify.metrics import MASK_THRESHOLD, aggregate, compare
from sinet_deploy.verify.overlays import overlay_image
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
            # JSON-safe too: an exact match's ``inf`` SQNR would print as ``Infinity``, which
            # is not JSON (``parity --json`` prints these rows).
            safe["per_image"] = json_safe(self.per_image)
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


@dataclass(frozen=True)
class ParityOptions:
    """How the matrix is run and labelled.

    Attributes:
        reference_name: how the reference is named in the report.
        images_source: where the images came from, for the report.
        pairs: also compare every two artifacts of the same input size.
        overlay_dir: write the worst disagreements there (PNG); ``None``: no overlays.
        overlays_per_artifact: how many worst images per artifact to draw.
        paths: the artifact paths, parallel to the sessions (recorded in the report).
    """

    reference_name: str = "PyTorch fp32"
    images_source: str = ""
    pairs: bool = False
    overlay_dir: Path | None = None
    overlays_per_artifact: int = OVERLAYS_PER_ARTIFACT
    paths: Sequence[str | None] | None = None


def run_parity(
    sessions: Sequence[ProbSession],
    images: Sequence[Path],
    reference: Callable[[tuple[int, int]], ProbSession],
    options: ParityOptions | None = None,
    *,
    progress: ProgressFn | None = None,
    **fields: Any,
) -> ParityReport:
    """Compare every session with the reference on every image.

    Args:
        sessions: the artifacts' sessions (``__call__(uint8 [1,H,W,3]) -> prob [1,H,W,1]``).
        images: image files; each is resized to every input size in play.
        reference: ``input_size -> session`` of the PyTorch fp32 reference (built once per size).
        options: see :class:`ParityOptions`; defaults when ``None``.
        progress: optional ``(description, done, total)`` callback.
        **fields: :class:`ParityOptions` fields that override ``options``
            (``run_parity(sessions, images, ref, pairs=True)``); an unknown name is a
            ``TypeError``.

    Returns:
        A :class:`ParityReport`; ``report.passed`` is False when any artifact fails its gate.
    """
    opts = replace(options or ParityOptions(), **fields)
    if not sessions:
        raise UserInputError("no artifacts to check", hint="pass at least one artifact path")
    if not images:
        raise UserInputError("no images to check parity on", hint="pass --images DIR")
    paths = list(opts.paths) if opts.paths is not None else [None] * len(sessions)
    k = opts.overlays_per_artifact if opts.overlay_dir is not None else 0
    rows = _gated_rows(sessions, paths, k)
    pair_rows = _pair_rows(sessions, rows) if opts.pairs else []
    _compare_all(sessions, images, reference, rows, pair_rows, progress)
    if opts.overlay_dir is not None:
        for row in rows:
            row.overlays = _write_overlays(row, images, opts.overlay_dir)
    return ParityReport(
        opts.reference_name,
        opts.images_source,
        [p.name for p in images],
        rows,
        [r for _, _, r in pair_rows],
    )


def _gated_rows(
    sessions: Sequence[ProbSession], paths: Sequence[str | None], k: int
) -> list[Comparison]:
    """One row per artifact against PyTorch, with its registered tolerance."""
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
    return rows


def _pair_rows(
    sessions: Sequence[ProbSession], rows: Sequence[Comparison]
) -> list[tuple[int, int, Comparison]]:
    """``(i, j, row)``: artifact ``j`` against artifact ``i`` of the same size, with no gate."""
    pair_rows = []
    for i, j in itertools.combinations(range(len(sessions)), 2):
        a, b = sessions[i], sessions[j]
        if _size(a) == _size(b):
            pair_rows.append(
                (
                    i,
                    j,
                    Comparison(
                        b.name,
                        rows[j].path,
                        b.runtime,
                        rows[j].format,
                        rows[j].precision,
                        _size(b),
                        a.name,
                        None,
                    ),
                )
            )
    return pair_rows


def _compare_all(
    sessions: Sequence[ProbSession],
    images: Sequence[Path],
    reference: Callable[[tuple[int, int]], ProbSession],
    rows: Sequence[Comparison],
    pair_rows: Sequence[tuple[int, int, Comparison]],
    progress: ProgressFn | None,
) -> None:
    """Run every image through the references and the sessions; fill the rows' per-image
    metrics and worst images."""
    from sinet_deploy.models.preprocessing import image_input, read_image

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
