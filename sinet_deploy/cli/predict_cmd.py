"""``sinet-deploy predict``: masks and overlays for images, from PyTorch or any artifact."""

from __future__ import annotations

from pathlib import Path

import typer

from sinet_deploy.cli.output import console, print_json


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)


def predict(
    images: list[Path] = typer.Argument(..., help="Image files (JPEG, PNG, …)."),
    model: Path = typer.Option(
        None,
        "--model",
        help="An exported artifact (.onnx, .tflite, .mlpackage) instead of PyTorch.",
    ),
    weights: str = typer.Option(
        None, help="'official' (default), 'random' or a checkpoint path; not with --model."
    ),
    input_size: str = typer.Option(
        None, "--input-size", help="HxW, multiples of 32 (default 224x224); not with --model."
    ),
    config: list[str] = typer.Option(None, "--config", help="SINet options, e.g. classes=1."),
    out: Path = typer.Option(
        Path("."), "--out", help="Folder for <stem>_mask.png and <stem>_overlay.jpg."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Write <stem>_mask.png (0/255, image resolution) and <stem>_overlay.jpg per image."""
    from sinet_deploy.cli.common import ensure_out_dir, parse_config
    from sinet_deploy.models.config import parse_input_size
    from sinet_deploy.models.predict import make_predictor

    size = parse_input_size(input_size) if input_size is not None else None
    predictor = make_predictor(
        model=model, weights=weights, input_size=size, config=parse_config(config)
    )
    # Decodes every image (within the pixel budget) and runs the model on all of them before
    # writing anything: a bad file or a non-finite output leaves --out untouched.
    results = predictor.predict_files(images, out, before_write=lambda: ensure_out_dir(out))
    if as_json:
        print_json({"runtime": predictor.runtime, "results": results})
        return
    for r in results:
        console.print(
            f"{r['image']} → {r['mask']}, {r['overlay']} "
            f"(foreground {r['foreground_fraction']:.1%}, {predictor.runtime})"
        )
