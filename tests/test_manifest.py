"""``manifest_or_none``: the bench's lenient, parsed-once reader of an artifact's sidecar."""

from __future__ import annotations

import json
import os
from pathlib import Path

from sinet_deploy.benchmark.timing import artifact_input_size
from sinet_deploy.core.manifest import manifest_or_none


def _write(path: Path, text: str, mtime_ns: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(mtime_ns, mtime_ns))


def test_missing_broken_or_deeply_nested_manifest_is_none(tmp_path: Path) -> None:
    artifact = tmp_path / "sinet_96x128_fp32.tflite"
    assert manifest_or_none(artifact) is None
    sidecar = tmp_path / "sinet_96x128_fp32.json"
    for i, text in enumerate(["{not json", "[1, 2]", "[" * 100_000 + "]" * 100_000]):
        _write(sidecar, text, 10**18 + i)
        assert manifest_or_none(artifact) is None
    # The bench falls back to the size in the file name instead of failing.
    assert artifact_input_size(artifact) == (96, 128)
    sidecar.unlink()
    sidecar.mkdir()
    assert manifest_or_none(artifact) is None


def test_a_rewritten_manifest_is_read_again_and_results_are_copies(tmp_path: Path) -> None:
    artifact = tmp_path / "m.tflite"
    sidecar = tmp_path / "m.json"
    _write(sidecar, json.dumps({"precision": "fp32"}), 10**18)
    first = manifest_or_none(artifact)
    assert first == {"precision": "fp32"}
    first["precision"] = "edited by a caller"
    assert manifest_or_none(artifact) == {"precision": "fp32"}
    _write(sidecar, json.dumps({"precision": "int8"}), 10**18 + 1)
    assert manifest_or_none(artifact) == {"precision": "int8"}
