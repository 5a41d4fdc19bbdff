"""Shared fixtures: where ../shared is, and a private weights cache seeded from it.

Tests that need ../shared skip with a reason when it is absent (CI always has it). No test
touches the user's own cache: SINET_DEPLOY_HOME points at a per-session temporary folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SINET_SHARED", ROOT.parent / "shared"))
SHARED_WEIGHTS = SHARED / "weights" / "SINet_EG1800.pth"
GOLDEN = SHARED / "golden"
CALIB = SHARED / "data" / "calib"
HOLDOUT = SHARED / "data" / "holdout"
PEERS = SHARED / "peers"


def need(path: Path) -> Path:
    """Skip the calling test (with the reason) when a ../shared file is absent."""
    if not path.exists():
        pytest.skip(f"{path} is absent: this test needs ../shared beside the project")
    return path


@pytest.fixture(scope="session")
def sinet_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private, empty SINET_DEPLOY_HOME for the whole session."""
    home = tmp_path_factory.mktemp("sinet_home")
    old = os.environ.get("SINET_DEPLOY_HOME")
    os.environ["SINET_DEPLOY_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("SINET_DEPLOY_HOME", None)
    else:
        os.environ["SINET_DEPLOY_HOME"] = old


@pytest.fixture(scope="session")
def official_weights(sinet_home: Path) -> Path:
    """The official checkpoint, imported into the private cache (``--weights official`` works)."""
    need(SHARED_WEIGHTS)
    dest = sinet_home / "weights" / "SINet_EG1800.pth"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SHARED_WEIGHTS, dest)
    return dest


@pytest.fixture(autouse=True)
def _isolated_home(sinet_home: Path) -> None:
    """Every test sees the private cache, never ~/.cache/sinet_deploy."""
    os.environ["SINET_DEPLOY_HOME"] = str(sinet_home)


def result_lines(stderr: str) -> list[str]:
    """stderr's non-empty lines without the plain progress lines a non-terminal run prints."""
    import re

    from sinet_deploy.cli.progress import PLAIN_LINE

    return [ln for ln in stderr.splitlines() if ln.strip() and not re.match(PLAIN_LINE, ln)]


class CliResult:
    """Exit code, stdout, and stderr without the plain progress lines (``raw_err`` has them):
    outside a terminal each step prints a timestamped line, and tests read the rest."""

    def __init__(self, code: int, out: str, err: str) -> None:
        import re

        from sinet_deploy.cli.progress import PLAIN_LINE

        self.code, self.out, self.raw_err = code, out, err
        self.err = "".join(
            line for line in err.splitlines(keepends=True) if not re.match(PLAIN_LINE, line)
        )

    def json(self) -> object:
        import json

        return json.loads(self.out)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Run ``sinet-deploy ARGS`` in-process through the real entry point (exit code, out, err)."""
    from sinet_deploy.cli.app import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def exported_artifacts(
    official_weights: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The official SINet exported ONCE per session at 224x224 (ONNX + TFLite, fp32 + fp16).

    Keys ``"onnx/fp32"``, ``"onnx/fp16"``, ``"tflite/fp32"``, ``"tflite/fp16"`` → artifact
    paths (each with its manifest beside it). One onnx2tf run makes both TFLite files; use this
    fixture (in ``slow`` tests) instead of converting again. Read-only: copy before modifying.
    """
    from sinet_deploy.convert.publish import export_artifacts

    out = tmp_path_factory.mktemp("exported_224")
    report = export_artifacts(
        "official",
        formats=("onnx", "tflite"),
        precisions=("fp32", "fp16"),
        out_dir=out,
        input_size=(224, 224),
    )
    report.raise_for_failures()
    return {f"{r.format}/{r.precision}": r.path for r in report.results if r.path is not None}


def one_line(res: CliResult, code: int, *words: str) -> str:
    """Exit ``code``, exactly one stderr line (progress lines aside), no traceback, and each
    of ``words`` in it; returns the line."""
    assert res.code == code, (res.out, res.err)
    assert "Traceback" not in res.err
    lines = [ln for ln in res.err.splitlines() if ln.strip()]
    assert len(lines) == 1, res.err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
