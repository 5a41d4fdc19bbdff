"""``sinet-deploy android-assets`` (the model + manifest the Android demo bundles) and
``sinet-deploy android-golden`` (the golden data its JVM-tested core is checked against)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer

from sinet_deploy.cli.output import console, print_json


def register(app: typer.Typer) -> None:
    """Add ``android-assets`` and ``android-golden`` to ``app``."""
    app.command("android-assets")(android_assets)
    app.command("android-golden")(android_golden)


def android_assets(
    out: Path = typer.Option(
        None, "--out", help="Assets folder (default: android_demo/app/src/main/assets)."
    ),
    weights: str = typer.Option("official", help="'official', 'random' or a checkpoint path."),
    input_size: str = typer.Option("224x224", "--input-size", help="HxW, multiples of 32."),
    precision: str = typer.Option(
        "fp32", "--precision", help="fp32, fp16, int8w (weight-only) or int8 (full integer)."
    ),
    calib: Path = typer.Option(None, "--calib", help="Calibration images (int8)."),
    force: bool = typer.Option(False, "--force", help="Export even if an up-to-date pair exists."),
    model: Path = typer.Option(
        None,
        "--model",
        help="Use this exported .tflite (and the manifest beside it) instead of exporting.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Export (or reuse) the TFLite model and its manifest for the Android demo app.

    The model is parity-gated like `export`; a failed gate puts nothing in the folder (exit 3).
    Exit codes: 0 ok; 2 bad input or missing converter; 3 parity gate failed.
    """
    from sinet_deploy.android.assets import (
        adopt_android_model,
        default_out,
        prepare_android_assets,
    )
    from sinet_deploy.cli.progress import progress_bar
    from sinet_deploy.models.config import parse_input_size

    size = parse_input_size(input_size)
    dest = out if out is not None else default_out()
    if model is not None:
        _show(adopt_android_model(dest, model), as_json)
        return
    with progress_bar() as bar:
        assets = prepare_android_assets(
            dest,
            weights=weights,
            input_size=size,
            precision=precision,
            calib=calib,
            force=force,
            progress=bar,
        )
    _show(assets, as_json)


def _show(assets: Any, as_json: bool) -> None:
    if as_json:
        print_json(assets.as_dict())
        return
    state = "up to date, reused" if assets.reused else "exported, parity gate passed"
    console.print(f"model     {assets.model}  ({state})")
    console.print(f"manifest  {assets.manifest}")
    # No Gradle wrapper jar is committed: the first build makes one (android_demo/README.md).
    console.print(
        "next: open android_demo/ in Android Studio and press Run, or: cd android_demo && "
        "gradle wrapper --gradle-version 8.9 && ./gradlew installDebug"
    )


def android_golden(
    out: Path = typer.Argument(..., help="Folder to write (created)."),
    profile: str = typer.Option(
        "full", "--profile", help="full (real sizes) or compact (small, the committed set)."
    ),
    shared: Path = typer.Option(None, "--shared", help="The ../shared folder."),
    weights: str = typer.Option(
        None,
        "--weights",
        help="Checkpoint for the reference output (default: the official one in --shared); "
        "'none' for a synthetic probability map.",
    ),
    artifact: list[Path] = typer.Option(
        None,
        "--artifact",
        help="A .tflite artifact (manifest beside it) to run with LiteRT; repeatable.",
    ),
) -> None:
    """Golden data for the Android demo's JVM tests (android_demo/jvm-test.sh).

    Writes OUT/cases.json and the arrays and manifests it names; prints a one-line JSON summary.

    Exit codes: 0 ok; 2 unknown profile, or an artifact missing or without its manifest.
    """
    from sinet_deploy.android.golden import generate, index_summary

    index = generate(
        out,
        profile=profile,
        shared=shared,
        weights=None if weights in (None, "none") else Path(weights),
        reference=weights != "none",
        artifacts=tuple(artifact or ()),
    )
    # One line, so that a caller can prefix or grep it (jvm-test.sh does).
    sys.stdout.write(json.dumps(index_summary(index)) + "\n")
