"""A NumPy reference evaluator for Core ML ML programs (``.mlpackage``), usable on Linux.

Core ML itself only runs on Apple platforms (coremltools' ``predict`` needs
``libcoremlpython``, shipped in macOS wheels only). To check on Linux that a converted program
computes what PyTorch computes, this package reads the saved package — the MIL program protobuf
and its weight blob — and evaluates every op with NumPy:

>>> program = load_program("sinet_224x224_fp16.mlpackage")
>>> outputs = MILEvaluator(program)({"image": rgb_nchw_float32})

Results are a *reference evaluation of the converted program*, labelled ``coreml-reference``,
not measurements of Apple's runtime. An op without a kernel raises :class:`UnsupportedOpError`
naming it; nothing is skipped.
"""

from __future__ import annotations

from sinet_deploy.runtimes.mil_eval import nn_ops, ops  # noqa: F401  (register the kernels)
from sinet_deploy.runtimes.mil_eval.evaluator import (
    LABEL,
    EvaluationError,
    MILEvaluator,
    UnsupportedOpError,
)
from sinet_deploy.runtimes.mil_eval.program import (
    Inline,
    Op,
    Program,
    TensorType,
    load_program,
)
from sinet_deploy.runtimes.mil_eval.registry import KERNELS, kernel, supported_ops

__all__ = [
    "KERNELS",
    "LABEL",
    "EvaluationError",
    "Inline",
    "MILEvaluator",
    "Op",
    "Program",
    "TensorType",
    "UnsupportedOpError",
    "kernel",
    "load_program",
    "supported_ops",
]
