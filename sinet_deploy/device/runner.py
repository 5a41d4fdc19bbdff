"""``device bench``: push the model and benchmark_model, run, parse, check parity, clean up.

Every run gets its own folder ``/data/local/tmp/sinet_deploy/run-<time>-<random>``; it is
removed at the end (also after a failure, reconnecting first when the device dropped off) unless
``keep`` is set. The binary's ELF machine is checked against the device ABI before anything is
pushed. Numbers from a simulated device carry ``simulated: true`` and a note saying what they
are: the host CPU running LiteRT, not a phone.

A ``.pte`` model runs the same way with ExecuTorch's ``executor_runner`` (``runner``) in place
of benchmark_model (``device/et_output.py`` says what it prints and how it is timed).
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
from sinet_deploy.device.et_output import (
    RunnerOutput,
    RunnerTimings,
    parse_runner_output,
    runner_command,
    timings,
    unknown_flags,
)
from sinet_deploy.device.info import DeviceInfo, battery_temperature, read_device_info
from sinet_deploy.device.remote import (
    DELEGATE_FLAG,
    FORCE_FP16_FLAG,
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
SIMULATED_ET_NOTE = (
    "SIMULATED device: timings are this host's CPU running ExecuTorch through the "
    "sinet-deploy stand-in executor_runner, not a phone"
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
    """The mistakes that need no device: unknown delegate, unusable artifact or binary,
    options that do not apply to the model's format.

    Raises:
        DeviceError, ArtifactError: before anything touches (or is left on) a device.
    """
    if opts.delegate not in DELEGATES:
        raise DeviceError(
            f"unknown delegate {opts.delegate!r}", hint=f"choose one of {', '.join(DELEGATES)}"
        )
    if opts.xnnpack_fp16 and (opts.is_executorch or opts.delegate != "xnnpack"):
        raise DeviceError(
            "--xnnpack-fp16 applies to a .tflite on the xnnpack delegate",
            hint="drop --xnnpack-fp16, or use --delegate xnnpack with a .tflite",
        )
    if opts.is_executorch:
        _check_local_program(opts)
    else:
        check_tflite(opts.artifact)
        if opts.runner is not None:
            raise DeviceError(
                "--runner runs ExecuTorch programs (.pte); a .tflite needs --benchmark-binary",
                hint="pass LiteRT's benchmark_model with --benchmark-binary PATH",
            )
    read_binary(opts.binary, opts.tool)


def _check_local_program(opts: DeviceBenchOptions) -> None:
    """A .pte: the program file loads, and no LiteRT-only option was given."""
    from sinet_deploy.runtimes.executorch_rt import check_program_file

    if not Path(opts.artifact).is_file():
        raise DeviceError(f"model {opts.artifact} does not exist", hint="check the path")
    check_program_file(Path(opts.artifact))
    if opts.benchmark_binary is not None:
        raise DeviceError(
            "--benchmark-binary runs .tflite models; a .pte needs --runner",
            hint="pass ExecuTorch's executor_runner with --runner PATH",
        )
    for flag, used in (
        ("--op-profiling", opts.op_profiling),
        ("--require-full-delegation", opts.require_full_delegation),
        ("--delegate " + opts.delegate, opts.delegate != "xnnpack"),
    ):
        if used:
            raise DeviceError(
                f"{flag} applies to .tflite models only",
                hint="a .pte carries its delegation (XNNPACK) inside the program; drop the option",
            )


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
    elf = check_binary_for_device(opts.binary, info.abilist, opts.tool)
    _check_taskset(opts.taskset, info)
    remote = RemoteDir(adb, serial)
    target = _Target(
        adb,
        serial,
        info,
        remote,
        binary=remote.file(opts.tool),
        model=remote.file(Path(opts.artifact).name),
        say=say,
    )
    result = _run_in_remote_dir(target, opts, parity_setup)
    result.update(
        {
            "remote_dir": remote.path,
            "remote_dir_kept": opts.keep,
            "runner" if opts.is_executorch else "benchmark_binary": {
                "path": str(opts.binary),
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
        result = _et_timed_run(target, opts) if opts.is_executorch else _timed_run(target, opts)
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
    adb.push(serial, [Path(opts.binary)], target.binary)
    res = adb.shell(serial, f"chmod 755 {quote(target.binary)}")
    if res.rc != 0:
        raise DeviceError(
            f"cannot make the benchmark binary executable on {serial}: "
            f"{(res.err or res.out).strip()[:160]}",
            hint="check /data/local/tmp permissions",
        )
    adb.push(serial, [Path(opts.artifact)], target.model)


def _device_parity(target: _Target, opts: DeviceBenchOptions, setup: ParitySetup) -> dict[str, Any]:
    from sinet_deploy.device.parity import device_parity, et_device_parity

    target.say(f"{target.serial}{target.tag}: on-device parity on {len(setup.images)} image(s)")

    def command(*, runs: int, warmup: int, extra: list[str]) -> str:
        once = replace(opts, runs=runs, warmup=warmup)
        return bench_command(target.binary, target.model, once, extra)

    def et_command(*, runs: int, warmup: int, extra: list[str]) -> str:
        return runner_command(
            target.binary,
            target.model,
            threads=opts.threads,
            executions=runs + warmup,
            taskset=opts.taskset,
            extra=extra,
        )

    if opts.is_executorch:
        return et_device_parity(target.adb, target.serial, target.remote, et_command, setup)
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
        "xnnpack_force_fp16": opts.xnnpack_fp16,
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
    if opts.xnnpack_fp16 and unknown_flag(out.unconsumed_flags, FORCE_FP16_FLAG):
        raise DeviceError(
            f"this benchmark_model does not know {FORCE_FP16_FLAG}",
            hint="use a current LiteRT benchmark_model, or drop --xnnpack-fp16",
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


def _program_delegation(artifact: Path) -> dict[str, Any]:
    """The delegation recorded in the .pte's manifest at export (the runner prints none)."""
    from sinet_deploy.core.manifest import read_manifest

    try:
        graph = (read_manifest(artifact) or {}).get("graph") or {}
    except SinetDeployError:
        graph = {}
    subgraphs = graph.get("delegated_subgraphs")
    return {
        "requested": "xnnpack",
        "applied": None if subgraphs is None else subgraphs > 0,
        "coverage": "in the program" if subgraphs is None else f"{subgraphs} XNNPACK subgraph(s)",
        "delegated_ops": graph.get("delegated_ops"),
        "portable_ops": graph.get("portable_ops"),
        "source": "the program's manifest (lowered at export)",
        "messages": [],
    }


def _et_timed_run(target: _Target, opts: DeviceBenchOptions) -> dict[str, Any]:
    """The timed executor_runner run (warm-up and timed executions in one process), parsed
    into the result ``device bench`` reports."""
    adb, serial, info = target.adb, target.serial, target.info
    temp_before = battery_temperature(adb, serial)
    executions = opts.warmup + opts.runs
    target.say(
        f"{serial}{target.tag}: running executor_runner ({opts.threads} thread(s), "
        f"{opts.warmup} warm-up + {opts.runs} executions in one process)"
    )
    command = runner_command(
        target.binary,
        target.model,
        threads=opts.threads,
        executions=executions,
        taskset=opts.taskset,
    )
    res = adb.shell(serial, command, timeout=900)
    temp_after = battery_temperature(adb, serial)
    text = res.text
    out, t = _parse_runner(text, res.rc, serial, opts)
    result: dict[str, Any] = {
        "simulated": info.simulated,
        "device": info.to_dict(),
        "artifact": Path(opts.artifact).name,
        "runtime": "executorch",
        "delegate": "xnnpack",
        "threads": opts.threads,
        "threads_reported": out.threads,
        "taskset": opts.taskset,
        "runs": t.runs,
        "warmup_runs": opts.warmup if out.format == "per-iteration" else 0,
        "median_ms": round(t.median_ms, 4),
        "median_source": t.median_source,
        "mean_ms": round(t.mean_ms, 4),
        "min_ms": _round(t.min_ms),
        "max_ms": _round(t.max_ms),
        "std_ms": _round(t.std_ms),
        "p5_ms": _round(t.p5_ms),
        "p95_ms": _round(t.p95_ms),
        "fps": round(1000.0 / t.median_ms, 2) if t.median_ms > 0 else None,
        "init_ms": _round(out.load_ms),
        "first_inference_ms": _round(t.first_ms),
        "warmup_mean_ms": _round(t.warmup_mean_ms),
        "total_execution_ms": round(out.total_ms, 4),
        "executions": out.executions,
        "delegation": _program_delegation(Path(opts.artifact)),
        "temperature_c": {"battery_before": temp_before, "battery_after": temp_after},
        "op_profile": None,
        "benchmark_output_format": f"executor_runner ({out.format})",
        "benchmark_output": text,
        "parity": None,
    }
    if info.simulated:
        result["note"] = SIMULATED_ET_NOTE
    return result


def _parse_runner(
    text: str, rc: int, serial: str, opts: DeviceBenchOptions
) -> tuple[RunnerOutput, RunnerTimings]:
    """executor_runner's output and timings, checked: flags it knows, exit status, timings,
    and as many executions as were asked for."""
    executions = opts.warmup + opts.runs
    unknown = unknown_flags(text)
    if unknown:
        raise DeviceError(
            f"the executor_runner on {serial} does not know --{unknown[0]}",
            hint="build executor_runner from current ExecuTorch sources "
            "(it needs --num_executions and --cpu_threads)",
        )
    check_run(rc, text, "the timed run", serial, tool="executor_runner")
    try:
        out = parse_runner_output(text)
        t = timings(out, opts.warmup)
    except BenchOutputError as exc:
        snippet = " ".join(text.split())[:80]
        raise DeviceError(
            f"executor_runner on {serial} printed no usable timings ({exc}); "
            f"its output began: {snippet!r}",
            hint="pass ExecuTorch's executor_runner built with the posix PAL "
            "(EXECUTORCH_PAL_DEFAULT=posix, the default) and logging on",
        ) from None
    if out.executions != executions:
        raise DeviceError(
            f"executor_runner on {serial} ran {out.executions} execution(s), "
            f"not the {executions} asked for",
            hint="make sure --runner is ExecuTorch's executor_runner",
        )
    return out, t


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
