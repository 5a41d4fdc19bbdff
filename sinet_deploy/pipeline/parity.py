"""The pipeline's parity step: every published artifact against PyTorch on the chosen images.

Each export job checks what it published (:func:`pipeline_parity`); the pipeline then merges the
jobs' blocks into the one the report shows (:func:`merge_parity`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sinet_deploy.pipeline.records import ParitySpec
from sinet_deploy.verify.parity import ParityReport

ProgressFn = Callable[[str, int, int], None]

#: Runtimes that are reference evaluators, far slower than a deployment runtime (CoreML's
#: ML-program interpreter on Linux: about a second per 224×224 image here).
SLOW_RUNTIMES = frozenset({"coreml-reference"})


def spread(items: Sequence[Path], k: int) -> list[Path]:
    """``k`` items evenly spaced over ``items`` (all of them when ``k`` is 0 or at least their
    number): a subset that still spans every photographer of a folder sorted by name."""
    if k <= 0 or k >= len(items):
        return list(items)
    if k == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def pipeline_parity(
    artifacts: Sequence[Path],
    spec: ParitySpec,
    *,
    weights: str,
    threads: int | None = None,
    progress: ProgressFn | None = None,
) -> ParityReport:
    """Every artifact against PyTorch on every image of ``spec``, except that artifacts only a
    reference evaluator runs here (:data:`SLOW_RUNTIMES`) get ``spec.slow_images`` of them,
    evenly spaced (their rows' ``images`` says how many)."""
    from sinet_deploy.core.machine import usable_cores
    from sinet_deploy.runtimes import load_session
    from sinet_deploy.verify.parity import run_parity

    n_threads = threads or usable_cores()  # parity is not timed: every core by default
    sessions = [load_session(a, threads=n_threads) for a in artifacts]
    reference = _reference_cache(weights, n_threads)
    slow = [s.runtime in SLOW_RUNTIMES for s in sessions]
    images = list(spec.images)
    reports: list[tuple[list[int], ParityReport]] = []
    for is_slow, imgs in ((False, images), (True, spread(images, spec.slow_images))):
        group = [i for i, flag in enumerate(slow) if flag == is_slow]
        if group:
            report = run_parity(
                [sessions[i] for i in group],
                imgs,
                reference,
                reference_name=f"PyTorch fp32 ({weights} weights)",
                images_source=spec.source,
                overlay_dir=spec.overlay_dir,
                paths=[str(artifacts[i]) for i in group],
                progress=progress,
            )
            reports.append((group, report))
    return _in_artifact_order(reports, spec)


def _reference_cache(weights: str, threads: int) -> Callable[[tuple[int, int]], Any]:
    """One PyTorch reference per input size, made when first asked for."""
    from sinet_deploy.runtimes import torch_reference

    refs: dict[tuple[int, int], Any] = {}

    def reference(size: tuple[int, int]) -> Any:
        if size not in refs:
            refs[size] = torch_reference(weights, size, threads=threads)
        return refs[size]

    return reference


def _in_artifact_order(
    reports: Sequence[tuple[list[int], ParityReport]], spec: ParitySpec
) -> ParityReport:
    """One report from the fast and slow groups' ones, rows back in the artifacts' order."""
    rows = sorted(
        ((i, row) for g, rep in reports for i, row in zip(g, rep.results, strict=True)),
        key=lambda t: t[0],
    )
    return ParityReport(
        reports[0][1].reference,
        spec.source,
        [p.name for p in spec.images],
        [row for _, row in rows],
        [p for _, rep in reports for p in rep.pairs],
    )


def merge_parity(
    parts: Sequence[dict[str, Any]], n_images: int, source: str
) -> dict[str, Any] | None:
    """One parity block from the per-format ones (``ParityReport.to_dict()`` form)."""
    if not parts:
        return None
    results = [r for p in parts for r in p["results"]]
    subset = sorted({r["images"] for r in results if r["images"] < n_images})
    if subset:
        source += (
            f"; artifacts that only a reference evaluator runs here (CoreML, ~1 s per "
            f"image) on {', '.join(map(str, subset))} of them, evenly spaced"
        )
    failed = [r["artifact"] for r in results if r["passed"] is False]
    return {
        "reference": parts[0]["reference"],
        "images_source": source,
        "n_images": n_images,
        "passed": not failed,
        "failed": failed,
        "results": results,
        "pairs": [r for p in parts for r in p.get("pairs", [])],
    }
