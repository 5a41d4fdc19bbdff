"""``sinet-deploy device list|info|bench|simulate``: Android phones through adb.

adb conventions apply: ``-H/-P`` (``--adb-host``/``--adb-port``) reach a remote adb server,
``ANDROID_ADB_SERVER_PORT`` and ``ANDROID_SERIAL`` are honoured. Anything measured on the
simulated device is labelled SIMULATED in every output.
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sinet_deploy.cli.output import console, err_console, print_json

if TYPE_CHECKING:
    from sinet_deploy.device.adb import Adb

device_app = typer.Typer(
    help="Android phones through adb: list, describe, benchmark and parity-check on the phone; "
    "a simulated device for tests.",
    no_args_is_help=True,
)

_ADB_OPT = typer.Option(None, "--adb", help="adb binary (default: adb on PATH).")
_HOST_OPT = typer.Option(None, "-H", "--adb-host", help="adb server host (a remote server).")
_PORT_OPT = typer.Option(
    None, "-P", "--adb-port", help="adb server port (default: $ANDROID_ADB_SERVER_PORT or 5037)."
)
_SERIAL_OPT = typer.Option(
    None,
    "--serial",
    "-s",
    help="Device serial; repeat for several, or 'all'. "
    "Default: $ANDROID_SERIAL or the only device.",
)


def register(app: typer.Typer) -> None:
    """Add the ``device`` command group to ``app``."""
    app.add_typer(device_app, name="device")


def _adb(adb_path: str | None, host: str | None, port: int | None) -> Adb:
    from sinet_deploy.device.adb import Adb

    return Adb(adb_path, host=host, port=port)


def _select(adb: Adb, serials: list[str] | None) -> list[str]:
    """Resolve ``--serial`` against ``adb devices``; ``adb connect`` unknown HOST:PORT serials."""
    import os
    import re

    from sinet_deploy.device.listing import select_devices

    entries = adb.devices()
    known = {e.serial for e in entries}
    for serial in serials or []:
        if serial != "all" and serial not in known and re.search(r":\d+$", serial):
            adb.connect(serial)
            adb.wait_online(serial, timeout=10)
            entries = adb.devices()
    return [e.serial for e in select_devices(entries, serials, os.environ.get("ANDROID_SERIAL"))]


def _progress(message: str) -> None:
    # Progress only for a person at a terminal: scripts and CI get the result, or one error line.
    if err_console.is_terminal:
        err_console.print(f"[dim]{message}[/]", soft_wrap=True)


@device_app.command("list")
def list_devices(
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    adb_path: str | None = _ADB_OPT,
    adb_host: str | None = _HOST_OPT,
    adb_port: int | None = _PORT_OPT,
) -> None:
    """Devices adb sees (adb devices -l) and their state; simulated ones are marked."""
    from sinet_deploy.device.info import SIMULATED_PROP

    adb = _adb(adb_path, adb_host, adb_port)
    entries = adb.devices()

    def simulated(serial: str) -> bool | None:
        from sinet_deploy.core.errors import DeviceError

        try:
            return adb.shell(serial, f"getprop {SIMULATED_PROP}", timeout=20).out.strip() == "1"
        except DeviceError:
            return None

    online = [e.serial for e in entries if e.online]
    with ThreadPoolExecutor(max_workers=max(1, min(8, len(online)))) as pool:
        flags = dict(zip(online, pool.map(simulated, online), strict=True))
    rows = [{**e.to_dict(), "simulated": flags.get(e.serial)} for e in entries]
    if as_json:
        print_json({"devices": rows})
        return
    if not rows:
        console.print(
            "no devices attached (connect a phone with USB debugging, or `adb connect HOST:PORT`)"
        )
        return
    for r in rows:
        note = "  SIMULATED (sinet-deploy device simulate)" if r["simulated"] else ""
        model = r.get("model", "")
        console.print(f"{r['serial']:<24} {r['state']:<14} {model}{note}", soft_wrap=True)


@device_app.command("info")
def info(
    serial: list[str] = _SERIAL_OPT,
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    adb_path: str | None = _ADB_OPT,
    adb_host: str | None = _HOST_OPT,
    adb_port: int | None = _PORT_OPT,
) -> None:
    """Model, SoC, Android version, ABI, cores and clocks, battery temperature of device(s)."""
    from sinet_deploy.device.info import read_device_info

    adb = _adb(adb_path, adb_host, adb_port)
    serials = _select(adb, serial)
    with ThreadPoolExecutor(max_workers=min(8, len(serials))) as pool:
        infos = list(pool.map(lambda s: read_device_info(adb, s), serials))
    if as_json:
        print_json({"devices": [i.to_dict() for i in infos]})
        return
    for i in infos:
        if i.simulated:
            console.print(
                "[bold yellow]SIMULATED device[/] (sinet-deploy device simulate): not a phone",
                soft_wrap=True,
            )
        console.print(f"[bold]{i.serial}[/]  {i.label}", soft_wrap=True)
        console.print(f"  Android      {i.android} (SDK {i.sdk})")
        console.print(f"  SoC          {i.soc or '-'}   board {i.board or '-'}")
        console.print(f"  ABI          {i.abi} ({', '.join(i.abilist)})")
        console.print(f"  CPU          {i.cores} cores: {i.clusters or 'max clocks unknown'}")
        console.print(f"  RAM          {i.ram_mb} MiB   free /data {i.storage_free_mb} MiB")
        temp = f"{i.battery_temp_c} °C" if i.battery_temp_c is not None else "unknown"
        console.print(f"  battery      {temp}")


@device_app.command("bench")
def bench(
    artifact: Path = typer.Argument(
        ..., help="The .tflite or .pte model (its manifest beside it)."
    ),
    benchmark_binary: Path | None = typer.Option(
        None,
        "--benchmark-binary",
        help="For a .tflite: LiteRT's benchmark_model for the phone "
        "(android_aarch64), or the simulator's stand-in.",
    ),
    runner: Path | None = typer.Option(
        None,
        "--runner",
        help="For a .pte: ExecuTorch's executor_runner built for the phone with XNNPACK, "
        "or the simulator's stand-in.",
    ),
    serial: list[str] = _SERIAL_OPT,
    threads: int = typer.Option(1, "--threads", min=1, help="CPU threads."),
    delegate: str = typer.Option(
        "xnnpack", "--delegate", help="cpu, xnnpack, gpu or nnapi (.tflite only)."
    ),
    xnnpack_fp16: bool = typer.Option(
        False,
        "--xnnpack-fp16",
        help="XNNPACK computes the float ops in fp16 (--xnnpack_force_fp16; .tflite, xnnpack).",
    ),
    runs: int = typer.Option(50, "--runs", min=1, help="Timed runs."),
    warmup: int = typer.Option(5, "--warmup", min=0, help="Warm-up runs."),
    taskset: str | None = typer.Option(
        None, "--taskset", help="Hex CPU mask to pin to, e.g. f0 (big cores)."
    ),
    op_profiling: bool = typer.Option(
        False, "--op-profiling", help="Per-operator profile (--enable_op_profiling)."
    ),
    require_full_delegation: bool = typer.Option(
        False, "--require-full-delegation", help="Fail when the delegate leaves ops to the CPU."
    ),
    parity: bool = typer.Option(False, "--parity", help="Also check on-device parity."),
    images: Path | None = typer.Option(None, "--images", help="Images for --parity."),
    weights: str | None = typer.Option(
        None, "--weights", help="PyTorch reference weights for --parity (default: the manifest's)."
    ),
    keep: bool = typer.Option(False, "--keep", help="Keep the remote run folder."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    adb_path: str | None = _ADB_OPT,
    adb_host: str | None = _HOST_OPT,
    adb_port: int | None = _PORT_OPT,
) -> None:
    """On-phone latency of a TFLite or ExecuTorch artifact through adb (and on-device parity
    with --parity).

    Exit codes: 0 ok, 2 bad input or device problem, 3 on-device parity below the gate.
    """
    from sinet_deploy.device.remote import DeviceBenchOptions
    from sinet_deploy.device.runner import bench_devices, check_local_inputs

    _check_bench_flags(delegate, parity, images)
    opts = DeviceBenchOptions(
        artifact=artifact,
        benchmark_binary=benchmark_binary,
        runner=runner,
        threads=threads,
        delegate=delegate.lower(),
        runs=runs,
        warmup=warmup,
        taskset=taskset,
        op_profiling=op_profiling,
        require_full_delegation=require_full_delegation,
        keep=keep,
        images=images if parity else None,
        weights=weights,
        xnnpack_fp16=xnnpack_fp16,
    )
    check_local_inputs(opts)  # local mistakes before any device is touched
    adb = _adb(adb_path, adb_host, adb_port)
    results = bench_devices(adb, _select(adb, serial), opts, log=_progress)
    if as_json:
        print_json(results[0] if len(results) == 1 else {"results": results})
    else:
        for r in results:
            _print_bench(r)
    if any(r.get("parity") and not r["parity"]["passed"] for r in results):
        raise typer.Exit(3)


def _check_bench_flags(delegate: str, parity: bool, images: Path | None) -> None:
    from sinet_deploy.core.errors import UserInputError

    if delegate.lower() not in ("cpu", "xnnpack", "gpu", "nnapi"):
        raise UserInputError(
            f"--delegate {delegate} is not one of cpu, xnnpack, gpu, nnapi",
            hint="e.g. --delegate xnnpack (LiteRT's default CPU path) or --delegate gpu",
        )
    if parity and images is None:
        raise UserInputError(
            "--parity needs --images DIR",
            hint="pass a folder of portraits, e.g. --images ../shared/data/calib",
        )
    if images is not None and not parity:
        raise UserInputError("--images is only used with --parity", hint="add --parity")


def _print_bench(r: dict[str, Any]) -> None:
    d = r["device"]
    if r["simulated"]:
        console.print(f"[bold yellow]{r['note']}[/]", soft_wrap=True)
    tag = " [SIMULATED]" if r["simulated"] else ""
    console.print(
        f"[bold]{d['serial']}[/]{tag}  {d['manufacturer']} {d['model']}, "
        f"Android {d['android']} (SDK {d['sdk']}), {d['abi']}, {d['cores']} cores "
        f"({d['clusters']})",
        soft_wrap=True,
    )
    dl = r["delegation"]
    cover = dl["coverage"]
    if dl.get("nodes_total"):
        cover += f", {dl['nodes_delegated']}/{dl['nodes_total']} nodes"
    if dl.get("unavailable"):
        cover += ", NOT AVAILABLE: ran on the CPU"
    console.print(
        f"  model        {r['artifact']}   delegate {r['delegate']} ({cover})"
        + ("   fp16 arithmetic (XNNPACK force-fp16)" if r.get("xnnpack_force_fp16") else "")
        + "   "
        f"threads {r['threads']}" + (f"   taskset {r['taskset']}" if r["taskset"] else ""),
        soft_wrap=True,
    )
    median_note = "" if r["median_source"] == "median" else f" ({r['median_source']})"
    console.print(
        f"  latency{tag}  median {r['median_ms']:.3f} ms{median_note}   "
        f"p5 {_f(r['p5_ms'])}   p95 {_f(r['p95_ms'])}   mean {_f(r['mean_ms'])} ms   "
        f"FPS {r['fps']}   ({r['runs']} runs)",
        soft_wrap=True,
    )
    console.print(
        f"  init         {_f(r['init_ms'])} ms   first inference {_f(r['first_inference_ms'])} ms"
    )
    t = r["temperature_c"]
    console.print(
        f"  battery      {_temp(t['battery_before'])} before, {_temp(t['battery_after'])} after"
    )
    if r.get("op_profile"):
        top = sorted(r["op_profile"], key=lambda x: -x["percent"])[:5]
        console.print(
            "  top ops      " + ", ".join(f"{x['node_type']} {x['percent']:.1f}%" for x in top)
        )
    p = r.get("parity")
    if p:
        verdict = "[green]PASS[/]" if p["passed"] else "[red]FAIL[/]"
        console.print(
            f"  parity{tag}   vs {p['reference']}: mean IoU {p['mean_iou']:.5f} "
            f"(min {p['min_iou']:.5f}, {p['num_images']} images), max |Δp| "
            f"{p['max_abs_prob_diff']:.2e}  {verdict} (gate ≥ {p['threshold_mean_iou']})",
            soft_wrap=True,
        )
        v = p["vs_desktop"]
        desk = "ExecuTorch" if p.get("desktop_runtime") == "executorch" else "LiteRT"
        console.print(
            f"               vs desktop {desk}: mean IoU {v['mean_iou']:.5f}, "
            f"max |Δp| {v['max_abs_prob_diff']:.2e}",
            soft_wrap=True,
        )
        if p.get("pytorch_note"):
            console.print(f"               {p['pytorch_note']}", soft_wrap=True)
    for w in r.get("warnings", []):
        err_console.print(f"[yellow]warning:[/] {w}", soft_wrap=True)


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _temp(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.1f} °C"


@device_app.command("simulate")
def simulate(
    port: int = typer.Option(
        0,
        "--port",
        min=0,
        max=65535,
        help="TCP port to listen on (0: pick a free one). Avoid 5555-5585, "
        "which adb servers probe for emulators.",
    ),
    profile: str = typer.Option(
        "current",
        "--profile",
        help="current (Android 14, today's benchmark_model), old "
        "(TF 2.4-era tool without --output_filepath) or legacy "
        "(32-bit Android 7, no shell_v2).",
    ),
    fail: str = typer.Option(
        "none",
        "--fail",
        help="Fail like a real device: crash, garbage, disconnect-push, "
        "disk-full, unauthorized, offline.",
    ),
    workdir: Path | None = typer.Option(
        None,
        "--workdir",
        help="Keep the sandbox and stand-ins here (default: a temporary folder, removed on exit).",
    ),
    connect: bool = typer.Option(
        False, "--connect", help="Also run `adb connect` to the new device."
    ),
    adb_path: str | None = _ADB_OPT,
    adb_host: str | None = _HOST_OPT,
    adb_port: int | None = _PORT_OPT,
) -> None:
    """A SIMULATED Android device that the real adb client connects to; runs until killed.

    Prints one JSON line {"serial", "benchmark_binary", "executorch_runner", ...}: pass the
    stand-ins to `device bench --benchmark-binary` (.tflite) or `--runner` (.pte). Its
    timings are this host's CPU, never a phone's.
    """
    import signal
    import threading

    from sinet_deploy.device.sim.server import SimulateOptions, start_simulated_device

    options = SimulateOptions(port=port, profile=profile, fail=fail, workdir=workdir)
    device = start_simulated_device(options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if connect:
            _adb(adb_path, adb_host, adb_port).connect(device.serial)
        sys.stdout.write(json.dumps(device.describe()) + "\n")
        sys.stdout.flush()
        _progress(
            f"SIMULATED device listening on {device.serial} (profile {device.profile.name}, "
            f"failure {device.profile.failure}); `adb connect {device.serial}`; Ctrl-C to stop"
        )
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        device.stop()
