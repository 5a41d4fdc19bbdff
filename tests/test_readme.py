"""The README's Quick Start, executed line by line as a user would type it.

The block is parsed from README.md (so a documented command that fails fails CI), run with
bash in an empty folder where the placeholders exist: ``photo.jpg`` (a packaged public-domain
portrait), ``my_portraits/`` (three licensed calibration portraits from ../shared),
``selfie_segmentation.tflite`` (MediaPipe's peer from ../shared) and, for the ``device`` line,
``./android_aarch64_benchmark_model`` from the simulated phone, which a private adb server has
connected (every device number it gives is labelled SIMULATED).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import CALIB, PEERS, need
from tests.device_support import ADB, private_adb_server

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"


def quick_start_commands(text: str) -> list[str]:
    """The ``sinet-deploy …`` commands of the first bash block under ``## Quick start``
    (continuation lines joined, trailing comments dropped)."""
    section = text.split("\n## Quick start", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S)
    assert block, "README: no bash block under ## Quick start"
    joined = block.group(1).replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line.startswith("sinet-deploy "):
            commands.append(" ".join(line.split()))
    return commands


def test_quick_start_parser_joins_continuations_and_drops_comments() -> None:
    text = (
        "x\n## Quick start\n\n```bash\nsource .venv/bin/activate  # hi\n"
        "sinet-deploy a --b c \\\n    --d e   # note\nsinet-deploy env\n```\n"
    )
    assert quick_start_commands(text) == ["sinet-deploy a --b c --d e", "sinet-deploy env"]


@pytest.mark.slow
def test_every_quick_start_command_runs(
    official_weights: Path, sinet_home: Path, tmp_path: Path
) -> None:
    commands = quick_start_commands(README.read_text(encoding="utf-8"))
    assert len(commands) >= 8 and any(c.startswith("sinet-deploy export") for c in commands)
    calib = sorted(p for p in need(CALIB).iterdir() if p.suffix.lower() in (".jpg", ".png"))
    peer = need(PEERS / "selfie_segmentation.tflite")
    work = tmp_path / "user"
    (work / "my_portraits").mkdir(parents=True)
    for p in calib[:3]:
        (work / "my_portraits" / p.name).symlink_to(p.resolve())
    shutil.copy(ROOT / "sinet_deploy" / "data" / "pd_grace_hopper.jpg", work / "photo.jpg")
    (work / "selfie_segmentation.tflite").symlink_to(peer.resolve())
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SINET_DEPLOY_HOME": str(sinet_home),
    }
    device_lines = [c for c in commands if c.startswith("sinet-deploy device")]
    for command in (c for c in commands if c not in device_lines):
        _run(command, work, env)
    if device_lines:
        _run_on_the_simulated_phone(device_lines, work, env, tmp_path)
    assert (work / "masks" / "photo_mask.png").is_file()
    assert (work / "parity" / "report.html").is_file() and (work / "bench").is_dir()


def _run(command: str, cwd: Path, env: dict[str, str]) -> None:
    res = subprocess.run(
        ["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )
    assert res.returncode == 0, f"README command failed ({res.returncode}): {command}\n{res.stderr}"


def _run_on_the_simulated_phone(
    lines: list[str], work: Path, env: dict[str, str], tmp_path: Path
) -> None:
    if ADB is None:
        pytest.skip("adb is not installed (Debian: apt-get install adb; CI installs it)")
    from sinet_deploy.device.sim.profile import get_profile
    from sinet_deploy.device.sim.server import SimulatedDevice

    with private_adb_server(tmp_path / "adb_home") as server:
        dev = SimulatedDevice(get_profile("current")).start()
        try:
            server.connect(dev.serial)
            shutil.copy(dev.benchmark_binary, work / "android_aarch64_benchmark_model")
            # server.env starts from os.environ: keep the PATH that finds sinet-deploy
            phone_env = {**env, **server.env, "PATH": env["PATH"], "ANDROID_SERIAL": dev.serial}
            for command in lines:
                _run(command, work, phone_env)
        finally:
            server.disconnect(dev.serial)
            dev.stop()
