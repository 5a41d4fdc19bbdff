"""The device side of a run: what ``device bench`` was asked to do, the per-run folder, the
benchmark_model command line, and what its exit status and warnings mean.

The folder ``/data/local/tmp/sinet_deploy/run-<time>-<random>`` is private to one run, so
parallel runs never collide, and removing it (plus the parent when empty) leaves the device as
it was. Runs use ``--min_secs=0 --warmup_min_secs=0`` so that ``--runs N`` means exactly N timed
runs, not "N, or more until a second has passed" (the tool's default).
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sinet_deploy.core.errors import DeviceError
from sinet_deploy.device.adb import Adb, quote
from sinet_deploy.device.bench_output import unconsumed_flags

REMOTE_BASE = "/data/local/tmp/sinet_deploy"
DELEGATE_FLAG = {
    "cpu": "--use_xnnpack=false",
    "xnnpack": "--use_xnnpack=true",
    "gpu": "--use_gpu=true",
    "nnapi": "--use_nnapi=true",
}

#: benchmark_model's switch for XNNPACK's "force FP16 inference for FP32 operators".
FORCE_FP16_FLAG = "--xnnpack_force_fp16"


@dataclass(frozen=True)
class DeviceBenchOptions:
    """What ``device bench`` was asked to do (the CLI's options, checked there)."""

    artifact: Path
    #: LiteRT's benchmark_model (for a .tflite).
    benchmark_binary: Path | None = None
    threads: int = 1
    delegate: str = "xnnpack"
    runs: int = 50
    warmup: int = 5
    taskset: str | None = None
    op_profiling: bool = False
    require_full_delegation: bool = False
    keep: bool = False
    images: Path | None = None
    weights: str | None = None
    #: ExecuTorch's executor_runner (for a .pte).
    runner: Path | None = None
    #: XNNPACK computes the float operators in fp16 (``--xnnpack_force_fp16=true``).
    xnnpack_fp16: bool = False

    @property
    def is_executorch(self) -> bool:
        return Path(self.artifact).suffix == ".pte"

    @property
    def tool(self) -> str:
        """What runs the model on the device: benchmark_model or executor_runner."""
        return "executor_runner" if self.is_executorch else "benchmark_model"

    @property
    def binary(self) -> Path:
        """The executable that runs the model on the device."""
        binary = self.runner if self.is_executorch else self.benchmark_binary
        if binary is None:
            if self.is_executorch:
                raise DeviceError(
                    f"{Path(self.artifact).name} is an ExecuTorch program: pass --runner PATH",
                    hint="ExecuTorch's executor_runner built for Android with XNNPACK "
                    "(see docs/device.md)",
                )
            raise DeviceError(
                f"{Path(self.artifact).name} needs --benchmark-binary PATH",
                hint="download LiteRT's android_aarch64 benchmark_model and pass its path",
            )
        return binary


class RemoteDir:
    """The per-run folder on the device; :meth:`remove` survives a device that dropped off."""

    def __init__(self, adb: Adb, serial: str, base: str = REMOTE_BASE) -> None:
        self.adb = adb
        self.serial = serial
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.path = f"{base}/run-{stamp}-{secrets.token_hex(3)}"
        self.base = base

    def file(self, name: str) -> str:
        return f"{self.path}/{name}"

    def create(self, *subdirs: str) -> None:
        paths = " ".join(quote(self.file(s) if s else self.path) for s in ("", *subdirs))
        res = self.adb.shell(self.serial, f"mkdir -p {paths}")
        if res.rc != 0:
            raise DeviceError(
                f"cannot create {self.path} on {self.serial}: {(res.err or res.out).strip()[:200]}",
                hint="check that /data/local/tmp is writable (`adb shell ls -ld /data/local/tmp`)",
            )

    def remove(self) -> str | None:
        """Delete the folder; the reason as text if that was impossible, else ``None``."""
        for attempt in range(2):
            try:
                res = self.adb.shell(
                    self.serial,
                    f"rm -rf {quote(self.path)}; rmdir {quote(self.base)} 2>/dev/null; true",
                )
                if res.rc == 0:
                    return None
                return (res.err or res.out).strip()[:200] or f"rm exited {res.rc}"
            except DeviceError as exc:
                if attempt:
                    return exc.one_line()
                self._reconnect()
        return "unreachable"

    def _reconnect(self) -> None:
        # A dropped network device (Wi-Fi adb, a device farm, the simulator) is reconnected by
        # the adb server on its own within a second or two; `adb connect` speeds that up.
        if ":" in self.serial:
            with contextlib.suppress(DeviceError):
                self.adb.connect(self.serial, timeout=10)
        self.adb.wait_online(self.serial, timeout=15)


def _signal_name(rc: int) -> str:
    try:
        return signal.Signals(rc - 128).name
    except ValueError:
        return f"signal {rc - 128}"


def check_run(
    res_rc: int, text: str, what: str, serial: str, tool: str = "benchmark_model"
) -> None:
    """Turn a failed run of ``tool`` (benchmark_model, executor_runner) into a one-line
    :class:`DeviceError`."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    last = next((ln for ln in reversed(lines) if "error" in ln.lower() or "not " in ln), None)
    last = last or (lines[-1] if lines else "no output")
    if res_rc in (126, 127):
        if "ELF" in text:
            raise DeviceError(
                f"{serial} cannot execute the {tool} binary: {last[-160:]}",
                hint=f"pass a {tool} built for the device's ABI",
            )
        raise DeviceError(
            f"{serial} cannot execute the {tool} binary: {last[-160:]}",
            hint="check that /data/local/tmp allows execution on this device",
        )
    if res_rc > 128:
        raise DeviceError(
            f"{tool} crashed on {serial} during {what} ({_signal_name(res_rc)}, exit {res_rc})",
            hint=f"try another {tool} build or fewer threads"
            + (" or --delegate cpu" if tool == "benchmark_model" else "")
            + "; `adb logcat` shows the crash",
        )
    if res_rc != 0:
        raise DeviceError(
            f"{tool} failed on {serial} during {what} (exit {res_rc}): {last[-160:]}",
            hint="rerun with --keep and look at the output above",
        )


def unknown_flag(parsed_unconsumed: list[str], flag: str) -> bool:
    """Whether benchmark_model reported ``flag`` among its unconsumed (unknown) flags."""
    return any(u.startswith(flag + "=") or u == flag for u in parsed_unconsumed)


def bench_command(
    binary: str, model: str, opts: DeviceBenchOptions, extra: Sequence[str] = ()
) -> str:
    """The shell command for one benchmark_model run of ``model`` with ``opts``' threads,
    delegate, taskset and run counts (``opts.runs`` timed, exactly: min_secs=0)."""
    flags = [
        f"--graph={quote(model)}",
        f"--num_threads={opts.threads}",
        DELEGATE_FLAG[opts.delegate],
        *([FORCE_FP16_FLAG + "=true"] if opts.xnnpack_fp16 else []),
        f"--warmup_runs={opts.warmup}",
        f"--num_runs={opts.runs}",
        "--warmup_min_secs=0",
        "--min_secs=0",
        *extra,
    ]
    prefix = f"taskset {opts.taskset} " if opts.taskset else ""
    return f"{prefix}{quote(binary)} " + " ".join(flags) + " 2>&1"


def check_parity_flags(text: str, serial: str) -> None:
    """A one-line error when the binary ignored the flags on-device parity depends on."""
    unconsumed = unconsumed_flags(text)
    for flag in ("--output_filepath", "--input_layer_value_files"):
        if unknown_flag(unconsumed, flag):
            raise DeviceError(
                f"the benchmark_model on {serial} is too old for on-device parity: "
                f"it does not know {flag}",
                hint="use a current LiteRT benchmark_model (android_aarch64 "
                "nightly or a 2023+ release), or drop --parity",
            )
