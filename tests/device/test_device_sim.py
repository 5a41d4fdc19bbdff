"""The simulated device without adb: its shell, its stand-in benchmark_model (parsed back by the
real parser for every output vintage), its sync service and the adb message framing."""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from sinet_deploy.device.bench_output import parse_benchmark_output
from sinet_deploy.device.sim import protocol as p
from sinet_deploy.device.sim.profile import get_profile
from sinet_deploy.device.sim.sandbox import Sandbox
from sinet_deploy.device.sim.services import SyncService, run_shell_service
from sinet_deploy.device.sim.shell import Shell, tokenize
from sinet_deploy.device.sim.standin import is_standin, run_standin, write_standin
from tests.device_support import OUT_SCALE, OUT_ZERO, make_tiny_tflite

TMP = "/data/local/tmp"


def make_shell(root: Path, profile: str = "current", failure: str = "none") -> Shell:
    prof = get_profile(profile, failure)
    return Shell(Sandbox(root, prof), prof, run_standin)


@pytest.fixture
def sh(tmp_path: Path) -> Shell:
    return make_shell(tmp_path / "dev")


def test_tokenizer() -> None:
    assert tokenize("a 'b c' \"d $? e\" f\\ g") == [
        ("word", "a"),
        ("word", "b c"),
        ("word", "d \0status\0 e"),
        ("word", "f g"),
    ]
    assert tokenize("x; y && z || w 2>&1 >/dev/null") == [
        ("word", "x"),
        ("op", ";"),
        ("word", "y"),
        ("op", "&&"),
        ("word", "z"),
        ("op", "||"),
        ("word", "w"),
        ("redir", "2>&1"),
        ("redir", "1>/dev/null"),
    ]


def test_shell_commands_and_exit_codes(sh: Shell) -> None:
    assert sh.run("getprop ro.product.cpu.abi").out == b"arm64-v8a\n"
    assert b"[ro.sinet_deploy.simulated]: [1]" in sh.run("getprop").out
    res = sh.run(f"mkdir -p {TMP}/a/b && echo ok; cat /nope; echo rc=$?")
    assert res.out == b"ok\nrc=1\n" and b"No such file" in res.err
    assert sh.run("frobnicate").rc == 127
    assert b"Read-only file system" in sh.run("mkdir /system/x").err
    assert sh.run("mkdir /data/x").rc == 1  # /data itself is not the shell user's
    assert sh.run(f"echo hi > {TMP}/a/f && cat {TMP}/a/f").out == b"hi\n"
    assert sh.run(f"cat {TMP}/a/nope 2>/dev/null").err == b""
    assert sh.run(f"rm -rf {TMP}/a && ls {TMP}").out == b""
    assert sh.run("false || exit 7").rc == 7
    assert sh.run("cat ../../../../etc/passwd").rc == 1  # nothing outside the sandbox
    assert b"temperature: 290" in sh.run("dumpsys battery").out
    assert sh.run("cat /sys/devices/system/cpu/cpu7/cpufreq/cpuinfo_max_freq").out == b"3000000\n"
    assert sh.run("taskset 100 true").rc == 1  # CPU 8 does not exist on an 8-core profile
    assert b"Available" in sh.run(f"df {TMP}").out


def test_executing_files(sh: Shell, tmp_path: Path) -> None:
    host = sh.sandbox.host_path(TMP)
    (host / "script").write_text("#!/bin/sh\necho hi\n")
    (host / "script").chmod(0o755)
    assert sh.run(f"{TMP}/script").rc == 126
    assert sh.run(f"{TMP}/missing").rc == 127
    x86 = host / "x86"
    x86.write_bytes(
        b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack("<HH", 3, 62) + bytes(44)
    )
    x86.chmod(0o644)
    assert b"Permission denied" in sh.run(f"{TMP}/x86").err
    x86.chmod(0o755)
    res = sh.run(f"{TMP}/x86")
    assert res.rc == 126 and b"not executable: 64-bit ELF file" in res.err
    standin = write_standin(tmp_path / "bm", "arm64-v8a")
    assert is_standin(standin.read_bytes()[:200])
    real_arm = host / "real_arm"
    real_arm.write_bytes(standin.read_bytes()[:64] + b"real code")
    real_arm.chmod(0o755)
    assert b"runs only the sinet-deploy stand-in" in sh.run(f"{TMP}/real_arm").err


@pytest.mark.parametrize(
    "profile,fmt", [("current", "current"), ("old", "tf2"), ("legacy", "legacy")]
)
def test_standin_output_of_each_vintage_parses(tmp_path: Path, profile: str, fmt: str) -> None:
    shell = make_shell(tmp_path / "dev", profile)
    host = shell.sandbox.host_path(TMP)
    make_tiny_tflite(host / "m.tflite")
    abi = shell.profile.abi
    write_standin(host / "bm", abi)
    res = shell.run(
        f"{TMP}/bm --graph={TMP}/m.tflite --num_threads=2 --num_runs=7 "
        "--warmup_runs=2 --min_secs=0 --warmup_min_secs=0 2>&1"
    )
    assert res.rc == 0, res.out
    out = parse_benchmark_output(res.out.decode())
    assert out.format == fmt
    assert out.inference is not None and out.inference.count == 7
    assert out.warmup is not None and out.warmup.count == 2
    assert out.inference_avg_us > 0
    if fmt == "current":
        assert out.inference.median is not None  # percentiles, as current builds print
        assert out.delegation.replacements  # XNNPACK applied by default
    elif out.inference.all_same:
        # Every run timed alike (whole microseconds on a tiny model): the one value printed
        # is the median too, and the parser says so.
        assert out.median_source == "median" and out.median_us == out.inference.curr
    else:
        assert out.median_source.startswith("mean")
        assert out.median_us == out.inference_avg_us


@pytest.mark.parametrize(
    "line,median,source",
    [
        ("count=7 curr=12(all same)", 12.0, "median"),
        ("count=7 first=10 curr=12 min=9 max=14 avg=11.5 std=1", 11.5, "mean"),
        (
            "count=7 first=10 curr=12 min=9 max=14 avg=11.5 std=1 p5=9 median=11 p95=14",
            11,
            "median",
        ),
    ],
)
def test_old_and_new_stat_lines_give_the_median_or_say_mean(
    line: str, median: float, source: str
) -> None:
    run = "Running benchmark for at least {} iterations and at least 0 seconds"
    text = "\n".join(
        [
            run.format(2),
            "count=2 first=40 curr=40 min=40 max=40 avg=40 std=0",
            run.format(7),
            line,
            "Inference timings in us: Init: 100, First inference: 50, "
            "Warmup (avg): 40, Inference (avg): 11.5",
        ]
    )
    out = parse_benchmark_output(text)
    assert out.inference is not None and out.inference.count == 7
    assert out.median_us == median and out.median_source.startswith(source)


def test_standin_flags_delegates_and_output_file(sh: Shell) -> None:
    host = sh.sandbox.host_path(TMP)
    make_tiny_tflite(host / "m.tflite", int8_output=True)
    write_standin(host / "bm", "arm64-v8a")
    pixels = np.full((1, 16, 16, 3), 200, np.uint8)
    (host / "in.bin").write_bytes(pixels.tobytes())
    base = (
        f"{TMP}/bm --graph={TMP}/m.tflite --num_runs=1 --warmup_runs=0 --min_secs=0 "
        "--warmup_min_secs=0"
    )
    res = sh.run(
        f"{base} --use_xnnpack=true --input_layer=image "
        f"--input_layer_shape=1,16,16,3 --input_layer_value_files=image:{TMP}/in.bin "
        f"--output_filepath={TMP}/out.bin --enable_op_profiling=true --bogus=1 2>&1"
    )
    text = res.out.decode()
    assert res.rc == 0 and "Unconsumed cmdline flags: --bogus=1" in text
    # CAST uint8->float is not XNNPACK's: the graph is partially delegated, as on a phone.
    assert "partially executed by the delegate w/ 1 delegate kernels" in text
    assert "not available in the SIMULATED benchmark_model" in text
    q = np.frombuffer((host / "out.bin").read_bytes(), np.int8)
    prob = (q.astype(np.float32) - OUT_ZERO) * OUT_SCALE
    assert q.size == 256 and prob == pytest.approx(1 / (1 + np.exp(-(200 * 0.016 - 0.9))), abs=4e-3)
    res = sh.run(f"{base} --use_gpu=true --require_full_delegation=true 2>&1")
    assert res.rc == 1 and b"GPU acceleration is unsupported" in res.out
    (host / "short.bin").write_bytes(b"12")
    res = sh.run(
        f"{base} --input_layer=image --input_layer_shape=1,16,16,3 "
        f"--input_layer_value_files=image:{TMP}/short.bin 2>&1"
    )
    assert res.rc == 134 and b"should be 768 bytes" in res.out
    res = sh.run(f"{base} --input_layer=a,b --input_layer_shape=1,16,16,3 2>&1")
    assert res.rc == 1 and b"must match the number of items" in res.out


def test_standin_failure_modes(tmp_path: Path) -> None:
    for failure, rc in (("crash", 139), ("garbage", 0)):
        shell = make_shell(tmp_path / failure, "current", failure)
        host = shell.sandbox.host_path(TMP)
        make_tiny_tflite(host / "m.tflite")
        write_standin(host / "bm", "arm64-v8a")
        res = shell.run(f"{TMP}/bm --graph={TMP}/m.tflite")
        assert res.rc == rc
        assert b"Inference (avg)" not in res.out + res.err
    old = make_shell(tmp_path / "old", "old")
    host = old.sandbox.host_path(TMP)
    make_tiny_tflite(host / "m.tflite")
    write_standin(host / "bm", "arm64-v8a")
    res = old.run(f"{TMP}/bm --graph={TMP}/m.tflite --num_runs=1 --output_filepath={TMP}/o 2>&1")
    assert res.rc == 0 and b"Unconsumed cmdline flags: --output_filepath" in res.out
    assert not (host / "o").exists()


class _PipeIO:
    """The device end of a stream, fed from a byte string; replies collected."""

    def __init__(self, data: bytes) -> None:
        self.data, self.replies = bytearray(data), bytearray()

    def read(self, size: int) -> bytes:
        chunk = bytes(self.data[:size])
        del self.data[:size]
        return chunk

    def write(self, data: bytes) -> None:
        self.replies += data


def _req(ident: bytes, payload: bytes) -> bytes:
    return ident + struct.pack("<I", len(payload)) + payload


def test_sync_service_send_recv_stat_list(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "dev", get_profile("current"))
    body = bytes(range(256)) * 300  # two DATA chunks
    send = _req(b"SEND", f"{TMP}/d/f.bin,{0o100755}".encode())
    send += _req(b"DATA", body[:65536]) + _req(b"DATA", body[65536:])
    send += b"DONE" + struct.pack("<I", 1_700_000_000)
    io = _PipeIO(
        send
        + _req(b"STAT", f"{TMP}/d/f.bin".encode())
        + _req(b"LIST", f"{TMP}/d".encode())
        + _req(b"RECV", f"{TMP}/d/f.bin".encode())
        + _req(b"RECV", b"/nope")
        + b"QUIT"
    )
    SyncService(io, sandbox, lambda n: None).serve()
    r = bytes(io.replies)
    assert r[:8] == b"OKAY\0\0\0\0"
    mode, size, mtime = struct.unpack("<III", r[12:24])
    assert r[8:12] == b"STAT" and size == len(body) and mode & 0o777 == 0o755
    assert mtime == 1_700_000_000
    assert b"DENT" in r and b"f.bin" in r
    assert body in r.replace(b"DATA" + struct.pack("<I", 65536), b"").replace(
        b"DATA" + struct.pack("<I", len(body) - 65536), b""
    )
    assert r.endswith(
        b"FAIL"
        + struct.pack("<I", len(b"open failed: No such file or directory"))
        + b"open failed: No such file or directory"
    )
    assert (tmp_path / "dev" / "data/local/tmp/d/f.bin").read_bytes() == body


def test_sync_send_full_disk_and_readonly(tmp_path: Path) -> None:
    sandbox = Sandbox(tmp_path / "dev", get_profile("current", "disk-full"))
    io = _PipeIO(
        _req(b"SEND", f"{TMP}/f,33188".encode()) + _req(b"DATA", b"x" * 10) + b"DONE\0\0\0\0"
    )
    SyncService(io, sandbox, lambda n: None).serve()
    assert b"No space left on device" in io.replies
    assert not list((tmp_path / "dev/data/local/tmp").iterdir())  # no partial file left
    io = _PipeIO(_req(b"SEND", b"/system/f,33188") + _req(b"DATA", b"x") + b"DONE\0\0\0\0")
    SyncService(io, Sandbox(tmp_path / "dev2", get_profile("current")), lambda n: None).serve()
    assert b"Read-only file system" in io.replies


def test_shell_service_v1_and_v2_framing(sh: Shell) -> None:
    io = _PipeIO(b"")
    run_shell_service(io, "shell,v2,raw:echo hi; cat /nope; exit 3", lambda: sh)
    r = bytes(io.replies)
    assert r.startswith(b"\x01" + struct.pack("<I", 3) + b"hi\n")
    assert r.endswith(b"\x03" + struct.pack("<I", 1) + b"\x03")
    io = _PipeIO(b"")
    run_shell_service(io, "shell:echo hi", lambda: sh)
    assert bytes(io.replies) == b"hi\r\n"  # a pty's line endings, as old devices give


def test_protocol_framing_and_garbage() -> None:
    a, b = socket.socketpair()
    try:
        msg = p.Message(p.A_WRTE, 3, 7, b"payload")
        a.sendall(p.pack(msg))
        assert p.read_message(b) == msg
        a.sendall(b"\0" * 24)
        with pytest.raises(p.ProtocolError, match="bad magic"):
            p.read_message(b)
        a.close()
        assert p.read_message(b) is None
    finally:
        b.close()


def test_device_answers_cnxn_with_banner_and_opens_streams(tmp_path: Path) -> None:
    from sinet_deploy.device.sim.server import SimulatedDevice

    with SimulatedDevice(get_profile("current"), workdir=tmp_path) as dev:
        sock = socket.create_connection(("127.0.0.1", dev.port), timeout=5)
        sock.sendall(p.pack(p.Message(p.A_CNXN, p.A_VERSION, p.MAX_PAYLOAD, b"host::\0")))
        reply = p.read_message(sock)
        assert reply is not None and reply.command == p.A_CNXN
        assert reply.payload.startswith(b"device::") and b"features=shell_v2" in reply.payload
        sock.sendall(p.pack(p.Message(p.A_OPEN, 9, 0, b"shell,v2,raw:getprop ro.serialno\0")))
        got = [p.read_message(sock) for _ in range(2)]
        assert got[0] is not None and got[0].command == p.A_OKAY and got[0].arg1 == 9
        assert got[1] is not None and got[1].command == p.A_WRTE
        assert b"SINETSIM0001" in got[1].payload
        sock.sendall(p.pack(p.Message(p.A_OPEN, 10, 0, b"reboot:\0")))
        seen = threading.Event()
        while not seen.is_set():
            m = p.read_message(sock)
            assert m is not None
            if m.command == p.A_CLSE and m.arg1 == 10 and m.arg0 == 0:
                seen.set()  # unknown services are refused with CLSE(0, id)
            elif m.command == p.A_WRTE:
                sock.sendall(p.pack(p.Message(p.A_OKAY, m.arg1, m.arg0)))
        sock.close()
