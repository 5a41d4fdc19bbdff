"""The Python API: what the CLI does, as functions that return records instead of printing.

    import sinet_deploy
    result = sinet_deploy.predict("photo.jpg")                   # PyTorch, official weights
    result = sinet_deploy.predict(pil_image, model="m.tflite")   # any exported artifact
    result.mask            # uint8 0/255, the image's own height x width
    result.probability     # float32 foreground probability, same size

    report = sinet_deploy.export(formats=["tflite"], precisions=["fp32", "int8"],
                                 out_dir="models", calib="my_portraits")
    session = sinet_deploy.load_session("models/tflite/sinet_224x224_fp32.tflite")
    result = session.predict("photo.jpg")                        # resized per its manifest
    rows = sinet_deploy.parity(["models/tflite/sinet_224x224_fp32.tflite"])   # parity --json
    rows = sinet_deploy.bench(["models/tflite/sinet_224x224_fp32.tflite"])    # bench --json

Images may be a path, a PIL image, or a uint8 array (HxWx3 RGB or HxW gray). Float arrays are
refused: whether they hold 0..1 or 0..255 (or normalised values) cannot be told apart, and a
wrong guess silently gives a wrong mask.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sinet_deploy.core.errors import ImageError

if TYPE_CHECKING:  # pragma: no cover
    from sinet_deploy.convert.publish import ExportReport
    from sinet_deploy.runtimes.base import Session

ImageLike = Any  # str | Path | PIL.Image.Image | np.ndarray


@dataclass(frozen=True)
class Prediction:
    """One image's result at the image's own resolution.

    Attributes:
        mask: uint8 ``[H, W]``, 255 where the person is (probability > 0.5), else 0.
        probability: float32 ``[H, W]`` foreground probability (bilinear from the model's size).
        runtime: what computed it (``torch``, ``onnxruntime``, ``litert``, ...).
        input_size: ``(H, W)`` the model ran at.
    """

    mask: np.ndarray
    probability: np.ndarray
    runtime: str
    input_size: tuple[int, int]

    @property
    def foreground_fraction(self) -> float:
        return float((self.mask > 0).mean())


def as_rgb(image: ImageLike) -> np.ndarray:
    """uint8 ``[H, W, 3]`` RGB from a path, a PIL image or a uint8 array.

    Raises:
        ImageError: unreadable file, or an array that is not uint8 gray/RGB/RGBA.
    """
    from sinet_deploy.models.preprocessing import _to_rgb8 as to_rgb8
    from sinet_deploy.models.preprocessing import read_image

    if isinstance(image, (str, Path)):
        return read_image(image)
    if hasattr(image, "mode") and hasattr(image, "size"):  # a PIL image
        return to_rgb8(image)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ImageError(
            f"image array has dtype {arr.dtype}; sinet-deploy takes uint8 RGB 0..255",
            hint="pass np.asarray(pil_image) or (x * 255).round().astype(np.uint8)",
        )
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 3 or arr.shape[2] not in (3, 4) or 0 in arr.shape:
        raise ImageError(
            f"image array has shape {list(arr.shape)}; expected [H, W, 3] RGB",
            hint="an RGBA array's alpha is dropped; CHW arrays need .transpose(1, 2, 0)",
        )
    return np.ascontiguousarray(arr[:, :, :3])


class ImageSession:
    """A session that takes any image and resizes it to the model's input size."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @property
    def input_size(self) -> tuple[int, int]:
        return tuple(self.session.input_size)  # type: ignore[return-value]

    @property
    def runtime(self) -> str:
        return self.session.runtime

    def predict(self, image: ImageLike) -> Prediction:
        from sinet_deploy.models.inference import MASK_THRESHOLD, resize_probability
        from sinet_deploy.models.preprocessing import image_input

        rgb = as_rgb(image)
        h, w = self.input_size
        small = np.asarray(self.session(image_input(rgb, h, w)))[0, :, :, 0]
        if not np.isfinite(small).all():
            raise ImageError(
                f"{self.session.name} returned non-finite probabilities for this image",
                hint="the model is broken (NaN/inf weights?): re-export it",
            )
        prob = resize_probability(small, rgb.shape[0], rgb.shape[1]).astype(np.float32)
        mask = np.where(prob > MASK_THRESHOLD, 255, 0).astype(np.uint8)
        return Prediction(mask, prob, self.runtime, (h, w))

    __call__ = predict

    def __repr__(self) -> str:
        return f"<ImageSession {self.session!r}>"


def load_session(artifact: str | Path, *, threads: int = 1) -> ImageSession:
    """Open an exported artifact (``.onnx``, ``.tflite``, ``.mlpackage``, ``.pte``) for an image."""
    from sinet_deploy.runtimes import load_session as _load

    return ImageSession(_load(Path(artifact), threads=threads))


@lru_cache(maxsize=4)
def _reference(weights: str, input_size: tuple[int, int]) -> ImageSession:
    from sinet_deploy.runtimes import torch_reference

    return ImageSession(torch_reference(weights=weights, input_size=input_size))


def predict(
    image: ImageLike,
    model: str | Path | None = None,
    *,
    weights: str = "official",
    input_size: tuple[int, int] = (224, 224),
) -> Prediction:
    """The person mask of one image, at the image's resolution.

    Args:
        image: a path, a PIL image or a uint8 array.
        model: an exported artifact; ``None`` runs the PyTorch reference with ``weights``.
        weights: ``"official"`` or a checkpoint path (only without ``model``).
        input_size: ``(H, W)`` the PyTorch reference runs at (an artifact has its own).
    """
    if model is not None:
        return load_session(model).predict(image)
    return _reference(str(weights), (int(input_size[0]), int(input_size[1]))).predict(image)


def export(
    weights: str | Path = "official",
    *,
    formats: Iterable[str] = ("onnx", "tflite"),
    precisions: Iterable[str] = ("fp32",),
    out_dir: str | Path = ".",
    input_size: tuple[int, int] = (224, 224),
    calib: str | Path | None = None,
    images: str | Path | None = None,
    check: bool = True,
    **options: Any,
) -> ExportReport:
    """Convert, gate and publish (``sinet-deploy export``).

    Returns the :class:`~sinet_deploy.convert.publish.ExportReport` (``.results``: one per
    artifact with its path, manifest and gate; ``.as_dict()``: the ``--json`` record).

    Raises:
        ParityGateError: a gate failed and ``check`` is true (the failed models were not
            published either way).
    """
    from sinet_deploy.convert.publish import export_artifacts

    report = export_artifacts(
        str(weights) if isinstance(weights, Path) else weights,
        formats=list(formats),
        precisions=list(precisions),
        out_dir=Path(out_dir),
        input_size=input_size,
        calib=Path(calib) if calib is not None else None,
        images=Path(images) if images is not None else None,
        **options,
    )
    if check:
        report.raise_for_failures()
    return report


def parity(
    artifacts: Sequence[str | Path],
    *,
    images: str | Path | None = None,
    weights: str = "official",
    pairs: bool = False,
    threads: int | None = None,
) -> dict[str, Any]:
    """Every artifact against PyTorch fp32: the record ``sinet-deploy parity --json`` prints
    (``results``: one row per artifact with ``passed``, ``mean_iou``, ``max_abs_prob_diff``...).
    It does not raise on a failed gate: read ``passed``."""
    from sinet_deploy.verify.parity_paths import run_parity_paths

    result = run_parity_paths(
        [Path(a) for a in artifacts],
        images=Path(images) if images is not None else None,
        weights=weights,
        pairs=pairs,
        overlay_dir=None,
        threads=threads,
    )
    return dict(result.to_dict(per_image=False))


def bench(
    artifacts: Sequence[str | Path],
    *,
    peers: Sequence[str | Path] = (),
    threads: Sequence[int] = (1,),
    runs: int = 30,
    warmup: int = 3,
    torch_row: bool = True,
    weights: str = "official",
    roofline: bool = True,
    litert_fp16: bool = False,
) -> dict[str, Any]:
    """Latency, interleaved, each model in its own process: the record ``sinet-deploy bench
    --json`` prints (``results``: one row per model and thread count; ``ceilings``: each
    runtime's dense-convolution ceiling when ``roofline``; ``machine``). ``litert_fp16`` adds
    rows run with XNNPACK's force-fp16 flag."""
    from sinet_deploy.benchmark.suite import BenchOptions, run_bench
    from sinet_deploy.core.machine import machine_info
    from sinet_deploy.core.paths import check_model_path

    options = BenchOptions(
        artifacts=tuple(check_model_path(Path(a)) for a in artifacts),
        peers=tuple(check_model_path(Path(p), "peer model") for p in peers),
        threads=tuple(threads),
        runs=runs,
        warmup=warmup,
        weights=weights,
        torch_row=torch_row,
        cuda=False,
        roofline=roofline,
        litert_fp16=litert_fp16,
    )
    result = run_bench(options)
    return {"machine": machine_info(), **result.to_dict(with_latencies=False)}
