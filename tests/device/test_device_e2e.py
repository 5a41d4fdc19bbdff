"""``device list|info|bench|simulate`` end to end: the real adb client, a private adb server,
and the simulated device (tiny models; one slow test with the exported SINet).

Every failure case must give exit 2, exactly one ``error:`` line on stderr (no traceback) and
leave no run folder on the device.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sinet_deploy.device.elf import elf_header_for_abi
from sinet_deploy.device.sim.profile import get_profile
from sinet_deploy.device.sim.server import SimulatedDevice
from tests.conftest import CALIB, need
from tests.device_support import (
    ADB,
    AdbServer,
    make_tiny_tflite,
    private_adb_server,
    read_line,
    write_images,
)

pytestmark = pytest.mark.skipif(
    ADB is None, reason="adb is not installed (Debian: apt-get install adb; CI installs it)"
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Tiny:
    fp32: Path
    int8: Path
    size32: Path
    images: Path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    d = tmp_path_factory.mktemp("tiny_models")
    return Tiny(
        make_tiny_tflite(d / "tiny_fp32.tflite"),
        make_tiny_tflite(d / "tiny_int8.tflite", int8_output=True),
        make_tiny_tflite(d / "tiny32_fp32.tflite", size=32),
        write_images(d / "images"),
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdbServer]:
    with private_adb_server(tmp_path_factory.mktemp("adb_home")) as srv:
        yield srv


@contextlib.contextmanager
def simulated(
    server: AdbServer, profile: str = "current", failure: str = "none", state: str = "device"
) -> Iterator[SimulatedDevice]:
    dev = SimulatedDevice(get_profile(profile, failure)).start()
    try:
        server.connect(dev.serial, state)
        yield dev
    finally:
        server.disconnect(dev.serial)
        dev.stop()


@pytest.fixture(scope="module")
def good(server: AdbServer) -> Iterator[SimulatedDevice]:
    with simulated(server) as dev:
        yield dev


def leftovers(dev: SimulatedDevice) -> list[str]:
    """What a run left under /data/local/tmp on the simulated device."""
    return sorted(
        str(p.relative_to(dev.sandbox.root))
        for p in (dev.sandbox.root / "data/local/tmp").rglob("*")
    )


def bench(
    cli: Any,
    server: AdbServer,
    dev: SimulatedDevice,
    model: Path,
    *extra: str,
    binary: Path | None = None,
) -> Any:
    return cli(
        "device",
        "bench",
        model,
        "--serial",
        dev.serial,
        "--benchmark-binary",
        binary or dev.benchmark_binary,
        "-P",
        server.port,
        "--runs",
        "5",
        "--warmup",
        "1",
        *extra,
    )


def assert_one_line_error(result: Any, *needles: str) -> None:
    assert result.code == 2, (result.out, result.err)
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.err
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- the happy paths -------------------------------------------------------------------------


def test_list_and_info_show_the_simulated_device(
    cli: Any, server: AdbServer, good: SimulatedDevice
) -> None:
    r = cli("device", "list", "--json", "-P", server.port)
    assert r.code == 0, r.err
    rows = {d["serial"]: d for d in r.json()["devices"]}
    assert rows[good.serial]["state"] == "device" and rows[good.serial]["simulated"] is True
    assert rows[good.serial]["model"] == "SINet_Simulated_Phone"
    human = cli("device", "list", "-H", "127.0.0.1", "-P", server.port)
    assert good.serial in human.out and "SIMULATED" in human.out
    r = cli("device", "info", "--serial", good.serial, "--json", "-P", server.port)
    info = r.json()["devices"][0]
    assert info["simulated"] is True and info["abi"] == "arm64-v8a" and info["cores"] == 8
    assert info["max_freq_mhz"] == [1800] * 4 + [2400] * 3 + [3000]
    assert info["android"] == "14" and info["sdk"] == 34 and info["battery_temp_c"] == 29.0
    assert "shell_v2" in info["adb_features"]
    human = cli("device", "info", "--serial", good.serial, "-P", server.port)
    assert "SIMULATED" in human.out and "4x1.80 GHz" in human.out


def test_bench_with_parity_json(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny: Tiny
) -> None:
    r = bench(
        cli,
        server,
        good,
        tiny.fp32,
        "--threads",
        "1",
        "--parity",
        "--images",
        tiny.images,
        "--json",
    )
    assert r.code == 0, r.err
    d = r.json()
    assert d["simulated"] is True and d["device"]["simulated"] is True
    assert d["device"]["serial"] == good.serial and d["device"]["model"]
    assert "SIMULATED" in d["note"]
    assert d["runs"] == 5 and d["median_ms"] > 0 and d["median_source"] == "median"
    assert d["fps"] == pytest.approx(1000.0 / d["median_ms"], rel=1e-3)
    assert d["delegate"] == "xnnpack" and d["delegation"]["coverage"] == "partial"
    assert (d["delegation"]["nodes_delegated"], d["delegation"]["nodes_total"]) == (2, 3)
    assert d["temperature_c"] == {"battery_before": 29.0, "battery_after": 29.0}
    p = d["parity"]
    # Same LiteRT on both ends of the simulator: the bytes must survive push/run/pull exactly.
    assert p["reference"] == "litert-desktop" and p["passed"]
    assert p["num_images"] == 3 and p["mean_iou"] == 1.0 and p["max_abs_prob_diff"] == 0.0
    assert "no PyTorch reference" in p["pytorch_note"]
    assert leftovers(good) == []


def test_int8_output_is_dequantized_from_raw_bytes(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny: Tiny
) -> None:
    r = bench(
        cli,
        server,
        good,
        tiny.int8,
        "--delegate",
        "cpu",
        "--parity",
        "--images",
        tiny.images,
        "--json",
    )
    assert r.code == 0, r.err
    d = r.json()
    assert d["delegation"]["coverage"] == "n/a"
    assert "--use_xnnpack=false" in d["benchmark_output"] or d["parity"]["passed"]
    assert d["parity"]["max_abs_prob_diff"] == 0.0 and d["parity"]["mean_iou"] == 1.0


def test_parity_gate_failure_exits_3(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny: Tiny
) -> None:
    # The tiny model is not SINet: against PyTorch SINet (seeded random weights) it must fail.
    r = bench(
        cli,
        server,
        good,
        tiny.size32,
        "--parity",
        "--images",
        tiny.images,
        "--weights",
        "random",
        "--json",
    )
    assert r.code == 3, r.err
    p = r.json()["parity"]
    assert p["reference"] == "pytorch" and not p["passed"] and p["mean_iou"] < 0.999
    assert p["vs_litert_desktop"]["mean_iou"] == 1.0
    assert leftovers(good) == []


def test_human_output_says_simulated(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny: Tiny
) -> None:
    r = bench(cli, server, good, tiny.fp32, "--op-profiling", "--taskset", "f0")
    assert r.code == 0, r.err
    assert "SIMULATED device: timings are this host's CPU" in r.out
    assert "latency [SIMULATED]" in r.out and "taskset f0" in r.out
    assert "printed no operator profile" in r.err  # the stand-in says it cannot profile ops


def test_gpu_unavailable_and_full_delegation(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny: Tiny
) -> None:
    r = bench(cli, server, good, tiny.fp32, "--delegate", "gpu", "--json")
    dl = r.json()["delegation"]
    assert dl["unavailable"] and dl["coverage"] == "none" and dl["applied"] is False
    r = bench(cli, server, good, tiny.fp32, "--delegate", "xnnpack", "--require-full-delegation")
    assert_one_line_error(r, "did not take the whole graph", "partial")
    assert leftovers(good) == []


def test_xnnpack_fp16_runs_and_is_checked(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny: Tiny
) -> None:
    pytest.importorskip("ai_edge_litert.compiled_model", reason="LiteRT < 2.0 has no CompiledModel")
    r = bench(cli, server, good, tiny.fp32, "--xnnpack-fp16", "--parity", "--images", tiny.images)
    assert r.code == 0, r.err
    assert "fp16 arithmetic (XNNPACK force-fp16)" in r.out
    r = bench(cli, server, good, tiny.fp32, "--xnnpack-fp16", "--json")
    assert r.code == 0, r.err
    assert r.json()["xnnpack_force_fp16"] is True and r.json()["median_ms"] > 0
    assert "Unconsumed cmdline flags" not in r.json()["benchmark_output"]
    assert_one_line_error(
        bench(cli, server, good, tiny.fp32, "--xnnpack-fp16", "--delegate", "cpu"),
        "--xnnpack-fp16 applies to a .tflite on the xnnpack delegate",
    )
    with simulated(server, "old") as dev:  # a TF 2.4-era benchmark_model: no such flag
        r = bench(cli, server, dev, tiny.fp32, "--xnnpack-fp16")
        assert_one_line_error(r, "does not know --xnnpack_force_fp16")
        assert leftovers(dev) == []
    assert leftovers(good) == []


def test_legacy_device_without_shell_v2(cli: Any, server: AdbServer, tiny: Tiny) -> None:
    with simulated(server, "legacy") as dev:
        r = bench(cli, server, dev, tiny.fp32, "--delegate", "cpu", "--json")
        assert r.code == 0, r.err
        d = r.json()
        assert d["device"]["abi"] == "armeabi-v7a" and "shell_v2" not in d["device"]["adb_features"]
        assert d["benchmark_output_format"] == "legacy" and d["p5_ms"] is None  # no percentiles
        assert "32-bit ARM" in d["benchmark_binary"]["elf"]
        r = bench(cli, server, dev, tiny.fp32, "--delegate", "xnnpack")
        assert_one_line_error(r, "does not know --use_xnnpack")
        assert leftovers(dev) == []


def test_env_conventions_and_several_devices(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny: Tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANDROID_ADB_SERVER_PORT", str(server.port))
    with simulated(server) as other:
        r = cli("device", "bench", tiny.fp32, "--benchmark-binary", good.benchmark_binary)
        assert_one_line_error(r, "more than one device", good.serial, other.serial)
        r = cli("device", "info", "--serial", "all", "--json")
        assert {d["serial"] for d in r.json()["devices"]} >= {good.serial, other.serial}
        monkeypatch.setenv("ANDROID_SERIAL", other.serial)
        r = cli("device", "info", "--json")
        assert [d["serial"] for d in r.json()["devices"]] == [other.serial]


def test_simulate_command_prints_one_json_line_and_runs_until_killed(server: AdbServer) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sinet_deploy", "device", "simulate", "--port", "0"],
        cwd=ROOT,
        env=server.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    serial = None
    try:
        assert proc.stdout is not None
        line = json.loads(read_line(proc.stdout, timeout=60))
        serial = line["serial"]
        assert set(line) >= {"serial", "benchmark_binary"} and line["simulated"] is True
        assert Path(line["benchmark_binary"]).read_bytes()[:4] == b"\x7fELF"
        server.connect(line["serial"])
        listing = server.adb("devices", "-l").stdout
        assert f"{line['serial']}" in listing and "model:SINet_Simulated_Phone" in listing
        assert proc.poll() is None  # still serving
    finally:
        proc.send_signal(signal.SIGTERM)  # the process this test started, by its pid
        proc.wait(timeout=20)
        if serial is not None:
            server.disconnect(serial)
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert not Path(line["sandbox"]).exists()  # its temporary folder went with it


# -- bad input and failing devices: exit 2, one line, nothing left on the device -------------


def test_no_adb_on_path(cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("ANDROID_HOME", raising=False)
    monkeypatch.delenv("ANDROID_SDK_ROOT", raising=False)
    assert_one_line_error(cli("device", "list"), "adb is not on PATH", "apt-get install adb")


def test_no_device(cli: Any, tmp_path: Path) -> None:
    with private_adb_server(tmp_path / "home") as empty:
        assert cli("device", "list", "--json", "-P", empty.port).json() == {"devices": []}
        assert_one_line_error(cli("device", "info", "-P", empty.port), "no Android device attached")


@pytest.mark.parametrize(
    "failure,state", [("unauthorized", "unauthorized"), ("offline", "offline")]
)
def test_unusable_device_states(
    cli: Any, server: AdbServer, tiny: Tiny, failure: str, state: str
) -> None:
    with simulated(server, failure=failure, state=state) as dev:
        r = bench(cli, server, dev, tiny.fp32)
        assert_one_line_error(r, f"is {state}")
        assert leftovers(dev) == []


def test_connect_refused_is_detected_although_adb_exits_0(cli: Any, server: AdbServer) -> None:
    from tests.device_support import refused_port

    with refused_port() as port:
        r = cli("device", "info", "--serial", f"127.0.0.1:{port}", "-P", server.port)
    assert_one_line_error(r, "adb connect", "failed")


def test_unconnected_network_serial_is_connected_first(cli: Any, server: AdbServer) -> None:
    dev = SimulatedDevice(get_profile("current")).start()
    try:
        r = cli("device", "info", "--serial", dev.serial, "--json", "-P", server.port)
        assert r.code == 0, r.err
        assert r.json()["devices"][0]["serial"] == dev.serial
    finally:
        server.disconnect(dev.serial)
        dev.stop()


def test_simulate_rejects_unknown_modes(cli: Any) -> None:
    assert_one_line_error(cli("device", "simulate", "--fail", "melt"), "unknown failure mode")
    assert_one_line_error(cli("device", "simulate", "--profile", "pixel"), "unknown device profile")


def test_keep_leaves_the_run_folder(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny: Tiny
) -> None:
    r = bench(cli, server, good, tiny.fp32, "--keep", "--json")
    d = r.json()
    assert d["remote_dir_kept"] is True
    kept = good.sandbox.host_path(d["remote_dir"])
    assert sorted(p.name for p in kept.iterdir()) == ["benchmark_model", "tiny_fp32.tflite"]
    server.adb("-s", good.serial, "shell", "rm", "-rf", "/data/local/tmp/sinet_deploy")
    assert leftovers(good) == []


def test_wrong_abi_binary_is_refused_before_pushing(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny: Tiny, tmp_path: Path
) -> None:
    x86 = tmp_path / "benchmark_model_x86_64"
    x86.write_bytes(elf_header_for_abi("x86_64") + b"\0" * 64)
    r = bench(cli, server, good, tiny.fp32, binary=x86)
    assert_one_line_error(r, "x86-64", "arm64-v8a")
    assert leftovers(good) == []


@pytest.mark.parametrize(
    "failure,needles",
    [
        ("crash", ("crashed", "SIGSEGV")),
        ("garbage", ("no usable timings",)),
        ("disconnect-push", ("disconnected during adb push",)),
        ("disk-full", ("storage is full",)),
    ],
)
def test_failing_devices_leave_nothing_behind(
    cli: Any, server: AdbServer, tiny: Tiny, failure: str, needles: tuple[str, ...]
) -> None:
    with simulated(server, failure=failure) as dev:
        r = bench(cli, server, dev, tiny.fp32)
        assert_one_line_error(r, *needles)
        assert leftovers(dev) == []


def test_binary_too_old_for_parity(cli: Any, server: AdbServer, tiny: Tiny) -> None:
    with simulated(server, "old") as dev:
        r = bench(cli, server, dev, tiny.fp32, "--parity", "--images", tiny.images)
        assert_one_line_error(r, "too old for on-device parity", "--output_filepath")
        assert leftovers(dev) == []


def test_bad_local_inputs(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny: Tiny, tmp_path: Path
) -> None:
    bogus = tmp_path / "model.tflite"
    bogus.write_bytes(b"not a flatbuffer")
    assert_one_line_error(bench(cli, server, good, bogus), "not a TFLite flatbuffer")
    assert_one_line_error(bench(cli, server, good, tiny.fp32, "--parity"), "--images")
    assert_one_line_error(
        bench(cli, server, good, tiny.fp32, "--parity", "--images", tmp_path / "none"),
        "does not exist",
    )
    assert_one_line_error(bench(cli, server, good, tiny.fp32, "--taskset", "zz"), "hexadecimal")
    assert leftovers(good) == []


# -- acceptance with the real exported SINet -------------------------------------------------


@pytest.mark.slow
def test_acceptance_exported_sinet_on_simulated_device(
    cli: Any, server: AdbServer, good: SimulatedDevice, exported_artifacts: dict[str, Path]
) -> None:
    """Acceptance: fp32 TFLite, --threads 1, on-device parity over ../shared/data/calib."""
    calib = need(CALIB)
    model = exported_artifacts["tflite/fp32"]
    r = cli(
        "device",
        "bench",
        model,
        "--serial",
        good.serial,
        "--benchmark-binary",
        good.benchmark_binary,
        "--threads",
        "1",
        "--parity",
        "--images",
        calib,
        "--json",
        "-P",
        server.port,
    )
    assert r.code == 0, r.err
    d = r.json()
    assert d["device"]["simulated"] is True and d["median_ms"] > 0 and d["fps"] > 0
    p = d["parity"]
    assert p["reference"] == "pytorch" and p["mean_iou"] >= 0.999 and p["passed"]
    assert p["num_images"] >= 50
    assert leftovers(good) == []
    if os.environ.get("SINET_DEVICE_ACCEPTANCE_OUT"):
        Path(os.environ["SINET_DEVICE_ACCEPTANCE_OUT"]).write_text(r.out)
