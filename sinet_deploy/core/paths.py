"""Validation of a model path before any runtime is imported."""

from __future__ import annotations

from pathlib import Path

from sinet_deploy.core.errors import ArtifactError

#: Suffixes a session can be opened for.
MODEL_SUFFIXES = (".tflite", ".onnx", ".mlpackage", ".pte")


def check_model_path(path: Path, what: str = "artifact") -> Path:
    """A model path that exists and has a known suffix (exit 2 otherwise)."""
    if not path.exists():
        raise ArtifactError(f"{what} {path} does not exist", hint="check the path")
    if path.suffix not in MODEL_SUFFIXES:
        raise ArtifactError(
            f"{what} {path} is not a .tflite, .onnx, .mlpackage or .pte model",
            hint="pass a model file made by `sinet-deploy export` or a peer model",
        )
    if path.is_file() and path.stat().st_size == 0:
        raise ArtifactError(f"{what} {path} is empty", hint="re-export or re-download it")
    return path
