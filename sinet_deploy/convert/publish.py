"""``sinet-deploy export``: convert, gate, and only then publish each artifact.

For every requested (format, precision) :func:`export_artifacts`
1. calls the registered converter (:mod:`.registry`), which writes the model to a temporary
   name in ``<out>/<format>/`` (``.sinet_<H>x<W>_<precision>.partial-<pid>-<random>.<ext>``:
   hidden, obviously unfinished, never shared by two processes). Each format has its own
   folder because ONNX and TFLite artifacts of the same size and precision share the stem,
   hence the manifest name ``<stem>.json``;
2. opens it in its own runtime and runs the parity gate against the PyTorch fp32 reference
   (:mod:`sinet_deploy.verify.gate`, tolerances from the one registry);
3. passed: renames it to ``sinet_<H>x<W>_<precision>.<ext>`` (atomically, over any older one)
   and writes the manifest beside it, with the sha256 of the model it gated (the manifest is
   written last, so a manifest always describes a finished artifact);
   failed: deletes the model (``keep_failed=True`` keeps it as ``<stem>.failed.<ext>``) and
   writes ``<stem>.failed.json`` with the gate's numbers — nothing that looks like a good
   artifact. After all artifacts, :meth:`ExportReport.raise_for_failures` raises
   :class:`~sinet_deploy.core.errors.ParityGateError` (exit 3).

A run holds an ``flock`` on ``<out>/<format>/.<artifact>.lock`` for every artifact it writes,
from before the first conversion to the end: a second run into the same folder that wants one
of them stops at once with :class:`~sinet_deploy.core.errors.UserInputError` (exit 2) instead
of racing it. Work folders live under ``<tmp>/sinet_deploy-<uid>/`` named with the pid, so a
killed run's leftovers are removed by the next one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sinet_deploy.convert.registry import (
    IO_MODES,
    Artifact,
    ConverterEntry,
    ExportContext,
    Target,
    plan,
    registered,
)
from sinet_deploy.core.errors import ArtifactError, ParityGateError, UserInputError
from sinet_deploy.core.fileio import (
    Busy,
    exclusive,
    publish,
    remove_path,
    remove_stale,
    unique_name,
    work_dir,
)
from sinet_deploy.core.manifest import (
    FORMAT_SUFFIX,
    artifact_name,
    manifest_path,
    sha256_path,
    write_json_atomic,
)

if TYPE_CHECKING:
    from sinet_deploy.runtimes.base import Session
    from sinet_deploy.verify.gate import GateResult


@dataclass(frozen=True)
class ExportResult:
    """One artifact's outcome: published (``path``) or failed (``failed_report``)."""

    format: str
    precision: str
    path: Path | None
    manifest: Path | None
    gate: GateResult
    seconds: float
    failed_report: Path | None = None

    @property
    def passed(self) -> bool:
        return self.gate.passed

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "precision": self.precision,
            "artifact": str(self.path) if self.path else None,
            "manifest": str(self.manifest) if self.manifest else None,
            "failed_report": str(self.failed_report) if self.failed_report else None,
            "passed": self.passed,
            "seconds": round(self.seconds, 2),
            "parity": self.gate.summary(),
        }


@dataclass(frozen=True)
class ExportReport:
    """All results of one ``export`` call."""

    results: list[ExportResult]
    out_dir: Path

    def failed(self) -> list[ExportResult]:
        return [r for r in self.results if not r.passed]

    def raise_for_failures(self) -> None:
        """:class:`ParityGateError` (exit 3) naming each failed artifact with its numbers."""
        bad = self.failed()
        if bad:
            raise ParityGateError(
                " | ".join(r.gate.message() for r in bad),
                metrics={f"{r.format}/{r.precision}": r.gate.as_dict() for r in bad},
                hint="the failed models were not published; see the .failed.json reports",
            )

    def as_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "results": [r.as_dict() for r in self.results],
            "passed": not self.failed(),
        }


def check_out_dir(out: Path) -> Path:
    """Create ``out`` if needed; :class:`UserInputError` when it is a file or not writable."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UserInputError(
            f"--out {out} is a file, not a directory",
            hint="pass a directory (it is created if missing)",
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(
            f"cannot create output directory {out} ({exc.strerror})", hint="choose a writable --out"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UserInputError(
            f"output directory {out} is not writable", hint="choose a writable --out"
        ) from None
    try:  # access() can lie (root, read-only mounts): really try a file
        with tempfile.NamedTemporaryFile(dir=out, prefix=".sinet_write_test_"):
            pass
    except OSError as exc:
        raise UserInputError(
            f"output directory {out} is not writable ({exc.strerror})",
            hint="choose a writable --out",
        ) from None
    return out


def source_sha256(weights: str | Path) -> str:
    if str(weights) == "random":
        return "random (seeded, not a checkpoint)"
    from sinet_deploy.models.weights import checkpoint_sha256

    return checkpoint_sha256(weights)


def export_artifacts(
    weights: str | Path = "official",
    *,
    formats: Iterable[str] = ("onnx", "tflite"),
    precisions: Iterable[str] = ("fp32",),
    out_dir: Path = Path("."),
    input_size: tuple[int, int] = (224, 224),
    io: str = "image",
    opset: int | None = None,
    calib: Path | None = None,
    images: Path | None = None,
    keep_failed: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    coreml_target: str | None = None,
    **config: Any,
) -> ExportReport:
    """Convert, gate and publish every requested (format, precision).

    Args:
        weights: ``"official"``, ``"random"`` or a checkpoint path.
        formats / precisions: the cross product is exported (each pair must be registered).
        out_dir: destination folder (created if missing).
        input_size: ``(H, W)``, multiples of 32.
        io: ``"image"`` (default contract) or ``"raw"`` (checkpoint contract).
        opset: ONNX opset (default 17).
        calib: calibration images folder, passed to converters that quantize activations.
        images: extra portraits for the parity gate (the packaged ones are always used).
        keep_failed: keep a model that failed its gate as ``<stem>.failed.<ext>``.
        progress: ``progress(description, done, total)`` before each step (the CLI shows a
            bar; the library never prints).
        coreml_target: minimum deployment target of CoreML programs (``iOS16`` default,
            ``iOS17``, ``iOS18``); validated by the CoreML converter.
        **config: SINet config options.

    Returns:
        An :class:`ExportReport`; call :meth:`ExportReport.raise_for_failures` to turn gate
        failures into :class:`ParityGateError`.
    """
    from sinet_deploy.convert.torch_to_onnx import DEFAULT_OPSET
    from sinet_deploy.runtimes import torch_reference
    from sinet_deploy.verify.gate import gate_images

    opset = DEFAULT_OPSET if opset is None else opset
    size, pairs = _check_request(formats, precisions, input_size, io, opset, coreml_target)
    out = check_out_dir(out_dir)
    gate_paths = gate_images(images)
    if calib is not None and not Path(calib).is_dir():
        raise UserInputError(
            f"--calib {calib} is not a directory", hint="pass a folder of calibration images"
        )
    run = _Run(out, keep_failed, _Steps(progress, 1 + 2 * len(pairs)))
    run.say("loading weights")
    run.reference = torch_reference(weights, size, **config)  # also validates the checkpoint
    run.sha = source_sha256(weights)
    run.gate_paths = gate_paths
    with contextlib.ExitStack() as held, work_dir("sinet_export_") as tmp:
        # Every artifact this run writes is locked for the whole run, in one sorted order,
        # before any work: two runs sharing --out never interleave on one artifact, and the
        # one that loses says so at once instead of after minutes of converting.
        for fmt, precision in sorted(pairs):
            held.enter_context(_artifact_lock(out / fmt / artifact_name(*size, precision, fmt)))
        ctx = ExportContext(weights, size, io, opset, Path(calib) if calib else None, tmp, config)
        ctx.cache["source_sha256"] = run.sha
        if coreml_target is not None:
            ctx.cache["coreml:options"] = {"deployment_target": coreml_target}
        ctx.cache["tflite:precisions"] = tuple(p for f, p in pairs if f == "tflite")
        entries = registered()
        results = [_export_one(entries[pair], ctx, run) for pair in pairs]
    return ExportReport(results, out)


def _check_request(
    formats: Iterable[str],
    precisions: Iterable[str],
    input_size: tuple[int, int],
    io: str,
    opset: int,
    coreml_target: str | None,
) -> tuple[tuple[int, int], list[tuple[str, str]]]:
    """Every option checked before any work: the size and the (format, precision) pairs."""
    from sinet_deploy.convert.torch_to_onnx import OnnxExportConfig
    from sinet_deploy.models.config import check_input_size

    if io not in IO_MODES:
        raise UserInputError(f"unknown --io {io!r}", hint="use image or raw")
    h, w = check_input_size(*input_size)
    OnnxExportConfig((1, 3, h, w), opset=opset)  # validates the opset
    pairs = plan(formats, precisions)
    if coreml_target is not None:
        from sinet_deploy.convert.torch_to_coreml import DEPLOYMENT_TARGETS

        if coreml_target not in DEPLOYMENT_TARGETS:
            raise UserInputError(
                f"unknown --coreml-target {coreml_target!r}",
                hint=f"use one of {', '.join(DEPLOYMENT_TARGETS)}",
            )
    return (h, w), pairs


@dataclass
class _Steps:
    """Progress as ``progress(description, done, total)`` before each step."""

    progress: Callable[[str, int, int], None] | None
    total: int
    done: int = 0

    def __call__(self, message: str) -> None:
        if self.progress is not None:
            self.progress(message, self.done, self.total)
        self.done += 1


@dataclass
class _Run:
    """What every artifact of one export shares: where, the reference, the gate's images."""

    out: Path
    keep_failed: bool
    say: _Steps
    reference: Session | None = None
    sha: str = ""
    gate_paths: list[Path] | None = None


def _export_one(entry: ConverterEntry, ctx: ExportContext, run: _Run) -> ExportResult:
    h, w = ctx.input_size
    fmt, precision = entry.fmt, entry.precision
    # One folder per format: ONNX and TFLite of the same size and precision share the stem
    # ``sinet_<H>x<W>_<precision>``, and so would their ``<stem>.json`` manifests.
    final = run.out / fmt / artifact_name(h, w, precision, fmt)
    # A name no other process (nor another call in this one) uses: a shared partial name let
    # one run delete or publish another's half-written model.
    partial = final.parent / unique_name(final.stem, "partial", FORMAT_SUFFIX[fmt])
    start = time.perf_counter()
    try:
        run.say(f"converting {fmt} {precision} ({entry.description})")
        artifact = entry.fn(ctx, Target(fmt, precision, partial))
        if not partial.exists():
            raise ArtifactError(f"the {fmt}/{precision} converter wrote no file")
        manifest = _manifest(entry, ctx, artifact, run.sha)
        run.say(f"parity gate {fmt} {precision}")
        gate = _gate(partial, final.name, manifest, artifact, run, entry)
        manifest["parity"] = gate.as_dict()
        manifest["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        seconds = time.perf_counter() - start
        if gate.passed:
            mpath = _publish(partial, final, manifest)
            return ExportResult(fmt, precision, final, mpath, gate, seconds)
        report = _keep_failure(partial, final, manifest, gate, run.keep_failed)
        return ExportResult(fmt, precision, None, None, gate, seconds, failed_report=report)
    finally:
        remove_path(partial)


def _gate(
    partial: Path,
    name: str,
    manifest: dict[str, Any],
    artifact: Artifact,
    run: _Run,
    entry: ConverterEntry,
) -> GateResult:
    """The artifact, opened in its own runtime, against the PyTorch fp32 reference."""
    from sinet_deploy.runtimes import open_session
    from sinet_deploy.verify.gate import run_gate

    assert run.reference is not None and run.gate_paths is not None
    session = open_session(partial, manifest, provider=artifact.runtime_provider)
    session.name = name
    try:
        return run_gate(
            session,
            run.reference,
            fmt=entry.fmt,
            precision=entry.precision,
            images=run.gate_paths,
        )
    finally:
        del session  # release the file before renaming (matters on Windows)


def _publish(partial: Path, final: Path, manifest: dict[str, Any]) -> Path:
    """Rename the gated model into place, then write its manifest; returns the manifest."""
    from sinet_deploy.core.manifest import write_manifest

    # Hash what was gated, before it moves. The old manifest goes first, so that no moment
    # (nor a crash between the steps) shows an old manifest beside a new model; the new
    # manifest comes last, once its model is in place.
    digest = sha256_path(partial)
    remove_path(manifest_path(final))
    publish(partial, final)
    remove_path(final.parent / f"{final.stem}.failed.json")
    return write_manifest(final, manifest, artifact_sha256=digest)


def _keep_failure(
    partial: Path, final: Path, manifest: dict[str, Any], gate: GateResult, keep: bool
) -> Path:
    """Write ``<stem>.failed.json`` (and keep the model as ``.failed.<ext>`` when asked)."""
    if keep:
        kept = final.parent / f"{final.stem}.failed{final.suffix}"
        publish(partial, kept)
        manifest["kept_as"] = kept.name
    report = final.parent / f"{final.stem}.failed.json"
    write_json_atomic(
        report, {**manifest, "status": "failed parity gate", "failures": gate.failures}
    )
    return report


@contextlib.contextmanager
def _artifact_lock(final: Path) -> Iterator[None]:
    """Hold ``<folder>/.<artifact>.lock``; :class:`UserInputError` when another run holds it.

    While it is held, leftovers of killed runs (partial models of dead processes) are removed.
    """
    final.parent.mkdir(exist_ok=True)
    try:
        with exclusive(final.with_name(f".{final.name}.lock")):
            for tag in ("partial", "old"):
                remove_stale(final.parent, final.stem, tag)
            remove_path(final.with_name(f".{final.stem}.partial{final.suffix}"))  # older names
            yield
    except Busy:
        raise UserInputError(
            f"another sinet-deploy run is writing {final}",
            hint="wait for it or use another --out",
        ) from None


def _manifest(
    entry: ConverterEntry, ctx: ExportContext, conv: Artifact, sha: str
) -> dict[str, Any]:
    from sinet_deploy.core.version import __version__ as pkg_version
    from sinet_deploy.models.preprocessing import preprocessing_contract

    h, w = ctx.input_size
    pre = preprocessing_contract()
    if ctx.io == "raw":
        pre["image_input"] = "not in the graph: the input is the checkpoint's normalised BGR"
    return {
        "format": entry.fmt,
        "precision": entry.precision,
        "description": entry.description,
        "input_size": [h, w],
        "inputs": [s.as_dict() for s in conv.inputs],
        "outputs": [s.as_dict() for s in conv.outputs],
        "output_meaning": (
            "foreground (person) probability = softmax(logits)[1]"
            if ctx.io == "image"
            else "2-class logits (class 1 = person)"
        ),
        "labels": ["background", "person"],
        "preprocessing": pre,
        "source": {
            "weights": str(ctx.weights),
            "checkpoint_sha256": sha,
            "config": ctx.config or "official",
        },
        "options": {
            "io": ctx.io,
            "input_size": f"{h}x{w}",
            "opset": ctx.opset,
            "calib": str(ctx.calib) if ctx.calib else None,
            # Subnormal float32 weights set to zero in the deploy form (models/deploy.py).
            "subnormal_weights_flushed": ctx.cache.get("subnormals_flushed"),
            **conv.options,
        },
        "tools": {"sinet-deploy": pkg_version, **conv.tools},
        "graph": conv.graph,
    }


def manifest_for(artifact: Path) -> Path:
    """Where the manifest of ``artifact`` lives (re-exported for callers of this module)."""
    return manifest_path(artifact)
