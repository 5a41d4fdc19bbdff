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

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sinet_deploy.benchmark.suite import BenchOptions, run_bench
from sinet_deploy.benchmark.timing import BenchResult
from sinet_deploy.core.errors import ParityGateError, SinetDeployError, UserInputError
from sinet_deploy.pipeline import export_jobs
from sinet_deploy.pipeline.records import ExportJob, ExportRow, JobResult, ParitySpec

ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PipelineOptions:
    """What ``sinet-deploy pipeline`` does.

    Attributes:
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
    """

    out_dir: Path
    weights: str = "official"
    peers: tuple[Path, ...] = ()
    images: Path | None = None
    calib: Path | None = None
    runs: int = 30
    warmup: int = 3
    threads: tuple[int, ...] = (1,)
    input_size: tuple[int, int] = (224, 224)
    cuda: bool | None = None
    coreml_images: int = 8
    formats: tuple[str, ...] | None = None
    precisions: tuple[str, ...] | None = None
    parallel: bool = True
    command: str | None = None

    @property
    def artifacts_dir(self) -> Path:
        return self.out_dir / "artifacts"

    @property
    def report_dir(self) -> Path:
        return self.out_dir / "report"

    def bench_options(self, artifacts: Sequence[Path]) -> BenchOptions:
        """The benchmark of the published ``artifacts`` and the peers."""
        return BenchOptions(
            artifacts=tuple(artifacts),
            peers=self.peers,
            threads=self.threads,
            runs=self.runs,
            warmup=self.warmup,
            weights=self.weights,
            cuda=self.cuda,
        )


@dataclass
class PipelineResult:
    """What :func:`run_pipeline` produced, with the wall time of every stage."""

    out_dir: Path
    exports: list[ExportRow]
    artifacts: list[Path]
    parity: dict[str, Any] | None
    bench: BenchResult | None
    stages_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    report: dict[str, Path] = field(default_factory=dict)

    def failure(self) -> SinetDeployError | None:
        """The error the command exits with: a failed gate (exit 3) before a converter error
        (its own code); ``None`` when everything passed."""
        gates = [e.name for e in self.exports if e.failure == "gate"]
        gates += [f"{name} (parity matrix)" for name in (self.parity or {}).get("failed", [])]
        if gates:
            return ParityGateError(
                f"parity gate failed: {', '.join(gates)}", hint="see the summary and the report"
            )
        failed = [e for e in self.exports if e.failure == "error"]
        if failed:
            names = ", ".join(e.name for e in failed)
            exc = SinetDeployError(f"export failed for {names}: {failed[0].error}")
            exc.exit_code = max(e.exit_code or 1 for e in failed)
            return exc
        return None

    def exports_json(self) -> list[dict[str, Any]]:
        """The export rows as ``results.json`` holds them."""
        return [e.to_json() for e in self.exports]

    def summary_info(self) -> dict[str, Any]:
        """The ``pipeline`` block of ``results.json``."""
        return {
            "wall_s": round(self.wall_s, 2),
            "stages_s": {k: round(v, 2) for k, v in self.stages_s.items()},
            "out_dir": str(self.out_dir),
            "exports": self.exports_json(),
        }


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


def run_pipeline(options: PipelineOptions, *, progress: ProgressFn | None = None) -> PipelineResult:
    """Export every registered format and precision, check parity, benchmark, write a report.

    Args:
        options: what to export, check and benchmark, and where to.
        progress: ``(description, done, total)`` callback.

    Returns:
        A :class:`PipelineResult` (``report`` holds the written report's paths).

    Raises:
        UserInputError: an option is out of range or names nothing registered (before any
            folder is made).
        WeightsUnavailableError / CheckpointError / InputSizeError / ImageError: nothing can
            be exported or checked.
    """
    t_start = time.perf_counter()
    check_options(options)
    spec = parity_spec(options)
    jobs = plan_export_jobs(options, spec)
    options.artifacts_dir.mkdir(parents=True, exist_ok=True)
    options.report_dir.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}
    with _timed(stages, "export + parity"):
        # Looked up on the module at call time, so a stand-in can replace the export stage.
        results = export_jobs.run_jobs(jobs, parallel=options.parallel, progress=progress)
    result = _collect_exports(options.out_dir, results, spec)
    with _timed(stages, "bench"):
        result.bench = run_bench(options.bench_options(result.artifacts), progress=progress)
    result.stages_s = stages
    _write_report(result, options.report_dir, options.command, t_start)
    return result


def check_options(options: PipelineOptions) -> None:
    """Fail fast, once, on what would stop every job (rather than in each job's process), and
    before any folder is made: a mistyped option must not leave empty artifacts/ report/."""
    from sinet_deploy.convert.registry import FORMATS, PRECISIONS
    from sinet_deploy.core.machine import check_threads
    from sinet_deploy.models.config import check_input_size
    from sinet_deploy.models.weights import resolve_checkpoint

    if options.runs < 1:
        raise UserInputError(f"--runs must be at least 1, got {options.runs}")
    if options.warmup < 0:
        raise UserInputError(f"--warmup must be 0 or more, got {options.warmup}")
    if options.coreml_images < 0:
        raise UserInputError(
            f"--coreml-images must be 0 (all images) or more, got {options.coreml_images}"
        )
    check_threads(list(options.threads))
    _check_known("--formats", options.formats, FORMATS)
    _check_known("--precisions", options.precisions, PRECISIONS)
    check_input_size(*options.input_size)
    if str(options.weights) != "random":
        resolve_checkpoint(options.weights)


def _check_known(option: str, given: Sequence[str] | None, known: Sequence[str]) -> None:
    unknown = [v for v in given or () if v not in known]
    if unknown:
        raise UserInputError(
            f"unknown {option} value(s): {', '.join(unknown)}", hint=f"use {', '.join(known)}"
        )


def parity_spec(options: PipelineOptions) -> ParitySpec:
    """The parity matrix's images (``--images`` or the built-in portraits) and overlay folder.

    Raises:
        ImageError: no readable image in ``--images`` (or the package lacks its data files).
    """
    from sinet_deploy.models.preprocessing import list_images
    from sinet_deploy.verify.parity import default_images

    if options.images:
        images, source = list_images(options.images), str(options.images)
    else:
        images, source = default_images()
    return ParitySpec(
        images=tuple(images),
        source=source,
        overlay_dir=options.report_dir / "overlays",
        slow_images=options.coreml_images,
    )


def plan_export_jobs(options: PipelineOptions, spec: ParitySpec) -> list[ExportJob]:
    """One job per converter among the registered ones that ``--formats/--precisions`` pick.

    Raises:
        UserInputError: none is picked.
    """
    from sinet_deploy.convert.registry import FORMATS, PRECISIONS, registered

    available = registered()
    picked = {
        k: v
        for k, v in available.items()
        if (options.formats is None or k[0] in options.formats)
        and (options.precisions is None or k[1] in options.precisions)
    }
    if not picked:
        raise UserInputError(
            "no registered converter matches --formats/--precisions",
            hint="available: " + ", ".join(f"{f}/{p}" for f, p in sorted(available)),
        )
    return [
        ExportJob(
            weights=str(options.weights),
            format=fmt,
            precisions=tuple(ps),
            out_dir=options.artifacts_dir,
            input_size=options.input_size,
            calib=options.calib,
            # The export gate decides on the packaged portraits plus --images, as `export` does.
            gate_images=options.images,
            parity=spec,
        )
        for fmt, ps in plan_jobs(picked, FORMATS, PRECISIONS)
    ]


@contextmanager
def _timed(stages: dict[str, float], name: str) -> Iterator[None]:
    """Record the wall time of the ``with`` block as ``stages[name]``."""
    t0 = time.perf_counter()
    yield
    stages[name] = time.perf_counter() - t0


def _collect_exports(
    out_dir: Path, results: Sequence[JobResult], spec: ParitySpec
) -> PipelineResult:
    """Every job's rows, the published artifacts and the merged parity block."""
    from sinet_deploy.pipeline.parity import merge_parity

    exports = [row for r in results for row in r.rows]
    artifacts = [r.artifact for r in exports if r.passed and r.artifact]
    parts = [r.parity for r in results if r.parity]
    parity = merge_parity(parts, len(spec.images), spec.source)
    return PipelineResult(out_dir, exports, artifacts, parity, None)


def _write_report(
    result: PipelineResult, report_dir: Path, command: str | None, t_start: float
) -> None:
    """Write the report folder; ``results.json`` gets the stages up to the report's."""
    from sinet_deploy.core.machine import machine_info
    from sinet_deploy.report.write import write_report

    with _timed(result.stages_s, "report"):
        result.wall_s = time.perf_counter() - t_start
        result.report = write_report(
            report_dir,
            machine=machine_info(),
            bench=result.bench.to_dict() if result.bench else None,
            parity=result.parity,
            pipeline=result.summary_info(),
            command=command,
        )
    result.wall_s = time.perf_counter() - t_start
