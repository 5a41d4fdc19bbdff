"""``device bench MODEL.pte --runner PATH``: the executor_runner output parser, the ELF check,
and end to end through the real adb client against the simulated device and its stand-in
executor_runner (a tiny program exported here, not the real SINet).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sinet_deploy.core.errors import DeviceError
from sinet_deploy.device.bench_output import BenchOutputError
from sinet_deploy.device.elf import check_binary_for_device, elf_header_for_abi
from sinet_deploy.device.et_output import (
    parse_runner_output,
    runner_command,
    timings,
    unknown_flags,
)
from sinet_deploy.device.sim.et_standin import is_et_standin, write_et_standin
from sinet_deploy.device.sim.profile import get_profile
from sinet_deploy.device.sim.server import SimulatedDevice
from tests.device_support import (
    ADB,
    AdbServer,
    make_tiny_tflite,
    private_adb_server,
    write_images,
)

# -- recorded-style outputs ------------------------------------------------------------------
# The format of ET_LOG with the posix PAL (runtime/platform/default/posix.cpp) and the lines of
# examples/portable/executor_runner/executor_runner.cpp, per version.

CURRENT = """\
I 00:00:00.000412 executorch:executor_runner.cpp:364] Resetting threadpool with num threads = 4
I 00:00:00.001203 executorch:executor_runner.cpp:520] Model file /data/local/tmp/m.pte is loaded.
I 00:00:00.001220 executorch:executor_runner.cpp:530] Using method forward
I 00:00:00.001236 executorch:executor_runner.cpp:587] Setting up CPU planned buffer 0, size 1204224.
I 00:00:00.019874 executorch:executor_runner.cpp:660] Model loaded in 18.612000 ms.
I 00:00:00.031002 executorch:executor_runner.cpp:800] Iteration 1 of 5: 11.000000 ms
I 00:00:00.040102 executorch:executor_runner.cpp:800] Iteration 2 of 5: 9.000000 ms
I 00:00:00.048202 executorch:executor_runner.cpp:800] Iteration 3 of 5: 8.000000 ms
I 00:00:00.058202 executorch:executor_runner.cpp:800] Iteration 4 of 5: 10.000000 ms
I 00:00:00.065202 executorch:executor_runner.cpp:800] Iteration 5 of 5: 7.000000 ms
I 00:00:00.065300 executorch:executor_runner.cpp:812] Model executed successfully 5 time(s) in \
45.000000 ms.
I 00:00:00.065310 executorch:executor_runner.cpp:820] 1 outputs:
OutputX 0: tensor(sizes=[1, 224, 224, 1], [0.01, 0.02, ..., 0.99])
"""

TOTAL_ONLY = """\
I 00:00:00.000300 executorch:executor_runner.cpp:170] Resetting threadpool with num threads = 2
I 00:00:00.000900 executorch:executor_runner.cpp:283] Model file m.pte is loaded.
I 00:00:00.000910 executorch:executor_runner.cpp:292] Using method forward
I 00:00:00.000920 executorch:executor_runner.cpp:339] Setting up planned buffer 0, size 1204224.
I 00:00:00.310000 executorch:executor_runner.cpp:430] Model executed successfully 20 time(s) in \
250.500000 ms.
I 00:00:00.310010 executorch:executor_runner.cpp:436] 1 outputs:
Output 0: tensor(sizes=[1, 224, 224, 1], [0.01, 0.02, ..., 0.99])
"""

# The same lines read back from logcat (`adb logcat -v brief`), e.g. pasted by a user.
LOGCAT = """\
I/ExecuTorch( 1234): Resetting threadpool with num threads = 4
I/ExecuTorch( 1234): Model loaded in 20.5 ms.
I/ExecuTorch( 1234): Iteration 1 of 3: 12.5 ms
I/ExecuTorch( 1234): Iteration 2 of 3: 10.25 ms
I/ExecuTorch( 1234): Iteration 3 of 3: 10.75 ms
I/ExecuTorch( 1234): Model executed successfully 3 time(s) in 33.5 ms.
"""


def test_current_runner_per_iteration_lines() -> None:
    out = parse_runner_output(CURRENT)
    assert out.format == "per-iteration" and out.executions == 5
    assert out.iterations_ms == [11.0, 9.0, 8.0, 10.0, 7.0]
    assert out.total_ms == 45.0 and out.load_ms == 18.612 and out.threads == 4
    t = timings(out, warmup=1)  # the first execution is the warm-up
    assert t.runs == 4 and t.median_source == "median"
    assert t.median_ms == 8.5 and t.mean_ms == 8.5
    assert (t.min_ms, t.max_ms, t.first_ms, t.warmup_mean_ms) == (7.0, 10.0, 11.0, 11.0)


def test_total_only_runner_gives_the_mean_and_says_so() -> None:
    out = parse_runner_output(TOTAL_ONLY)
    assert out.format == "total" and out.executions == 20 and out.iterations_ms == []
    assert out.load_ms is None and out.threads == 2
    t = timings(out, warmup=5)
    assert t.median_ms == pytest.approx(12.525) and t.runs == 20
    assert "warm-up included" in t.median_source and "only their total" in t.median_source
    assert t.p5_ms is None and t.min_ms is None


def test_logcat_lines_and_windows_line_ends() -> None:
    out = parse_runner_output(LOGCAT.replace("\n", "\r\n"))
    assert out.format == "per-iteration" and out.iterations_ms == [12.5, 10.25, 10.75]
    assert timings(out, warmup=0).median_ms == 10.75


@pytest.mark.parametrize(
    "text,needle",
    [
        ("", "no 'Model executed successfully'"),
        ("segmentation fault\n", "no 'Model executed successfully'"),
        (
            "I 00:00:00.000001 executorch:executor_runner.cpp:9] Model executed successfully.\n",
            "prints no execution time",
        ),
        ("OutputX 0: tensor(sizes=[1, 2], [0.5, 0.5])\n", "android PAL"),
        (
            "F 00:00:00.000100 executorch:executor_runner.cpp:300] In function main(), assert "
            "failed (method.ok()): Loading of method forward failed with status 0x20\n",
            "Loading of method forward failed",
        ),
        (
            "I 00:00:00.1 executorch:executor_runner.cpp:1] Iteration 1 of 2: 5.0 ms\n"
            "I 00:00:00.2 executorch:executor_runner.cpp:1] "
            "Model executed successfully 2 time(s) in 5.0 ms.\n",
            "1 iteration line(s) for 2",
        ),
        (
            "I 00:00:00.1 executorch:executor_runner.cpp:1] Iteration 1 of 1: 5.0 ms\n"
            "I 00:00:00.2 executorch:executor_runner.cpp:1] "
            "Model executed successfully 1 time(s) in 9.0 ms.\n",
            "iterations sum to",
        ),
        ("Model executed successfully 3 time(s) in nan ms.\n", "impossible time"),
        ("Model executed successfully 0 time(s) in 0.000000 ms.\n", "no execution"),
    ],
)
def test_unusable_outputs_are_refused(text: str, needle: str) -> None:
    with pytest.raises(BenchOutputError, match=None) as info:
        parse_runner_output(text)
    assert needle in str(info.value)


def test_no_timed_execution_after_the_warm_up() -> None:
    out = parse_runner_output(LOGCAT)
    with pytest.raises(BenchOutputError, match="none after the 3 warm-up"):
        timings(out, warmup=3)


def test_command_line_and_unknown_flags() -> None:
    cmd = runner_command("/d/r/executor_runner", "/d/r/m 1.pte", threads=2, executions=6)
    assert cmd == (
        "/d/r/executor_runner --model_path='/d/r/m 1.pte' --num_executions=6 --cpu_threads=2 2>&1"
    )
    assert runner_command("/r", "/m.pte", threads=1, executions=1, taskset="f0").startswith(
        "taskset f0 /r "
    )
    assert unknown_flags("ERROR: unknown command line flag 'num_executions'\n") == [
        "num_executions"
    ]


def test_elf_check_of_the_runner(tmp_path: Path) -> None:
    arm64 = write_et_standin(tmp_path / "executor_runner", "arm64-v8a")
    assert is_et_standin(arm64.read_bytes()[:200])
    assert check_binary_for_device(arm64, ["arm64-v8a", "armeabi-v7a"]).abi == "arm64-v8a"
    x86 = tmp_path / "executor_runner_x86_64"
    x86.write_bytes(elf_header_for_abi("x86_64") + b"\0" * 64)
    with pytest.raises(DeviceError, match="x86-64") as info:
        check_binary_for_device(x86, ["arm64-v8a"], "executor_runner")
    assert "runner executor_runner_x86_64" in str(info.value)
    assert "-DANDROID_ABI=arm64-v8a" in info.value.one_line()
    script = tmp_path / "runner.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(DeviceError, match="is a script"):
        check_binary_for_device(script, ["arm64-v8a"], "executor_runner")
    with pytest.raises(DeviceError, match="does not exist") as info:
        check_binary_for_device(tmp_path / "nothing", ["arm64-v8a"], "executor_runner")
    assert "executor_runner" in info.value.one_line()


# -- end to end: device simulate + the real adb client ---------------------------------------

e2e = pytest.mark.skipif(
    ADB is None, reason="adb is not installed (Debian: apt-get install adb; CI installs it)"
)

SIZE = 16


@pytest.fixture(scope="module")
def tiny_pte(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny fp32 program (conv-BN-PReLU … with the artifacts' image I/O) and its manifest."""
    pytest.importorskip("executorch", reason="the executorch extra is not installed")
    import torch
    from torch import nn

    from sinet_deploy.convert.torch_to_executorch import lower_to_pte
    from sinet_deploy.core.manifest import write_manifest
    from tests._tiny import TinyNet

    class TinyImage(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = TinyNet()

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.net(image.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    out = tmp_path_factory.mktemp("tiny_pte") / "tiny_fp32.pte"
    example = torch.zeros(1, SIZE, SIZE, 3, dtype=torch.uint8)
    facts = lower_to_pte(TinyImage().eval(), example, out)
    write_manifest(
        out,
        {
            "format": "executorch",
            "precision": "fp32",
            "input_size": [SIZE, SIZE],
            "inputs": [
                {"name": "image", "shape": [1, SIZE, SIZE, 3], "dtype": "uint8", "layout": "nhwc"}
            ],
            "outputs": [
                {
                    "name": "foreground",
                    "shape": [1, SIZE, SIZE, 1],
                    "dtype": "float32",
                    "layout": "nhwc",
                }
            ],
            "graph": facts,
        },
    )
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdbServer]:
    if ADB is None:
        pytest.skip("adb is not installed")
    with private_adb_server(tmp_path_factory.mktemp("adb_home")) as srv:
        yield srv


@contextlib.contextmanager
def simulated(
    server: AdbServer, profile: str = "current", failure: str = "none"
) -> Iterator[SimulatedDevice]:
    dev = SimulatedDevice(get_profile(profile, failure)).start()
    try:
        server.connect(dev.serial, "device")
        yield dev
    finally:
        server.disconnect(dev.serial)
        dev.stop()


@pytest.fixture(scope="module")
def good(server: AdbServer) -> Iterator[SimulatedDevice]:
    with simulated(server) as dev:
        yield dev


def leftovers(dev: SimulatedDevice) -> list[str]:
    return sorted(
        str(p.relative_to(dev.sandbox.root))
        for p in (dev.sandbox.root / "data/local/tmp").rglob("*")
    )


def bench(
    cli: Any, server: AdbServer, dev: SimulatedDevice, model: Path, *extra: Any, runner: Any = None
) -> Any:
    return cli(
        "device",
        "bench",
        model,
        "--serial",
        dev.serial,
        "--runner",
        runner or dev.executorch_runner,
        "-P",
        server.port,
        "--runs",
        "5",
        "--warmup",
        "2",
        *extra,
    )


def assert_one_line_error(result: Any, *needles: str) -> None:
    assert result.code == 2, (result.out, result.err)
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.err
    assert "Traceback" not in result.err
    for needle in needles:
        assert needle in lines[0], lines[0]


@e2e
def test_bench_pte_json(cli: Any, server: AdbServer, good: SimulatedDevice, tiny_pte: Path) -> None:
    r = bench(cli, server, good, tiny_pte, "--threads", "1", "--json")
    assert r.code == 0, r.err
    d = r.json()
    assert d["simulated"] is True and d["device"]["simulated"] is True
    assert "SIMULATED" in d["note"] and "executor_runner" in d["note"]
    assert d["runtime"] == "executorch" and d["artifact"] == "tiny_fp32.pte"
    assert d["median_source"] == "median" and d["runs"] == 5 and d["warmup_runs"] == 2
    assert d["executions"] == 7 and d["median_ms"] > 0
    assert d["fps"] == pytest.approx(1000.0 / d["median_ms"], rel=1e-3)
    assert d["min_ms"] <= d["median_ms"] <= d["max_ms"]
    assert d["init_ms"] is not None and d["threads_reported"] == 1
    assert d["runner"]["elf"].startswith("a 64-bit AArch64 ELF")
    assert d["benchmark_output_format"] == "executor_runner (per-iteration)"
    assert d["delegation"]["applied"] is True and "XNNPACK" in d["delegation"]["coverage"]
    assert "OutputX 0: tensor(sizes=[1, 16, 16, 1]" in d["benchmark_output"]
    assert leftovers(good) == []


@e2e
def test_on_device_parity_of_a_pte(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny_pte: Path, tmp_path: Path
) -> None:
    images = write_images(tmp_path / "images")
    r = bench(cli, server, good, tiny_pte, "--parity", "--images", images, "--json")
    assert r.code == 0, r.err
    p = r.json()["parity"]
    # The simulator runs the same ExecuTorch runtime: the bytes must survive push, run, pull.
    assert p["desktop_runtime"] == "executorch" and p["reference"] == "executorch-desktop"
    assert p["num_images"] == 3 and p["passed"] is True
    assert p["mean_iou"] == 1.0 and p["max_abs_prob_diff"] == 0.0
    assert p["vs_executorch_desktop"] == p["vs_desktop"]
    assert "no PyTorch reference" in p["pytorch_note"]
    assert leftovers(good) == []
    human = bench(cli, server, good, tiny_pte, "--parity", "--images", images)
    assert human.code == 0 and "vs desktop ExecuTorch" in human.out


@e2e
def test_human_output_says_simulated(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny_pte: Path
) -> None:
    r = bench(cli, server, good, tiny_pte)
    assert r.code == 0, r.err
    assert "SIMULATED device" in r.out and "executor_runner" in r.out
    assert "[SIMULATED]" in r.out and "median" in r.out and "FPS" in r.out


@e2e
def test_older_runner_prints_only_the_total(cli: Any, server: AdbServer, tiny_pte: Path) -> None:
    with simulated(server, "old") as dev:
        r = bench(cli, server, dev, tiny_pte, "--json")
        assert r.code == 0, r.err
        d = r.json()
        assert d["simulated"] is True and d["executions"] == 7 and d["runs"] == 7
        assert "warm-up included" in d["median_source"]
        assert d["median_ms"] == pytest.approx(d["total_execution_ms"] / 7, rel=1e-3)
        assert d["p5_ms"] is None and d["fps"] > 0
        assert leftovers(dev) == []


@e2e
@pytest.mark.parametrize(
    "failure,needles",
    [
        ("crash", ("executor_runner crashed", "SIGSEGV")),
        ("garbage", ("no usable timings",)),
        ("disk-full", ("storage is full",)),
    ],
)
def test_failing_devices_give_one_line(
    cli: Any, server: AdbServer, tiny_pte: Path, failure: str, needles: tuple[str, ...]
) -> None:
    with simulated(server, failure=failure) as dev:
        r = bench(cli, server, dev, tiny_pte)
        assert_one_line_error(r, *needles)
        assert leftovers(dev) == []


@e2e
def test_wrong_abi_runner_is_refused_before_pushing(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny_pte: Path, tmp_path: Path
) -> None:
    x86 = tmp_path / "executor_runner_x86_64"
    x86.write_bytes(elf_header_for_abi("x86_64") + b"\0" * 64)
    r = bench(cli, server, good, tiny_pte, runner=x86)
    assert_one_line_error(r, "x86-64", "arm64-v8a")
    assert leftovers(good) == []


@e2e
def test_mismatched_binaries_and_options(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny_pte: Path, tmp_path: Path
) -> None:
    tflite = make_tiny_tflite(tmp_path / "tiny.tflite")
    # a .tflite with --runner, a .pte with --benchmark-binary or without --runner
    assert_one_line_error(bench(cli, server, good, tflite), "--runner runs ExecuTorch programs")
    r = cli(
        "device", "bench", tflite, "--serial", good.serial, "-P", server.port,
        "--benchmark-binary", good.benchmark_binary, "--runs", "2", "--json",
    )  # fmt: skip
    assert r.code == 0 and r.json()["benchmark_binary"]["output_format"] == "current", r.err
    r = cli(
        "device", "bench", tiny_pte, "--serial", good.serial, "-P", server.port,
        "--benchmark-binary", good.benchmark_binary,
    )  # fmt: skip
    assert_one_line_error(r, "a .pte needs --runner")
    r = cli("device", "bench", tiny_pte, "--serial", good.serial, "-P", server.port)
    assert_one_line_error(r, "pass --runner PATH")
    assert_one_line_error(bench(cli, server, good, tiny_pte, "--delegate", "gpu"), "--delegate")
    assert_one_line_error(bench(cli, server, good, tiny_pte, "--op-profiling"), "--op-profiling")
    bogus = tmp_path / "bogus.pte"
    bogus.write_bytes(b"not a program at all")
    assert_one_line_error(bench(cli, server, good, bogus), "not an ExecuTorch program")
    assert leftovers(good) == []


@e2e
def test_runner_without_the_timing_flags(
    cli: Any, server: AdbServer, good: SimulatedDevice, tiny_pte: Path
) -> None:
    # The oldest runners know only --model_path: gflags refuses the rest.
    from sinet_deploy.device.adb import Adb

    adb = Adb(None, port=server.port)
    run_dir = "/data/local/tmp/sinet_deploy_probe"
    adb.shell(good.serial, f"mkdir -p {run_dir}")
    try:
        adb.push(good.serial, [good.executorch_runner], f"{run_dir}/r")
        adb.shell(good.serial, f"chmod 755 {run_dir}/r")
        res = adb.shell(good.serial, f"{run_dir}/r --num_iter=3 2>&1")
        assert res.rc == 1 and unknown_flags(res.text) == ["num_iter"]
    finally:
        adb.shell(good.serial, f"rm -rf {run_dir}")
