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
from pathlib import Path
from typing import Any

from sinet_deploy.core import errors

ProgressFn = Callable[[str, int, int], None]

#: Errors that would stop every job, so they stop the pipeline (exit 2).
FATAL_ERRORS: tuple[type[errors.SinetDeployError], ...] = (
    errors.WeightsUnavailableError,
    errors.CheckpointError,
    errors.InputSizeError,
    errors.ImageError,
)


def error_rows(
    fmt: str, precisions: list[str], secs: float, error: str, exit_code: int
) -> list[dict[str, Any]]:
    """One failed row per precision of a format whose converter could not run."""
    return [
        {
            "format": fmt,
            "precision": p,
            "artifact": None,
            "passed": False,
            "seconds": round(secs / max(1, len(precisions)), 2),
            "error": error,
            "failure": "error",
            "exit_code": exit_code,
        }
        for p in precisions
    ]


def run_job(job: dict[str, Any], progress: ProgressFn | None = None) -> dict[str, Any]:
    """Export one format, then (when ``job["parity"]`` is set) check what was published.

    Args:
        job: ``weights, format, precisions, out_dir, input_size, calib``, ``gate_images``
            (a folder the export gate adds to the packaged portraits, or ``None``), ``parity``
            (``None`` or ``{"images": [paths], "source", "overlay_dir", "slow_images"}``) and
            optionally ``threads`` for the parity sessions (default: every usable core).
        progress: optional callback (in-process runs only).

    Returns:
        ``{"rows": [...], "parity": ParityReport dict or None}``; a row per precision has
        ``format, precision, artifact, passed, seconds, error, failure`` (``"gate"``,
        ``"error"`` or ``None``) and ``exit_code``.

    Raises:
        One of :data:`FATAL_ERRORS`.
    """
    from sinet_deploy.convert.publish import export_artifacts

    fmt, precisions = job["format"], list(job["precisions"])
    t0 = time.perf_counter()
    try:
        rep = export_artifacts(
            job["weights"],
            formats=[fmt],
            precisions=precisions,
            out_dir=Path(job["out_dir"]),
            input_size=(int(job["input_size"][0]), int(job["input_size"][1])),
            calib=Path(job["calib"]) if job.get("calib") else None,
            images=Path(job["gate_images"]) if job.get("gate_images") else None,
            progress=progress,
        )
    except FATAL_ERRORS:
        raise
    except errors.SinetDeployError as exc:
        # A converter that cannot run here (missing tool, conversion bug): record, go on.
        return {
            "rows": error_rows(
                fmt, precisions, time.perf_counter() - t0, exc.one_line(), exc.exit_code
            ),
            "parity": None,
        }
    rows = []
    for r in rep.results:
        d = r.as_dict()
        rows.append(
            {
                "format": r.format,
                "precision": r.precision,
                "artifact": d["artifact"],
                "passed": r.passed,
                "seconds": d["seconds"],
                "error": None if r.passed else r.gate.message(),
                "failure": None if r.passed else "gate",
                "exit_code": 0 if r.passed else 3,
            }
        )
    parity = None
    published = [Path(r["artifact"]) for r in rows if r["passed"] and r["artifact"]]
    spec = job.get("parity")
    if spec and published:
        from sinet_deploy.pipeline.run import pipeline_parity

        parity = pipeline_parity(
            published,
            [Path(p) for p in spec["images"]],
            spec["source"],
            weights=job["weights"],
            overlay_dir=Path(spec["overlay_dir"]),
            slow_images=int(spec["slow_images"]),
            threads=job.get("threads"),
            progress=progress,
        ).to_dict(per_image=True)
    return {"rows": rows, "parity": parity}


#: Rough relative cost of one precision of a format's export + parity (measured here: TFLite
#: through onnx2tf ~45 s, CoreML ~10 s per precision, ONNX ~2 s; a calibrated int8 model more
#: than its float siblings). Only the start order depends on it: longest first.
FORMAT_COST = {"tflite": 10.0, "coreml": 4.0, "onnx": 1.0}
INT8_COST_FACTOR = 5.0


def job_cost(job: dict[str, Any]) -> float:
    """Estimated cost of a job, for longest-first scheduling."""
    base = FORMAT_COST.get(job["format"], 4.0)
    return sum(base * (INT8_COST_FACTOR if p == "int8" else 1.0) for p in job["precisions"])


def run_jobs(
    jobs: list[dict[str, Any]],
    *,
    parallel: bool = True,
    max_parallel: int | None = None,
    progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """Run every job: in parallel processes, at most ``max_parallel`` (default: the usable
    cores) at a time, longest first; in this process when ``parallel`` is off or there is
    only one job.

    Returns:
        :func:`run_job`'s results, in job order.

    Raises:
        One of :data:`FATAL_ERRORS` (the other jobs are stopped).
    """
    from sinet_deploy.core.machine import usable_cores

    if not parallel or len(jobs) < 2:
        return [run_job(job, progress) for job in jobs]
    slots = max(1, max_parallel or usable_cores())
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    # One thread per job: thread pools sized to the machine (OpenMP, BLAS, TensorFlow)
    # spin-wait for work, and oversubscribed they burn the CPU the other jobs need (measured
    # here: twice the CPU time and a slower pipeline).
    for var in (
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
    ):
        env[var] = "1"
    jobs = [{**job, "threads": 1} for job in jobs]
    queue = sorted(range(len(jobs)), key=lambda n: -job_cost(jobs[n]))
    results: dict[int, dict[str, Any]] = {}
    from sinet_deploy.core.fileio import work_dir

    # Under the project's temp root, named with our pid: a killed pipeline's folder is removed
    # by the next run (TemporaryDirectory cleans up only when Python gets to run its finally).
    with work_dir("sinet_pipeline_") as tmp:
        procs: dict[int, tuple[subprocess.Popen[bytes], Any, Path, float]] = {}
        try:
            while len(results) < len(jobs):
                while queue and len(procs) - len(results) < slots:
                    n = queue.pop(0)
                    procs[n] = _start(jobs[n], n, tmp, env)
                if progress:
                    busy = ", ".join(
                        f"{jobs[n]['format']} {'/'.join(jobs[n]['precisions'])}"
                        for n in procs
                        if n not in results
                    )
                    progress(f"exporting and checking {busy}", len(results), len(jobs))
                time.sleep(0.2)
                for n, (proc, log, result_path, t0) in procs.items():
                    if n not in results and proc.poll() is not None:
                        results[n] = _collect(jobs[n], proc, log, result_path, t0)
        finally:
            for proc, log, _, _ in procs.values():
                if proc.poll() is None:  # only after a fatal error in another job
                    proc.kill()
                    proc.wait()
                log.close()
    return [results[n] for n in range(len(jobs))]


def _start(
    job: dict[str, Any], n: int, tmp: Path, env: dict[str, str]
) -> tuple[subprocess.Popen[bytes], Any, Path, float]:
    job_path = tmp / f"job{n}.json"
    result_path = tmp / f"job{n}.result.json"
    job_path.write_text(json.dumps({**job, "result": str(result_path)}))
    log = open(tmp / f"job{n}.stderr", "w+b")  # noqa: SIM115 - closed by run_jobs
    proc = subprocess.Popen(
        [sys.executable, "-m", "sinet_deploy.pipeline.export_worker", str(job_path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=env,
    )
    return proc, log, result_path, time.perf_counter()


def _collect(
    job: dict[str, Any], proc: subprocess.Popen[bytes], log: Any, result_path: Path, t0: float
) -> dict[str, Any]:
    fmt, precisions = job["format"], list(job["precisions"])
    if not result_path.is_file():
        log.seek(0)
        tail = " | ".join(log.read().decode(errors="replace").strip().splitlines()[-3:])
        return {
            "rows": error_rows(
                fmt,
                precisions,
                time.perf_counter() - t0,
                f"export worker exited with code {proc.returncode} ({tail})",
                1,
            ),
            "parity": None,
        }
    result = json.loads(result_path.read_text())
    if result["ok"]:
        return {"rows": result["rows"], "parity": result.get("parity")}
    cls = getattr(errors, result.get("error_type") or "", None)
    if isinstance(cls, type) and issubclass(cls, FATAL_ERRORS):
        raise cls(result["error"], hint=result.get("hint"))
    msg = result["error"] + (f" — {result['hint']}" if result.get("hint") else "")
    return {
        "rows": error_rows(
            fmt, precisions, time.perf_counter() - t0, msg, int(result.get("exit_code") or 1)
        ),
        "parity": None,
    }
