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

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sinet_deploy.core.errors import DeviceError, SinetDeployError
from sinet_deploy.device.adb import Adb, quote
from sinet_deploy.device.bench_output import BenchOutput, BenchOutputError, parse_benchmark_output
from sinet_deploy.device.elf import check_binary_for_device, read_binary
from sinet_deploy.device.et_output import (
    parse_runner_output,
    runner_command,
    timings,
    unknown_flags,
)
from sinet_deploy.device.info import DeviceInfo, battery_temperature, read_device_info
from sinet_deploy.device.remote import (
    DELEGATE_FLAG,
    RemoteDir,
    bench_command,
    check_run,
    unknown_flag,
)
from sinet_deploy.device.tensors import check_tflite

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
class BenchOptions:
    """What ``device bench`` was asked to do."""

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


def check_local(opts: BenchOptions) -> None:
    """Every mistake that needs no device: bad model, bad binary, options that do not apply."""
    if opts.is_executorch:
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
                    hint="a .pte carries its delegation (XNNPACK) inside the program; "
                    "drop the option",
                )
    else:
        check_tflite(opts.artifact)
        if opts.runner is not None:
            raise DeviceError(
                "--runner runs ExecuTorch programs (.pte); a .tflite needs --benchmark-binary",
                hint="pass LiteRT's benchmark_model with --benchmark-binary PATH",
            )
    read_binary(opts.binary, opts.tool)


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


def run_device_bench(
    adb: Adb, serial: str, opts: BenchOptions, log: Log | None = None
) -> dict[str, Any]:
    """Benchmark ``opts.artifact`` on one device (and check parity if ``opts.images``).

    Raises:
        DeviceError: adb/device/binary problems (exit 2), after removing the remote folder.
        ArtifactError, ImageError: bad local inputs, before anything is pushed.
    """
    say = log or (lambda _msg: None)
    if opts.delegate not in DELEGATES:
        raise DeviceError(
            f"unknown delegate {opts.delegate!r}", hint=f"choose one of {', '.join(DELEGATES)}"
        )
    # Local mistakes first: they need no device and must not leave anything on one.
    check_local(opts)
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
    result: dict[str, Any] = {}
    failure: BaseException | None = None
    try:
        remote.create()
        say(f"{serial}{tag}: pushing to {remote.path}")
        binary = remote.file("executor_runner" if opts.is_executorch else "benchmark_model")
        model = remote.file(Path(opts.artifact).name)
        adb.push(serial, [Path(opts.binary)], binary)
        res = adb.shell(serial, f"chmod 755 {quote(binary)}")
        if res.rc != 0:
            raise DeviceError(
                f"cannot make the benchmark binary executable on {serial}: "
                f"{(res.err or res.out).strip()[:160]}",
                hint="check /data/local/tmp permissions",
            )
        adb.push(serial, [Path(opts.artifact)], model)
        timed_run = _et_timed_run if opts.is_executorch else _timed_run
        result = timed_run(adb, serial, opts, binary, model, info, say)
        if parity_setup is not None and opts.is_executorch:
            from sinet_deploy.device.parity import et_device_parity

            say(f"{serial}{tag}: on-device parity on {len(parity_setup.images)} image(s)")

            def et_run(*, runs: int, warmup: int, extra: list[str]) -> str:
                return runner_command(
                    binary,
                    model,
                    threads=opts.threads,
                    executions=runs + warmup,
                    taskset=opts.taskset,
                    extra=extra,
                )

            result["parity"] = et_device_parity(adb, serial, remote, et_run, parity_setup)
        elif parity_setup is not None:
            from sinet_deploy.device.parity import device_parity

            say(f"{serial}{tag}: on-device parity on {len(parity_setup.images)} image(s)")
            run = functools.partial(
                bench_command,
                binary,
                model,
                threads=opts.threads,
                delegate=opts.delegate,
                taskset=opts.taskset,
            )
            result["parity"] = device_parity(adb, serial, remote, run, parity_setup)
    except BaseException as exc:
        failure = exc
        raise
    finally:
        if not opts.keep:
            problem = remote.remove()
            if problem is not None:
                message = (
                    f"the remote folder {remote.path} could not be removed ({problem}); "
                    f"remove it with `adb -s {serial} shell rm -rf {remote.path}`"
                )
                if isinstance(failure, SinetDeployError):
                    failure.args = (f"{failure.args[0]}; {message}",)
                elif failure is None:
                    result.setdefault("warnings", []).append(message)
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


def _timed_run(
    adb: Adb, serial: str, opts: BenchOptions, binary: str, model: str, info: DeviceInfo, say: Log
) -> dict[str, Any]:
    extra = ["--enable_op_profiling=true"] if opts.op_profiling else []
    temp_before = battery_temperature(adb, serial)
    tag = " [SIMULATED]" if info.simulated else ""
    say(
        f"{serial}{tag}: running benchmark_model ({opts.delegate}, {opts.threads} thread(s), "
        f"{opts.warmup} warm-up + {opts.runs} runs)"
    )
    command = bench_command(
        binary,
        model,
        threads=opts.threads,
        delegate=opts.delegate,
        runs=opts.runs,
        warmup=opts.warmup,
        taskset=opts.taskset,
        extra=extra,
    )
    res = adb.shell(serial, command, timeout=900)
    temp_after = battery_temperature(adb, serial)
    text = res.text
    check_run(res.rc, text, "the timed run", serial)
    try:
        out = parse_benchmark_output(text)
    except BenchOutputError as exc:
        snippet = " ".join(text.split())[:80]
        raise DeviceError(
            f"benchmark_model on {serial} printed no usable timings ({exc}); "
            f"its output began: {snippet!r}",
            hint="make sure --benchmark-binary is LiteRT's benchmark_model",
        ) from None
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
    stats = out.inference
    median_ms = out.median_us / 1000.0
    result: dict[str, Any] = {
        "simulated": info.simulated,
        "device": info.to_dict(),
        "artifact": Path(opts.artifact).name,
        "delegate": opts.delegate,
        "threads": opts.threads,
        "taskset": opts.taskset,
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


def _et_timed_run(
    adb: Adb, serial: str, opts: BenchOptions, binary: str, model: str, info: DeviceInfo, say: Log
) -> dict[str, Any]:
    temp_before = battery_temperature(adb, serial)
    tag = " [SIMULATED]" if info.simulated else ""
    executions = opts.warmup + opts.runs
    say(
        f"{serial}{tag}: running executor_runner ({opts.threads} thread(s), "
        f"{opts.warmup} warm-up + {opts.runs} executions in one process)"
    )
    command = runner_command(
        binary, model, threads=opts.threads, executions=executions, taskset=opts.taskset
    )
    res = adb.shell(serial, command, timeout=900)
    temp_after = battery_temperature(adb, serial)
    text = res.text
    unknown = unknown_flags(text)
    if unknown:
        raise DeviceError(
            f"the executor_runner on {serial} does not know --{unknown[0]}",
            hint="build executor_runner from current ExecuTorch sources "
            "(it needs --num_executions and --cpu_threads)",
        )
    check_run(res.rc, text, "the timed run", serial, tool="executor_runner")
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


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
