"""``manifest_or_none``: the bench's lenient, parsed-once reader of an artifact's sidecar."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from sinet_deploy.benchmark.timing import artifact_input_size
from sinet_deploy.core.manifest import manifest_or_none


def _write(path: Path, text: str, mtime_s: int) -> None:
    path.write_text(text)
    os.utime(path, (mtime_s, mtime_s))


def test_missing_broken_or_deeply_nested_manifest_is_none(tmp_path: Path) -> None:
    # Python's default limit, whatever an earlier test's library raised it to: the nesting below
    # is sized against it.
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(1000)
    try:
        _check_broken_manifests(tmp_path)
    finally:
        sys.setrecursionlimit(limit)


def _check_broken_manifests(tmp_path: Path) -> None:
    artifact = tmp_path / "sinet_96x128_fp32.tflite"
    assert manifest_or_none(artifact) is None
    sidecar = tmp_path / "sinet_96x128_fp32.json"
    # 600 levels parse, but copying them needs a deeper stack than Python allows.
    parses = '{"inputs": ' + "[" * 600 + "]" * 600 + "}"
    assert isinstance(json.loads(parses), dict)
    too_deep = "[" * 100_000 + "]" * 100_000  # the parser itself refuses this
    shape_inf = '{"inputs": [{"shape": [1, 1e400, 2, 3]}]}'  # int(inf): OverflowError
    for i, text in enumerate(["{not json", "[1, 2]", parses, too_deep, shape_inf]):
        _write(sidecar, text, 1_700_000_000 + 10 * i)
        if text is not shape_inf:
            assert manifest_or_none(artifact) is None
        # The bench falls back to the size in the file name instead of failing.
        assert artifact_input_size(artifact) == (96, 128)
    sidecar.unlink()
    sidecar.mkdir()
    assert manifest_or_none(artifact) is None


def test_a_rewritten_manifest_is_read_again_and_results_are_copies(tmp_path: Path) -> None:
    artifact = tmp_path / "m.tflite"
    sidecar = tmp_path / "m.json"
    _write(sidecar, json.dumps({"precision": "fp32"}), 1_700_000_000)
    first = manifest_or_none(artifact)
    assert first == {"precision": "fp32"}
    first["precision"] = "edited by a caller"
    assert manifest_or_none(artifact) == {"precision": "fp32"}
    _write(sidecar, json.dumps({"precision": "int8w"}), 1_700_000_010)
    assert manifest_or_none(artifact) == {"precision": "int8w"}
