"""``sinet-deploy diagnose``: layer-wise int8 divergence (which block breaks int8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sinet_deploy.cli.output import console, print_json


def register(app: typer.Typer) -> None:
    """Add ``diagnose`` to ``app``."""
    app.command("diagnose")(diagnose)


def diagnose(
    int8: Path = typer.Argument(..., help="Full-integer .tflite or QDQ .onnx model."),
    images: Path = typer.Option(
        None, "--images", help="Folder of portraits (default: the packaged ones)."
    ),
    fp32: Path = typer.Option(
        None,
        "--fp32",
        help="Float .tflite to match by tensor name (default: the int8 model's dequantized twin).",
    ),
    max_images: int = typer.Option(8, "--max-images", help="Use at most this many images."),
    top: int = typer.Option(10, "--top", help="How many worst ops to list."),
    show_all: bool = typer.Option(False, "--all", help="List every matched tensor."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Per-tensor SQNR of an int8 model against its float twin, on real images.

    The SQNR is cumulative; the drop is what one op lost relative to its inputs, so the most
    negative drops point at the layers int8 handles worst. Exit 2 on a bad path or image.
    """
    from sinet_deploy.core.errors import UserInputError
    from sinet_deploy.models.preprocessing import load_input
    from sinet_deploy.runtimes import load_session
    from sinet_deploy.verify.layerwise import layerwise
    from sinet_deploy.verify.parity_paths import resolve_images

    if max_images < 1 or top < 1:
        raise UserInputError("--max-images and --top must be ≥ 1")
    session = load_session(int8)  # validates the file and tells us the input size
    h, w = session.input_size
    del session
    paths, source = resolve_images(images)
    batch = [load_input(p, h, w) for p in paths[:max_images]]
    report = layerwise(int8, batch, fp32)
    data = report.as_dict()
    data["images_source"] = source
    if as_json:
        if not show_all:
            data.pop("tensors")
        print_json(data)
        return
    _print(data, top, show_all)


def _fmt(v: Any) -> str:
    return "inf" if v is None else f"{v:.1f}"


def _print(data: dict[str, Any], top: int, show_all: bool) -> None:
    from rich.table import Table

    console.print(
        f"[bold]{data['int8_model']}[/] vs {data['reference']} — "
        f"{data['num_images']} image(s) from {data['images_source']}, "
        f"{data['matched_tensors']} tensors matched, runtime {data['runtime']}"
    )
    console.print(f"output SQNR: {_fmt(data['output_sqnr_db'])} dB")
    table = Table(title=f"ops that lose the most SQNR (top {top})", title_justify="left", box=None)
    for col in ("#", "op", "block", "shape", "SQNR dB", "drop dB", "tensor"):
        table.add_column(col, no_wrap=col != "tensor")
    for t in data["worst_drops"][:top]:
        table.add_row(
            str(t["index"]),
            t["op"],
            t["block"] or "-",
            "x".join(map(str, t["shape"])),
            _fmt(t["sqnr_db"]),
            _fmt(t["drop_db"]),
            t["name"][:70],
        )
    console.print(table)
    if data["blocks"]:
        blocks = Table(title="per block", title_justify="left", box=None)
        for col in ("block", "tensors", "SQNR at end dB", "worst drop dB"):
            blocks.add_column(col)
        for b in data["blocks"]:
            blocks.add_row(
                b["block"], str(b["tensors"]), _fmt(b.get("sqnr_out_db")), _fmt(b["worst_drop_db"])
            )
        console.print(blocks)
    if show_all:
        every = Table(title="every matched tensor", title_justify="left", box=None)
        for col in ("#", "op", "shape", "SQNR dB", "drop dB", "tensor"):
            every.add_column(col)
        for t in data["tensors"]:
            every.add_row(
                str(t["index"]),
                t["op"],
                "x".join(map(str, t["shape"])),
                _fmt(t["sqnr_db"]),
                _fmt(t["drop_db"]),
                t["name"][:70],
            )
        console.print(every)
