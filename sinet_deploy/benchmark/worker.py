"""The benchmark worker: one model, one runtime, one process (``python -m ...worker``).

Protocol (JSON lines; requests on stdin, replies on the *original* stdout, which is kept for the
protocol alone: fd 1 is pointed at stderr so that a runtime printing to stdout cannot corrupt a
reply):

* ``{"cmd": "load", "spec": {...}}`` → ``{"ok": true, "runtime", "name", "init_ms",
  "first_inference_ms", "baseline_rss_mb", ...}`` or ``{"ok": false, "skip": reason}`` when the
  candidate cannot run on this machine (no CUDA), or ``{"ok": false, "error", "error_type",
  "exit_code", "hint"}``.
* ``{"cmd": "run", "n": N, "rewarm": K}`` → ``{"ok": true, "latencies_ms": [...], "cpu_ms":
  [...], "preempted": [...]}``: K untimed calls, then N timed ones (wall time, this process's
  CPU time, and how many times the kernel preempted it during each call).
* ``{"cmd": "stats"}`` → ``{"ok": true, "peak_rss_mb"}`` (this process's RSS high-water mark).
* ``{"cmd": "quit"}`` → exits.

Timing covers the runtime's own invoke on inputs already in its native form
(``session.run_native``): no image decoding, resizing or dtype conversion, the same for the
SINet artifacts, the PyTorch reference and third-party peers.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import resource
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from sinet_deploy.core.errors import ArtifactError, MissingDependencyError, SinetDeployError

RunFn = Callable[[], Any]


def rss_mb() -> float:
    """Current resident set size of this process in MiB (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


def peak_rss_mb() -> float:
    """RSS high-water mark of this process in MiB.

    Linux: ``VmHWM`` from ``/proc/self/status``, which starts afresh at ``exec``. Not
    ``ru_maxrss``: Linux keeps that across ``execve``, so a worker forked from a parent holding
    PyTorch would report the parent's peak.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def _set_torch_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # as every session the project creates (see TorchSession)
    # Raises once this process has started a parallel region; the worker is fresh, but be safe.
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


def _load_factory(spec: dict[str, Any]) -> Any:
    path = Path(spec["path"])
    mod_spec = importlib.util.spec_from_file_location(f"_bench_factory_{path.stem}", path)
    if mod_spec is None or mod_spec.loader is None:
        raise SinetDeployError(f"cannot import benchmark factory {path}")
    module = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(module)
    return getattr(module, spec["factory"])(threads=spec["threads"])


def _cuda_runner(spec: dict[str, Any]) -> tuple[RunFn, dict[str, Any]] | str:
    """The deploy form on a CUDA GPU (eager or CUDA graph), or the reason it cannot run here."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA device (torch.cuda.is_available() is False)"
    from sinet_deploy.models import export_module

    h, w = spec["input_size"]
    model = export_module(spec["weights"], input_size=(h, w)).cuda().eval()
    x = torch.randint(0, 256, (1, h, w, 3), dtype=torch.uint8, device="cuda")
    info = {
        "runtime": "torch-cuda",
        "input_size": [h, w],
        "note": "deploy form (BN folded), uint8 image in, probability out, fp32, batch 1",
    }
    if spec["kind"] == "torch-cuda":

        def run_eager() -> Any:
            with torch.inference_mode():
                y = model(x)
            torch.cuda.synchronize()
            return y

        return run_eager, info
    # Kernel launches dominate SINet at batch 1; a CUDA graph replays them as one launch.
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode():
        with torch.cuda.stream(stream):
            for _ in range(3):
                model(x)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = model(x)

    def run_graph() -> Any:
        graph.replay()
        torch.cuda.synchronize()
        return out

    info["runtime"] = "torch-cuda-graph"
    return run_graph, info


def _onnx_cuda_unavailable() -> str | None:
    try:
        import onnxruntime as ort
    except ImportError:
        return "onnxruntime is not installed"
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "onnxruntime has no CUDAExecutionProvider here (needs onnxruntime-gpu and a GPU)"
    return None


def _pin(threads: int) -> list[int] | None:
    """Pin this worker to the same first ``threads`` cores as every other worker.

    On a VM the vCPUs do not run equally fast (their host neighbours differ), so a row whose
    worker landed on the slower one looked 10-20% slower in one run and not in the next;
    pinned, rows compare on the same silicon.
    """
    if not hasattr(os, "sched_setaffinity"):
        return None
    cores = sorted(os.sched_getaffinity(0))[: max(1, threads)]
    os.sched_setaffinity(0, cores)
    return cores


def load(spec: dict[str, Any]) -> tuple[RunFn, dict[str, Any]] | str:
    """Build the callable to time for ``spec``; a string is the reason it is skipped here."""
    kind = spec["kind"]
    threads = int(spec["threads"])
    info: dict[str, Any] = {"cores": _pin(threads)}
    if kind in ("torch-cuda", "torch-cuda-graph"):
        return _cuda_runner(spec)
    if kind == "ceiling":
        return _load_ceiling(spec, threads, info)
    if kind == "factory":
        session = _load_factory(spec)
    elif kind == "torch":
        _set_torch_threads(threads)
        from sinet_deploy.runtimes import torch_reference

        session = torch_reference(
            weights=spec["weights"], input_size=tuple(spec["input_size"]), threads=threads
        )
        info["note"] = (
            "PyTorch eager, reference form (BN not folded), fp32; times the module "
            "on normalised BGR NCHW input, logits out"
        )
    else:
        if spec.get("provider") == "cuda":
            reason = _onnx_cuda_unavailable()
            if reason:
                return reason
        from sinet_deploy.runtimes import load_session

        try:
            session = load_session(
                Path(spec["path"]), threads=threads, provider=spec.get("provider", "cpu")
            )
        except MissingDependencyError as exc:
            if spec.get("provider") != "xnnpack-fp16":
                raise
            return f"{exc} ({exc.hint})" if exc.hint else str(exc)  # an extra row: skip it
    manifest = getattr(session, "manifest", None) or {}
    info.update(
        {
            "name": getattr(session, "name", None),
            "runtime": getattr(session, "runtime", kind),
            "input_size": list(getattr(session, "input_size", None) or []) or None,
            "format": manifest.get("format"),
            "precision": manifest.get("precision"),
        }
    )
    info.setdefault("note", getattr(session, "note", None))
    inputs = session.native_inputs()

    def run() -> Any:
        return session.run_native(inputs)

    return run, info


def _load_ceiling(
    spec: dict[str, Any], threads: int, info: dict[str, Any]
) -> tuple[RunFn, dict[str, Any]] | str:
    """A runtime's ceiling; any failure makes it a skipped row (its rows then show no share)
    rather than ending a benchmark whose own rows all loaded."""
    from sinet_deploy.benchmark.peak import load_peak

    if spec["ceiling"].startswith("torch:"):
        _set_torch_threads(threads)
    runtime, precision = spec["ceiling"].split(":")
    try:
        run_ceiling, ceiling = load_peak(runtime, precision, threads)
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        return f"no {runtime} {precision} ceiling here: {type(exc).__name__}: {exc}"[:300]
    return run_ceiling, {**info, **ceiling}


def _load_reporting(spec: dict[str, Any]) -> tuple[RunFn, dict[str, Any]] | str:
    """:func:`load`, with a runtime's own exception on a model file turned into a one-line
    :class:`ArtifactError` (a truncated or foreign file is the user's to fix: exit 2)."""
    try:
        return load(spec)
    except SinetDeployError:
        raise
    except Exception as exc:
        if spec["kind"] not in ("artifact", "peer"):
            raise
        traceback.print_exc(file=sys.stderr)
        msg = " ".join(str(exc).split())[:200]
        raise ArtifactError(
            f"cannot load {Path(spec['path']).name}: {type(exc).__name__}: {msg}",
            hint="is it a complete .tflite/.onnx file? re-export it",
        ) from exc


def _reply(out: TextIO, data: dict[str, Any]) -> None:
    out.write(json.dumps(data) + "\n")
    out.flush()


def _error_reply(exc: BaseException) -> dict[str, Any]:
    if isinstance(exc, SinetDeployError):
        return {
            "ok": False,
            "error": str(exc),
            "error_type": type(exc).__name__,
            "exit_code": exc.exit_code,
            "hint": exc.hint,
        }
    # Not one of ours: keep the worker's traceback on its stderr for the bug report.
    traceback.print_exc(file=sys.stderr)
    return {
        "ok": False,
        "error": f"{type(exc).__name__}: {exc}".strip(),
        "error_type": type(exc).__name__,
        "exit_code": 1,
        "hint": None,
    }


def serve(inp: TextIO, out: TextIO) -> None:
    """Answer requests until ``quit`` or end of input."""
    run: RunFn | None = None
    for line in inp:
        if not line.strip():
            continue
        msg = json.loads(line)
        cmd = msg.get("cmd")
        try:
            if cmd == "quit":
                _reply(out, {"ok": True})
                return
            if cmd == "load":
                loaded, reply = _load_and_time(msg["spec"])
                run = loaded or run
                _reply(out, reply)
            elif cmd == "run":
                if run is None:
                    raise SinetDeployError("run before load")
                _reply(out, _timed_runs(run, int(msg["n"]), int(msg.get("rewarm", 0))))
            elif cmd == "stats":
                _reply(out, {"ok": True, "peak_rss_mb": peak_rss_mb()})
            else:
                raise SinetDeployError(f"unknown worker command {cmd!r}")
        except Exception as exc:
            _reply(out, _error_reply(exc))


def _load_and_time(spec: dict[str, Any]) -> tuple[RunFn | None, dict[str, Any]]:
    """Load the candidate and run it once: its run function (``None`` when it is skipped
    here) and the ``load`` reply with init time, first inference and baseline memory."""
    baseline = rss_mb()
    t0 = time.perf_counter()
    loaded = _load_reporting(spec)
    if isinstance(loaded, str):
        return None, {"ok": False, "skip": loaded}
    run, info = loaded
    init_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    run()
    first_ms = (time.perf_counter() - t0) * 1e3
    return run, {
        "ok": True,
        **info,
        "init_ms": init_ms,
        "first_inference_ms": first_ms,
        "baseline_rss_mb": baseline,
    }


def _timed_runs(run: RunFn, n: int, rewarm: int) -> dict[str, Any]:
    """``rewarm`` untimed calls, then ``n`` timed ones: the ``run`` reply."""
    # Untimed re-warm: another worker ran since this one's last call and evicted its caches; a
    # deployed model runs back to back, so time it warm.
    for _ in range(rewarm):
        run()
    lat, cpu, preempted = [], [], []
    for _ in range(n):
        s0 = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        c0 = time.process_time_ns()
        t0 = time.perf_counter_ns()
        run()
        t1 = time.perf_counter_ns()
        c1 = time.process_time_ns()
        s1 = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        lat.append((t1 - t0) / 1e6)
        cpu.append((c1 - c0) / 1e6)
        # >0: the kernel gave the CPU to another process during this iteration.
        preempted.append(s1 - s0)
    return {"ok": True, "latencies_ms": lat, "cpu_ms": cpu, "preempted": preempted}


def main() -> None:
    # Keep the real stdout for replies; send anything else written to fd 1 to stderr.
    proto = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    serve(sys.stdin, proto)


if __name__ == "__main__":
    main()
