"""The main job (``sinet-deploy pipeline``): export everything → parity → bench → report.

Every (format, precision) registered in :mod:`sinet_deploy.convert.publish` at run time is
exported with the given weights (the official ones by default), each through its own parity
gate, and the published artifacts go through the parity matrix on the chosen images — one job per
format, all at once (:mod:`.export_jobs`). Then the interleaved benchmark runs alone on the
machine (PyTorch eager as the reference, peers beside), and one report folder holds it all. A
format whose converter fails is recorded and the others carry on: a user asking "which artifact
do I ship?" still gets an answer for the rest.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sinet_deploy.benchmark.timing import BenchResult, Candidate
from sinet_deploy.core.errors import ParityGateError, SinetDeployError, UserInputError
from sinet_deploy.verify.parity import ParityReport

ProgressFn = Callable[[str, int, int], None]

#: Runtimes that are reference evaluators, far slower than a deployment runtime (CoreML's
#: ML-program interpreter on Linux: about a second per 224×224 image here).
SLOW_RUNTIMES = frozenset({"coreml-reference"})


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` produced, with the wall time of every stage."""

    out_dir: Path
    exports: list[dict[str, Any]]
    artifacts: list[Path]
    parity: dict[str, Any] | None
    bench: BenchResult | None
    stages_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    report: dict[str, Path] = field(default_factory=dict)

    def failure(self) -> SinetDeployError | None:
        """The error the command exits with: a failed gate (exit 3) before a converter error
        (its own code); ``None`` when everything passed."""
        gates = [
            f"{e['format']}/{e['precision']}" for e in self.exports if e.get("failure") == "gate"
        ]
        gates += [f"{name} (parity matrix)" for name in (self.parity or {}).get("failed", [])]
        if gates:
            return ParityGateError(
                f"parity gate failed: {', '.join(gates)}", hint="see the summary and the report"
            )
        failed = [e for e in self.exports if e.get("failure") == "error"]
        if failed:
            names = ", ".join(f"{e['format']}/{e['precision']}" for e in failed)
            exc = SinetDeployError(f"export failed for {names}: {failed[0]['error']}")
            exc.exit_code = max(int(e.get("exit_code") or 1) for e in failed)
            return exc
        return None

    def summary_info(self) -> dict[str, Any]:
        """The ``pipeline`` block of ``results.json``."""
        return {
            "wall_s": round(self.wall_s, 2),
            "stages_s": {k: round(v, 2) for k, v in self.stages_s.items()},
            "out_dir": str(self.out_dir),
            "exports": self.exports,
        }


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
    images: Sequence[Path],
    source: str,
    *,
    weights: str,
    overlay_dir: Path,
    slow_images: int,
    threads: int | None = None,
    progress: ProgressFn | None = None,
) -> ParityReport:
    """Every artifact against PyTorch on every image, except that artifacts only a reference
    evaluator runs here (:data:`SLOW_RUNTIMES`) get ``slow_images`` of them, evenly spaced
    (their rows' ``images`` says how many)."""
    from sinet_deploy.core.machine import usable_cores
    from sinet_deploy.runtimes import load_session, torch_reference
    from sinet_deploy.verify.parity import run_parity

    n_threads = threads or usable_cores()  # parity is not timed: every core by default
    sessions = [load_session(a, threads=n_threads) for a in artifacts]
    refs: dict[tuple[int, int], Any] = {}

    def reference(size: tuple[int, int]) -> Any:
        if size not in refs:
            refs[size] = torch_reference(weights, size, threads=n_threads)
        return refs[size]

    slow = [s.runtime in SLOW_RUNTIMES for s in sessions]
    reports: list[tuple[list[int], ParityReport]] = []
    for is_slow, imgs in ((False, list(images)), (True, spread(images, slow_images))):
        group = [i for i, flag in enumerate(slow) if flag == is_slow]
        if group:
            reports.append(
                (
                    group,
                    run_parity(
                        [sessions[i] for i in group],
                        imgs,
                        reference,
                        reference_name=f"PyTorch fp32 ({weights} weights)",
                        images_source=source,
                        overlay_dir=overlay_dir,
                        paths=[str(artifacts[i]) for i in group],
                        progress=progress,
                    ),
                )
            )
    # Back to the order the artifacts came in.
    rows = sorted(
        ((i, row) for g, rep in reports for i, row in zip(g, rep.results, strict=True)),
        key=lambda t: t[0],
    )
    return ParityReport(
        reports[0][1].reference,
        source,
        [p.name for p in images],
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


def bench_candidates(
    artifacts: Sequence[Path],
    peers: Sequence[Path],
    threads: Sequence[int],
    *,
    weights: str,
    torch_row: bool = True,
    cuda: bool | None = None,
) -> list[Candidate]:
    """The benchmark's rows: per thread count PyTorch eager (one row per input size among the
    artifacts), every artifact and every peer; then the CUDA rows once.

    CoreML packages are listed as skipped off macOS: the only evaluator on Linux is a reference
    interpreter, whose speed says nothing about a phone. The CUDA rows are listed when asked
    (``cuda=True``; skipped, with the reason, without an NVIDIA GPU) or, by default, when this
    machine has an NVIDIA GPU.
    """
    from sinet_deploy.benchmark.timing import (
        artifact_input_size,
        cuda_candidates,
        cuda_unavailable_reason,
    )

    if cuda is None:
        cuda = cuda_unavailable_reason() is None

    sizes = list(dict.fromkeys(artifact_input_size(a) for a in artifacts)) or [(224, 224)]
    out: list[Candidate] = []
    for t in threads:
        if torch_row:
            for h, w in sizes:
                label = "pytorch-eager" + (f" {h}x{w}" if len(sizes) > 1 else "")
                out.append(
                    Candidate("torch", threads=t, weights=weights, input_size=(h, w), label=label)
                )
        for a in artifacts:
            skip = None
            if a.suffix == ".mlpackage" and sys.platform != "darwin":
                skip = (
                    "CoreML runs only on Apple platforms; on Linux only the reference "
                    "evaluator exists, whose speed is not a latency"
                )
            out.append(Candidate("artifact", path=str(a), threads=t, skip=skip))
        out += [Candidate("peer", path=str(p), threads=t, label=p.name) for p in peers]
    if cuda:
        out += cuda_candidates([str(a) for a in artifacts], weights=weights, input_size=sizes[0])
    return out


def plan_jobs(
    registry: dict[tuple[str, str], Any], formats: Sequence[str], precisions: Sequence[str]
) -> list[tuple[str, list[str]]]:
    """``(format, precisions)`` per export job: one job per converter function, so precisions
    one converter makes together stay together (one onnx2tf run gives TFLite fp32, fp16 and
    weight-only int8) and a slow, separate converter (full-integer int8) runs beside them.

    Formats come in ``formats`` order (onnx, tflite, coreml), then any a plugin added.
    """
    known = [f for f in formats if any(k[0] == f for k in registry)]
    known += sorted({f for f, _ in registry} - set(known))
    jobs: dict[tuple[str, int], list[str]] = {}
    for fmt in known:
        for p in [*precisions, *sorted({q for f, q in registry if f == fmt} - set(precisions))]:
            if (fmt, p) in registry:
                jobs.setdefault((fmt, id(registry[(fmt, p)].fn)), []).append(p)
    return [(fmt, ps) for (fmt, _), ps in jobs.items()]


def run_pipeline(
    out_dir: Path,
    *,
    weights: str = "official",
    peers: Sequence[Path] = (),
    images: Path | None = None,
    calib: Path | None = None,
    runs: int = 30,
    warmup: int = 3,
    threads: Sequence[int] = (1,),
    input_size: tuple[int, int] = (224, 224),
    cuda: bool | None = None,
    coreml_images: int = 8,
    formats: Sequence[str] | None = None,
    precisions: Sequence[str] | None = None,
    parallel: bool = True,
    command: str | None = None,
    progress: ProgressFn | None = None,
) -> PipelineResult:
    """Export every registered format and precision, check parity, benchmark, write a report.

    Args:
        out_dir: artifacts go to ``out_dir/artifacts``, the report to ``out_dir/report``.
        weights: ``"official"`` (default), ``"random"`` or a checkpoint path.
        peers: third-party ``.tflite``/``.onnx`` models to benchmark beside SINet.
        images: portraits for the parity matrix (default: the built-in public-domain ones).
        calib: calibration images for converters that quantize activations (int8).
        runs / warmup / threads: benchmark settings.
        input_size: ``(H, W)`` of the exported artifacts.
        cuda: list the CUDA rows (``None``: only when an NVIDIA GPU is present).
        coreml_images: images for the parity of artifacts that only a slow reference evaluator
            runs here (CoreML on Linux); 0 = all of them.
        formats / precisions: export only these (default: everything registered).
        parallel: one process per export job (off: all in this process).
        command: the command line, recorded in the report.
        progress: ``(description, done, total)`` callback.

    Returns:
        A :class:`PipelineResult` (``report`` holds the written report's paths).

    Raises:
        WeightsUnavailableError / CheckpointError / InputSizeError / ImageError: nothing can
            be exported or checked.
    """
    from sinet_deploy.benchmark.timing import run_benchmark
    from sinet_deploy.convert.registry import FORMATS, PRECISIONS, registered
    from sinet_deploy.core.machine import machine_info
    from sinet_deploy.models.config import check_input_size
    from sinet_deploy.models.preprocessing import list_images
    from sinet_deploy.models.weights import resolve_checkpoint
    from sinet_deploy.pipeline.export_jobs import run_jobs
    from sinet_deploy.report.write import write_report
    from sinet_deploy.verify.parity import default_images

    t_start = time.perf_counter()
    stages: dict[str, float] = {}
    art_dir, rep_dir = out_dir / "artifacts", out_dir / "report"
    # Fail fast, once, on what would stop every job (rather than in each job's process), and
    # before any folder is made: a mistyped option must not leave empty artifacts/ report/.
    if runs < 1:
        raise UserInputError(f"--runs must be at least 1, got {runs}")
    if warmup < 0:
        raise UserInputError(f"--warmup must be 0 or more, got {warmup}")
    if coreml_images < 0:
        raise UserInputError(f"--coreml-images must be 0 (all images) or more, got {coreml_images}")
    from sinet_deploy.core.machine import check_threads

    check_threads(list(threads))
    for option, given, known in (
        ("--formats", formats, FORMATS),
        ("--precisions", precisions, PRECISIONS),
    ):
        unknown = [v for v in given or () if v not in known]
        if unknown:
            raise UserInputError(
                f"unknown {option} value(s): {', '.join(unknown)}", hint=f"use {', '.join(known)}"
            )
    check_input_size(*input_size)
    if str(weights) != "random":
        resolve_checkpoint(weights)
    image_list, source = (list_images(images), str(images)) if images else default_images()

    parity_spec = {
        "images": [str(p) for p in image_list],
        "source": source,
        "overlay_dir": str(rep_dir / "overlays"),
        "slow_images": coreml_images,
    }
    common = {
        "weights": str(weights),
        "out_dir": str(art_dir),
        "input_size": list(input_size),
        "calib": str(calib) if calib else None,
        # The export gate decides on the packaged portraits plus --images, as `export` does.
        "gate_images": str(images) if images else None,
        "parity": parity_spec,
    }
    reg = {
        k: v
        for k, v in registered().items()
        if (formats is None or k[0] in formats) and (precisions is None or k[1] in precisions)
    }
    if not reg:
        raise UserInputError(
            "no registered converter matches --formats/--precisions",
            hint="available: " + ", ".join(f"{f}/{p}" for f, p in sorted(registered())),
        )
    art_dir.mkdir(parents=True, exist_ok=True)
    rep_dir.mkdir(parents=True, exist_ok=True)
    jobs = [
        {**common, "format": fmt, "precisions": ps}
        for fmt, ps in plan_jobs(reg, FORMATS, PRECISIONS)
    ]
    t0 = time.perf_counter()
    results = run_jobs(jobs, parallel=parallel, progress=progress)
    stages["export + parity"] = time.perf_counter() - t0
    exports = [row for r in results for row in r["rows"]]
    artifacts = [Path(r["artifact"]) for r in exports if r["passed"] and r["artifact"]]
    parity = merge_parity([r["parity"] for r in results if r["parity"]], len(image_list), source)

    t0 = time.perf_counter()
    bench = run_benchmark(
        bench_candidates(artifacts, peers, threads, weights=weights, cuda=cuda),
        runs=runs,
        warmup=warmup,
        progress=progress,
    )
    stages["bench"] = time.perf_counter() - t0

    result = PipelineResult(out_dir, exports, artifacts, parity, bench, stages)
    t0 = time.perf_counter()
    result.wall_s = time.perf_counter() - t_start
    result.report = write_report(
        rep_dir,
        machine=machine_info(),
        bench=bench.to_dict(),
        parity=parity,
        pipeline=result.summary_info(),
        command=command,
    )
    stages["report"] = time.perf_counter() - t0
    result.wall_s = time.perf_counter() - t_start
    return result
