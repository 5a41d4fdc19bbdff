"""``sinet-deploy export``: user errors (exit 2), a real export (exit 0), a failed gate (exit 3)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sinet_deploy.verify import tolerances
from sinet_deploy.verify.tolerances import Tolerance

FAST = ("--weights", "random", "--formats", "onnx", "--input-size", "64x64")


def _one_line_error(result: Any, code: int, *words: str) -> None:
    assert result.code == code, (result.out, result.err)
    assert "Traceback" not in result.err
    lines = [ln for ln in result.err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.err
    for word in words:
        assert word in lines[0], lines[0]


def test_bad_weights_path(cli: Any, tmp_path: Path) -> None:
    res = cli("export", "--weights", tmp_path / "missing.pth", "--out", tmp_path / "o")
    _one_line_error(res, 2, "does not exist")


def test_corrupt_weights(cli: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00garbage" * 100)
    res = cli("export", "--weights", bad, "--out", tmp_path / "o")
    assert res.code == 2 and "Traceback" not in res.err
    assert not list((tmp_path / "o").rglob("sinet_*")) if (tmp_path / "o").exists() else True


def test_out_is_a_file(cli: Any, tmp_path: Path) -> None:
    f = tmp_path / "file.txt"
    f.write_text("x")
    _one_line_error(cli("export", *FAST, "--out", f), 2, "is a file")


def test_out_not_writable(cli: Any) -> None:
    if not Path("/proc/self").exists():
        pytest.skip("needs Linux /proc as a surely read-only location")
    _one_line_error(cli("export", *FAST, "--out", "/proc/sinet_out"), 2, "/proc/sinet_out")


@pytest.mark.parametrize("size", ["225x224", "0x224", "abc"])
def test_unsupported_size(cli: Any, tmp_path: Path, size: str) -> None:
    res = cli("export", "--weights", "random", "--input-size", size, "--out", tmp_path)
    _one_line_error(res, 2)


def test_unavailable_converter_names_it(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sinet_deploy.convert import registry

    # pretend coremltools is not installed, whatever else exists in this checkout
    reg = {k: v for k, v in registry.registered().items() if k[0] != "coreml"}
    monkeypatch.setattr(registry, "registered", lambda: reg)
    res = cli("export", *FAST[:2], "--formats", "coreml", "--out", tmp_path)
    _one_line_error(res, 2, "coreml/fp32")


@pytest.mark.parametrize(
    "args", [("--formats", "keras"), ("--precisions", "int4"), ("--io", "bgr"), ("--opset", "5")]
)
def test_bad_options(cli: Any, tmp_path: Path, args: tuple[str, str]) -> None:
    _one_line_error(cli("export", *FAST, *args, "--out", tmp_path), 2, args[1])


def test_export_onnx_json(cli: Any, tmp_path: Path) -> None:
    res = cli("export", *FAST, "--precisions", "fp32,fp16", "--out", tmp_path, "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["passed"] is True and len(data["results"]) == 2
    for row in data["results"]:
        art = Path(row["artifact"])
        assert art.is_file() and Path(row["manifest"]).is_file()
        assert art.parent == tmp_path / "onnx"
        assert row["parity"]["passed"] is True
    assert not list(tmp_path.rglob(".*partial*"))


def test_failed_gate_exit_3_publishes_nothing(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    impossible = Tolerance("test: nothing can pass", max_abs_prob_diff=-1.0)
    monkeypatch.setitem(tolerances.TOLERANCES, ("onnx", "fp32"), impossible)
    res = cli("export", *FAST, "--out", tmp_path)
    assert res.code == 3 and "Traceback" not in res.err
    assert "max |Δ prob|" in res.err
    folder = tmp_path / "onnx"
    assert not (folder / "sinet_64x64_fp32.onnx").exists()
    assert not (folder / "sinet_64x64_fp32.json").exists()
    report = json.loads((folder / "sinet_64x64_fp32.failed.json").read_text())
    assert report["parity"]["passed"] is False and report["failures"]
    assert not list(folder.glob("*.onnx"))
    # --keep-failed keeps the model, under a name no one mistakes for a good one
    res = cli("export", *FAST, "--out", tmp_path, "--keep-failed", "--json")
    assert res.code == 3
    assert json.loads(res.out)["passed"] is False
    assert [p.name for p in folder.glob("*.onnx")] == ["sinet_64x64_fp32.failed.onnx"]


def test_export_log_in_a_file_reads_well(tmp_path: Path) -> None:
    """``export ... > log 2>&1``: a timestamped line per step, every artifact named in full,
    no "…", no colour codes; ``--quiet`` keeps only the result table."""
    import re
    import subprocess
    import sys

    log = tmp_path / "log"
    args = [sys.executable, "-m", "sinet_deploy", "export", "--formats", "onnx"]
    args += ["--precisions", "fp32", "--weights", "random", "--input-size", "64x64"]
    with log.open("w") as fh:
        code = subprocess.run(
            [*args, "--out", str(tmp_path / "m")], stdout=fh, stderr=subprocess.STDOUT, timeout=600
        ).returncode
    text = log.read_text()
    assert code == 0, text
    assert re.search(r"^\d\d:\d\d:\d\d \[2/3\] converting onnx fp32 \(ONNX fp32", text, re.M), text
    assert "onnx/sinet_64x64_fp32.onnx" in text and "…" not in text and "\x1b[" not in text
    quiet = subprocess.run(
        [sys.executable, "-m", "sinet_deploy", "--quiet", *args[3:], "--out", str(tmp_path / "q")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert quiet.returncode == 0 and "converting" not in quiet.stderr
    assert "sinet_64x64_fp32.onnx" in quiet.stdout
