"""Parse what ExecuTorch's ``executor_runner`` prints, and build its command line.

The runner (``examples/portable/executor_runner/executor_runner.cpp``; the XNNPACK build is
``xnn_executor_runner``) takes gflags ``--model_path --num_executions --cpu_threads --inputs
--output_file``. It has no warm-up flag and no statistics of its own; what it prints depends on
its version, all through ``ET_LOG``:

* current builds: ``Model loaded in X ms.``, one ``Iteration i of N: X ms`` line per execution,
  then ``Model executed successfully N time(s) in X ms.`` (the sum of the executions);
* earlier builds: only the total, ``Model executed successfully N time(s) in X ms.``;
* the oldest runners: ``Model executed successfully.`` with no time at all.

``ET_LOG`` lines go to stderr with the posix PAL (``I 00:00:00.012345
executorch:executor_runner.cpp:123] message``); a runner built with the android PAL sends them
to logcat instead, so its stdout holds only the ``Output 0: tensor(...)`` summary. Every pattern
is searched inside the line, so logcat or other prefixes do not matter.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from sinet_deploy.device.adb import quote
from sinet_deploy.device.bench_output import BenchOutputError

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf"

_ITERATION = re.compile(rf"Iteration (?P<i>\d+) of (?P<n>\d+): (?P<ms>{_NUM}) ms")
_TOTAL = re.compile(rf"Model executed successfully (?P<n>\d+) time\(s\) in (?P<ms>{_NUM}) ms")
_NO_TIME = re.compile(r"Model executed successfully(?: (?P<n>\d+) time\(s\))?\.")
_LOADED = re.compile(rf"Model loaded in (?P<ms>{_NUM}) ms")
_THREADS = re.compile(r"Resetting threadpool with num threads = (?P<n>-?\d+)")
_UNKNOWN_FLAG = re.compile(r"unknown command line flag '(?P<name>[^']+)'")
_ERROR = re.compile(
    r"(?:^|\s)[EF] \d\d:\d\d:\d\d\.\d+ executorch:\S+\] (?P<msg>.*)$|"
    r"(?P<assert>In function \S+, assert failed.*)$"
)
_OUTPUT_SUMMARY = re.compile(r"^Output(?:X)? \d+: ")


@dataclass
class RunnerOutput:
    """Everything parsed from one executor_runner run (times in milliseconds)."""

    format: str  # "per-iteration" | "total"
    executions: int
    total_ms: float
    iterations_ms: list[float]
    load_ms: float | None
    threads: int | None
    errors: list[str] = field(default_factory=list)


def runner_command(
    binary: str,
    model: str,
    *,
    threads: int,
    executions: int,
    taskset: str | None = None,
    extra: Sequence[str] = (),
) -> str:
    """The shell command for one executor_runner run (``executions`` executions in a row)."""
    flags = [
        f"--model_path={quote(model)}",
        f"--num_executions={executions}",
        f"--cpu_threads={threads}",
        *extra,
    ]
    prefix = f"taskset {taskset} " if taskset else ""
    return f"{prefix}{quote(binary)} " + " ".join(flags) + " 2>&1"


def unknown_flags(text: str) -> list[str]:
    """Flags gflags refused (``ERROR: unknown command line flag 'x'``)."""
    return [m.group("name") for m in _UNKNOWN_FLAG.finditer(text)]


def _num(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise BenchOutputError(f"impossible time {text!r} ms in executor_runner output")
    return value


def parse_runner_output(text: str) -> RunnerOutput:
    """Parse executor_runner output; :class:`BenchOutputError` if it has no usable timings."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    iterations: dict[int, float] = {}
    declared: set[int] = set()
    total: tuple[int, float] | None = None
    untimed: int | None = None
    load_ms = None
    threads = None
    errors: list[str] = []
    outputs_seen = False
    for line in lines:
        if m := _ERROR.search(line):
            errors.append((m.group("msg") or m.group("assert") or "").strip())
        if m := _ITERATION.search(line):
            iterations[int(m.group("i"))] = _num(m.group("ms"))
            declared.add(int(m.group("n")))
        elif m := _TOTAL.search(line):
            total = (int(m.group("n")), _num(m.group("ms")))
        elif m := _NO_TIME.search(line):
            untimed = int(m.group("n") or 1)
        if m := _LOADED.search(line):
            load_ms = _num(m.group("ms"))
        if m := _THREADS.search(line):
            threads = int(m.group("n"))
        if _OUTPUT_SUMMARY.search(line.strip()):
            outputs_seen = True
    if total is None:
        if errors:
            raise BenchOutputError(f"executor_runner failed: {errors[-1][:160]}")
        if untimed is not None:
            raise BenchOutputError(
                "this executor_runner prints no execution time (only 'Model executed successfully')"
            )
        if outputs_seen:
            raise BenchOutputError(
                "executor_runner printed its outputs but no log lines: it was built with "
                "the android PAL, which sends ET_LOG to logcat"
            )
        raise BenchOutputError(
            "no 'Model executed successfully' line in the executor_runner output "
            "(it crashed, printed something else, or is not executor_runner)"
        )
    n, total_ms = total
    if n < 1:
        raise BenchOutputError("executor_runner ran no execution (0 time(s))")
    if iterations:
        if declared != {n} or sorted(iterations) != list(range(1, n + 1)):
            raise BenchOutputError(
                f"inconsistent executor_runner output: {len(iterations)} iteration line(s) "
                f"for {n} execution(s)"
            )
        samples = [iterations[i] for i in range(1, n + 1)]
        # The total is the sum of the same tick differences the iteration lines print (each
        # rounded to %f, i.e. 1 ns); anything else means the lines do not belong together.
        if abs(sum(samples) - total_ms) > 1e-3 * n + 1e-6 * total_ms:
            raise BenchOutputError(
                f"inconsistent executor_runner output: iterations sum to {sum(samples):.6f} ms "
                f"but the total is {total_ms:.6f} ms"
            )
        return RunnerOutput("per-iteration", n, total_ms, samples, load_ms, threads, errors)
    return RunnerOutput("total", n, total_ms, [], load_ms, threads, errors)


@dataclass
class RunnerTimings:
    """The timed executions of one run, after the warm-up ones are set aside."""

    median_ms: float
    median_source: str
    mean_ms: float
    runs: int
    min_ms: float | None = None
    max_ms: float | None = None
    std_ms: float | None = None
    p5_ms: float | None = None
    p95_ms: float | None = None
    first_ms: float | None = None
    warmup_mean_ms: float | None = None


def _pct(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def timings(out: RunnerOutput, warmup: int) -> RunnerTimings:
    """Median and spread of the executions after the first ``warmup``.

    With per-iteration lines, the first ``warmup`` executions are the warm-up and the rest are
    timed exactly. A runner that prints only the total gives one number: the mean of all its
    executions, warm-up included, reported as such.
    """
    if out.format == "per-iteration":
        warm, timed = out.iterations_ms[:warmup], out.iterations_ms[warmup:]
        if not timed:
            raise BenchOutputError(
                f"executor_runner ran {out.executions} execution(s), none after the "
                f"{warmup} warm-up one(s)"
            )
        ordered = sorted(timed)
        return RunnerTimings(
            median_ms=statistics.median(timed),
            median_source="median",
            mean_ms=statistics.fmean(timed),
            runs=len(timed),
            min_ms=ordered[0],
            max_ms=ordered[-1],
            std_ms=statistics.pstdev(timed),
            p5_ms=_pct(ordered, 0.05),
            p95_ms=_pct(ordered, 0.95),
            first_ms=out.iterations_ms[0],
            warmup_mean_ms=statistics.fmean(warm) if warm else None,
        )
    mean = out.total_ms / out.executions
    return RunnerTimings(
        median_ms=mean,
        median_source=(
            f"mean of all {out.executions} executions, warm-up included "
            "(this executor_runner prints only their total time)"
        ),
        mean_ms=mean,
        runs=out.executions,
    )
