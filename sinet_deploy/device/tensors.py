"""Model files and raw tensor bytes, the way benchmark_model reads and writes them.

``--input_layer_value_files`` takes a tensor's bytes exactly (no header) and
``--output_filepath`` writes every output tensor's bytes one after another, in output order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sinet_deploy.core.errors import ArtifactError
from sinet_deploy.runtimes.base import TensorSpec


def nbytes(spec: TensorSpec) -> int:
    """Size in bytes of a tensor with this spec."""
    return int(np.prod(spec.shape)) * np.dtype(spec.dtype).itemsize


def split_outputs(raw: bytes, specs: Sequence[TensorSpec]) -> list[np.ndarray]:
    """Cut ``--output_filepath`` bytes into output tensors; ``ValueError`` if sizes differ."""
    sizes = [nbytes(s) for s in specs]
    if len(raw) != sum(sizes):
        raise ValueError(
            f"the output file has {len(raw)} bytes, expected {sum(sizes)} "
            f"({' + '.join(str(n) for n in sizes)})"
        )
    arrays, offset = [], 0
    for spec, size in zip(specs, sizes, strict=True):
        dtype = np.dtype(spec.dtype)
        arrays.append(
            np.frombuffer(raw, dtype=dtype, count=size // dtype.itemsize, offset=offset)
            .reshape(spec.shape)
            .copy()
        )
        offset += size
    return arrays


def check_tflite(path: Path) -> None:
    """A readable ``.tflite`` flatbuffer (file identifier ``TFL3``), else :class:`ArtifactError`."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"model {path} does not exist", hint="check the path")
    if path.suffix != ".tflite":
        raise ArtifactError(
            f"{path.name} is not a .tflite model",
            hint="device bench runs LiteRT models; export with --formats tflite",
        )
    with open(path, "rb") as fh:
        head = fh.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        raise ArtifactError(
            f"{path.name} is not a TFLite flatbuffer (no TFL3 identifier)",
            hint="re-export the model",
        )
