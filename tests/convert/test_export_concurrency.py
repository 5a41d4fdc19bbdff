"""Two ``export`` runs into one ``--out``: no lost artifact, no manifest beside a foreign model.

The races are made deterministic: either the test itself holds the artifact's lock, or two real
processes run and the test asserts what holds in every interleaving.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sinet_deploy.core.fileio import Busy, exclusive, publish, work_dir
from sinet_deploy.core.manifest import sha256_path
from tests.conftest import result_lines

FAST = ("--weights", "random", "--formats", "onnx", "--precisions", "fp32", "--input-size", "64x64")
NAME = "sinet_64x64_fp32"


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TMPDIR"] = str(tmp_path / "tmp")
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _export_proc(out: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sinet_deploy", "export", *FAST, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _assert_consistent(folder: Path) -> None:
    """Every manifest sits beside a model whose sha256 it records; no leftovers."""
    for manifest in folder.glob("*.json"):
        if manifest.name.endswith(".failed.json"):
            continue
        data = json.loads(manifest.read_text())
        model = folder / data["artifact"]
        assert model.is_file(), f"{manifest.name} describes a missing {model.name}"
        assert sha256_path(model) == data["artifact_sha256"]
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_two_concurrent_exports_one_folder(tmp_path: Path) -> None:
    out = tmp_path / "cc"
    env = _env(tmp_path)
    procs = [_export_proc(out, env) for _ in range(2)]
    results = [(p.wait(timeout=600), *p.communicate(timeout=60)) for p in procs]
    codes = [r[0] for r in results]
    assert 0 in codes, results
    for code, _stdout, stderr in results:
        assert code in (0, 2), stderr
        assert "Traceback" not in stderr
        if code == 2:
            lines = result_lines(stderr)
            assert len(lines) == 1 and "another sinet-deploy run is writing" in lines[0], stderr
    folder = out / "onnx"
    assert (folder / f"{NAME}.onnx").is_file() and (folder / f"{NAME}.json").is_file()
    _assert_consistent(folder)
    assert not list((tmp_path / "tmp").rglob("sinet_export_*"))


def test_locked_artifact_exit_2_keeps_the_published_one(cli: Any, tmp_path: Path) -> None:
    res = cli("export", *FAST, "--out", tmp_path)
    assert res.code == 0, res.err
    folder = tmp_path / "onnx"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with exclusive(folder / f".{NAME}.onnx.lock"):  # another run is writing this artifact
        res = cli("export", *FAST, "--out", tmp_path)
    assert res.code == 2 and "Traceback" not in res.err
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1, res.err
    assert "another sinet-deploy run is writing" in lines[0] and "--out" in lines[0]
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    # and once the other run is done, a new export replaces the pair consistently
    res = cli("export", *FAST, "--out", tmp_path)
    assert res.code == 0, res.err
    _assert_consistent(folder)


def test_killed_runs_leftovers_are_removed(cli: Any, tmp_path: Path) -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text()) if Path("/proc").exists() else 0
    if not pid_max:
        pytest.skip("needs /proc/sys/kernel/pid_max for a pid that cannot be alive")
    dead = pid_max + 1  # above pid_max: no process can have it
    folder = tmp_path / "onnx"
    folder.mkdir()
    stale = folder / f".{NAME}.partial-{dead}-0000.onnx"
    stale.write_bytes(b"half a model")
    live = folder / f".{NAME}.partial-{os.getpid()}-0000.onnx"  # ours: alive, kept
    live.write_bytes(b"in progress")
    res = cli("export", *FAST, "--out", tmp_path)
    assert res.code == 0, res.err
    assert not stale.exists() and live.exists()


def test_lock_is_exclusive_and_leaves_no_file(tmp_path: Path) -> None:
    lock = tmp_path / ".x.lock"
    with exclusive(lock):
        with pytest.raises(Busy), exclusive(lock):
            pass
        assert lock.exists()
    assert not lock.exists()
    with exclusive(lock):  # free again
        pass


def test_publish_replaces_a_directory_without_a_gap(tmp_path: Path) -> None:
    old, new = tmp_path / "m.mlpackage", tmp_path / ".m.partial-1-0.mlpackage"
    (old / "Data").mkdir(parents=True)
    (old / "Data" / "w.bin").write_text("old")
    (new / "Data").mkdir(parents=True)
    (new / "Data" / "w.bin").write_text("new")
    publish(new, old)
    assert (old / "Data" / "w.bin").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["m.mlpackage"]


def test_work_dir_removes_dead_runs_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text()) if Path("/proc").exists() else 0
    if not pid_max:
        pytest.skip("needs /proc/sys/kernel/pid_max for a pid that cannot be alive")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    root = tmp_path / f"sinet_deploy-{os.getuid()}"
    (root / f"sinet_export_{pid_max + 1}_abc").mkdir(parents=True)
    (root / f"sinet_export_{os.getpid()}_abc").mkdir()
    with work_dir("sinet_export_") as wd:
        assert wd.parent == root and wd.is_dir()
        names = sorted(p.name for p in root.iterdir())
    assert names == sorted([f"sinet_export_{os.getpid()}_abc", wd.name])
    assert not wd.exists()


#: Runs the real CLI with the ONNX fp32 converter wrapped so that, once the partial model is
#: written, the process says READY and blocks on stdin: the test interrupts it at that exact
#: point, with no timing involved.
_PAUSED_EXPORT = """
import signal, sys
# A shell that starts a job in the background (CI harnesses do) makes it ignore SIGINT, and so
# would this child: give it a terminal's Ctrl-C behaviour, which is what the test is about.
signal.signal(signal.SIGINT, signal.default_int_handler)
from sinet_deploy.convert import registry
entry = registry.registered()[("onnx", "fp32")]
def paused(ctx, target):
    converted = entry.fn(ctx, target)
    assert target.dest.exists()
    print("READY", flush=True)
    sys.stdin.read()
    return converted
registry.register_converter("onnx", "fp32", paused, replace=True)
from sinet_deploy.cli.app import main
main(sys.argv[1:])
"""


def test_ctrl_c_leaves_no_partial_files(tmp_path: Path) -> None:
    import signal

    out = tmp_path / "out"
    env = _env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-c", _PAUSED_EXPORT, "export", *FAST, "--out", str(out)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "READY"
        assert list((out / "onnx").glob(f".{NAME}.partial-*"))  # mid-export, as intended
        assert list((tmp_path / "tmp").rglob("sinet_export_*"))
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, stderr
    assert result_lines(stderr) == ["interrupted"], stderr
    assert not list(out.rglob("*partial*")) and not list(out.rglob(".*.lock"))
    assert not list((out / "onnx").glob("sinet_*"))  # nothing that looks like an artifact
    assert not list((tmp_path / "tmp").rglob("sinet_export_*"))
