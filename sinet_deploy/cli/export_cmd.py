"""``sinet-deploy export``: ONNX / TFLite (/ CoreML) artifacts with manifests, parity-gated."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sinet_deploy.cli.output import console, err_console, print_json


def register(app: typer.Typer) -> None:
    """Add ``export`` to ``app``."""
    app.command("export")(export)


def _split(text: str) -> list[str]:
    return [t.strip().lower() for t in text.split(",") if t.strip()]


def export(
    weights: str = typer.Option("official", help="'official', 'random' or a checkpoint path."),
    formats: str = typer.Option(
        "onnx,tflite", "--formats", help="Comma-separated: onnx, tflite, coreml, executorch."
    ),
    precisions: str = typer.Option(
        "fp32",
        "--precisions",
        help="Comma-separated: fp32, fp16, int8w (weight-only int8), int8 (full integer).",
    ),
    calib: Path = typer.Option(None, "--calib", help="Calibration images (full-integer int8)."),
    input_size: str = typer.Option("224x224", "--input-size", help="HxW, multiples of 32."),
    io: str = typer.Option(
        "image", "--io", help="image: uint8 RGB in, probability out; raw: checkpoint contract."
    ),
    opset: int = typer.Option(None, "--opset", help="ONNX opset (default 17)."),
    coreml_target: str = typer.Option(
        None,
        "--coreml-target",
        help="CoreML minimum deployment target: iOS16 (default), iOS17, iOS18.",
    ),
    out: Path = typer.Option(Path("."), "--out", help="Output folder (created if missing)."),
    images: Path = typer.Option(
        None, "--images", help="Extra portraits for the parity gate (a folder)."
    ),
    keep_failed: bool = typer.Option(
        False, "--keep-failed", help="Keep a model that fails its gate as *.failed.<ext>."
    ),
    config: list[str] = typer.Option(None, "--config", help="SINet options, e.g. classes=1."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Convert the weights, check every artifact against PyTorch, write artifacts + manifests.

    Exit codes: 0 all artifacts passed; 2 bad input; 3 a parity gate failed (the failed models
    are not published; a <stem>.failed.json report holds the numbers).
    """
    from sinet_deploy.cli.common import parse_config
    from sinet_deploy.cli.progress import progress_bar
    from sinet_deploy.convert.publish import export_artifacts
    from sinet_deploy.core.errors import UserInputError
    from sinet_deploy.models.config import parse_input_size

    size = parse_input_size(input_size)
    if io not in ("image", "raw"):
        raise UserInputError(f"unknown --io {io!r}", hint="use image or raw")
    with progress_bar() as bar:
        report = export_artifacts(
            weights,
            formats=_split(formats),
            precisions=_split(precisions),
            out_dir=out,
            input_size=size,
            io=io,
            opset=opset,
            coreml_target=coreml_target,
            calib=calib,
            images=images,
            keep_failed=keep_failed,
            progress=bar,
            **parse_config(config),
        )
    if as_json:
        print_json(report.as_dict())
    else:
        _table(report.as_dict())
    _print_warnings(report.as_dict())
    report.raise_for_failures()


def _print_warnings(data: dict[str, Any]) -> None:
    """Converter warnings recorded in the manifests (e.g. int8 without --calib), on stderr."""
    import json

    from sinet_deploy.cli.output import warn

    seen: set[str] = set()
    for row in data["results"]:
        path = row["manifest"] or row["failed_report"]
        try:
            manifest = json.loads(Path(path).read_text()) if path else {}
        except (OSError, ValueError):
            continue
        calibration = manifest.get("options", {}).get("calibration") or {}
        for message in calibration.get("warnings", []):
            if message not in seen:
                seen.add(message)
                warn(message)


def _fmt(value: Any, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _table(data: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"export → {data['out_dir']}", title_justify="left", box=None)
    table.add_column("artifact", no_wrap=True)
    for col in ("gate", "max|Δp|", "mIoU", "minIoU", "agree", "SQNR", "s"):
        table.add_column(col, justify="right", no_wrap=True)
    for row in data["results"]:
        p = row["parity"]
        path = Path(row["artifact"] or row["failed_report"])
        gate = "[green]pass[/]" if row["passed"] else "[bold red]FAIL[/]"
        table.add_row(
            f"{path.parent.name}/{path.name}",
            gate,
            _fmt(p["max_abs_prob_diff"], ".1e"),
            _fmt(p["mean_iou"], ".4f"),
            _fmt(p["min_iou"], ".4f"),
            _fmt(p["pixel_agreement"], ".4f"),
            _fmt(p["sqnr_db"], ".0f"),
            _fmt(row["seconds"], ".0f"),
        )
    console.print(table)
    if data["passed"]:
        console.print(
            "manifest <stem>.json beside each artifact; parity vs PyTorch fp32 on the packaged "
            "portraits + random inputs (mIoU/minIoU/agree: portraits; SQNR in dB)"
        )
    else:
        err_console.print("[bold red]parity gate failed[/]: failed models were not published")
