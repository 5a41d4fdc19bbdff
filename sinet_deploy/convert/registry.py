"""The export registry: which converter makes each (format, precision), and what it gets.

Every converter has one shape::

    def convert(ctx: ExportContext, target: Target) -> Artifact

``ctx`` is the source, shared by all artifacts of one export: the weights, the deploy-form
module and the simplified ONNX (built once and cached), size, I/O contract, opset and the
calibration folder. ``target`` says what to make and where (a temporary name the publisher
chose). The converter writes exactly ``target.dest`` and returns an :class:`Artifact` record:
the manifest's tensor specs, the options it used, tool versions and graph facts.

The edge modules (:mod:`.onnx`, :mod:`.tflite`, :mod:`.tflite_int8`, :mod:`.onnx_int8`,
:mod:`.coreml`, :mod:`.executorch`) register their ``convert`` when imported. They are listed in
:data:`EDGE_MODULES` and imported when the registry is first read, so that registering costs
nothing heavy: coremltools, TensorFlow, onnx2tf and executorch are imported inside ``convert`` only.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sinet_deploy.core.errors import MissingDependencyError, UserInputError
from sinet_deploy.core.manifest import FORMAT_SUFFIX
from sinet_deploy.runtimes.base import TensorSpec

if TYPE_CHECKING:
    from torch import nn

FORMATS = ("onnx", "tflite", "coreml", "executorch")
PRECISIONS = ("fp32", "fp16", "int8w", "int8")
IO_MODES = ("image", "raw")
#: The modules that register converters when imported, one per edge.
EDGE_MODULES = (
    "sinet_deploy.convert.onnx",
    "sinet_deploy.convert.tflite",
    "sinet_deploy.convert.onnx_int8",
    "sinet_deploy.convert.tflite_int8",
    "sinet_deploy.convert.coreml",
    "sinet_deploy.convert.executorch",
)


@dataclass(frozen=True)
class Target:
    """What one converter call makes: ``fmt``/``precision``, written to ``dest``."""

    fmt: str
    precision: str
    dest: Path


@dataclass(frozen=True)
class Artifact:
    """What a converter reports about the file it wrote at ``target.dest``.

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
    """The source of one export; intermediates are cached so they are built once."""

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
            from sinet_deploy.convert.torch_to_onnx import export_onnx

            export_onnx(self.module(layout), path, self.onnx_config(layout))
            self.cache[key] = path
        return Path(self.cache[key])

    def onnx_config(self, layout: str) -> Any:
        from sinet_deploy.convert.torch_to_onnx import OnnxExportConfig

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

    def image_specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        """The default contract's float tensors: uint8 RGB NHWC in, probability NHWC out."""
        h, w = self.input_size
        return (
            [TensorSpec("image", (1, h, w, 3), "uint8", "nhwc")],
            [TensorSpec("foreground", (1, h, w, 1), "float32", "nhwc")],
        )


Converter = Callable[[ExportContext, Target], Artifact]


@dataclass(frozen=True)
class ConverterEntry:
    fmt: str
    precision: str
    fn: Converter
    description: str


_REGISTRY: dict[tuple[str, str], ConverterEntry] = {}


def register_converter(
    fmt: str, precision: str, fn: Converter, *, description: str = "", replace: bool = False
) -> None:
    """Make ``export`` able to produce ``(fmt, precision)`` with ``fn(ctx, target)``."""
    if fmt not in FORMAT_SUFFIX:
        raise ValueError(
            f"unknown format {fmt!r}; artifact suffixes are known for {', '.join(FORMAT_SUFFIX)}"
        )
    key = (fmt, precision)
    if key in _REGISTRY and not replace and _REGISTRY[key].fn is not fn:
        raise ValueError(f"a converter for {fmt}/{precision} is already registered")
    _REGISTRY[key] = ConverterEntry(fmt, precision, fn, description)


def _load_edges() -> None:
    for name in EDGE_MODULES:
        importlib.import_module(name)


def registered() -> dict[tuple[str, str], ConverterEntry]:
    """The registry (after importing the edge modules)."""
    _load_edges()
    return dict(_REGISTRY)


def plan(formats: Iterable[str], precisions: Iterable[str]) -> list[tuple[str, str]]:
    """Validate the requested pairs against the registry, in a stable order.

    Raises:
        UserInputError: unknown format/precision, or nothing requested.
        MissingDependencyError: a pair no converter here produces (CoreML without coremltools).
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
