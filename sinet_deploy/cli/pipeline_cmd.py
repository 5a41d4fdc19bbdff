"""``sinet-deploy pipeline``: the main job — export every format and precision, check parity,
benchmark (with peers), print a one-screen summary and write a report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sinet_deploy.cli.output import err_console, print_json

if TYPE_CHECKING:  # pragma: no cover
    from sinet_deploy.pipeline.run import PipelineResult


def register(app: typer.Typer) -> None:
    app.command("pipeline")(pipeline)


def print_summary(result: PipelineResult, total_s: float) -> None:
    """The one-screen table: artifact, size, latency, FPS, IoU vs PyTorch, gate."""
    from rich.markup import escape

    from sinet_deploy.cli.tables import print_table, table_console
    from sinet_deploy.report.notes import busy_warning
    from sinet_deploy.report.summary import recommendation
    from sinet_deploy.report.summary import summary_rows as join_rows
    from sinet_deploy.report.tables import SUMMARY_HEADER, summary_cells

    bench = result.bench.to_dict() if result.bench else None
    rows = join_rows(bench, result.parity, exports=result.exports_json())
    # The report's summary columns, less "threads": the title names the one thread count.
    drop = SUMMARY_HEADER.index("threads")
    header = SUMMARY_HEADER[:drop] + SUMMARY_HEADER[drop + 1 :]
    cells = [c[:drop] + c[drop + 1 :] for c in map(summary_cells, rows)]
    styles = [{"reference": "dim", "peer": "yellow"}.get(r.get("role") or "", "") for r in rows]
    for row, c in zip(rows, cells, strict=True):
        if row.get("failure"):  # a failed export: say which kind in the gate column
            c[-1] = f"{row['failure']} FAIL"
    threads = rows[0]["threads"] if rows and rows[0].get("threads") else 1
    runs = result.bench.runs if result.bench else 0
    print_table(
        f"sinet-deploy pipeline — {threads} thread(s), {runs} runs interleaved",
        header,
        cells,
        "llrrrrrrrl",
        drop_order=(4, 1, 8),
        styles=styles,
    )
    out = table_console()
    for e in result.exports:
        if e.error:
            msg = e.error if len(e.error) <= 200 else e.error[:200] + "… (see the report)"
            out.print(f"[red]{e.name}[/]: {escape(msg)}")
    if warning := busy_warning(bench):
        out.print(f"[yellow]{escape(warning)}[/]")
    from sinet_deploy.core.machine import machine_info

    if rec := recommendation(rows, machine_info()):
        out.print(escape(rec))
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in result.stages_s.items())
    out.print(
        f"wall time {total_s:.1f} s ({stages}); artifacts in {escape(str(result.out_dir))}"
        f"/artifacts; report: {escape(str(result.report.get('html', '')))}"
    )


def _split(text: str | None) -> tuple[str, ...] | None:
    return tuple(t.strip() for t in text.split(",") if t.strip()) if text else None


def pipeline(
    out: Path = typer.Option(
        Path("sinet-deploy-run"),
        "--out",
        help="Folder for artifacts/ and report/ (created if missing).",
    ),
    peer: list[Path] = typer.Option(
        None,
        "--peer",
        help="A third-party .tflite/.onnx to "
        "benchmark beside SINet (repeatable), e.g. MediaPipe's "
        "selfie_segmentation.tflite.",
    ),
    runs: int = typer.Option(30, "--runs", help="Timed runs per benchmark row."),
    warmup: int = typer.Option(3, "--warmup", help="Untimed runs per row first."),
    threads: str = typer.Option("1", "--threads", help="Benchmark thread counts, e.g. 1,2."),
    images: Path = typer.Option(
        None,
        "--images",
        help="Portraits for the parity matrix (default: the built-in public-domain ones).",
    ),
    calib: Path = typer.Option(None, "--calib", help="Calibration images for int8 converters."),
    weights: str = typer.Option(
        "official", "--weights", help="'official', 'random' or a checkpoint path."
    ),
    input_size: str = typer.Option("224x224", "--input-size", help="HxW, multiples of 32."),
    formats: str = typer.Option(
        None, "--formats", help="Only these formats, e.g. onnx,tflite (default: all registered)."
    ),
    precisions: str = typer.Option(
        None, "--precisions", help="Only these precisions, e.g. fp32,fp16 (default: all)."
    ),
    coreml_images: int = typer.Option(
        8,
        "--coreml-images",
        help="Images for CoreML parity, which runs through a slow reference evaluator off "
        "macOS (~1 s per image); 0 = all.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Export every format and precision → parity → bench (with peers) → one-screen summary."""
    from sinet_deploy.cli.bench_cmd import command_line, parse_threads
    from sinet_deploy.cli.common import ensure_out_dir
    from sinet_deploy.cli.progress import progress_bar
    from sinet_deploy.core.paths import check_model_path
    from sinet_deploy.models.config import parse_input_size
    from sinet_deploy.pipeline.run import PipelineOptions, run_pipeline

    t_start = time.perf_counter()
    # Arguments are read left to right: the first bad option is the one reported.
    options = PipelineOptions(
        out_dir=out,
        peers=tuple(check_model_path(p, "peer model") for p in peer or []),
        threads=tuple(parse_threads(threads)),
        input_size=parse_input_size(input_size),
        images=_image_folder(images),
        calib=_calib_folder(calib),
        weights=weights,
        runs=runs,
        warmup=warmup,
        coreml_images=coreml_images,
        formats=_split(formats),
        precisions=_split(precisions),
        command=command_line(),
    )
    ensure_out_dir(out)
    with progress_bar() as progress:
        result = run_pipeline(options, progress=progress)
    total = time.perf_counter() - t_start
    if as_json:
        print_json(result_json(result, total))
    else:
        print_summary(result, total)
    err_console.print(f"report: {result.report.get('html')}", soft_wrap=True)
    failure = result.failure()
    if failure is not None:
        raise failure


def _image_folder(images: Path | None) -> Path | None:
    from sinet_deploy.core.errors import ImageError

    if images is not None and not images.is_dir():
        raise ImageError(f"--images {images} is not a folder", hint="pass a folder of portraits")
    return images


def _calib_folder(calib: Path | None) -> Path | None:
    from sinet_deploy.core.errors import UserInputError

    if calib is not None and not calib.is_dir():
        raise UserInputError(
            f"--calib {calib} is not a folder", hint="pass a folder of calibration images"
        )
    return calib


def result_json(result: PipelineResult, total_s: float) -> dict[str, Any]:
    """What ``--json`` prints: the summary, the bench and parity without per-image data."""
    from sinet_deploy.report.summary import summary_rows

    bench = result.bench.to_dict(with_latencies=False) if result.bench else None
    parity = result.parity and {
        **result.parity,
        "results": [
            {k: v for k, v in r.items() if k != "per_image"} for r in result.parity["results"]
        ],
    }
    return {
        "wall_s": round(total_s, 2),
        **result.summary_info(),
        "summary": summary_rows(bench, parity, exports=result.exports_json()),
        "bench": bench,
        "parity": parity,
        "report": {k: str(v) for k, v in result.report.items()},
    }
