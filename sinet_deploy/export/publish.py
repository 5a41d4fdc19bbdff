"""``sinet-deploy export``: convert, gate, and only then publish each artifact.

For every requested (format, precision) the pipeline
1. calls the registered converter, which writes the model to a temporary name in
   ``<out>/<format>/`` (``.sinet_<H>x<W>_<precision>.partial-<pid>-<random>.<ext>``: hidden,
   obviously unfinished, never shared by two processes). Each format has its own folder
   because ONNX and TFLite artifacts of the same size and precision share the stem, hence the
   manifest name ``<stem>.json``;
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
of them stops at once with :class:`~sinet_deploy.core.errors.UserInputError` (exit 2) instead of
racing it. Work folders live under ``<tmp>/sinet_deploy-<uid>/`` named with the pid, so a
killed run's leftovers are removed by the next one.

Registering a converter (the CoreML and full-integer int8 work plug in here)::

    from sinet_deploy.export.publish import Converted, ExportContext, register_converter

    def to_coreml_fp16(ctx: ExportContext, precision: str, dest: Path) -> Converted:
        module = ctx.module(layout="nchw")           # deploy form, cached per layout
        ...write the model to `dest` (a temp name with the right suffix)...
        return Converted(inputs=[TensorSpec(...)], outputs=[TensorSpec(...)],
                         options={"compute_precision": "fp16"}, tools={"coremltools": "9.0"},
                         runtime_provider="cpu")

    register_converter("coreml", "fp16", to_coreml_fp16, description="CoreML ML program fp16")

The converter gets an :class:`ExportContext` (weights, size, io, opset, calib folder, a private
work folder, and cached intermediates: ``ctx.module(layout)``, ``ctx.onnx_model(layout)``,
``ctx.cache``) and must write exactly ``dest``. The gate uses the tolerance registered for the
same (format, precision) in :mod:`sinet_deploy.verify.tolerances`, and the session loader
registered for ``dest``'s suffix in :mod:`sinet_deploy.runtimes`. The module that calls
``register_converter`` must be listed in :data:`PLUGIN_MODULES` (a one-line change here): those
modules are imported, when present, before the registry is consulted, so heavy converters
(coremltools, TensorFlow) are still imported only inside their converter functions.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sinet_deploy.core.environment import versions
from sinet_deploy.core.errors import (
    ArtifactError,
    MissingDependencyError,
    ParityGateError,
    UserInputError,
)
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
from sinet_deploy.runtimes.base import TensorSpec

if TYPE_CHECKING:
    from torch import nn

    from sinet_deploy.runtimes.base import Session
    from sinet_deploy.verify.gate import GateResult

FORMATS = ("onnx", "tflite", "coreml")
PRECISIONS = ("fp32", "fp16", "int8w", "int8")
IO_MODES = ("image", "raw")
#: Modules that register more converters when imported (missing ones are skipped silently:
#: they belong to work that may not be installed or written yet).
PLUGIN_MODULES = ("sinet_deploy.export.coreml_export", "sinet_deploy.export.quantize")


@dataclass
class Converted:
    """What a converter reports about the file it wrote at ``dest``.

    ``inputs``/``outputs`` are the manifest's tensor specs (layout and quantization included);
    ``graph`` holds format-specific facts (op counts, delegate partitions…).
    """

    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    options: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str | None] = field(default_factory=dict)
    graph: dict[str, Any] = field(default_factory=dict)
    runtime_provider: str = "cpu"


@dataclass
class ExportContext:
    """Everything a converter needs; intermediates are cached so they are built once."""

    weights: str | Path
    input_size: tuple[int, int]
    io: str
    opset: int
    calib: Path | None
    work_dir: Path
    config: dict[str, Any] = field(default_factory=dict)
    cache: dict[str, Any] = field(default_factory=dict)

    def module(self, layout: str = "nhwc") -> nn.Module:
        """The deploy-form module with this export's I/O (``layout`` only for ``io=image``)."""
        key = f"module:{self.io}:{layout}"
        if key not in self.cache:
            from sinet_deploy.models import export_module

            self.cache[key] = export_module(
                self.weights,
                input_size=self.input_size,
                io=self.io,  # type: ignore[arg-type]
                layout=layout,  # type: ignore[arg-type]
                **self.config,
            )
            core = getattr(self.cache[key], "core", self.cache[key])
            self.cache["subnormals_flushed"] = getattr(core, "subnormals_flushed", None)
        return self.cache[key]  # type: ignore[no-any-return]

    def onnx_model(self, layout: str = "nhwc") -> Path:
        """A simplified ONNX export in the work folder (cached per layout)."""
        key = f"onnx:{self.io}:{layout}"
        if key not in self.cache:
            path = self.work_dir / f"sinet_{self.io}_{layout}.onnx"
            from sinet_deploy.export.torch_to_onnx import export_onnx

            export_onnx(self.module(layout), path, self.onnx_config(layout))
            self.cache[key] = path
        return Path(self.cache[key])

    def onnx_config(self, layout: str) -> Any:
        from sinet_deploy.export.torch_to_onnx import OnnxExportConfig

        h, w = self.input_size
        if self.io == "image":
            shape = (1, h, w, 3) if layout == "nhwc" else (1, 3, h, w)
            return OnnxExportConfig(
                shape, "uint8", "image", "foreground", self.opset, metadata=self.metadata()
            )
        return OnnxExportConfig(
            (1, 3, h, w), "float32", "input", "logits", self.opset, metadata=self.metadata()
        )

    def metadata(self) -> dict[str, Any]:
        """The contract embedded in artifacts that can hold metadata."""
        from sinet_deploy.models.preprocessing import preprocessing_contract

        return {
            "sinet_deploy.io": self.io,
            "sinet_deploy.input_size": list(self.input_size),
            "sinet_deploy.preprocessing": preprocessing_contract(),
            "sinet_deploy.labels": ["background", "person"],
            "sinet_deploy.source_sha256": self.cache.get("source_sha256", ""),
        }


ConverterFn = Callable[[ExportContext, str, Path], Converted]


@dataclass(frozen=True)
class ConverterEntry:
    fmt: str
    precision: str
    fn: ConverterFn
    description: str


_REGISTRY: dict[tuple[str, str], ConverterEntry] = {}


def register_converter(
    fmt: str, precision: str, fn: ConverterFn, *, description: str = "", replace: bool = False
) -> None:
    """Make ``export`` able to produce ``(fmt, precision)`` with ``fn(ctx, precision, dest)``."""
    if fmt not in FORMAT_SUFFIX:
        raise ValueError(
            f"unknown format {fmt!r}; artifact suffixes are known for {', '.join(FORMAT_SUFFIX)}"
        )
    key = (fmt, precision)
    if key in _REGISTRY and not replace and _REGISTRY[key].fn is not fn:
        raise ValueError(f"a converter for {fmt}/{precision} is already registered")
    _REGISTRY[key] = ConverterEntry(fmt, precision, fn, description)


def _load_plugins() -> None:
    for name in PLUGIN_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the plugin exists but its own import failed: say so
                raise


def registered() -> dict[tuple[str, str], ConverterEntry]:
    """The registry (after importing plugin modules)."""
    _load_plugins()
    return dict(_REGISTRY)


# --- built-in converters -------------------------------------------------------------------


def _onnx_specs(ctx: ExportContext) -> tuple[list[TensorSpec], list[TensorSpec]]:
    h, w = ctx.input_size
    if ctx.io == "image":
        return (
            [TensorSpec("image", (1, h, w, 3), "uint8", "nhwc")],
            [TensorSpec("foreground", (1, h, w, 1), "float32", "nhwc")],
        )
    return (
        [TensorSpec("input", (1, 3, h, w), "float32", "nchw")],
        [TensorSpec("logits", (1, 2, h, w), "float32", "nchw")],
    )


def _onnx_for_ort(ctx: ExportContext) -> Path:
    """The simplified ONNX with onnxruntime-friendly exact rewrites (cached)."""
    if "onnx:ort" not in ctx.cache:
        from sinet_deploy.export.onnx_rewrite import prelu_to_max

        path = ctx.work_dir / "sinet_ort.onnx"
        ctx.cache["onnx:ort:prelu"] = prelu_to_max(ctx.onnx_model("nhwc"), path)
        ctx.cache["onnx:ort"] = path
    return Path(ctx.cache["onnx:ort"])


def _onnx(ctx: ExportContext, precision: str, dest: Path) -> Converted:
    from sinet_deploy.export.torch_to_onnx import graph_op_counts, to_fp16_weights

    src = _onnx_for_ort(ctx)
    options = {
        "exporter": "torch.onnx.export (TorchScript, dynamo=False)",
        "simplified": "onnxsim",
        "weights": "float32",
        "rewrites": f"{ctx.cache['onnx:ort:prelu']} PRelu as Max(x, a*x) (exact)",
    }
    if precision == "fp16":
        to_fp16_weights(src, dest)
        options["weights"] = "float16 initializers + Cast to float32 (compute in float32)"
    else:
        shutil.copyfile(src, dest)
    inputs, outputs = _onnx_specs(ctx)
    counts = graph_op_counts(dest)
    return Converted(
        inputs,
        outputs,
        options=options,
        tools=versions("torch", "onnx", "onnxsim", "onnxruntime"),
        graph={"op_counts": counts, "transpose_ops": counts.get("Transpose", 0)},
    )


def _tflite(ctx: ExportContext, precision: str, dest: Path) -> Converted:
    from sinet_deploy.export.onnx_to_tflite import (
        TFLiteConvertConfig,
        convert_onnx_to_tflite,
    )
    from sinet_deploy.runtimes.litert_rt import analyze

    h, w = ctx.input_size
    key = "tflite:onnx2tf"
    if key not in ctx.cache:
        # One onnx2tf run makes fp32, fp16 and weight-only int8 together: convert once for all
        # requested precisions. The NCHW-input ONNX is the one onnx2tf turns into a pure NHWC
        # graph; an NHWC-input ONNX leaves a TRANSPOSE and a wrongly permuted input.
        wanted = tuple(
            p
            for p in ("fp32", "fp16", "int8w")
            if p in ctx.cache.get("tflite:precisions", (precision,))
        )
        names = (("image",), ("foreground",)) if ctx.io == "image" else (("input",), ("logits",))
        cfg = TFLiteConvertConfig(
            precisions=wanted, input_names=names[0], output_names=names[1], metadata=ctx.metadata()
        )
        out = ctx.work_dir / "tflite"
        out.mkdir(exist_ok=True)
        ctx.cache[key] = convert_onnx_to_tflite(ctx.onnx_model("nchw"), out, cfg)
    produced: dict[str, Path] = ctx.cache[key]
    if precision not in produced:
        raise UserInputError(f"internal: onnx2tf run did not include {precision}")
    shutil.copyfile(produced[precision], dest)
    if ctx.io == "image":
        inputs = [TensorSpec("image", (1, h, w, 3), "uint8", "nhwc")]
        outputs = [TensorSpec("foreground", (1, h, w, 1), "float32", "nhwc")]
    else:  # onnx2tf turns the checkpoint's NCHW contract into NHWC
        inputs = [TensorSpec("input", (1, h, w, 3), "float32", "nhwc")]
        outputs = [TensorSpec("logits", (1, h, w, 2), "float32", "nhwc")]
    weights = {
        "fp32": "float32",
        "fp16": "float16 (dequantized at load)",
        "int8w": "int8 per-channel, float activations (dynamic range)",
    }[precision]
    return Converted(
        inputs,
        outputs,
        options={
            "converter": "onnx2tf -dsm (strict mode off)",
            "onnx_intermediate": "NCHW-input ONNX from the deploy form",
            "weights": weights,
        },
        tools=versions("onnx2tf", "tensorflow", "onnx", "onnxsim", "ai-edge-litert"),
        graph=analyze(dest),
    )


register_converter("onnx", "fp32", _onnx, description="ONNX fp32 (torch.onnx + onnxsim)")
register_converter("onnx", "fp16", _onnx, description="ONNX with fp16 weights, fp32 compute")
for _p, _d in (
    ("fp32", "TFLite fp32"),
    ("fp16", "TFLite fp16 weights"),
    ("int8w", "TFLite weight-only int8 (dynamic range)"),
):
    register_converter("tflite", _p, _tflite, description=f"{_d} via onnx2tf")


# --- orchestration -------------------------------------------------------------------------


@dataclass
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


@dataclass
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


def plan(formats: Iterable[str], precisions: Iterable[str]) -> list[tuple[str, str]]:
    """Validate the requested pairs against the registry, in a stable order.

    Raises:
        UserInputError: unknown format/precision, or a pair no converter produces yet.
    """
    formats, precisions = list(dict.fromkeys(formats)), list(dict.fromkeys(precisions))
    for f in formats:
        if f not in FORMATS:
            raise UserInputError(f"unknown format {f!r}", hint=f"use {', '.join(FORMATS)}")
    for p in precisions:
        if p not in PRECISIONS:
            raise UserInputError(f"unknown precision {p!r}", hint=f"use {', '.join(PRECISIONS)}")
    if not formats or not precisions:
        raise UserInputError("nothing to export", hint="give --formats and --precisions")
    reg = registered()
    pairs = [(f, p) for f in formats for p in precisions]
    missing = [f"{f}/{p}" for f, p in pairs if (f, p) not in reg]
    if missing:
        have = ", ".join(f"{f}/{p}" for f, p in sorted(reg))
        raise MissingDependencyError(
            f"no converter available for {', '.join(missing)}", hint=f"available here: {have}"
        )
    return pairs


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
    from sinet_deploy.export.torch_to_onnx import DEFAULT_OPSET, OnnxExportConfig
    from sinet_deploy.models.config import check_input_size
    from sinet_deploy.runtimes import open_session, torch_reference
    from sinet_deploy.verify.gate import gate_images, run_gate

    steps = {"done": 0, "total": 1}

    def say(message: str) -> None:
        if progress is not None:
            progress(message, steps["done"], steps["total"])
        steps["done"] += 1

    if io not in IO_MODES:
        raise UserInputError(f"unknown --io {io!r}", hint="use image or raw")
    h, w = check_input_size(*input_size)
    opset = DEFAULT_OPSET if opset is None else opset
    OnnxExportConfig((1, 3, h, w), opset=opset)  # validates the opset before any work
    pairs = plan(formats, precisions)
    if coreml_target is not None:
        from sinet_deploy.export.torch_to_coreml import DEPLOYMENT_TARGETS

        if coreml_target not in DEPLOYMENT_TARGETS:
            raise UserInputError(
                f"unknown --coreml-target {coreml_target!r}",
                hint=f"use one of {', '.join(DEPLOYMENT_TARGETS)}",
            )
    steps["total"] = 1 + 2 * len(pairs)
    out = check_out_dir(out_dir)
    gate_paths = gate_images(images)
    if calib is not None and not Path(calib).is_dir():
        raise UserInputError(
            f"--calib {calib} is not a directory", hint="pass a folder of calibration images"
        )
    say("loading weights")
    reference = torch_reference(weights, (h, w), **config)  # also validates the checkpoint
    sha = source_sha256(weights)
    results: list[ExportResult] = []
    with contextlib.ExitStack() as held, work_dir("sinet_export_") as tmp:
        # Every artifact this run writes is locked for the whole run, in one sorted order,
        # before any work: two runs sharing --out never interleave on one artifact, and the
        # one that loses says so at once instead of after minutes of converting.
        for fmt, precision in sorted(pairs):
            held.enter_context(_artifact_lock(out / fmt / artifact_name(h, w, precision, fmt)))
        ctx = ExportContext(
            weights, (h, w), io, opset, Path(calib) if calib else None, tmp, dict(config)
        )
        ctx.cache["source_sha256"] = sha
        if coreml_target is not None:
            ctx.cache["coreml:options"] = {"deployment_target": coreml_target}
        ctx.cache["tflite:precisions"] = tuple(p for f, p in pairs if f == "tflite")
        for fmt, precision in pairs:
            entry = _REGISTRY[(fmt, precision)]
            results.append(
                _export_one(
                    entry,
                    ctx,
                    out,
                    reference,
                    gate_paths,
                    sha,
                    keep_failed,
                    say,
                    run_gate,
                    open_session,
                )
            )
    return ExportReport(results, out)


def _export_one(
    entry: ConverterEntry,
    ctx: ExportContext,
    out: Path,
    reference: Session,
    gate_paths: list[Path],
    sha: str,
    keep_failed: bool,
    say: Callable[[str], None],
    run_gate: Any,
    open_session: Any,
) -> ExportResult:
    h, w = ctx.input_size
    fmt, precision = entry.fmt, entry.precision
    # One folder per format: ONNX and TFLite of the same size and precision share the stem
    # ``sinet_<H>x<W>_<precision>``, and so would their ``<stem>.json`` manifests.
    folder = out / fmt
    final = folder / artifact_name(h, w, precision, fmt)
    suffix = FORMAT_SUFFIX[fmt]
    # A name no other process (nor another call in this one) uses: a shared partial name let
    # one run delete or publish another's half-written model.
    partial = folder / unique_name(final.stem, "partial", suffix)
    start = time.perf_counter()
    try:
        say(f"converting {fmt} {precision} ({entry.description})")
        converted = entry.fn(ctx, precision, partial)
        if not partial.exists():
            raise ArtifactError(f"the {fmt}/{precision} converter wrote no file")
        manifest = _manifest(entry, ctx, converted, sha)
        say(f"parity gate {fmt} {precision}")
        session = open_session(partial, manifest, provider=converted.runtime_provider)
        session.name = final.name
        gate = run_gate(session, reference, fmt=fmt, precision=precision, images=gate_paths)
        manifest["parity"] = gate.as_dict()
        manifest["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        del session  # release the file before renaming (matters on Windows)
        report = folder / f"{final.stem}.failed.json"
        if gate.passed:
            from sinet_deploy.core.manifest import write_manifest

            # Hash what was gated, before it moves. The old manifest goes first, so that no
            # moment (nor a crash between the steps) shows an old manifest beside a new model;
            # the new manifest comes last, once its model is in place.
            digest = sha256_path(partial)
            remove_path(manifest_path(final))
            publish(partial, final)
            remove_path(report)
            mpath = write_manifest(final, manifest, artifact_sha256=digest)
            return ExportResult(fmt, precision, final, mpath, gate, time.perf_counter() - start)
        if keep_failed:
            kept = folder / f"{final.stem}.failed{suffix}"
            publish(partial, kept)
            manifest["kept_as"] = kept.name
        write_json_atomic(
            report, {**manifest, "status": "failed parity gate", "failures": gate.failures}
        )
        return ExportResult(
            fmt, precision, None, None, gate, time.perf_counter() - start, failed_report=report
        )
    finally:
        remove_path(partial)


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
    entry: ConverterEntry, ctx: ExportContext, conv: Converted, sha: str
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
