"""``device bench``: push the model and benchmark_model, run, parse, check parity, clean up.

Every run gets its own folder ``/data/local/tmp/sinet_deploy/run-<time>-<random>``; it is
removed at the end (also after a failure, reconnecting first when the device dropped off) unless
``keep`` is set. The binary's ELF machine is checked against the device ABI before anything is
pushed. Numbers from a simulated device carry ``simulated: true`` and a note saying what they
are: the host CPU running LiteRT, not a phone.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sinet_deploy.core.errors import DeviceError, SinetDeployError
from sinet_deploy.device.adb import Adb, quote
from sinet_deploy.device.bench_output import BenchOutput, BenchOutputError, parse_benchmark_output
from sinet_deploy.device.elf import check_binary_for_device, read_binary
from sinet_deploy.device.info import DeviceInfo, battery_temperature, read_device_info
from sinet_deploy.device.remote import (
    DELEGATE_FLAG,
    DeviceBenchOptions,
    RemoteDir,
    bench_command,
    check_run,
    unknown_flag,
)
from sinet_deploy.device.tensors import check_tflite

if TYPE_CHECKING:
    from sinet_deploy.device.parity import ParitySetup

DELEGATES = tuple(DELEGATE_FLAG)
_DELEGATE_NAME = {"xnnpack": "XNNPACK", "gpu": "GPU", "nnapi": "NNAPI"}
_KERNEL_NAME = {"xnnpack": "xnnpack", "gpu": "gpu", "nnapi": "nnapi"}
SIMULATED_NOTE = (
    "SIMULATED device: timings are this host's CPU running LiteRT through the "
    "sinet-deploy stand-in benchmark_model, not a phone"
)

Log = Callable[[str], None]


@dataclass(frozen=True)
class _Target:
    """One device of a run: how to reach it, what it is, and the run's files on it."""

    adb: Adb
    serial: str
    info: DeviceInfo
    remote: RemoteDir
    binary: str
    model: str
    say: Log

    @property
    def tag(self) -> str:
        return " [SIMULATED]" if self.info.simulated else ""


def summarize_delegation(requested: str, out: BenchOutput) -> dict[str, Any]:
    """How much of the graph the requested delegate took, from the tool's own lines."""
    d = out.delegation
    if requested == "cpu":
        return {"requested": "cpu", "applied": None, "coverage": "n/a", "messages": d.messages}
    name = _DELEGATE_NAME[requested]
    coverage = d.coverage if (d.delegate or "").upper() == name else None
    kernels = d.delegate_kernels if coverage is not None else None
    repl = [r for r in d.replacements if _KERNEL_NAME[requested] in r["delegate"].lower()]
    nodes = repl[-1] if repl else {}
    if coverage is None and nodes.get("nodes_total"):
        full = nodes["nodes_delegated"] == nodes["nodes_total"] and nodes["partitions"] == 1
        coverage = "full" if full else ("partial" if nodes["nodes_delegated"] else "none")
    if name in d.unavailable:
        coverage = "none"
    return {
        "requested": requested,
        "applied": None if coverage is None else coverage != "none",
        "coverage": coverage or "unknown",
        "delegate_kernels": kernels,
        "nodes_delegated": nodes.get("nodes_delegated"),
        "nodes_total": nodes.get("nodes_total"),
        "unavailable": name in d.unavailable,
        "messages": d.messages,
    }


def _ms(us: float | None) -> float | None:
    return None if us is None else round(us / 1000.0, 4)


def check_local_inputs(opts: DeviceBenchOptions) -> None:
    """The mistakes that need no device: unknown delegate, unusable artifact or binary.

    Raises:
        DeviceError, ArtifactError: before anything touches (or is left on) a device.
    """
    if opts.delegate not in DELEGATES:
        raise DeviceError(
            f"unknown delegate {opts.delegate!r}", hint=f"choose one of {', '.join(DELEGATES)}"
        )
    check_tflite(opts.artifact)
    read_binary(opts.benchmark_binary)


def bench_devices(
    adb: Adb, serials: list[str], opts: DeviceBenchOptions, log: Log | None = None
) -> list[dict[str, Any]]:
    """:func:`run_device_bench` on each device, in parallel when there are several."""
    if len(serials) == 1:
        return [run_device_bench(adb, serials[0], opts, log=log)]
    with ThreadPoolExecutor(max_workers=len(serials)) as pool:
        return list(pool.map(lambda s: run_device_bench(adb, s, opts, log=log), serials))


def run_device_bench(
    adb: Adb, serial: str, opts: DeviceBenchOptions, log: Log | None = None
) -> dict[str, Any]:
    """Benchmark ``opts.artifact`` on one device (and check parity if ``opts.images``).

    Raises:
        DeviceError: adb/device/binary problems (exit 2), after removing the remote folder.
        ArtifactError, ImageError: bad local inputs, before anything is pushed.
    """
    say = log or (lambda _msg: None)
    # Local mistakes first: they need no device and must not leave anything on one.
    check_local_inputs(opts)
    parity_setup = None
    if opts.images is not None:
        from sinet_deploy.device.parity import prepare_parity

        parity_setup = prepare_parity(opts.artifact, opts.images, opts.weights, opts.threads)
    info = read_device_info(adb, serial)
    tag = " [SIMULATED]" if info.simulated else ""
    say(f"{serial}{tag}: {info.label}, Android {info.android}, {info.abi}")
    elf = check_binary_for_device(opts.benchmark_binary, info.abilist)
    _check_taskset(opts.taskset, info)
    remote = RemoteDir(adb, serial)
    target = _Target(
        adb,
        serial,
        info,
        remote,
        binary=remote.file("benchmark_model"),
        model=remote.file(Path(opts.artifact).name),
        say=say,
    )
    result = _run_in_remote_dir(target, opts, parity_setup)
    result.update(
        {
            "remote_dir": remote.path,
            "remote_dir_kept": opts.keep,
            "benchmark_binary": {
                "path": str(opts.benchmark_binary),
                "elf": elf.describe(),
                "output_format": result.get("benchmark_output_format"),
            },
        }
    )
    return result


def _run_in_remote_dir(
    target: _Target, opts: DeviceBenchOptions, parity_setup: ParitySetup | None
) -> dict[str, Any]:
    """Push, time, check parity; the run folder is removed afterwards, failure or not."""
    result: dict[str, Any] = {}
    failure: BaseException | None = None
    try:
        _push(target, opts)
        result = _timed_run(target, opts)
        if parity_setup is not None:
            result["parity"] = _device_parity(target, opts, parity_setup)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if not opts.keep:
            _remove_remote_dir(target, failure, result)
    return result


def _remove_remote_dir(
    target: _Target, failure: BaseException | None, result: dict[str, Any]
) -> None:
    """Remove the run folder; when that fails, say how to do it by hand (in the error that is
    on its way up, or as a warning of the result)."""
    problem = target.remote.remove()
    if problem is None:
        return
    message = (
        f"the remote folder {target.remote.path} could not be removed ({problem}); "
        f"remove it with `adb -s {target.serial} shell rm -rf {target.remote.path}`"
    )
    if isinstance(failure, SinetDeployError):
        failure.args = (f"{failure.args[0]}; {message}",)
    elif failure is None:
        result.setdefault("warnings", []).append(message)


def _push(target: _Target, opts: DeviceBenchOptions) -> None:
    """Create the run folder and push the binary (made executable) and the model into it."""
    adb, serial = target.adb, target.serial
    target.remote.create()
    target.say(f"{serial}{target.tag}: pushing to {target.remote.path}")
    adb.push(serial, [Path(opts.benchmark_binary)], target.binary)
    res = adb.shell(serial, f"chmod 755 {quote(target.binary)}")
    if res.rc != 0:
        raise DeviceError(
            f"cannot make the benchmark binary executable on {serial}: "
            f"{(res.err or res.out).strip()[:160]}",
            hint="check /data/local/tmp permissions",
        )
    adb.push(serial, [Path(opts.artifact)], target.model)


def _device_parity(target: _Target, opts: DeviceBenchOptions, setup: ParitySetup) -> dict[str, Any]:
    from sinet_deploy.device.parity import device_parity

    target.say(f"{target.serial}{target.tag}: on-device parity on {len(setup.images)} image(s)")

    def command(*, runs: int, warmup: int, extra: list[str]) -> str:
        once = replace(opts, runs=runs, warmup=warmup)
        return bench_command(target.binary, target.model, once, extra)

    return device_parity(target.adb, target.serial, target.remote, command, setup)


def _check_taskset(mask: str | None, info: DeviceInfo) -> None:
    if mask is None:
        return
    try:
        value = int(mask, 16)
    except ValueError:
        raise DeviceError(
            f"--taskset {mask} is not a hexadecimal CPU mask", hint="e.g. --taskset f0 for CPUs 4-7"
        ) from None
    if value <= 0 or (info.cores and value >> info.cores):
        raise DeviceError(
            f"--taskset {mask} names CPUs the device lacks ({info.cores} cores)",
            hint="use a mask within the device's cores (see `device info`)",
        )


def _timed_run(target: _Target, opts: DeviceBenchOptions) -> dict[str, Any]:
    """The timed benchmark_model run, parsed into the result ``device bench`` reports."""
    adb, serial, info = target.adb, target.serial, target.info
    extra = ["--enable_op_profiling=true"] if opts.op_profiling else []
    temp_before = battery_temperature(adb, serial)
    target.say(
        f"{serial}{target.tag}: running benchmark_model ({opts.delegate}, {opts.threads} "
        f"thread(s), {opts.warmup} warm-up + {opts.runs} runs)"
    )
    command = bench_command(target.binary, target.model, opts, extra)
    res = adb.shell(serial, command, timeout=900)
    temp_after = battery_temperature(adb, serial)
    text = res.text
    check_run(res.rc, text, "the timed run", serial)
    out = _parse_output(text, serial)
    delegation = _check_delegation(out, opts, serial)
    result: dict[str, Any] = {
        "simulated": info.simulated,
        "device": info.to_dict(),
        "artifact": Path(opts.artifact).name,
        "delegate": opts.delegate,
        "threads": opts.threads,
        "taskset": opts.taskset,
        **_latency(out, opts),
        "delegation": delegation,
        "temperature_c": {"battery_before": temp_before, "battery_after": temp_after},
        "op_profile": out.op_profile,
        "benchmark_output_format": out.format,
        "benchmark_output": text,
        "parity": None,
    }
    if opts.op_profiling and out.op_profile is None:
        result.setdefault("warnings", []).append(
            "--op-profiling: benchmark_model printed no operator profile"
        )
    if info.simulated:
        result["note"] = SIMULATED_NOTE
    return result


def _parse_output(text: str, serial: str) -> BenchOutput:
    try:
        return parse_benchmark_output(text)
    except BenchOutputError as exc:
        snippet = " ".join(text.split())[:80]
        raise DeviceError(
            f"benchmark_model on {serial} printed no usable timings ({exc}); "
            f"its output began: {snippet!r}",
            hint="make sure --benchmark-binary is LiteRT's benchmark_model",
        ) from None


def _check_delegation(out: BenchOutput, opts: DeviceBenchOptions, serial: str) -> dict[str, Any]:
    """The delegation summary; an error when the binary does not know the delegate's flag, or
    when ``require_full_delegation`` is set and the delegate left ops to the CPU."""
    if opts.delegate != "cpu" and unknown_flag(
        out.unconsumed_flags, DELEGATE_FLAG[opts.delegate].split("=")[0]
    ):
        raise DeviceError(
            f"this benchmark_model does not know {DELEGATE_FLAG[opts.delegate].split('=')[0]}",
            hint="use a newer LiteRT benchmark_model or another --delegate",
        )
    delegation = summarize_delegation(opts.delegate, out)
    if opts.require_full_delegation and opts.delegate != "cpu" and delegation["coverage"] != "full":
        raise DeviceError(
            f"the {opts.delegate} delegate did not take the whole graph on {serial} "
            f"(coverage: {delegation['coverage']}"
            + (", not available on this device" if delegation["unavailable"] else "")
            + ")",
            hint="drop --require-full-delegation to measure with CPU fallback",
        )
    return delegation


def _latency(out: BenchOutput, opts: DeviceBenchOptions) -> dict[str, Any]:
    """Run counts and timings in milliseconds (the median from the tool's own statistics)."""
    stats = out.inference
    median_ms = out.median_us / 1000.0
    return {
        "runs": stats.count if stats else opts.runs,
        "warmup_runs": opts.warmup,
        "median_ms": round(median_ms, 4),
        "median_source": out.median_source,
        "mean_ms": _ms(out.inference_avg_us),
        "min_ms": _ms(stats.min if stats else None),
        "max_ms": _ms(stats.max if stats else None),
        "std_ms": _ms(stats.std if stats else None),
        "p5_ms": _ms(stats.p5 if stats else None),
        "p95_ms": _ms(stats.p95 if stats else None),
        "fps": round(1000.0 / median_ms, 2) if median_ms > 0 else None,
        "init_ms": _ms(out.init_us),
        "first_inference_ms": _ms(out.first_us),
        "warmup_mean_ms": _ms(out.warmup_avg_us),
    }
