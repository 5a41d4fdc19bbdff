"""The session interface every runtime implements: image in, foreground probability out.

A :class:`Session` hides the artifact's own I/O contract (``--io image`` or ``--io raw``, NHWC
or NCHW, float or quantized) behind one call, ``session(image) -> probability``, so parity code
is one generic function and a phone is just another runtime. ``native_inputs``/``run_native``
bypass the pre/post-processing, for latency measurements and for third-party "peer" models whose
contract we do not know.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ArtifactError, ImageError
from sinet_deploy.models.preprocessing import normalize_rgb


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output as the runtime sees it.

    ``layout`` is ``"nhwc"``/``"nchw"`` for 4-D image-like tensors (``None`` when unknown);
    ``quantization`` is ``(scale, zero_point)`` for a quantized tensor, else ``None``.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str | None = None
    quantization: tuple[float, int] | None = None

    def as_dict(self) -> dict[str, Any]:
        """The manifest form (CONTRACTS.md: name, shape, dtype, layout, quantization)."""
        quant = None
        if self.quantization is not None:
            quant = {"scale": float(self.quantization[0]), "zero_point": int(self.quantization[1])}
        return {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "layout": self.layout,
            "quantization": quant,
        }


@dataclass
class IOContract:
    """How ``session(image)`` maps onto the model's native tensors.

    ``io``: ``"image"`` (uint8 RGB NHWC in, probability ``[1,H,W,1]`` out; possibly quantized),
    ``"raw"`` (normalised BGR in, class logits out, either layout) or ``"peer"`` (unknown
    contract: only ``native_inputs``/``run_native`` work).
    """

    io: str
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)


def guess_layout(shape: tuple[int, ...]) -> str | None:
    """``nhwc`` when the last axis looks like channels (1–4), ``nchw`` when axis 1 does."""
    if len(shape) != 4:
        return None
    if shape[-1] in (1, 2, 3, 4) and shape[1] not in (1, 2, 3, 4):
        return "nhwc"
    if shape[1] in (1, 2, 3, 4):
        return "nchw"
    return None


def contract_from_manifest(
    manifest: dict[str, Any] | None, inputs: list[TensorSpec], outputs: list[TensorSpec]
) -> IOContract:
    """Combine the runtime's tensor specs with the manifest's ``options.io`` and layouts.

    Without a manifest a model with our default signature (uint8 ``[1,H,W,3]`` in,
    ``[1,H,W,1]`` out) is treated as ``image``; anything else is a ``peer``.
    """
    if manifest is not None:
        io = str(manifest.get("options", {}).get("io", "image"))
        by_name = {
            t.get("name"): t
            for t in manifest.get("inputs", []) + manifest.get("outputs", [])
            if isinstance(t, dict)
        }

        def merge(spec: TensorSpec) -> TensorSpec:
            m = by_name.get(spec.name)
            layout = (m or {}).get("layout") or spec.layout
            return TensorSpec(spec.name, spec.shape, spec.dtype, layout, spec.quantization)

        return IOContract(io, [merge(s) for s in inputs], [merge(s) for s in outputs])
    if (
        len(inputs) == 1
        and len(outputs) == 1
        and inputs[0].dtype in ("uint8", "int8")
        and len(inputs[0].shape) == 4
        and inputs[0].shape[-1] == 3
        and tuple(outputs[0].shape) == (*inputs[0].shape[:3], 1)
    ):
        return IOContract(
            "image", [_with_layout(inputs[0], "nhwc")], [_with_layout(outputs[0], "nhwc")]
        )
    return IOContract("peer", inputs, outputs)


def _with_layout(spec: TensorSpec, layout: str) -> TensorSpec:
    return TensorSpec(spec.name, spec.shape, spec.dtype, layout, spec.quantization)


def quantization_from_manifest(quant: Mapping[str, Any] | None) -> tuple[float, int] | None:
    """A manifest's ``{"scale", "zero_point"}`` as ``(scale, zero_point)``; ``None`` stays.

    A per-tensor value written as a one-element list is taken as the value.
    """
    if quant is None:
        return None
    scale, zero = quant["scale"], quant.get("zero_point", 0)
    scale = scale[0] if isinstance(scale, list) else scale
    zero = zero[0] if isinstance(zero, list) else zero
    return float(scale), int(zero)


def quantize_affine(
    x: np.ndarray, dtype: str | np.dtype[Any], quantization: tuple[float, int] | None
) -> np.ndarray:
    """Values → ``dtype``: ``rint(x / scale) + zero_point``, clamped, when quantized.

    Without quantization (or with scale 0) float values are rounded and clamped into an integer
    ``dtype``; anything else is cast.
    """
    dtype = np.dtype(dtype)
    if quantization is None or quantization[0] == 0.0:
        if np.issubdtype(dtype, np.integer) and not np.issubdtype(np.asarray(x).dtype, np.integer):
            info = np.iinfo(dtype)
            return np.clip(np.rint(x), info.min, info.max).astype(dtype)
        return np.asarray(x).astype(dtype, copy=False)
    scale, zero = quantization
    info = np.iinfo(dtype)
    # TFLite stores the scale as float32 and its kernels compute zero_point + round(x / scale):
    # rounding *before* adding the zero point decides exact .5 ties on x / scale itself (an
    # odd zero point would flip them otherwise). The Android demo's Kotlin core does the same,
    # and its committed golden data depends on it.
    q = np.rint(np.asarray(x, dtype=np.float64) / float(np.float32(scale))) + zero
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize_affine(y: np.ndarray, quantization: tuple[float, int] | None) -> np.ndarray:
    """Values as float32: ``(q - zero_point) * scale`` when quantized (scale as float32)."""
    if quantization is None or quantization[0] == 0.0:
        return np.asarray(y, dtype=np.float32)
    scale, zero = quantization
    # For 8- and 16-bit q the product of (q - zero_point) and a float32 scale is exact in
    # float64, so its one rounding to float32 is what a float32 multiply (TFLite, Kotlin) gives.
    centred = np.asarray(y, dtype=np.float64) - zero
    return (centred * float(np.float32(scale))).astype(np.float32)


def quantize(x: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float (or uint8 pixel values) → the tensor's dtype, with its scale/zero point if any."""
    return quantize_affine(x, spec.dtype, spec.quantization)


def dequantize(y: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """The tensor's values as float32 (``(q - zero_point) * scale`` when quantized)."""
    return dequantize_affine(y, spec.quantization)


def _softmax_fg(logits: np.ndarray, axis: int) -> np.ndarray:
    z = logits.astype(np.float64)
    if z.shape[axis] == 1:  # a single logit: sigmoid
        return (1.0 / (1.0 + np.exp(-z))).astype(np.float32)
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return np.take(e / e.sum(axis=axis, keepdims=True), [1], axis=axis).astype(np.float32)


class Session(ABC):
    """A loaded model: ``session(image)`` → foreground probability.

    Attributes:
        name: display name (artifact file name, or ``torch-reference``).
        runtime: ``"torch"``, ``"onnxruntime"``, ``"litert"``, ``"coreml-reference"``,
            ``"coreml"``, ``"executorch"`` or ``"device"``.
        input_size: ``(H, W)`` the model takes.
        manifest: the artifact's manifest, or ``None`` (peer models, the torch reference).
        contract: how images map onto native tensors (:class:`IOContract`).
    """

    runtime: str = "?"

    def __init__(
        self,
        name: str,
        input_size: tuple[int, int],
        manifest: dict[str, Any] | None,
        contract: IOContract,
    ) -> None:
        self.name = name
        self.input_size = input_size
        self.manifest = manifest
        self.contract = contract

    # -- native access (no pre/post-processing) -------------------------------------------
    @abstractmethod
    def run_native(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """Run the model on tensors in its own dtype/shape/layout; returns its raw outputs."""

    def native_inputs(self, seed: int = 0) -> list[np.ndarray]:
        """Random inputs in the model's own dtype, shape and layout (for benchmarking)."""
        rng = np.random.default_rng(seed)
        out = []
        for spec in self.contract.inputs:
            dtype = np.dtype(spec.dtype)
            shape = tuple(max(1, d) for d in spec.shape)
            if np.issubdtype(dtype, np.integer):
                info = np.iinfo(dtype)
                arr = rng.integers(info.min, int(info.max) + 1, size=shape).astype(dtype)
            elif self.contract.io == "raw":
                arr = rng.normal(0.0, 0.01, size=shape).astype(dtype)  # normalised pixels
            else:
                arr = rng.random(size=shape).astype(dtype)
            out.append(arr)
        return out

    # -- the common contract --------------------------------------------------------------
    def __call__(self, image: np.ndarray) -> np.ndarray:
        """uint8 RGB ``[1, H, W, 3]`` → float32 foreground probability ``[1, H, W, 1]``."""
        h, w = self.input_size
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.shape != (1, h, w, 3):
            raise ImageError(
                f"{self.name} takes uint8 RGB [1, {h}, {w}, 3], got {image.dtype} "
                f"{list(image.shape)}",
                hint="use sinet_deploy.models.preprocessing.load_input",
            )
        io = self.contract.io
        if io == "peer":
            raise ArtifactError(
                f"{self.name} has no sinet-deploy manifest, so its input contract is unknown",
                hint="peer models can only be benchmarked (native_inputs/run_native)",
            )
        spec_in, spec_out = self.contract.inputs[0], self.contract.outputs[0]
        if io == "raw":
            x = normalize_rgb(image)  # NCHW float32
            if spec_in.layout == "nhwc":
                x = x.transpose(0, 2, 3, 1)
            x = quantize(x, spec_in)
        else:
            x = image if spec_in.layout != "nchw" else image.transpose(0, 3, 1, 2)
            x = quantize(x, spec_in)
        y = dequantize(self.run_native([np.ascontiguousarray(x)])[0], spec_out)
        out_layout = spec_out.layout or guess_layout(tuple(y.shape))
        if io == "raw":
            axis = 1 if out_layout == "nchw" else 3
            y = _softmax_fg(y, axis)
        if out_layout == "nchw":
            y = y.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(y.reshape(1, h, w, 1), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        """Name, runtime, input size and tensor specs, for reports and ``--json``."""
        return {
            "name": self.name,
            "runtime": self.runtime,
            "input_size": list(self.input_size),
            "io": self.contract.io,
            "inputs": [s.as_dict() for s in self.contract.inputs],
            "outputs": [s.as_dict() for s in self.contract.outputs],
        }

    def __repr__(self) -> str:
        h, w = self.input_size
        return f"<{type(self).__name__} {self.name} {self.runtime} {h}x{w} io={self.contract.io}>"


def spatial_size(spec: TensorSpec) -> tuple[int, int]:
    """(H, W) of a 4-D image tensor in its layout (guessed when not recorded)."""
    shape = spec.shape
    layout = spec.layout or guess_layout(shape)
    if len(shape) != 4:
        raise ArtifactError(
            f"input {spec.name!r} has shape {list(shape)}, not a 4-D image",
            hint="sinet-deploy sessions take one image input",
        )
    return (shape[2], shape[3]) if layout == "nchw" else (shape[1], shape[2])
