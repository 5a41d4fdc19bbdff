"""``sinet-deploy bench``: desktop latency of artifacts and peers, interleaved, side by side."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sinet_deploy.cli.output import err_console, print_json
from sinet_deploy.core.errors import UserInputError
from sinet_deploy.core.paths import check_model_path

if TYPE_CHECKING:  # pragma: no cover
    from sinet_deploy.benchmark.timing import BenchResult


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def parse_threads(text: str) -> list[int]:
    """``"1,2"`` → ``[1, 2]``; one-line error for anything that is not positive integers."""
    try:
        values = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        values = []
    if not values:
        raise UserInputError(
            f"cannot read --threads {text!r}",
            hint="give positive integers separated by commas, e.g. 1,2",
        )
    from sinet_deploy.core.machine import check_threads

    return sorted(dict.fromkeys(check_threads(values)))


def print_bench_table(bench: dict[str, Any], machine: dict[str, Any] | None = None) -> None:
    from rich.markup import escape

    from sinet_deploy.benchmark.timing import RATIO_COLUMNS
    from sinet_deploy.cli.tables import print_table, table_console
    from sinet_deploy.report.notes import busy_warning, ceiling_lines
    from sinet_deploy.report.tables import BENCH_ALIGN, BENCH_HEADER, bench_cells

    rows = [r for r in bench["results"] if not r.get("skipped")]
    cpu = f" on {machine['cpu_model']}" if machine and machine.get("cpu_model") else ""
    print_table(
        f"Latency{cpu} (interleaved, each model in its own process)",
        BENCH_HEADER,
        [bench_cells(r) for r in rows],
        BENCH_ALIGN,
        # Dropped first on a narrow terminal: p99, the p10–p90 spread, runtime, threads, the
        # second ratio, the ceiling share. Size, init time and peak memory are what a mobile
        # engineer reads first: they are never dropped.
        drop_order=(8, 7, 1, 2, 11, 13),
        styles=[{"reference": "dim", "peer": "yellow"}.get(r.get("role", ""), "") for r in rows],
    )
    out = table_console()
    if warning := busy_warning(bench):
        out.print(f"[yellow]{escape(warning)}[/]")
    for r in bench["results"]:
        if r.get("skipped"):
            out.print(f"[dim]skipped {escape(r['name'])}: {escape(r['skipped'])}[/]")
    for line in ceiling_lines(bench):
        out.print(f"[dim]{escape(line)}[/]")
    out.print(
        f"[dim]× PyTorch = {escape(RATIO_COLUMNS['speedup_vs_torch'])}; vs fastest SINet = "
        f"{escape(RATIO_COLUMNS['time_vs_fastest_sinet'])}; paired by round = "
        f"{escape(RATIO_COLUMNS['paired by round'])}. Compare ratios, not absolute times, "
        "across runs.[/]"
    )


def bench(
    artifacts: list[Path] = typer.Argument(None, help="Artifacts (.tflite/.onnx) to time."),
    peer: list[Path] = typer.Option(
        None, "--peer", help="A third-party .tflite/.onnx to time side by side (repeatable)."
    ),
    threads: str = typer.Option("1", "--threads", help="Thread counts, e.g. 1,2."),
    runs: int = typer.Option(50, "--runs", help="Timed runs per row."),
    warmup: int = typer.Option(5, "--warmup", help="Untimed runs per row first."),
    rounds: int = typer.Option(
        None, "--rounds", help="Interleaved rounds (default: runs, one iteration each)."
    ),
    weights: str = typer.Option("official", "--weights", help="Weights of the PyTorch row."),
    no_torch: bool = typer.Option(False, "--no-torch", help="Skip the PyTorch eager row."),
    roofline: bool = typer.Option(
        True,
        "--roofline/--no-roofline",
        help="Time each runtime's dense-convolution ceiling for the GMAC/s and of-ceiling columns.",
    ),
    cuda: bool = typer.Option(
        None,
        "--cuda/--no-cuda",
        help="List the CUDA rows (default: only when an NVIDIA GPU is present).",
    ),
    litert_fp16: bool = typer.Option(
        False,
        "--litert-fp16",
        help="Also time each fp32/fp16 .tflite with XNNPACK's force-fp16 flag (fp16 arithmetic).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    report: Path = typer.Option(
        None, "--report", help="Write report.html, report.md and results.json into this folder."
    ),
) -> None:
    """Latency of every artifact in its runtime, PyTorch eager as the reference, peers beside."""
    from sinet_deploy.benchmark.suite import BenchOptions, run_bench
    from sinet_deploy.cli.common import ensure_out_dir
    from sinet_deploy.cli.progress import progress_bar
    from sinet_deploy.core.machine import machine_info

    paths = [check_model_path(a) for a in artifacts or []]
    peers = [check_model_path(p, "peer model") for p in peer or []]
    if not paths and not peers:
        raise UserInputError("nothing to benchmark", hint="pass artifact paths and/or --peer MODEL")
    # Arguments are read left to right: the first bad option is the one reported.
    options = BenchOptions(
        artifacts=tuple(paths),
        peers=tuple(peers),
        threads=tuple(parse_threads(threads)),
        runs=_runs(runs),
        warmup=warmup,
        rounds=rounds,
        weights=weights,
        torch_row=not no_torch,
        cuda=cuda,
        roofline=roofline,
        litert_fp16=litert_fp16,
    )
    if report is not None:
        ensure_out_dir(report, option="--report")
    with progress_bar() as progress:
        result = run_bench(options, progress=progress)
    _emit(result, machine_info(), report, as_json)


def _runs(runs: int) -> int:
    # Checked before any folder is made or worker started (the benchmark checks it again).
    if runs < 1:
        raise UserInputError(f"--runs must be at least 1, got {runs}")
    return runs


def _emit(result: BenchResult, machine: dict[str, Any], report: Path | None, as_json: bool) -> None:
    """Write the report (when asked), print the table or the JSON, name the report."""
    from sinet_deploy.report.write import write_report

    data = result.to_dict(with_latencies=True)
    paths = (
        write_report(report, machine=machine, bench=data, command=command_line())
        if report is not None
        else None
    )
    if as_json:
        print_json({"machine": machine, **result.to_dict(with_latencies=False)})
    else:
        print_bench_table(data, machine)
    if paths:
        err_console.print(f"report: {paths['html']}", soft_wrap=True)


def command_line() -> str | None:
    """The command as typed, for the report (``None`` when not run from the console script,
    e.g. in-process from tests, where ``sys.argv`` is someone else's)."""
    if Path(sys.argv[0]).name not in ("sinet-deploy", "__main__.py"):
        return None
    return "sinet-deploy " + " ".join(shlex.quote(a) for a in sys.argv[1:])
