"""Interleaved latency benchmark: one worker process per candidate, rounds driven from here.

Why this shape:

* **One process per candidate** (``python -m sinet_deploy.benchmark.worker``): initialisation
  time, peak memory (the process's RSS high-water mark) and the runtime's own import cost belong
  to that runtime alone, and one runtime's thread pool cannot slow another's.
* **Interleaved rounds**: round *r* runs every candidate for a few iterations, in an order
  rotated by one each round, so machine drift (thermal state, other processes, a noisy
  neighbour on a shared 2-core VM) hits all candidates alike. Consecutive runs on this machine
  differ by 5–15% in absolute time; ratios between rows of *one* run are what to compare.
* Only one worker computes at a time; the others block on a pipe read and use no CPU.

The library never prints: progress goes to an optional callback that the CLI turns into a
rich progress bar.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import re
import selectors
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sinet_deploy.core import errors
from sinet_deploy.core.fileio import path_size

#: What a candidate is. ``artifact``: a sinet-deploy artifact with its manifest; ``peer``: a
#: third-party ``.tflite``/``.onnx``; ``torch``: the PyTorch eager reference on the CPU;
#: ``torch-cuda`` / ``torch-cuda-graph``: the deploy form on a CUDA GPU, eager or replayed as a
#: CUDA graph; ``factory``: a session made by ``module_file.py:function`` (tests, experiments);
#: ``ceiling``: a runtime's dense-convolution ceiling (:mod:`sinet_deploy.benchmark.peak`),
#: reported apart from the rows.
Kind = Literal["artifact", "peer", "torch", "torch-cuda", "torch-cuda-graph", "factory", "ceiling"]

#: Seconds a worker may take to start and load its model before it is declared hung.
LOAD_TIMEOUT_S = 600.0
#: Seconds one chunk of iterations may take.
RUN_TIMEOUT_S = 600.0

#: Untimed iterations before each timed chunk: the worker that ran before this one evicted
#: its caches, and a model deployed in an app runs warm, back to back.
REWARM = 1

ProgressFn = Callable[[str, int, int], None]
"""``progress(description, done, total)``: called after every chunk of iterations."""


@dataclass(frozen=True)
class Candidate:
    """One row of the benchmark: a model in a runtime at a thread count.

    Attributes:
        kind: see :data:`Kind`.
        path: artifact, peer model or factory file (``None`` for the torch rows).
        threads: intra-op threads given to the runtime.
        provider: ``"cpu"``, ``"cuda"`` (onnxruntime's execution provider) or
            ``"xnnpack-fp16"`` (LiteRT with XNNPACK's force-fp16 flag).
        weights: checkpoint for the torch rows (``"official"``, ``"random"`` or a path).
        input_size: ``(H, W)`` for the torch rows.
        label: display name; defaults to the file name or the runtime.
        factory: ``"function"`` name inside ``path`` for ``kind="factory"``.
        skip: the reason this candidate cannot run here (recorded as a skipped row).
        ceiling: ``"runtime:precision"`` of a ``kind="ceiling"`` candidate.
    """

    kind: Kind
    path: str | None = None
    threads: int = 1
    provider: str = "cpu"
    weights: str = "official"
    input_size: tuple[int, int] = (224, 224)
    label: str | None = None
    factory: str | None = None
    skip: str | None = None
    ceiling: str | None = None

    @property
    def role(self) -> str:
        """``reference`` (torch on CPU), ``peer`` (a third-party model), ``ceiling`` or
        ``sinet``."""
        if self.kind == "torch":
            return "reference"
        if self.kind in ("peer", "ceiling"):
            return self.kind
        return "sinet"

    def to_spec(self) -> dict[str, Any]:
        """The JSON message the worker receives."""
        spec = asdict(self)
        spec["input_size"] = list(self.input_size)
        return spec


@dataclass
class Row:
    """Measured numbers for one candidate (one row of the results table)."""

    name: str
    runtime: str
    kind: str
    role: str
    threads: int
    provider: str
    path: str | None = None
    format: str | None = None
    precision: str | None = None
    input_size: list[int] | None = None
    file_size_bytes: int | None = None
    init_ms: float | None = None
    first_inference_ms: float | None = None
    peak_rss_mb: float | None = None
    baseline_rss_mb: float | None = None
    runs: int = 0
    warmup: int = 0
    rounds: int = 0
    median_ms: float | None = None
    mean_ms: float | None = None
    std_ms: float | None = None
    min_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    fps: float | None = None
    cpu_median_ms: float | None = None
    busy_factor: float | None = None
    preemptions_per_run: float | None = None
    speedup_vs_torch: float | None = None
    time_vs_fastest_sinet: float | None = None
    macs: int | None = None
    gmac_per_s: float | None = None
    ceiling_share: float | None = None
    note: str | None = None
    skipped: str | None = None
    latencies_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    preempted: list[int] = field(default_factory=list)

    def to_dict(self, *, with_latencies: bool = True) -> dict[str, Any]:
        data = asdict(self)
        data.pop("cpu_ms")
        data.pop("preempted")
        if not with_latencies:
            data.pop("latencies_ms")
        return data

    def finish(self) -> None:
        """Fill the statistics from the collected per-iteration numbers."""
        for key, value in latency_stats(self.latencies_ms).items():
            setattr(self, key, value)
        if self.cpu_ms:
            self.cpu_median_ms = float(np.median(self.cpu_ms))
            if self.cpu_median_ms > 0 and self.median_ms:
                # Wall / CPU time of the same iterations: ~1.0 single-threaded on an idle
                # machine, above it when other processes took the CPU away mid-inference.
                self.busy_factor = self.median_ms / self.cpu_median_ms
        if self.preempted:
            self.preemptions_per_run = sum(self.preempted) / len(self.preempted)


@dataclass
class BenchResult:
    """Everything one ``run_benchmark`` call measured."""

    rows: list[Row]
    runs: int
    warmup: int
    rounds: int
    order: list[list[str]]
    wall_s: float
    machine_load: dict[str, Any] = field(default_factory=dict)
    plan: list[int] = field(default_factory=list)
    #: The runtimes' ceiling rows (``kind="ceiling"``), measured in the same rounds.
    ceilings: list[Row] = field(default_factory=list)

    def to_dict(self, *, with_latencies: bool = True) -> dict[str, Any]:
        from sinet_deploy.benchmark.peak import ROOFLINE_COLUMNS

        return {
            "runs": self.runs,
            "warmup": self.warmup,
            "rounds": self.rounds,
            "wall_s": round(self.wall_s, 3),
            "machine_load": self.machine_load,
            "ratio_columns": RATIO_COLUMNS,
            "ratios": ratio_matrix(self.rows, self.plan),
            "results": [r.to_dict(with_latencies=with_latencies) for r in self.rows],
            "roofline_columns": ROOFLINE_COLUMNS,
            "ceilings": [r.to_dict(with_latencies=False) for r in self.ceilings],
        }


#: What the two ratio columns mean (also written into results.json).
RATIO_COLUMNS = {
    "speedup_vs_torch": "PyTorch eager CPU time / this row's time, same thread count, paired "
    "by round (2.0 = twice as fast as PyTorch)",
    "time_vs_fastest_sinet": "this row's time / the fastest SINet artifact's time, same thread "
    "count, paired by round (1.0 = the fastest; 1.3 = 30% slower)",
    "paired by round": "geometric mean over the interleaved rounds of the ratio of the two "
    "rows' medians in that round: a slow spell that hits both rows of a round cancels out",
}


def latency_stats(latencies_ms: Sequence[float]) -> dict[str, float]:
    """Median, mean, std, min, p10/p90/p99 and FPS (1000 / median) of per-iteration latencies.

    Percentiles use linear interpolation between order statistics (NumPy's default).

    Raises:
        ValueError: on an empty sequence.
    """
    if len(latencies_ms) == 0:
        raise ValueError("no latencies to summarise")
    a = np.asarray(latencies_ms, dtype=np.float64)
    median = float(np.median(a))
    p10, p90, p99 = (float(v) for v in np.percentile(a, [10, 90, 99]))
    return {
        "median_ms": median,
        "mean_ms": float(a.mean()),
        "std_ms": float(a.std()),
        "min_ms": float(a.min()),
        "p10_ms": p10,
        "p90_ms": p90,
        "p99_ms": p99,
        "fps": 1000.0 / median if median > 0 else math.inf,
    }


def plan_rounds(runs: int, rounds: int | None = None) -> list[int]:
    """Iterations per round so that they sum to ``runs``.

    By default one iteration per round (each preceded by :data:`REWARM` untimed ones): a round
    of all candidates then lasts tens of milliseconds, so the VM's speed swings, which come and
    go faster than a second here, hit every candidate alike. Measured with the acceptance bench
    (3 models + PyTorch, 50 runs): chunks of five gave ratios that moved up to 19% between two
    runs, one iteration per round at most 8.4%.
    """
    if runs < 1:
        raise errors.UserInputError(f"--runs must be at least 1, got {runs}")
    n_rounds = rounds if rounds is not None else runs
    n_rounds = max(1, min(runs, n_rounds))
    base, extra = divmod(runs, n_rounds)
    return [base + (1 if i < extra else 0) for i in range(n_rounds)]


def round_order(n_candidates: int, round_index: int) -> list[int]:
    """Candidate indices in the order they run in round ``round_index`` (rotated by one each
    round, so every candidate runs first, second, … equally often)."""
    shift = round_index % n_candidates if n_candidates else 0
    return [(i + shift) % n_candidates for i in range(n_candidates)]


class LoadMonitor:
    """How much CPU *other* processes used while the benchmark ran.

    Reads the machine-wide busy and steal time from ``/proc/stat`` at start and stop and
    subtracts what this process and its (finished) workers used (``getrusage``), so a report can
    say "other processes used 1.2 of 2 cores during this run" — the usual reason two runs
    disagree. Without ``/proc/stat`` (not Linux) only the load averages are recorded.
    """

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.stat0 = self._stat()
        self.own0 = self._own_cpu_s()
        self.loadavg0 = self._loadavg()

    @staticmethod
    def _stat() -> tuple[float, float, float] | None:
        """(busy, steal, total) seconds summed over all CPUs since boot."""
        try:
            with open("/proc/stat") as fh:
                fields = [float(v) for v in fh.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        tick = float(os.sysconf("SC_CLK_TCK"))
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
        steal = fields[7] if len(fields) > 7 else 0.0
        # guest time is already counted in user/nice
        total = sum(fields[:8])
        return (total - idle - steal) / tick, steal / tick, total / tick

    @staticmethod
    def _own_cpu_s() -> float:
        import resource

        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    @staticmethod
    def _loadavg() -> float | None:
        try:
            return os.getloadavg()[0]
        except OSError:
            return None

    def stop(self) -> dict[str, Any]:
        """Call after every worker has exited (their CPU time counts only once reaped)."""
        wall = time.monotonic() - self.t0
        out: dict[str, Any] = {
            "loadavg_1min_start": self.loadavg0,
            "loadavg_1min_end": self._loadavg(),
        }
        stat1 = self._stat()
        if self.stat0 is not None and stat1 is not None and wall > 0:
            busy = stat1[0] - self.stat0[0]
            steal = stat1[1] - self.stat0[1]
            ours = self._own_cpu_s() - self.own0
            out["other_processes_cores"] = round(max(0.0, busy - ours) / wall, 2)
            out["steal_cores"] = round(max(0.0, steal) / wall, 2)
        return out


class WorkerFailed(Exception):
    """A worker died or answered with an error; carries the error it reported, if any."""

    def __init__(
        self,
        message: str,
        *,
        error_type: str | None = None,
        exit_code: int = 1,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.exit_code = exit_code
        self.hint = hint

    def to_sinet_error(self) -> errors.SinetDeployError:
        """The library error the worker raised (same class when it is one of ours)."""
        cls = getattr(errors, self.error_type or "", None)
        if isinstance(cls, type) and issubclass(cls, errors.SinetDeployError):
            if cls is errors.ParityGateError:
                return errors.SinetDeployError(str(self), hint=self.hint)
            return cls(str(self), hint=self.hint)
        if self.exit_code == 2:
            return errors.ArtifactError(str(self), hint=self.hint)
        return errors.SinetDeployError(str(self), hint=self.hint)


class Worker:
    """A ``python -m sinet_deploy.benchmark.worker`` child speaking JSON lines over pipes."""

    def __init__(self, *, threads: int, python: str | None = None) -> None:
        env = dict(os.environ)
        # The package must be importable in the child even when it is not installed.
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        # OpenMP/BLAS pools size themselves at import; match them to the row's thread count.
        env["OMP_NUM_THREADS"] = str(threads)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # Closed in close(); a worker outlives any one block, so no context manager here.
        self._stderr = tempfile.TemporaryFile(mode="w+b")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [python or sys.executable, "-m", "sinet_deploy.benchmark.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
        )

    def stderr_tail(self, n: int = 5) -> str:
        self._stderr.seek(0)
        lines = self._stderr.read().decode(errors="replace").strip().splitlines()
        return " | ".join(lines[-n:])

    def request(self, message: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        """Send one JSON line, wait for one JSON line back (or a dead/hung child)."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write((json.dumps(message) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerFailed(f"benchmark worker exited early ({self.stderr_tail()})") from None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        ready = sel.select(timeout_s)
        sel.close()
        if not ready:
            self.kill()
            raise WorkerFailed(f"benchmark worker did not answer within {timeout_s:.0f} s")
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=10)
            raise WorkerFailed(
                f"benchmark worker exited with code {self.proc.returncode} "
                f"({self.stderr_tail() or 'no message'})"
            )
        reply = json.loads(line)
        if not reply.get("ok", False) and not reply.get("skip"):
            raise WorkerFailed(
                reply.get("error", "benchmark worker failed"),
                error_type=reply.get("error_type"),
                exit_code=int(reply.get("exit_code", 1)),
                hint=reply.get("hint"),
            )
        return reply

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(WorkerFailed):
                self.request({"cmd": "quit"}, timeout_s=10)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._stderr.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _display_name(c: Candidate, info: dict[str, Any]) -> str:
    if c.label:
        return c.label
    if c.kind == "torch":
        return "pytorch-eager"
    if c.kind in ("torch-cuda", "torch-cuda-graph"):
        return "pytorch-cuda-graph" if c.kind == "torch-cuda-graph" else "pytorch-cuda-eager"
    base = Path(c.path).name if c.path else str(info.get("name", c.kind))
    if c.provider == "cpu":
        return base
    if c.provider == "xnnpack-fp16":
        return f"{base} (XNNPACK fp16)"
    return f"{base} (onnxruntime {c.provider.upper()})"


@dataclass(frozen=True)
class LoadReply:
    """A worker's answer to ``load`` (see :mod:`sinet_deploy.benchmark.worker`).

    Attributes:
        info: the reply as sent, for the fields with a per-candidate fallback (``runtime``,
            ``name``).
        skip: why the candidate cannot run on this machine (``None``: it is loaded).
    """

    info: dict[str, Any]
    format: str | None
    precision: str | None
    input_size: list[int] | None
    note: str | None
    skip: str | None
    init_ms: float | None
    first_inference_ms: float | None
    baseline_rss_mb: float | None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LoadReply:
        return cls(
            info=data,
            format=data.get("format"),
            precision=data.get("precision"),
            input_size=data.get("input_size"),
            note=data.get("note"),
            skip=str(data["skip"]) if data.get("skip") else None,
            init_ms=data.get("init_ms"),
            first_inference_ms=data.get("first_inference_ms"),
            baseline_rss_mb=data.get("baseline_rss_mb"),
        )


@dataclass(frozen=True)
class RunReply:
    """A worker's answer to ``run``: per timed iteration, wall and CPU time and preemptions."""

    latencies_ms: tuple[float, ...]
    cpu_ms: tuple[float, ...]
    preempted: tuple[int, ...]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RunReply:
        return cls(
            latencies_ms=tuple(float(v) for v in data["latencies_ms"]),
            cpu_ms=tuple(float(v) for v in data.get("cpu_ms", [])),
            preempted=tuple(int(v) for v in data.get("preempted", [])),
        )


def _skipped_row(c: Candidate, reason: str) -> Row:
    """The row of a candidate that does not run here (``reason`` says why)."""
    return Row(
        name=_display_name(c, {}),
        runtime=c.kind,
        kind=c.kind,
        role=c.role,
        threads=c.threads,
        provider=c.provider,
        path=c.path,
        skipped=reason,
    )


def _loaded_row(c: Candidate, reply: LoadReply) -> Row:
    """The row of a candidate its worker answered ``load`` for (loaded, or skipped there)."""
    row = Row(
        name=_display_name(c, reply.info),
        runtime=str(reply.info.get("runtime", c.kind)),
        kind=c.kind,
        role=c.role,
        threads=c.threads,
        provider=c.provider,
        path=c.path,
        format=reply.format,
        precision=reply.precision,
        input_size=reply.input_size,
        file_size_bytes=path_size(c.path) if c.path and c.kind != "factory" else None,
        note=reply.note,
        macs=reply.info.get("macs"),
    )
    if reply.skip:
        row.skipped = reply.skip
    else:
        row.init_ms = reply.init_ms
        row.first_inference_ms = reply.first_inference_ms
        row.baseline_rss_mb = reply.baseline_rss_mb
    return row


class _Ticker:
    """Progress over the whole benchmark: ``progress(description, done, total)``."""

    def __init__(self, progress: ProgressFn | None, total: int) -> None:
        self.progress = progress
        self.done = 0
        self.total = total

    def say(self, desc: str) -> None:
        if self.progress:
            self.progress(desc, self.done, self.total)

    def advance(self, desc: str, n: int) -> None:
        self.done += n
        self.say(desc)


@dataclass
class _Lane:
    """One candidate's row and, while it is measured, its worker (``None``: skipped)."""

    row: Row
    worker: Worker | None = None

    def request(self, message: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
        if self.worker is None:  # only active (loaded, not skipped) candidates are asked anything
            raise WorkerFailed("internal: request to a skipped candidate")
        return self.worker.request(message, timeout_s=timeout_s)

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()


def run_benchmark(
    candidates: Sequence[Candidate],
    *,
    runs: int = 50,
    warmup: int = 5,
    rounds: int | None = None,
    progress: ProgressFn | None = None,
) -> BenchResult:
    """Measure every candidate, interleaved, each in its own worker process.

    Args:
        candidates: the rows to measure (each ``(model, threads)`` pair is one candidate).
        runs: timed iterations per candidate.
        warmup: untimed iterations per candidate before the first round.
        rounds: how many interleaved rounds ``runs`` is split into (default: ``runs``, one
            iteration per round).
        progress: optional ``(description, done, total)`` callback.

    Returns:
        A :class:`BenchResult`; candidates that cannot run here (no CUDA) are rows with
        ``skipped`` set to the reason, not errors.

    Raises:
        ArtifactError / MissingDependencyError / ...: the error a worker raised while loading
            (a corrupt model, a missing runtime), re-raised here with the worker's message.
        SinetDeployError: a worker crashed or hung.
    """
    _check_arguments(candidates, warmup)
    plan = plan_rounds(runs, rounds)
    t_start = time.perf_counter()
    monitor = LoadMonitor()
    ticker = _Ticker(progress, len(candidates) * (runs + warmup))
    lanes: list[_Lane] = []
    try:
        # Load one after another: parallel start-ups would inflate each other's init time.
        for c in candidates:
            lanes.append(_load(c, ticker, runs + warmup))
        active = [lane for lane in lanes if lane.worker is not None]
        _warm_up(active, warmup, ticker)
        order = _run_rounds(active, plan, ticker)
        for lane in active:
            _finish(lane, runs, warmup, len(plan))
    except WorkerFailed as exc:
        raise exc.to_sinet_error() from None
    finally:
        for lane in lanes:
            lane.close()
    rows = [lane.row for lane in lanes if lane.row.kind != "ceiling"]
    add_ratios(rows, plan)
    machine_load = monitor.stop()
    return BenchResult(
        rows=rows,
        runs=runs,
        warmup=warmup,
        rounds=len(plan),
        order=order,
        wall_s=time.perf_counter() - t_start,
        machine_load=machine_load,
        plan=plan,
        ceilings=[lane.row for lane in lanes if lane.row.kind == "ceiling"],
    )


def _check_arguments(candidates: Sequence[Candidate], warmup: int) -> None:
    if not candidates:
        raise errors.UserInputError(
            "nothing to benchmark", hint="pass at least one artifact or --peer model"
        )
    if warmup < 0:
        raise errors.UserInputError(f"--warmup must be 0 or more, got {warmup}")


def _load(c: Candidate, ticker: _Ticker, iterations: int) -> _Lane:
    """Start a worker and load ``c`` in it; a lane without a worker when ``c`` is skipped
    (``iterations`` then leave the progress total).

    Raises:
        SinetDeployError: the worker's load error, as the class it raised.
    """
    if c.skip:
        ticker.total -= iterations
        return _Lane(_skipped_row(c, c.skip))
    ticker.say(f"loading {c.label or (Path(c.path).name if c.path else c.ceiling or c.kind)}")
    w = Worker(threads=c.threads)
    try:
        reply = LoadReply.from_json(
            w.request({"cmd": "load", "spec": c.to_spec()}, timeout_s=LOAD_TIMEOUT_S)
        )
    except WorkerFailed as exc:
        w.kill()
        w.close()
        raise exc.to_sinet_error() from None
    row = _loaded_row(c, reply)
    if reply.skip:
        w.close()
        ticker.total -= iterations
        return _Lane(row)
    return _Lane(row, w)


def _warm_up(lanes: Sequence[_Lane], warmup: int, ticker: _Ticker) -> None:
    """``warmup`` untimed iterations per candidate, before the first round."""
    if not warmup:
        return
    for lane in lanes:
        lane.request({"cmd": "run", "n": warmup}, timeout_s=RUN_TIMEOUT_S)
        ticker.advance(f"warm-up {lane.row.name}", warmup)


def _run_rounds(lanes: Sequence[_Lane], plan: Sequence[int], ticker: _Ticker) -> list[list[str]]:
    """The timed rounds, each in its rotated order; returns the names in each round's order."""
    order_log: list[list[str]] = []
    for r, n in enumerate(plan):
        order = [lanes[j] for j in round_order(len(lanes), r)]
        order_log.append([lane.row.name for lane in order])
        for lane in order:
            message = {"cmd": "run", "n": n, "rewarm": REWARM}
            reply = RunReply.from_json(lane.request(message, timeout_s=RUN_TIMEOUT_S))
            lane.row.latencies_ms.extend(reply.latencies_ms)
            lane.row.cpu_ms.extend(reply.cpu_ms)
            lane.row.preempted.extend(reply.preempted)
            ticker.advance(f"round {r + 1}/{len(plan)} {lane.row.name}", n)
    return order_log


def _finish(lane: _Lane, runs: int, warmup: int, rounds: int) -> None:
    """Peak memory from the worker, then the row's statistics."""
    stats = lane.request({"cmd": "stats"}, timeout_s=30)
    row = lane.row
    row.peak_rss_mb = stats.get("peak_rss_mb")
    row.finish()
    row.runs, row.warmup, row.rounds = runs, warmup, rounds


def cuda_unavailable_reason() -> str | None:
    """Why the CUDA rows cannot run here, from a cheap check that imports nothing heavy.

    The worker does the real check (``torch.cuda.is_available()``, onnxruntime's providers)
    when a GPU node exists; this one only saves starting a process per row on a CPU machine.
    """
    if Path("/dev/nvidiactl").exists() or shutil.which("nvidia-smi"):
        return None
    return "no NVIDIA GPU on this machine (no /dev/nvidiactl, no nvidia-smi)"


def cuda_candidates(
    artifacts: Sequence[str], *, weights: str, input_size: tuple[int, int]
) -> list[Candidate]:
    """PyTorch on CUDA (eager and CUDA graph) and onnxruntime's CUDA provider for each ONNX
    artifact; each marked ``skip`` with the reason when this machine has no NVIDIA GPU."""
    rows = [
        Candidate("torch-cuda", weights=weights, input_size=input_size),
        Candidate("torch-cuda-graph", weights=weights, input_size=input_size),
    ]
    rows += [
        Candidate("artifact", path=str(p), provider="cuda")
        for p in artifacts
        if str(p).endswith(".onnx")
    ]
    reason = cuda_unavailable_reason()
    return [replace(c, skip=reason) for c in rows] if reason else rows


def artifact_input_size(path: str | Path, default: tuple[int, int] = (224, 224)) -> tuple[int, int]:
    """``(H, W)`` of an artifact from its manifest's first input, else from its file name
    (``sinet_<H>x<W>_...``), else ``default``."""
    from sinet_deploy.core.manifest import manifest_or_none

    try:
        spec = manifest_or_none(Path(path))["inputs"][0]  # type: ignore[index]
        shape = spec["shape"]
        if spec.get("layout") == "nchw":
            return int(shape[2]), int(shape[3])
        return int(shape[1]), int(shape[2])
    except (ValueError, KeyError, IndexError, TypeError, OverflowError):
        pass
    m = re.match(r"sinet_(\d+)x(\d+)_", Path(path).name)
    return (int(m.group(1)), int(m.group(2))) if m else default


def paired_ratio(a: Row, b: Row, plan: Sequence[int] | None) -> float | None:
    """How many times slower ``a`` is than ``b`` (``a / b``).

    Paired by round when both rows ran the same ``plan``: the geometric mean, over rounds, of
    the ratio of their medians in that round. A slow spell of the machine that lasts a round
    slows both rows of that round, and the ratio cancels it; the ratio of the two overall
    medians does not (measured here under load: 26% apart between runs against 11%).
    Otherwise (no plan, hand-made rows): the ratio of the medians.
    """
    if not a.median_ms or not b.median_ms:
        return None
    n = sum(plan) if plan else 0
    if not plan or len(a.latencies_ms) != n or len(b.latencies_ms) != n:
        return a.median_ms / b.median_ms
    bounds = np.cumsum([0, *plan])
    logs = [
        math.log(float(np.median(a.latencies_ms[lo:hi])) / float(np.median(b.latencies_ms[lo:hi])))
        for lo, hi in itertools.pairwise(bounds)
    ]
    return math.exp(sum(logs) / len(logs))


def add_ratios(rows: Sequence[Row], plan: Sequence[int] | None = None) -> None:
    """Fill :data:`RATIO_COLUMNS` for every measured row, within each thread count."""
    for threads in {r.threads for r in rows}:
        same = [r for r in rows if r.threads == threads and r.median_ms]
        torch_rows = [r for r in same if r.kind == "torch"]
        sinet = [
            r
            for r in same
            if r.role == "sinet"
            and r.provider == "cpu"
            and r.kind not in ("torch-cuda", "torch-cuda-graph")
        ]
        ref = torch_rows[0] if torch_rows else None
        fastest = min(sinet, key=lambda r: r.median_ms or math.inf, default=None)
        for r in same:
            speedup = paired_ratio(ref, r, plan) if ref else None
            r.speedup_vs_torch = speedup
            r.time_vs_fastest_sinet = paired_ratio(r, fastest, plan) if fastest else None


def ratio_matrix(rows: Sequence[Row], plan: Sequence[int] | None) -> dict[str, dict[str, float]]:
    """Every row against every other of the same thread count (``matrix[a][b]`` = how many
    times slower ``a`` is than ``b``, paired by round); keys are ``"name @ N threads"``."""

    def key(r: Row) -> str:
        return f"{r.name} @ {r.threads} thread{'s' if r.threads != 1 else ''}"

    out: dict[str, dict[str, float]] = {}
    for a in rows:
        for b in rows:
            if a is not b and a.threads == b.threads and a.median_ms and b.median_ms:
                ratio = paired_ratio(a, b, plan)
                if ratio is not None:
                    out.setdefault(key(a), {})[key(b)] = round(ratio, 4)
    return out
