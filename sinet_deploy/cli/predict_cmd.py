"""``sinet-deploy predict``: masks and overlays for images, from PyTorch or any artifact."""

from __future__ import annotations

from pathlib import Path

import typer

from sinet_deploy.cli.output import console, print_json


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)


def predict(
    images: list[str] = typer.Argument(
        ..., help="Image files, folders (every image directly in them) or quoted globs."
    ),
    model: Path = typer.Option(
        None,
        "--model",
        help="An exported artifact (.onnx, .tflite, .mlpackage, .pte) instead of PyTorch.",
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
    """Write <stem>_mask.png (0/255, image resolution) and <stem>_overlay.jpg per image.

    Unreadable files are skipped with a warning; the command then exits 2 at the end.
    """
    from sinet_deploy.cli.common import ensure_out_dir, parse_config
    from sinet_deploy.cli.output import warn
    from sinet_deploy.core.errors import ImageError
    from sinet_deploy.models.config import parse_input_size
    from sinet_deploy.predictor import expand_inputs, make_predictor, output_stems

    size = parse_input_size(input_size) if input_size is not None else None
    paths = expand_inputs(images)
    stems = output_stems(paths)
    results: list[dict[str, object]] = []
    skipped: list[str] = []
    predictor = make_predictor(
        model=model, weights=weights, input_size=size, config=parse_config(config)
    )
    # One image at a time, each decoded within the pixel budget: a folder of thousands never
    # sits in memory at once. A single input that cannot be read is the error itself (one
    # line); among several, it is skipped with a warning and the run exits 2 at the end.
    for path, stem in zip(paths, stems, strict=True):
        try:
            r = predictor.predict_one(path, out, stem, before_write=lambda: ensure_out_dir(out))
        except ImageError as exc:
            if len(paths) == 1:
                raise
            warn(f"skipped {exc.one_line()}")
            skipped.append(str(path))
            continue
        results.append(r)
        if not as_json:
            console.print(
                f"{r['image']} → {r['mask']}, {r['overlay']} "
                f"(foreground {r['foreground_fraction']:.1%}, {predictor.runtime})"
            )
    if as_json:
        print_json({"runtime": predictor.runtime, "results": results, "skipped": skipped})
    if skipped:
        raise ImageError(
            f"{len(skipped)} of {len(paths)} image(s) could not be read and were skipped",
            hint="the warnings above name each file and why",
        )
