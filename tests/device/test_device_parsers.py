# ruff: noqa: E501 - captured benchmark_model/adb output stays verbatim, long lines included
"""Fast unit tests of the device parsers on captured text: benchmark_model output of every
vintage, ``adb devices -l``, getprop/cpuinfo/battery/df, device selection, ELF headers."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from sinet_deploy.core.errors import DeviceError
from sinet_deploy.device.bench_output import (
    BenchOutputError,
    parse_benchmark_output,
    parse_stats,
    unconsumed_flags,
)
from sinet_deploy.device.elf import check_binary_for_device, elf_header_for_abi, read_elf_header
from sinet_deploy.device.info import (
    build_info,
    parse_battery_temp,
    parse_cpu_range,
    parse_cpuinfo,
    parse_df_free_mb,
    parse_getprop,
    summarize_clusters,
)
from sinet_deploy.device.listing import parse_devices, select_devices
from sinet_deploy.device.runner import summarize_delegation
from sinet_deploy.device.tensors import split_outputs
from sinet_deploy.runtimes.base import TensorSpec

# -- benchmark_model output, as printed by the tool over the years ---------------------------

CURRENT = """\
INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [4]
INFO: Graph: [/data/local/tmp/model.tflite]
INFO: #threads used for CPU inference: [4]
INFO: Use xnnpack: [1]
INFO: Loaded model /data/local/tmp/model.tflite
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
INFO: XNNPACK delegate created.
INFO: Explicitly applied XNNPACK delegate, and the model graph will be completely executed by the delegate.
INFO: The input model file size (MB): 0.400272
INFO: Initialized session in 25.3ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=60 first=15373 curr=7940 min=7861 max=15373 avg=8204.12 std=979 p5=7870 median=8013 p95=9276

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=124 first=8017 curr=7969 min=7838 max=8394 avg=8045.81 std=88 p5=7870 median=8013 p95=8276

INFO: Inference timings in us: Init: 25300, First inference: 15373, Warmup (avg): 8204.12, Inference (avg): 8045.81
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=4.6 overall=7.1
"""

TF24 = """\
STARTING!
Min num runs: [50]
Num threads: [4]
Graph: [/data/local/tmp/model.tflite]
#threads used for CPU inference: [4]
Loaded model /data/local/tmp/model.tflite
INFO: Initialized TensorFlow Lite runtime.
Explicitly applied NNAPI delegate, and the model graph will be partially executed by the delegate w/ 11 delegate kernels.
The input model file size (MB): 5.42276
Initialized session in 30.724ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=3 first=226753 curr=143630 min=143630 max=226753 avg=171396 std=39000

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 std=109798

Inference timings in us: Init: 30724, First inference: 226753, Warmup (avg): 171396, Inference (avg): 2.95034e+06
Memory footprint delta from the start of the tool (MB): init=4.21094 overall=46.0859
"""

LEGACY = """\
STARTING!
Min num runs: [50]
Num threads: [1]
Graph: [mobilenet_v1_1.0_224_quant.tflite]
Use nnapi : [0]
Loaded model mobilenet_v1_1.0_224_quant.tflite
resolved reporter
Initialized session in 4.452ms
Running benchmark for 1 iterations
count=1 curr=146161

Running benchmark for 50 iterations
count=50 first=137789 curr=137254 min=137079 max=143416 avg=137722 std=896

Average inference timings in us: Warmup: 146161, Init: 4452, no stats: 137722
"""

LOGCAT_APP = (
    "11-26 10:00:00.000  1234  1234 E tflite  : Average inference timings in us: "
    "Warmup: 91471, Init: 4108, Inference: 80660.1\n"
)

ALL_SAME = """\
INFO: Running benchmark for at least 1 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=1 curr=905463 p5=905463 median=905463 p95=905463

INFO: Running benchmark for at least 3 iterations and at least 0 seconds but terminate if exceeding 150 seconds.
INFO: count=3 curr=900000(all same)

INFO: Inference timings in us: Init: 614333, First inference: 905463, Warmup (avg): 905463, Inference (avg): 900000
"""

OP_PROFILE = (
    CURRENT
    + """\
INFO: Operator-wise Profiling Info for Regular Benchmark Runs:
============================== Run Order ==============================
\t             [node type]\t  [start]\t  [first]\t [avg ms]\t     [%]\t  [cdf%]\t  [mem KB]\t[times called]\t[Name]
\t TfLiteXNNPackDelegate\t    0.000\t    7.900\t    7.800\t 97.000%\t 97.000%\t     0.000\t        1\t[foreground]:1
============================== Summary by node type ==============================
\t             [Node type]\t  [count]\t  [avg ms]\t    [avg %]\t    [cdf %]\t  [mem KB]\t[times called]
\t   TfLiteXNNPackDelegate\t        1\t     7.800\t    97.000%\t    97.000%\t     0.000\t        1
\t                    CAST\t        1\t     0.240\t     3.000%\t   100.000%\t     0.000\t        1

Timings (microseconds): count=124 first=8017 curr=7969 min=7838 max=8394 avg=8045.81 std=88
Memory (bytes): count=0
2 nodes observed
"""
)


def test_current_format_with_percentiles() -> None:
    out = parse_benchmark_output(CURRENT)
    assert out.format == "current"
    assert out.inference is not None and out.warmup is not None
    assert out.inference.count == 124 and out.warmup.count == 60
    assert out.median_us == 8013 and out.median_source == "median"
    assert out.inference_avg_us == pytest.approx(8045.81)
    assert (out.init_us, out.first_us, out.warmup_avg_us) == (25300, 15373, 8204.12)
    assert out.inference.p95 == 8276 and out.inference.min == 7838
    assert out.delegation.delegate == "XNNPACK" and out.delegation.coverage == "full"


def test_tf2_format_without_percentiles_uses_mean_and_scientific_notation() -> None:
    out = parse_benchmark_output(TF24)
    assert out.format == "tf2"
    assert out.inference is not None and out.inference.count == 50
    assert out.inference_avg_us == pytest.approx(2.95034e6)
    assert out.median_us == pytest.approx(2.95034e6)
    assert out.median_source.startswith("mean")
    assert out.delegation.coverage == "partial" and out.delegation.delegate_kernels == 11
    assert out.delegation.delegate == "NNAPI"


def test_legacy_average_line_and_all_same_warmup() -> None:
    out = parse_benchmark_output(LEGACY)
    assert out.format == "legacy"
    assert out.inference_avg_us == 137722 and out.init_us == 4452
    assert out.warmup is not None and out.warmup.all_same and out.warmup.curr == 146161
    assert out.inference is not None and out.inference.std == 896


def test_benchmark_app_logcat_line() -> None:
    out = parse_benchmark_output(LOGCAT_APP)
    assert out.inference_avg_us == pytest.approx(80660.1) and out.init_us == 4108
    assert out.inference is None and out.median_source.startswith("mean")


def test_all_same_stats_give_the_median() -> None:
    out = parse_benchmark_output(ALL_SAME)
    assert out.inference is not None and out.inference.all_same
    assert out.median_us == 900000 and out.median_source == "median"
    assert out.warmup is not None and out.warmup.median == 905463


def test_op_profile_table_and_profiler_summary_line_are_not_run_stats() -> None:
    out = parse_benchmark_output(OP_PROFILE)
    assert out.inference is not None and out.inference.median == 8013
    assert out.op_profile == [
        {"node_type": "TfLiteXNNPackDelegate", "count": 1, "avg_ms": 7.8, "percent": 97.0},
        {"node_type": "CAST", "count": 1, "avg_ms": 0.24, "percent": 3.0},
    ]


@pytest.mark.parametrize(
    "line,kernels,coverage,name",
    [
        (
            "INFO: Explicitly applied GPU delegate, and the model graph will be partially executed by "
            "the delegate w/ 3 delegate kernels.",
            3,
            "partial",
            "GPU",
        ),
        (
            "Though NNAPI delegate is explicitly applied, the model graph will not be executed by the "
            "delegate.",
            0,
            "none",
            "NNAPI",
        ),
    ],
)
def test_delegate_lines(line: str, kernels: int, coverage: str, name: str) -> None:
    out = parse_benchmark_output(
        line + "\n" + CURRENT.split("INFO: Explicitly")[0] + CURRENT.split("delegate.\n", 1)[1]
    )
    assert out.delegation.coverage == coverage and out.delegation.delegate_kernels == kernels
    assert out.delegation.delegate == name
    summary = summarize_delegation(name.lower(), out)
    assert summary["coverage"] == coverage and summary["applied"] == (coverage != "none")


def test_replacing_lines_old_and_new_and_unavailable_gpu() -> None:
    text = (
        "VERBOSE: Replacing 5 out of 64 node(s) with delegate (TfLiteNnapiDelegate) node, "
        "yielding 5 partitions for the whole graph.\n"
        "INFO: Replacing 59 out of 62 node(s) with delegate (TfLiteXNNPackDelegate) node, "
        "yielding 5 partitions.\n"
        "INFO: Replacing 31 node(s) with delegate (TfLiteGpuDelegateV2) node, yielding 1 "
        "partitions.\n"
        "WARNING: GPU acceleration is unsupported on this platform.\n" + LEGACY
    )
    out = parse_benchmark_output(text)
    reps = out.delegation.replacements
    assert [r["delegate"] for r in reps] == [
        "TfLiteNnapiDelegate",
        "TfLiteXNNPackDelegate",
        "TfLiteGpuDelegateV2",
    ]
    assert reps[0]["nodes_total"] == 64 and reps[2]["nodes_total"] is None
    nnapi = summarize_delegation("nnapi", out)
    assert (nnapi["coverage"], nnapi["nodes_delegated"], nnapi["nodes_total"]) == ("partial", 5, 64)
    gpu = summarize_delegation("gpu", out)
    assert gpu["unavailable"] and gpu["coverage"] == "none" and gpu["applied"] is False
    assert summarize_delegation("cpu", out)["coverage"] == "n/a"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Segmentation fault\n",
        bytes((i * 37 + 11) % 256 for i in range(300)).decode("latin-1")
        + "\ncount=?? Inference timings in us: Init: n/a\n",
        "INFO: STARTING!\nINFO: Loaded model /data/local/tmp/m.tflite\n",
        "ERROR: Failed to mmap model /data/local/tmp/m.tflite\nERROR: Benchmarking failed.\n",
    ],
)
def test_unusable_output_is_an_error(text: str) -> None:
    with pytest.raises(BenchOutputError):
        parse_benchmark_output(text)


def test_inconsistent_or_empty_stats_are_errors() -> None:
    bad = CURRENT.replace("min=7838 max=8394 avg=8045.81", "min=9000 max=9100 avg=8045.81")
    with pytest.raises(BenchOutputError, match="inconsistent"):
        parse_benchmark_output(bad)
    zero = ALL_SAME.replace("count=3 curr=900000(all same)", "count=0")
    with pytest.raises(BenchOutputError, match="count=0"):
        parse_benchmark_output(zero)


def test_parse_stats_and_unconsumed_flags() -> None:
    assert parse_stats("Timings (microseconds): count=5 first=1 curr=1 min=1 max=1 avg=1") is None
    s = parse_stats("I tflite  : count=2 first=10 curr=12 min=10 max=12 avg=11 std=1")
    assert s is not None and (s.count, s.avg, s.std) == (2, 11.0, 1.0)
    text = "WARNING: Unconsumed cmdline flags: --output_filepath=/x --foo=1\n"
    assert unconsumed_flags(text) == ["--output_filepath=/x", "--foo=1"]


# -- adb devices -l ----------------------------------------------------------------------------

DEVICES = """\
* daemon not running; starting now at tcp:5037
* daemon started successfully
List of devices attached
0123456789ABCDEF       device usb:1-1 product:oriole model:Pixel_6 device:oriole transport_id:3
R58M12345XY            unauthorized usb:1-2 transport_id:4
emulator-5554          offline transport_id:5
ZY22ABCDEF             no permissions (user in plugdev group; are your udev rules wrong?); see [http://developer.android.com/tools/device.html] usb:1-4 transport_id:6
192.168.1.20:5555      device product:sinet_sim model:SINet_Simulated_Phone device:sinet_sim transport_id:7

"""


def test_parse_devices_states_and_fields() -> None:
    entries = parse_devices(DEVICES)
    assert [(e.serial, e.state) for e in entries] == [
        ("0123456789ABCDEF", "device"),
        ("R58M12345XY", "unauthorized"),
        ("emulator-5554", "offline"),
        ("ZY22ABCDEF", "no permissions"),
        ("192.168.1.20:5555", "device"),
    ]
    assert entries[0].fields["model"] == "Pixel_6" and entries[0].fields["transport_id"] == "3"
    assert "udev" in entries[3].fields["detail"] and entries[3].fields["usb"] == "1-4"
    assert entries[4].is_network and not entries[0].is_network
    assert parse_devices("List of devices attached\n\n") == []


def test_select_devices_follows_adb_conventions() -> None:
    entries = parse_devices(DEVICES)
    with pytest.raises(DeviceError, match="more than one device"):
        select_devices(entries, None)
    # $ANDROID_SERIAL picks one when --serial is absent.
    assert [e.serial for e in select_devices(entries, None, "0123456789ABCDEF")] == [
        "0123456789ABCDEF"
    ]
    assert [e.serial for e in select_devices(entries, ["all"])] == [
        "0123456789ABCDEF",
        "192.168.1.20:5555",
    ]
    with pytest.raises(DeviceError, match="unauthorized") as exc:
        select_devices(entries, ["R58M12345XY"])
    assert "Allow USB debugging" in exc.value.one_line()
    with pytest.raises(DeviceError, match="offline"):
        select_devices(entries, ["emulator-5554"])
    with pytest.raises(DeviceError, match="not found") as exc:
        select_devices(entries, ["10.0.0.9:5555"])
    assert "adb connect 10.0.0.9:5555" in exc.value.one_line()
    with pytest.raises(DeviceError, match="no Android device attached"):
        select_devices([], None)
    only = [e for e in entries if e.serial == "R58M12345XY"]
    with pytest.raises(DeviceError, match="unauthorized"):
        select_devices(only, None)


# -- device info -------------------------------------------------------------------------------

GETPROP = """\
[ro.build.version.release]: [14]
[ro.build.version.sdk]: [34]
[ro.product.cpu.abi]: [arm64-v8a]
[ro.product.cpu.abilist]: [arm64-v8a,armeabi-v7a,armeabi]
[ro.product.manufacturer]: [Google]
[ro.product.model]: [Pixel 6]
[ro.soc.manufacturer]: [Google]
[ro.soc.model]: [GS101]
[persist.sys.multiline]: [first line
second line]
[ro.board.platform]: [gs101]
"""

CPUINFO = """\
processor\t: 0
BogoMIPS\t: 49.15
CPU part\t: 0xd05

processor\t: 1
BogoMIPS\t: 49.15
CPU part\t: 0xd05

Hardware\t: Qualcomm Technologies, Inc SM8150
"""


def test_info_parsers() -> None:
    props = parse_getprop(GETPROP)
    assert props["ro.product.model"] == "Pixel 6"
    assert props["persist.sys.multiline"] == "first line\nsecond line"
    assert parse_cpuinfo(CPUINFO) == {"cores": 2, "hardware": "Qualcomm Technologies, Inc SM8150"}
    assert parse_cpu_range("0-3,6-7\n") == [0, 1, 2, 3, 6, 7]
    assert parse_battery_temp("  level: 87\n  temperature: 312\n") == 31.2
    assert parse_battery_temp("", "35000\n") == 35.0  # millidegrees on a few phones
    assert parse_battery_temp("", "") is None
    df = "Filesystem 1K-blocks Used Available Use% Mounted on\n/dev/block/dm-5 1000 10 204800 1% /data\n"
    assert parse_df_free_mb(df) == 200
    assert summarize_clusters([1800, 1800, 2400, None]) == "2x1.80 GHz + 1x2.40 GHz"


def test_build_info_marks_only_the_simulator_as_simulated() -> None:
    sections = {"cpuinfo": CPUINFO, "possible": "0-7\n", "battery": "  temperature: 290\n"}
    freqs = ["1804800", "1804800", "2419200", "", "x", "2419200", "2419200", "2841600"]
    info = build_info("abc", parse_getprop(GETPROP), sections, freqs, {"shell_v2"})
    assert info.soc == "Google GS101" and info.cores == 8 and info.sdk == 34
    assert info.max_freq_mhz[:3] == [1804, 1804, 2419] and info.max_freq_mhz[3] is None
    assert not info.simulated and info.label == "Google Pixel 6"
    sim = build_info(
        "s", {**parse_getprop(GETPROP), "ro.sinet_deploy.simulated": "1"}, sections, freqs, set()
    )
    assert sim.simulated and sim.label.endswith("[SIMULATED]")


# -- ELF ---------------------------------------------------------------------------------------


def _elf64(machine: int) -> bytes:
    return b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack("<HH", 3, machine) + bytes(44)


def test_elf_headers(tmp_path: Path) -> None:
    for abi in ("arm64-v8a", "armeabi-v7a", "x86_64", "x86"):
        info = read_elf_header(elf_header_for_abi(abi))
        assert info is not None and info.abi == (abi if abi != "armeabi-v7a" else "armeabi-v7a")
    arm64 = tmp_path / "bm_arm64"
    arm64.write_bytes(_elf64(183))
    assert check_binary_for_device(arm64, ["arm64-v8a", "armeabi-v7a"]).bits == 64
    x86 = tmp_path / "bm_x86_64"
    x86.write_bytes(_elf64(62))
    with pytest.raises(DeviceError, match="x86-64") as exc:
        check_binary_for_device(x86, ["arm64-v8a", "armeabi-v7a"])
    assert "android_aarch64" in exc.value.one_line()
    arm32 = tmp_path / "bm_arm32"
    arm32.write_bytes(elf_header_for_abi("armeabi-v7a"))
    assert check_binary_for_device(arm32, ["arm64-v8a", "armeabi-v7a"]).abi == "armeabi-v7a"
    with pytest.raises(DeviceError, match="64-bit AArch64"):
        check_binary_for_device(arm64, ["armeabi-v7a", "armeabi"])
    script = tmp_path / "bm.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    with pytest.raises(DeviceError, match="is a script"):
        check_binary_for_device(script, ["arm64-v8a"])
    with pytest.raises(DeviceError, match="does not exist"):
        check_binary_for_device(tmp_path / "nope", ["arm64-v8a"])


def test_split_outputs_by_spec() -> None:
    specs = [TensorSpec("a", (1, 2, 2, 1), "float32"), TensorSpec("b", (1, 3), "int8")]
    raw = np.arange(4, dtype=np.float32).tobytes() + bytes([1, 2, 255])
    a, b = split_outputs(raw, specs)
    assert a.shape == (1, 2, 2, 1) and a[0, 1, 1, 0] == 3.0
    assert b.tolist() == [[1, 2, -1]]
    with pytest.raises(ValueError, match="expected 19"):
        split_outputs(raw[:-1], specs)
