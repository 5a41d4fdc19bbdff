"""Parse what LiteRT's ``benchmark_model`` prints, in every format it has used.

* current (2021+): ``INFO:``-prefixed lines, stats with ``p5=… median=… p95=…`` and
  ``Inference timings in us: Init: …, First inference: …, Warmup (avg): …, Inference (avg): …``;
* TF 2.x before that: the same summary without prefixes or percentiles;
* 2018-2019: ``Average inference timings in us: Warmup: …, Init: …, no stats: …`` (the Android
  benchmark app writes ``…, Inference: …`` to logcat);
* stats lines ``count=N first=… curr=… min=… max=… avg=… std=…`` or, when every run took the
  same time, ``count=N curr=X(all same)``; numbers may be in ``1.24e+06`` notation;
* delegate lines: ``…completely executed by the delegate``, ``…partially executed by the
  delegate w/ k delegate kernels``, ``…will not be executed by the delegate``, ``Replacing n out
  of m node(s) with delegate (X) node, yielding p partitions…`` (or the older ``Replacing n
  node(s) …``), ``GPU acceleration is unsupported on this platform``;
* ``--enable_op_profiling`` tables (``Summary by node type``).

Lines may carry ``INFO:``/``WARNING:`` prefixes, logcat prefixes (``I tflite  :``) or glog
timestamps; every pattern is searched inside the line rather than anchored to its start.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"

_SUMMARY = re.compile(
    rf"Inference timings in us: Init: (?P<init>{_NUM}), First inference: (?P<first>{_NUM}), "
    rf"Warmup \(avg\): (?P<warm>{_NUM}), Inference \(avg\): (?P<inf>{_NUM})"
)
_OLD_SUMMARY = re.compile(
    rf"Average inference timings in us: Warmup: (?P<warm>{_NUM}), Init: (?P<init>{_NUM}), "
    rf"(?:no stats|Inference): (?P<inf>{_NUM})"
)
_OLDEST_SUMMARY = re.compile(
    rf"Average inference timings in us: (?P<inf>{_NUM})\s*, Warmup: (?P<warm>{_NUM})"
)
_RUNNING = re.compile(r"Running benchmark for (?:at least )?(\d+) iterations")
_STATS = re.compile(r"(?:^|[\s:\]])count=(?P<count>\d+)(?P<rest>.*)$")
_STAT_FIELD = re.compile(rf"\b(first|curr|min|max|avg|std|p5|median|p95)=({_NUM})")
_FULL = re.compile(
    r"Explicitly applied (?P<name>[\w\- ]+?) delegate, and the model graph will "
    r"be completely executed by the delegate"
)
_PARTIAL = re.compile(
    r"Explicitly applied (?P<name>[\w\- ]+?) delegate, and the model graph "
    r"will be partially executed by the delegate w/ (?P<k>\d+) delegate kernels"
)
_NONE = re.compile(
    r"Though (?P<name>[\w\- ]+?) delegate is explicitly applied, the model graph "
    r"will not be executed by the delegate"
)
_REPLACING = re.compile(
    r"Replacing (?P<n>\d+)(?: out of (?P<m>\d+))? node\(s\) with delegate "
    r"\((?P<name>[^)]+)\) node, yielding (?P<p>\d+) partitions"
)
_UNSUPPORTED = re.compile(r"(?P<name>GPU|NNAPI|Hexagon) acceleration is unsupported")
_FAILED_DELEGATE = re.compile(
    r"(?:Failed to (?:apply|create) (?P<a>\w+) delegate|"
    r"(?P<b>\w+) delegate failed to create)"
)
_UNCONSUMED = re.compile(r"Unconsumed cmdline flags:\s*(.*)$")
_INIT_SESSION = re.compile(rf"Initialized session in ({_NUM}) ?ms")
_PREFIX = re.compile(
    r"^(?:\S+ \S+: [IWEF] \S+\] |[IWEFVD] tflite\s*: |"
    r"(?:INFO|WARNING|WARN|ERROR|VERBOSE|DEBUG): )"
)


class BenchOutputError(ValueError):
    """The text has no complete, consistent timings (crash, garbage, wrong tool)."""


@dataclass
class RunStats:
    """One ``count=…`` line, in microseconds."""

    count: int
    avg: float
    min: float | None = None
    max: float | None = None
    std: float | None = None
    first: float | None = None
    curr: float | None = None
    p5: float | None = None
    median: float | None = None
    p95: float | None = None
    all_same: bool = False


@dataclass
class Delegation:
    """What the delegate lines say (``None`` fields: the tool did not print them)."""

    delegate: str | None = None
    coverage: str | None = None  # "full" | "partial" | "none"
    delegate_kernels: int | None = None
    #: One entry per "Replacing n out of m node(s) with delegate (X)" line.
    replacements: list[dict[str, Any]] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)


@dataclass
class BenchOutput:
    """Everything parsed from one benchmark_model run."""

    format: str
    init_us: float | None
    first_us: float | None
    warmup_avg_us: float | None
    inference_avg_us: float
    warmup: RunStats | None
    inference: RunStats | None
    delegation: Delegation
    unconsumed_flags: list[str]
    errors: list[str]
    op_profile: list[dict[str, Any]] | None

    @property
    def median_us(self) -> float:
        """The median if the tool printed percentiles (or all runs were equal), else the mean."""
        s = self.inference
        if s is not None and s.median is not None:
            return s.median
        if s is not None and s.all_same and s.curr is not None:
            return s.curr
        return self.inference_avg_us

    @property
    def median_source(self) -> str:
        s = self.inference
        if s is not None and (s.median is not None or (s.all_same and s.curr is not None)):
            return "median"
        return "mean (this benchmark_model prints no percentiles)"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def unconsumed_flags(text: str) -> list[str]:
    """Flags the tool warned it did not understand (``Unconsumed cmdline flags: …``)."""
    flags: list[str] = []
    for line in text.splitlines():
        if m := _UNCONSUMED.search(line):
            flags += m.group(1).split()
    return flags


def _strip(line: str) -> str:
    return _PREFIX.sub("", line.strip())


def _num(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BenchOutputError(f"non-finite number {text!r} in benchmark_model output")
    return value


def parse_stats(line: str) -> RunStats | None:
    """Parse a ``count=…`` line; ``None`` if the line is not one (or is a profiler summary)."""
    if "Timings (microseconds)" in line or "Memory (bytes)" in line:
        return None
    m = _STATS.search(line)
    if m is None:
        return None
    count = int(m.group("count"))
    values = {k: _num(v) for k, v in _STAT_FIELD.findall(m.group("rest"))}
    all_same = "(all same)" in line or (count == 1 and "avg" not in values)
    if "avg" not in values:
        if "curr" not in values:
            if count == 0:
                return RunStats(count=0, avg=0.0)
            return None
        c = values["curr"]
        return RunStats(
            count=count,
            avg=c,
            min=c,
            max=c,
            std=0.0,
            first=c,
            curr=c,
            p5=values.get("p5"),
            median=values.get("median"),
            p95=values.get("p95"),
            all_same=all_same,
        )
    return RunStats(
        count=count,
        avg=values["avg"],
        min=values.get("min"),
        max=values.get("max"),
        std=values.get("std"),
        first=values.get("first"),
        curr=values.get("curr"),
        p5=values.get("p5"),
        median=values.get("median"),
        p95=values.get("p95"),
    )


def _parse_op_profile(lines: list[str]) -> list[dict[str, Any]] | None:
    """Rows of the last ``Summary by node type`` table (node type, count, avg ms, %)."""
    starts = [i for i, ln in enumerate(lines) if "Summary by node type" in ln]
    if not starts:
        return None
    rows: list[dict[str, Any]] = []
    for ln in lines[starts[-1] + 1 :]:
        text = ln.strip()
        if (
            not text
            or text.startswith("Timings")
            or text.startswith("=")
            or "nodes observed" in text
        ):
            if rows:
                break
            continue
        if text.startswith("["):
            continue  # the header row
        parts = text.split()
        if len(parts) >= 4 and parts[1].isdigit():
            try:
                rows.append(
                    {
                        "node_type": parts[0],
                        "count": int(parts[1]),
                        "avg_ms": float(parts[2]),
                        "percent": float(parts[3].rstrip("%")),
                    }
                )
            except ValueError:
                continue
    return rows or None


def parse_benchmark_output(text: str) -> BenchOutput:
    """Parse benchmark_model output; :class:`BenchOutputError` if there are no usable timings."""
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    lines = [_strip(ln) for ln in raw_lines]
    delegation = Delegation()
    errors: list[str] = []
    unconsumed: list[str] = []
    stats: list[tuple[int, RunStats]] = []
    running: list[int] = []
    summary: dict[str, float | None] | None = None
    fmt = "unknown"
    summary_at = len(lines)
    init_ms = None
    for i, (line, raw) in enumerate(zip(lines, raw_lines, strict=True)):
        if raw.lstrip().startswith(("ERROR:", "E tflite")) or "Benchmarking failed" in line:
            errors.append(line)
        if m := _UNCONSUMED.search(line):
            unconsumed += m.group(1).split()
        if m := _INIT_SESSION.search(line):
            init_ms = _num(m.group(1))
        if _RUNNING.search(line):
            running.append(i)
        if summary is None and (st := parse_stats(line)) is not None:
            stats.append((i, st))
        if summary is None and (m := _SUMMARY.search(line)):
            summary = {k: _num(m.group(k)) for k in ("init", "first", "warm", "inf")}
            fmt = (
                "current"
                if raw.lstrip().startswith("INFO:") or any(s.p5 is not None for _, s in stats)
                else "tf2"
            )
            summary_at = i
        elif summary is None and (m := _OLD_SUMMARY.search(line)):
            summary = {
                "init": _num(m.group("init")),
                "first": None,
                "warm": _num(m.group("warm")),
                "inf": _num(m.group("inf")),
            }
            fmt = "legacy"
            summary_at = i
        elif summary is None and (m := _OLDEST_SUMMARY.search(line)):
            summary = {
                "init": None,
                "first": None,
                "warm": _num(m.group("warm")),
                "inf": _num(m.group("inf")),
            }
            fmt = "legacy"
            summary_at = i
        _delegate_line(line, delegation)

    if summary is None:
        if errors:
            raise BenchOutputError(f"benchmark_model failed: {errors[-1]}")
        raise BenchOutputError(
            "no inference timings in the benchmark_model output "
            "(it crashed, printed something else, or is not benchmark_model)"
        )
    warm_stats, inf_stats = _assign_stats(stats, running, summary_at)
    inference_avg = summary["inf"]
    if inference_avg is None or inference_avg <= 0:
        raise BenchOutputError(f"benchmark_model reported an inference time of {inference_avg} us")
    if inf_stats is not None and inf_stats.count < 1:
        raise BenchOutputError("benchmark_model ran no timed inference (count=0)")
    if (
        inf_stats is not None
        and inf_stats.min is not None
        and inf_stats.max is not None
        and not (inf_stats.min <= inf_stats.avg <= inf_stats.max)
    ):
        raise BenchOutputError(
            "inconsistent statistics in benchmark_model output "
            f"(min {inf_stats.min}, avg {inf_stats.avg}, max {inf_stats.max})"
        )
    init_us = summary["init"]
    if init_us is None and init_ms is not None:
        init_us = init_ms * 1000.0
    return BenchOutput(
        format=fmt,
        init_us=init_us,
        first_us=summary["first"],
        warmup_avg_us=summary["warm"],
        inference_avg_us=inference_avg,
        warmup=warm_stats,
        inference=inf_stats,
        delegation=delegation,
        unconsumed_flags=unconsumed,
        errors=errors,
        op_profile=_parse_op_profile(lines[summary_at:]),
    )


def _assign_stats(
    stats: list[tuple[int, RunStats]], running: list[int], summary_at: int
) -> tuple[RunStats | None, RunStats | None]:
    """Which stats line is the warm-up and which the timed runs.

    Each ``Running benchmark for …`` header is followed by its stats line: the first header is
    the warm-up, the last before the summary the timed runs. Without headers, the last stats
    line before the summary is the timed runs and an earlier one the warm-up.
    """
    before = [(i, s) for i, s in stats if i < summary_at]
    if not before:
        return None, None
    headers = [h for h in running if h < summary_at]
    if len(headers) >= 2:

        def after(h: int) -> RunStats | None:
            return next((s for i, s in before if i > h), None)

        return after(headers[0]), after(headers[-1])
    inf = before[-1][1]
    warm = before[-2][1] if len(before) >= 2 else None
    return warm, inf


def _delegate_line(line: str, d: Delegation) -> None:
    if m := _FULL.search(line):
        d.delegate, d.coverage, d.delegate_kernels = m.group("name"), "full", 1
        d.messages.append(line)
    elif m := _PARTIAL.search(line):
        d.delegate, d.coverage = m.group("name"), "partial"
        d.delegate_kernels = int(m.group("k"))
        d.messages.append(line)
    elif m := _NONE.search(line):
        d.delegate, d.coverage, d.delegate_kernels = m.group("name"), "none", 0
        d.messages.append(line)
    elif m := _REPLACING.search(line):
        d.replacements.append(
            {
                "delegate": m.group("name"),
                "nodes_delegated": int(m.group("n")),
                "nodes_total": int(m.group("m")) if m.group("m") is not None else None,
                "partitions": int(m.group("p")),
            }
        )
        d.messages.append(line)
    elif m := _UNSUPPORTED.search(line):
        d.unavailable.append(m.group("name"))
        d.messages.append(line)
    elif m := _FAILED_DELEGATE.search(line):
        d.unavailable.append((m.group("a") or m.group("b")).upper())
        d.messages.append(line)
