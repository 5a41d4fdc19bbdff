"""What ``bench`` and the pipeline measure: the rows for some artifacts and peers, and a run.

:func:`bench_candidates` turns a :class:`BenchOptions` into the benchmark's rows (PyTorch
eager as the reference, every artifact, every peer, the CUDA rows); :func:`run_bench` measures
them with :func:`~sinet_deploy.benchmark.timing.run_benchmark`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sinet_deploy.benchmark import roofline, timing
from sinet_deploy.benchmark.timing import BenchResult, Candidate

ProgressFn = Callable[[str, int, int], None]

#: Why a CoreML package is listed as skipped off macOS.
COREML_OFF_MACOS = (
    "CoreML runs only on Apple platforms; on Linux only the reference "
    "evaluator exists, whose speed is not a latency"
)


@dataclass(frozen=True)
class BenchOptions:
    """What to benchmark and how.

    Attributes:
        artifacts: sinet-deploy artifacts (each with its manifest).
        peers: third-party ``.tflite``/``.onnx`` models timed beside them.
        threads: thread counts; every model runs at each.
        runs: timed iterations per row.
        warmup: untimed iterations per row first.
        rounds: interleaved rounds ``runs`` is split into (``None``: one iteration each).
        weights: checkpoint of the PyTorch rows (``"official"``, ``"random"`` or a path).
        torch_row: list PyTorch eager as the reference.
        cuda: list the CUDA rows (``None``: only when this machine has an NVIDIA GPU).
        roofline: also time each runtime's dense-convolution ceiling, for the GMAC/s and
            ceiling-share columns (:mod:`sinet_deploy.benchmark.roofline`).
        litert_fp16: also time each fp32/fp16 ``.tflite`` artifact with XNNPACK's force-fp16
            flag (LiteRT provider ``xnnpack-fp16``: fp16 arithmetic).
    """

    artifacts: tuple[Path, ...] = ()
    peers: tuple[Path, ...] = ()
    threads: tuple[int, ...] = (1,)
    runs: int = 50
    warmup: int = 5
    rounds: int | None = None
    weights: str = "official"
    torch_row: bool = True
    cuda: bool | None = None
    roofline: bool = True
    litert_fp16: bool = False


def bench_candidates(options: BenchOptions) -> list[Candidate]:
    """The benchmark's rows: per thread count PyTorch eager (one row per input size among the
    artifacts), every artifact and every peer; then the CUDA rows once.

    CoreML packages are listed as skipped off macOS: the only evaluator on Linux is a reference
    interpreter, whose speed says nothing about a phone. The CUDA rows are listed when asked
    (``cuda=True``; skipped, with the reason, without an NVIDIA GPU) or, by default, when this
    machine has an NVIDIA GPU.
    """
    cuda = options.cuda
    if cuda is None:
        cuda = timing.cuda_unavailable_reason() is None
    artifacts = options.artifacts
    sizes = list(dict.fromkeys(timing.artifact_input_size(a) for a in artifacts)) or [(224, 224)]
    out: list[Candidate] = []
    for t in options.threads:
        if options.torch_row:
            out += _torch_rows(sizes, t, options.weights)
        out += [Candidate("artifact", path=str(a), threads=t, skip=_skip(a)) for a in artifacts]
        if options.litert_fp16:
            out += [
                Candidate("artifact", path=str(a), threads=t, provider="xnnpack-fp16")
                for a in artifacts
                if a.suffix.lower() == ".tflite" and _manifest_precision(a) in ("fp32", "fp16")
            ]
        out += [Candidate("peer", path=str(p), threads=t, label=p.name) for p in options.peers]
        if options.roofline:
            out += roofline.ceiling_candidates(_runtimes(options), t)
    if cuda:
        out += timing.cuda_candidates(
            [str(a) for a in artifacts], weights=options.weights, input_size=sizes[0]
        )
    return out


def _runtimes(options: BenchOptions) -> list[tuple[str, str]]:
    """``(runtime, precision class)`` of every CPU row, for the ceilings to time."""
    pairs = [("torch", "fp32")] if options.torch_row else []
    for a in options.artifacts:
        if (rt := roofline.runtime_of(a)) and _skip(a) is None:
            pairs.append((rt, roofline.precision_class(_manifest_precision(a))))
    # Only .tflite peers get MACs (counted from the graph), so only they need a ceiling.
    pairs += [
        ("litert", roofline.peer_precision_class(p))
        for p in options.peers
        if roofline.runtime_of(p) == "litert"
    ]
    return pairs


def _manifest_precision(artifact: Path) -> str | None:
    from sinet_deploy.core.manifest import manifest_or_none

    manifest = manifest_or_none(artifact)
    precision = manifest.get("precision") if manifest else None
    return str(precision) if precision else None


def _torch_rows(sizes: list[tuple[int, int]], threads: int, weights: str) -> list[Candidate]:
    """PyTorch eager at each input size (the size in the label only when there are several)."""
    return [
        Candidate(
            "torch",
            threads=threads,
            weights=weights,
            input_size=(h, w),
            label="pytorch-eager" + (f" {h}x{w}" if len(sizes) > 1 else ""),
        )
        for h, w in sizes
    ]


def _skip(artifact: Path) -> str | None:
    """Why an artifact cannot be timed here (``None``: it can)."""
    if artifact.suffix == ".mlpackage" and sys.platform != "darwin":
        return COREML_OFF_MACOS
    return None


def run_bench(options: BenchOptions, *, progress: ProgressFn | None = None) -> BenchResult:
    """Measure every row of ``options``, interleaved, each model in its own process.

    Raises:
        See :func:`~sinet_deploy.benchmark.timing.run_benchmark`.
    """
    result = timing.run_benchmark(
        bench_candidates(options),
        runs=options.runs,
        warmup=options.warmup,
        rounds=options.rounds,
        progress=progress,
    )
    roofline.finish_ceilings(result.ceilings)
    roofline.add_roofline(result.rows, result.ceilings)
    return result
