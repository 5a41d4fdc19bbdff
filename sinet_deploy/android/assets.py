"""The model and manifest that the Android demo bundles (``sinet-deploy android-assets``).

The app (``android_demo/``) loads every ``sinet_<H>x<W>_<precision>.tflite`` in its assets that
has a manifest beside it, and reads input size, input type and output meaning from that
manifest. This module puts exactly such a pair into a folder: it runs the ``export`` pipeline
(TFLite only, parity-gated) in a hidden temporary folder inside the destination and moves the two
files into place only when the gate passed; an up-to-date pair already there is reused.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sinet_deploy.core.errors import ArtifactError, MissingDependencyError, UserInputError
from sinet_deploy.core.manifest import artifact_name, manifest_path, read_manifest, sha256_path

#: Where the app looks, relative to the project root.
APP_ASSETS = Path("android_demo/app/src/main/assets")
PRECISIONS = ("fp32", "fp16", "int8w", "int8")


@dataclass
class AndroidAssets:
    """The pair in the assets folder and how it got there."""

    model: Path
    manifest: Path
    reused: bool
    export: dict[str, Any] | None = None  # the export report when the model was made now

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": str(self.model),
            "manifest": str(self.manifest),
            "reused": self.reused,
            "export": self.export,
        }


def default_out(cwd: Path | None = None) -> Path:
    """The app's assets folder when run from the project root; a clear error elsewhere."""
    root = Path.cwd() if cwd is None else cwd
    if (root / APP_ASSETS.parent).is_dir():
        return root / APP_ASSETS
    raise UserInputError(
        f"no {APP_ASSETS.parent} here ({root}) to put the assets in",
        hint="run from the project root, or pass --out DIR",
    )


def reusable(
    model: Path, *, precision: str, checkpoint_sha256: str, input_size: tuple[int, int]
) -> str | None:
    """Why the existing ``model`` + manifest cannot be reused, or ``None`` when they can."""
    if not model.is_file():
        return "no model yet"
    try:
        manifest = read_manifest(model)
    except ArtifactError as exc:
        return str(exc)
    options = manifest.get("options") or {}
    source = manifest.get("source") or {}
    checks = [
        (manifest.get("format") == "tflite", "not a TFLite manifest"),
        (manifest.get("precision") == precision, f"precision is {manifest.get('precision')}"),
        (list(manifest.get("input_size") or []) == list(input_size), "another input size"),
        (options.get("io", "image") == "image", "not exported with --io image"),
        (
            any(o.get("name") == "foreground" for o in manifest.get("outputs") or []),
            "no foreground output",
        ),
        (source.get("checkpoint_sha256") == checkpoint_sha256, "made from other weights"),
        (manifest.get("artifact_sha256") == sha256_path(model), "model file changed since export"),
    ]
    for ok, why in checks:
        if not ok:
            return why
    return None


def prepare_android_assets(
    out: Path,
    *,
    weights: str | Path = "official",
    input_size: tuple[int, int] = (224, 224),
    precision: str = "fp32",
    calib: Path | None = None,
    force: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> AndroidAssets:
    """Export (or reuse) ``sinet_<H>x<W>_<precision>.tflite`` and its manifest into ``out``.

    Args:
        out: the app's assets folder (created if missing).
        weights: ``"official"``, ``"random"`` or a checkpoint path.
        input_size: model input ``(H, W)``, multiples of 32.
        precision: ``fp32``, ``fp16``, ``int8w`` (weight-only) or ``int8`` (full integer; needs
            calibration images unless the converter has a default set).
        calib: calibration images for ``int8``.
        force: export even when an up-to-date pair is already there.
        progress: ``progress(description, done, total)`` callback (the CLI draws a bar).

    Returns:
        An :class:`AndroidAssets`.

    Raises:
        UserInputError: bad precision, size, weights or folder (exit 2).
        MissingDependencyError: the TFLite export pipeline or its converters are not installed.
        ParityGateError: the exported model failed its gate; nothing is put in ``out`` (exit 3).
    """
    if precision not in PRECISIONS:
        raise UserInputError(
            f"unknown precision {precision!r}", hint=f"use one of {', '.join(PRECISIONS)}"
        )
    try:
        from sinet_deploy.convert.publish import (
            check_out_dir,
            export_artifacts,
            source_sha256,
        )
    except ImportError as exc:  # the export pipeline ships with the [tflite] work; say so
        raise MissingDependencyError(
            f"the TFLite export pipeline is not available ({exc})",
            hint="install sinet-deploy with its [tflite] extra, or use `sinet-deploy export`",
        ) from None
    from sinet_deploy.models.config import check_input_size

    h, w = check_input_size(*input_size)
    out = check_out_dir(Path(out))
    model = out / artifact_name(h, w, precision, "tflite")
    manifest = manifest_path(model)
    sha = source_sha256(weights)
    if (
        not force
        and reusable(model, precision=precision, checkpoint_sha256=sha, input_size=(h, w)) is None
    ):
        return AndroidAssets(model, manifest, reused=True)

    # Export into a hidden folder on the same file system, so the final move is a rename and a
    # failed gate or an interrupted conversion leaves nothing in the assets.
    work = Path(tempfile.mkdtemp(prefix=".android-assets-", dir=out))
    try:
        report = export_artifacts(
            weights,
            formats=("tflite",),
            precisions=(precision,),
            out_dir=work,
            input_size=(h, w),
            io="image",
            calib=calib,
            progress=progress,
        )
        report.raise_for_failures()
        result = report.results[0]
        if result.path is None or result.manifest is None:  # pragma: no cover - gate passed
            raise ArtifactError("the export reported success but wrote no model")
        # Model first, manifest last: the app only loads a model that has its manifest.
        manifest.unlink(missing_ok=True)
        os.replace(result.path, model)
        os.replace(result.manifest, manifest)
        summary = report.as_dict()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for entry in summary["results"]:  # the temporary paths are gone: point at the final ones
        entry["artifact"], entry["manifest"] = str(model), str(manifest)
    summary["out_dir"] = str(out)
    return AndroidAssets(model, manifest, reused=False, export=summary)


def adopt_android_model(out: Path, artifact: Path) -> AndroidAssets:
    """Put an already exported (and gated) TFLite artifact and its manifest into ``out``.

    The artifact must be a ``.tflite`` made by ``sinet-deploy export``: its manifest beside it
    says it passed its parity gate. Both are copied under hidden names in ``out`` first, then
    renamed model first and manifest last, so the app never sees a model without its manifest
    and an interrupted copy leaves the previous pair intact.

    Raises:
        ArtifactError: not a ``.tflite``, no manifest, or a manifest without a passed gate.
    """
    import json

    from sinet_deploy.convert.publish import check_out_dir

    artifact = Path(artifact)
    if artifact.suffix != ".tflite" or not artifact.is_file():
        raise ArtifactError(
            f"--model {artifact} is not a .tflite file",
            hint="pass a TFLite model made by `sinet-deploy export --formats tflite`",
        )
    src_manifest = manifest_path(artifact)
    try:
        meta = json.loads(src_manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ArtifactError(
            f"{artifact.name} has no readable manifest ({src_manifest.name}) beside it",
            hint="the app needs the manifest: re-export with `sinet-deploy export`",
        ) from None
    if not (isinstance(meta, dict) and (meta.get("parity") or {}).get("passed") is True):
        raise ArtifactError(
            f"{artifact.name}: its manifest does not record a passed parity gate",
            hint="use a model that `sinet-deploy export` published",
        )
    out = check_out_dir(Path(out))
    model, manifest = out / artifact.name, out / src_manifest.name
    tmp_model = out / f".{artifact.name}.{os.getpid()}.partial"
    tmp_manifest = out / f".{src_manifest.name}.{os.getpid()}.partial"
    try:
        shutil.copyfile(artifact, tmp_model)
        shutil.copyfile(src_manifest, tmp_manifest)
        os.replace(tmp_model, model)
        os.replace(tmp_manifest, manifest)
    finally:
        tmp_model.unlink(missing_ok=True)
        tmp_manifest.unlink(missing_ok=True)
    return AndroidAssets(model, manifest, reused=True)
