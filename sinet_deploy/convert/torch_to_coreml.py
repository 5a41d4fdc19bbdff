"""PyTorch deploy form → Core ML ML program (``.mlpackage``): fp32, fp16, int8 weights.

Why the choices (measured with torch 2.13, coremltools 9.0):

- The *deploy form* is converted, never the authors' module: coremltools refuses PReLU on the
  rank-2 tensor after the squeeze block's Linear, and traced sizes cast to ``int`` break it.
- ``torch.jit.trace`` is the default frontend: trace + convert took 4 s here against 26 s through
  ``torch.export``, for the same MIL ops; ``frontend="export"`` is kept as an option.
- The image enters as an ``ImageType`` (RGB, ``scale=1``, ``bias=0``): Core ML hands the program
  float pixels 0..255 in NCHW. The checkpoint's *per-channel* normalisation cannot be expressed
  by ``ImageType``'s single scale, so it stays inside the graph (the deploy form's mul + add;
  see :func:`_pass_pipeline` for why it is not fused into a ``batch_norm``). The output is
  ``foreground``, float32
  ``[1, H, W, 1]`` (the CONTRACTS.md layout of every format; with one channel NHWC and NCHW hold
  the same bytes). ``io="raw"`` keeps the checkpoint contract: ``input`` normalised BGR
  ``[1,3,H,W]`` → ``logits`` ``[1,2,H,W]``.
- fp16 is the ML program default compute precision; fp32 is asked for explicitly.
- int8: coremltools' linear weight quantizer (linear symmetric, per output channel) on the fp16
  program, restricted to ``conv`` weights with ``weight_threshold=0`` — the default threshold
  (2048 elements) would leave most of SINet's tiny convolutions in float. Afterwards every
  ``conv`` weight is checked to come from an int8 ``constexpr`` op, or the conversion fails.
  Activations stay fp16: W8A8 would need calibration through ``predict`` (macOS only) or
  PyTorch-side quantization, not done here.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sinet_deploy.core.errors import ConversionError, MissingDependencyError, UserInputError
from sinet_deploy.runtimes.coreml_import import import_coremltools, quiet_coremltools

if TYPE_CHECKING:
    from torch import nn

PRECISIONS = ("fp32", "fp16", "int8")
#: ML programs need iOS 15; int8 weights (``constexpr`` ops) need iOS 16, our floor.
DEPLOYMENT_TARGETS = ("iOS16", "iOS17", "iOS18")
DEFAULT_TARGET = "iOS16"
FRONTENDS = ("trace", "export")
IO_MODES = ("image", "raw")

AUTHOR = (
    "SINet by Hyojin Park et al. (NAVER Corp., clovaai/ext_portrait_segmentation); "
    "converted with sinet-deploy"
)
LICENSE = (
    "Weights: MIT License, Copyright (c) 2019-present NAVER Corp. "
    "(clovaai/ext_portrait_segmentation)"
)
#: Weight-decompression ops that coremltools emits for int8 weights (iOS16 / iOS18 opsets).
INT8_WEIGHT_OPS = ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale")


@dataclass(frozen=True)
class CoreMLConfig:
    """Options of :func:`convert_coreml`.

    Attributes:
        out: destination ``.mlpackage`` path (written atomically: temp name, then rename).
        precision: ``fp32``, ``fp16`` (compute precision) or ``int8`` (int8 weights, fp16
            compute).
        input_size: ``(H, W)`` of the fixed input.
        io: ``image`` (``ImageType`` RGB in, ``foreground`` probability out) or ``raw``.
        deployment_target: minimum iOS: ``iOS16`` (default), ``iOS17`` or ``iOS18``.
        frontend: ``trace`` (``torch.jit.trace``) or ``export`` (``torch.export``).
        user_metadata: extra ``user_defined_metadata`` (non-strings are JSON-encoded).
        description: the model's short description.
    """

    out: Path
    precision: str = "fp16"
    input_size: tuple[int, int] = (224, 224)
    io: str = "image"
    deployment_target: str = DEFAULT_TARGET
    frontend: str = "trace"
    user_metadata: Mapping[str, Any] = field(default_factory=dict)
    description: str = (
        "SINet portrait segmentation (EG1800): foreground (person) probability per pixel"
    )

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("precision", self.precision, PRECISIONS),
            ("deployment target", self.deployment_target, DEPLOYMENT_TARGETS),
            ("frontend", self.frontend, FRONTENDS),
            ("io", self.io, IO_MODES),
        ):
            if value not in allowed:
                raise UserInputError(
                    f"unknown CoreML {name} {value!r}", hint=f"use one of {', '.join(allowed)}"
                )
        if Path(self.out).suffix != ".mlpackage":
            raise UserInputError(
                f"CoreML output {self.out} must end in .mlpackage",
                hint="ML programs are saved as .mlpackage directories",
            )


@dataclass
class ConversionNotes:
    """What the conversion said on the side: tool warnings and int8 facts, for the manifest."""

    warnings: list[str] = field(default_factory=list)
    zero_scale_channels: int = 0


# -- coremltools, quietly ----------------------------------------------------------------------


def _tool_warnings(messages: list[str]) -> list[str]:
    """Deduplicated warnings, with the expected Linux "no libcoremlpython" lines folded."""
    out: list[str] = []
    no_runtime = False
    for m in messages:
        if "libcoremlpython" in m:
            no_runtime = True
        elif "invalid value encountered" in m or "divide by zero" in m:
            continue  # zero-weight channels in the int8 quantizer; reported separately
        elif m.startswith("ResourceWarning"):
            continue  # coremltools' own temporary folders
        elif m not in out:
            out.append(m)
    if no_runtime:
        out.append("coremltools has no libcoremlpython here (Core ML prediction is macOS-only)")
    return out


# -- the conversion ----------------------------------------------------------------------------


def _adapter(module: nn.Module, io_mode: str) -> nn.Module:
    """Give an ``io="image"`` module (uint8 RGB NHWC in) the NCHW float input of ``ImageType``.

    The input permute cancels against the module's own NHWC→NCHW permute in coremltools'
    transpose passes, so no transpose reaches the program.
    """
    from torch import nn as tnn

    if io_mode == "raw":
        return module

    class ImageTypeInput(tnn.Module):
        def __init__(self, inner: nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Any) -> Any:
            return self.inner(x.permute(0, 2, 3, 1))

    return ImageTypeInput(module).eval()


def _source(module: nn.Module, config: CoreMLConfig) -> Any:
    import torch

    h, w = config.input_size
    if config.io == "image":
        example = torch.rand(1, 3, h, w) * 255.0
    else:
        example = torch.randn(1, 3, h, w) * 0.01  # normalised pixels are about ±0.01
    wrapped = _adapter(module.eval(), config.io)
    try:
        with torch.no_grad():
            if config.frontend == "trace":
                return torch.jit.trace(wrapped, example)
            return torch.export.export(wrapped, (example,)).run_decompositions({})
    except Exception as exc:  # torch raises many unrelated types while tracing
        raise ConversionError(
            f"PyTorch {config.frontend} of the deploy form failed: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
            hint="export_module() output is expected here",
        ) from exc


def _io_types(ct: Any, config: CoreMLConfig) -> tuple[list[Any], list[Any]]:
    import numpy as np

    h, w = config.input_size
    if config.io == "image":
        inputs = [
            ct.ImageType(
                name="image",
                shape=(1, 3, h, w),
                scale=1.0,
                bias=[0.0, 0.0, 0.0],
                color_layout=ct.colorlayout.RGB,
            )
        ]
        outputs = [ct.TensorType(name="foreground", dtype=np.float32)]
    else:
        inputs = [ct.TensorType(name="input", shape=(1, 3, h, w), dtype=np.float32)]
        outputs = [ct.TensorType(name="logits", dtype=np.float32)]
    return inputs, outputs


def _pass_pipeline(ct: Any, precision: str) -> Any:
    """coremltools' default passes minus ``fuse_elementwise_to_batchnorm`` (+ int8 weights).

    That pass rewrites a per-channel ``x * a + b`` (our input normalisation and the BatchNorms
    that cannot fold into a conv) as ``batch_norm(mean=0, variance=1, epsilon=1e-5)``, which
    scales every such tensor by 1/sqrt(1 + 1e-5): a 5e-6 relative error, 12 times over, that
    moved fp32 probabilities by up to 2e-4. mul + add is exact and costs the same.

    int8 runs coremltools' ``compression::linear_quantize_weights`` as the *last* pass of the
    same conversion (after the fp16 cast, so scales are fp16 like the compute), instead of
    ``linear_quantize_weights(mlmodel)`` afterwards: that re-converts the program through the
    default passes, whose ``fuse_elementwise_to_batchnorm`` then builds an fp32 ``batch_norm``
    in an fp16 program and fails (coremltools 9.0).
    """
    pipeline = ct.PassPipeline.DEFAULT
    pipeline.remove_passes(["common::fuse_elementwise_to_batchnorm"])
    if precision == "int8":
        import coremltools.optimize as cto

        op_config = cto.coreml.OpLinearQuantizerConfig(
            mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=0
        )
        config = cto.coreml.OptimizationConfig(op_type_configs={"conv": op_config})
        pipeline.append_pass("compression::linear_quantize_weights")
        pipeline.set_options("compression::linear_quantize_weights", {"config": config})
    return pipeline


def _describe(mlmodel: Any, config: CoreMLConfig) -> None:
    """Model metadata: description, author, licence of the weights, I/O descriptions."""
    import json

    from sinet_deploy.core.version import __version__
    from sinet_deploy.models.preprocessing import preprocessing_contract

    h, w = config.input_size
    mlmodel.short_description = config.description
    mlmodel.author = AUTHOR
    mlmodel.license = LICENSE
    mlmodel.version = __version__
    if config.io == "image":
        mlmodel.input_description["image"] = (
            f"RGB image resized whole to {w}x{h} (bilinear, no crop); the normalisation is "
            "inside the model"
        )
        mlmodel.output_description["foreground"] = (
            f"person probability 0..1, float32 [1, {h}, {w}, 1] (NHWC); threshold 0.5 for a mask"
        )
    else:
        mlmodel.input_description["input"] = (
            "normalised BGR float32 [1, 3, H, W]: ((bgr - mean) / std) / 255"
        )
        mlmodel.output_description["logits"] = "2-class logits [1, 2, H, W]; class 1 = person"
    meta = {
        "sinet_deploy.io": config.io,
        "sinet_deploy.input_size": [h, w],
        "sinet_deploy.precision": config.precision,
        "sinet_deploy.labels": ["background", "person"],
        "sinet_deploy.preprocessing": preprocessing_contract(),
        **config.user_metadata,
    }
    for key, value in meta.items():
        mlmodel.user_defined_metadata[key] = (
            value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        )


def conv_weight_sources(mlmodel: Any) -> dict[str, str]:
    """For every ``conv`` op of a coremltools model: the op type producing its weight."""
    prog = mlmodel._mil_program  # the in-memory MIL program of a freshly converted model
    out: dict[str, str] = {}
    for fn in prog.functions.values():
        for op in fn.operations:
            if op.op_type == "conv":
                src = op.weight.op
                out[op.name] = src.op_type
    return out


def convert_coreml(
    module: nn.Module, config: CoreMLConfig, notes: ConversionNotes | None = None
) -> Path:
    """Convert the deploy form to an ML program and save it atomically as ``config.out``.

    Args:
        module: ``export_module(io="image")`` (uint8 RGB NHWC in, probability NHWC out) or,
            with ``config.io == "raw"``, ``export_module(io="raw")``.
        config: see :class:`CoreMLConfig`.
        notes: filled with the tool warnings and int8 facts, when given.

    Returns:
        ``config.out`` (a ``.mlpackage`` directory).

    Raises:
        MissingDependencyError: coremltools is not installed.
        ConversionError: tracing, conversion or quantization failed, or an int8 program has a
            convolution whose weight is not int8.
    """
    import numpy as np

    notes = notes if notes is not None else ConversionNotes()
    sink: list[str] = []
    ct = import_coremltools(sink)
    with quiet_coremltools(sink):  # torch 2.13 deprecates jit.trace: recorded, not printed
        source = _source(module, config)
    inputs, outputs = _io_types(ct, config)
    compute = ct.precision.FLOAT32 if config.precision == "fp32" else ct.precision.FLOAT16
    try:
        with quiet_coremltools(sink):
            mlmodel = ct.convert(
                source,
                inputs=inputs,
                outputs=outputs,
                convert_to="mlprogram",
                minimum_deployment_target=getattr(ct.target, config.deployment_target),
                compute_precision=compute,
                pass_pipeline=_pass_pipeline(ct, config.precision),
            )
            if config.precision == "int8":
                # Output channels whose weights are (all but) zero — BatchNorm gamma = 0 in the
                # checkpoint — get an fp16 scale of 0: coremltools divides 0 by 0 for them (its
                # NumPy warnings are dropped) and they dequantize to exactly 0. Counted here.
                notes.zero_scale_channels = _zero_scale_channels(mlmodel, np)
    except (ConversionError, MissingDependencyError):
        raise
    except Exception as exc:  # coremltools raises bare ValueError/RuntimeError/NotImplemented
        raise ConversionError(
            f"coremltools could not convert the deploy form: {type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:200] if str(exc) else ''}",
            hint="see the coremltools version in `sinet-deploy env`",
        ) from exc
    notes.warnings = _tool_warnings(sink)
    if config.precision == "int8":
        not_int8 = {
            n: t for n, t in conv_weight_sources(mlmodel).items() if t not in INT8_WEIGHT_OPS
        }
        if not_int8:
            raise ConversionError(
                f"{len(not_int8)} conv weights were not quantized to int8 "
                f"(e.g. {next(iter(not_int8))}); coremltools never compresses a constant of "
                "fewer than 10 elements",
                hint="use a model whose convolutions are larger",
            )
    _describe(mlmodel, config)
    return _save_atomic(mlmodel, Path(config.out), sink)


def _zero_scale_channels(mlmodel: Any, np: Any) -> int:
    count = 0
    for fn in mlmodel._mil_program.functions.values():
        for op in fn.operations:
            if op.op_type in INT8_WEIGHT_OPS:
                count += int((np.asarray(op.scale.val, dtype=np.float32) == 0).sum())
    return count


def _save_atomic(mlmodel: Any, out: Path, sink: list[str]) -> Path:
    """Save to a hidden temp directory beside ``out``, then rename (a package is a directory)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", suffix=".tmp", dir=out.parent))
    staged = tmp / out.name
    try:
        with quiet_coremltools(sink):
            mlmodel.save(str(staged))
        if out.exists():
            shutil.rmtree(out) if out.is_dir() else out.unlink()
        os.replace(staged, out)
    except OSError as exc:
        raise ConversionError(
            f"cannot write {out} ({exc.strerror})", hint="check the output folder"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
