"""The pipeline's export stage: every registered (format, precision), one job per format.

A job exports one format at all its precisions (one ``export_artifacts`` call, so one onnx2tf
run serves every TFLite precision) and then, if asked, runs the parity matrix on what it
published. Jobs run in their own processes, all at once (:mod:`.export_worker`): the TFLite job
spends most of its time in onnx2tf on one core, and the ONNX and CoreML jobs — CoreML's slow
reference evaluator included — fit beside it. A job whose converter fails is recorded as error
rows and the others carry on; only errors that would stop every job (unreadable weights, a bad
size, a bad image folder) stop the pipeline.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

from sinet_deploy.core import errors
from sinet_deploy.pipeline.records import ExportJob, ExportRow, JobResult, WorkerError

ProgressFn = Callable[[str, int, int], None]

#: Errors that would stop every job, so they stop the pipeline (exit 2).
FATAL_ERRORS: tuple[type[errors.SinetDeployError], ...] = (
    errors.WeightsUnavailableError,
    errors.CheckpointError,
    errors.InputSizeError,
    errors.ImageError,
)

#: Rough relative cost of one precision of a format's export + parity (measured here: TFLite
#: through onnx2tf ~45 s, CoreML ~10 s per precision, ONNX ~2 s; a calibrated int8 model more
#: than its float siblings). Only the start order depends on it: longest first.
FORMAT_COST = {"tflite": 10.0, "coreml": 4.0, "onnx": 1.0}
INT8_COST_FACTOR = 5.0

#: Thread pools sized to the machine (OpenMP, BLAS, TensorFlow) spin-wait for work, and
#: oversubscribed they burn the CPU the other jobs need (measured here: twice the CPU time and a
#: slower pipeline), so each worker gets one thread.
ONE_THREAD_ENV = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
)


def run_job(job: ExportJob, progress: ProgressFn | None = None) -> JobResult:
    """Export one format, then (when ``job.parity`` is set) check what was published.

    Args:
        job: what to export and check.
        progress: optional callback (in-process runs only).

    Returns:
        A row per precision and the parity matrix on the published artifacts, if any.

    Raises:
        One of :data:`FATAL_ERRORS`.
    """
    t0 = time.perf_counter()
    try:
        rows = _export(job, progress)
    except FATAL_ERRORS:
        raise
    except errors.SinetDeployError as exc:
        # A converter that cannot run here (missing tool, conversion bug): record, go on.
        return JobResult.failed(job, time.perf_counter() - t0, exc.one_line(), exc.exit_code)
    result = JobResult(rows)
    if job.parity is None or not result.published:
        return result
    from sinet_deploy.pipeline.parity import pipeline_parity

    parity = pipeline_parity(
        result.published, job.parity, weights=job.weights, threads=job.threads, progress=progress
    )
    return replace(result, parity=parity.to_dict(per_image=True))


def _export(job: ExportJob, progress: ProgressFn | None) -> tuple[ExportRow, ...]:
    """Convert, gate and publish the job's precisions: one row each."""
    from sinet_deploy.convert.publish import export_artifacts

    report = export_artifacts(
        job.weights,
        formats=[job.format],
        precisions=list(job.precisions),
        out_dir=job.out_dir,
        input_size=job.input_size,
        calib=job.calib,
        images=job.gate_images,
        progress=progress,
    )
    return tuple(
        ExportRow(
            format=r.format,
            precision=r.precision,
            artifact=r.path if r.path else None,
            passed=r.passed,
            seconds=round(r.seconds, 2),
            error=None if r.passed else r.gate.message(),
            failure=None if r.passed else "gate",
            exit_code=0 if r.passed else 3,
        )
        for r in report.results
    )


def job_cost(job: ExportJob) -> float:
    """Estimated cost of a job, for longest-first scheduling."""
    base = FORMAT_COST.get(job.format, 4.0)
    return sum(base * (INT8_COST_FACTOR if p == "int8" else 1.0) for p in job.precisions)


def run_jobs(
    jobs: list[ExportJob],
    *,
    parallel: bool = True,
    max_parallel: int | None = None,
    progress: ProgressFn | None = None,
) -> list[JobResult]:
    """Run every job: in parallel processes, at most ``max_parallel`` (default: the usable
    cores) at a time, longest first; in this process when ``parallel`` is off or there is
    only one job.

    Returns:
        :func:`run_job`'s results, in job order.

    Raises:
        One of :data:`FATAL_ERRORS` (the other jobs are stopped).
    """
    from sinet_deploy.core.fileio import work_dir
    from sinet_deploy.core.machine import usable_cores

    if not parallel or len(jobs) < 2:
        return [run_job(job, progress) for job in jobs]
    slots = max(1, max_parallel or usable_cores())
    jobs = [replace(job, threads=1) for job in jobs]
    # Under the project's temp root, named with our pid: a killed pipeline's folder is removed
    # by the next run (TemporaryDirectory cleans up only when Python gets to run its finally).
    with work_dir("sinet_pipeline_") as tmp:
        return _run_in_workers(jobs, slots, tmp, progress)


@dataclass
class _Running:
    """An export worker process and what it needs to be collected."""

    job: ExportJob
    proc: subprocess.Popen[bytes]
    log: IO[bytes]
    result_path: Path
    t0: float

    def stop(self) -> None:
        if self.proc.poll() is None:  # only after a fatal error in another job
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _run_in_workers(
    jobs: list[ExportJob], slots: int, tmp: Path, progress: ProgressFn | None
) -> list[JobResult]:
    """Start jobs longest first while a slot is free; collect each as its process ends."""
    env = _worker_env()
    queue = sorted(range(len(jobs)), key=lambda n: -job_cost(jobs[n]))
    running: dict[int, _Running] = {}
    results: dict[int, JobResult] = {}
    try:
        while len(results) < len(jobs):
            while queue and len(running) - len(results) < slots:
                n = queue.pop(0)
                running[n] = _start(jobs[n], n, tmp, env)
            if progress:
                busy = ", ".join(jobs[n].label for n in running if n not in results)
                progress(f"exporting and checking {busy}", len(results), len(jobs))
            time.sleep(0.2)
            for n, run in running.items():
                if n not in results and run.proc.poll() is not None:
                    results[n] = _collect(run)
    finally:
        for run in running.values():
            run.stop()
    return [results[n] for n in range(len(jobs))]


def _worker_env() -> dict[str, str]:
    """This environment, with the package importable and one thread per pool."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.update(dict.fromkeys(ONE_THREAD_ENV, "1"))
    return env


def _start(job: ExportJob, n: int, tmp: Path, env: dict[str, str]) -> _Running:
    job_path = tmp / f"job{n}.json"
    result_path = tmp / f"job{n}.result.json"
    job_path.write_text(json.dumps(job.to_json()))
    log = open(tmp / f"job{n}.stderr", "w+b")  # noqa: SIM115 - closed by _Running.stop
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sinet_deploy.pipeline.export_worker",
            str(job_path),
            str(result_path),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )
    return _Running(job, proc, log, result_path, time.perf_counter())


def _collect(run: _Running) -> JobResult:
    """The worker's result; a fatal error it stopped with is raised here."""
    seconds = time.perf_counter() - run.t0
    if not run.result_path.is_file():
        run.log.seek(0)
        tail = " | ".join(run.log.read().decode(errors="replace").strip().splitlines()[-3:])
        msg = f"export worker exited with code {run.proc.returncode} ({tail})"
        return JobResult.failed(run.job, seconds, msg, 1)
    data = json.loads(run.result_path.read_text())
    if data["ok"]:
        return JobResult.from_json(data)
    failure = WorkerError.from_json(data)
    cls = getattr(errors, failure.error_type or "", None)
    if isinstance(cls, type) and issubclass(cls, FATAL_ERRORS):
        raise cls(failure.error, hint=failure.hint)
    msg = failure.error + (f" — {failure.hint}" if failure.hint else "")
    return JobResult.failed(run.job, seconds, msg, failure.exit_code)
