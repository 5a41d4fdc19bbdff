"""The JSON sidecar written beside every artifact (CONTRACTS.md, "Artifacts").

Apps, the device runner and ``parity`` read the manifest instead of repeating constants: input
size, dtype, layout, quantization and the meaning of the output all live here.
"""

from __future__ import annotations

import copy
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from sinet_deploy.core.errors import ArtifactError
from sinet_deploy.core.fileio import file_sha256, write_text_atomic

SCHEMA_VERSION = 1

#: File suffix of each artifact format; a CoreML ML program is a directory (``.mlpackage``).
FORMAT_SUFFIX = {
    "onnx": ".onnx",
    "tflite": ".tflite",
    "coreml": ".mlpackage",
    "executorch": ".pte",
}


def artifact_name(height: int, width: int, precision: str, fmt: str) -> str:
    """``sinet_<H>x<W>_<precision>.<ext>``, e.g. ``sinet_224x224_int8.tflite``."""
    return f"sinet_{height}x{width}_{precision}{FORMAT_SUFFIX[fmt]}"


def manifest_path(artifact: Path) -> Path:
    """``<same stem>.json`` beside the artifact (works for ``.mlpackage`` directories too)."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.stem + ".json")


def sha256_path(path: Path) -> str:
    """sha256 of a file, or of a directory's files (relative names and contents, sorted)."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(child.relative_to(path).as_posix().encode())
            digest.update(b"\0")
            digest.update(file_sha256(child).encode())
        return digest.hexdigest()
    return file_sha256(path)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary name in the same folder, then rename: never half a file."""
    write_text_atomic(Path(path), json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def write_manifest(
    artifact: Path, manifest: dict[str, Any], *, artifact_sha256: str | None = None
) -> Path:
    """Write the sidecar for ``artifact``; fills in ``schema_version`` and ``artifact_sha256``.

    ``artifact_sha256``: the hash of the model as it was checked (computed here when omitted).
    """
    data = {"schema_version": SCHEMA_VERSION, **manifest}
    data["artifact"] = Path(artifact).name
    data["artifact_sha256"] = artifact_sha256 or sha256_path(artifact)
    out = manifest_path(artifact)
    write_json_atomic(out, data)
    return out


def read_manifest(artifact: Path) -> dict[str, Any]:
    """The manifest of an artifact; :class:`ArtifactError` when it is missing or unreadable."""
    path = manifest_path(Path(artifact))
    if not path.is_file():
        raise ArtifactError(
            f"no manifest {path.name} beside {Path(artifact).name}",
            hint="artifacts made by `sinet-deploy export` carry one; re-export the model",
        )
    return _load(path)


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError, UnicodeDecodeError and integers longer than
        # Python's 4300-digit limit; RecursionError a nesting deeper than the decoder's stack.
        reason = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
        raise ArtifactError(
            f"manifest {path} is not valid JSON ({reason})", hint="re-export the model"
        ) from None
    if not isinstance(data, dict):
        raise ArtifactError(f"manifest {path} is not a JSON object", hint="re-export the model")
    return data


def manifest_or_none(artifact: Path) -> dict[str, Any] | None:
    """:func:`read_manifest`, or ``None`` when there is none or it is unreadable — for callers
    that only enrich their output with it (a bench row's precision, size or MAC count).

    Parsed once per file state: one bench asks up to three times per artifact.
    """
    path = manifest_path(Path(artifact))
    try:
        st = path.stat()
    except OSError:
        return None
    # Inode and ctime too: an atomic rewrite of the same size within one mtime tick is new.
    data = _parsed(str(path), st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
    try:
        # A copy: the cached object must not change under a caller that edits its result.
        return copy.deepcopy(data)
    except RecursionError:  # nesting the parser accepted but deepcopy's deeper stack does not
        return None


@lru_cache(maxsize=64)
def _parsed(path: str, *_state: int) -> dict[str, Any] | None:
    try:
        return _load(Path(path))
    except ArtifactError:
        return None
