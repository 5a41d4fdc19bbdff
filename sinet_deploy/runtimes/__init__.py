"""Load an artifact → a callable session with one contract for every runtime.

``load_session(path)`` picks the runtime from the file type (``.onnx`` → ONNX Runtime,
``.tflite`` → LiteRT, ``.mlpackage``/``.mlmodel`` → CoreML when registered, ``.pte`` →
ExecuTorch) and reads the manifest beside it when there is one; ``torch_reference()`` is the
PyTorch fp32 reference.
Every session maps ``uint8 RGB [1,H,W,3]`` → ``float32 probability [1,H,W,1]``; see
:class:`sinet_deploy.runtimes.base.Session`.

Other runtimes (CoreML, a phone) plug in with :func:`register_loader`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sinet_deploy.core.errors import ArtifactError, UserInputError
from sinet_deploy.runtimes.base import Session, TensorSpec
from sinet_deploy.runtimes.torch_rt import TorchSession, torch_reference

#: Suffix → ``loader(path, manifest, threads=, provider=) -> Session``.
Loader = Callable[..., Session]
_LOADERS: dict[str, Loader] = {}


def register_loader(suffix: str, loader: Loader) -> None:
    """Make :func:`load_session` open files ending in ``suffix`` (e.g. ``".mlpackage"``)."""
    _LOADERS[suffix.lower()] = loader


def _onnx_loader(path: Path, manifest: dict[str, Any] | None, **kw: Any) -> Session:
    from sinet_deploy.runtimes.onnx_rt import OnnxSession

    return OnnxSession(path, manifest, **kw)


def _litert_loader(path: Path, manifest: dict[str, Any] | None, **kw: Any) -> Session:
    from sinet_deploy.runtimes.litert_rt import LiteRTSession

    return LiteRTSession(path, manifest, **kw)


def _coreml_loader(path: Path, manifest: dict[str, Any] | None, **kw: Any) -> Session:
    from sinet_deploy.runtimes.coreml_rt import load_coreml

    return load_coreml(path, manifest, **kw)


def _executorch_loader(path: Path, manifest: dict[str, Any] | None, **kw: Any) -> Session:
    from sinet_deploy.runtimes.executorch_rt import ExecuTorchSession

    return ExecuTorchSession(path, manifest, **kw)


register_loader(".onnx", _onnx_loader)
register_loader(".tflite", _litert_loader)
register_loader(".mlpackage", _coreml_loader)  # NumPy reference evaluator off macOS
register_loader(".pte", _executorch_loader)


def _optional_manifest(path: Path) -> dict[str, Any] | None:
    from sinet_deploy.core.manifest import manifest_path

    mpath = manifest_path(path)
    if not mpath.is_file():
        return None  # a peer model: its specs come from the file itself
    try:
        data = json.loads(mpath.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(
            f"manifest {mpath.name} beside {path.name} is unreadable ({exc})",
            hint="re-export the model, or delete the broken manifest",
        ) from None
    return data if isinstance(data, dict) else None


def load_session(path: str | Path, *, threads: int = 1, provider: str = "cpu") -> Session:
    """Open an artifact (ours, with a manifest, or a third-party peer model) as a session.

    Args:
        path: ``.onnx``, ``.tflite``, ``.mlpackage`` or ``.pte`` (more via :func:`register_loader`).
        threads: intra-op threads of the runtime.
        provider: ``"cpu"`` (default; LiteRT keeps its XNNPACK delegate), runtime-specific
            extras such as ``"reference"`` for LiteRT without delegates.

    Raises:
        ArtifactError: missing, unreadable or unsupported file.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ArtifactError(f"artifact {p} does not exist", hint="check the path")
    if threads < 1:
        raise UserInputError(f"threads must be ≥ 1, got {threads}")
    loader = _LOADERS.get(p.suffix.lower())
    if loader is None:
        raise ArtifactError(
            f"{p.name}: unsupported model type {p.suffix or '(no suffix)'}",
            hint=f"supported: {', '.join(sorted(_LOADERS))}",
        )
    if p.is_dir() and p.suffix.lower() not in (".mlpackage",):
        raise ArtifactError(f"{p} is a directory", hint="pass the model file")
    return loader(p, _optional_manifest(p), threads=threads, provider=provider)


def open_session(
    path: str | Path, manifest: dict[str, Any] | None, *, threads: int = 1, provider: str = "cpu"
) -> Session:
    """Like :func:`load_session` but with the manifest given, not read from beside the file.

    The export pipeline gates a model under its temporary name, before its manifest exists.
    """
    p = Path(path)
    loader = _LOADERS.get(p.suffix.lower())
    if loader is None:
        raise ArtifactError(
            f"{p.name}: unsupported model type {p.suffix or '(no suffix)'}",
            hint=f"supported: {', '.join(sorted(_LOADERS))}",
        )
    return loader(p, manifest, threads=threads, provider=provider)


__all__ = [
    "Session",
    "TensorSpec",
    "TorchSession",
    "load_session",
    "open_session",
    "register_loader",
    "torch_reference",
]
