"""On-device parity: does the phone compute what desktop LiteRT and PyTorch compute?

Each image is preprocessed once on the host (the shared session contract of
``sinet_deploy.runtimes``), run on the phone through :class:`DeviceSession`, and compared with
the same ``.tflite`` run by desktop LiteRT and, when the manifest (or ``--weights``) names SINet
weights, with the PyTorch fp32 reference. Metrics are the shared ones
(``sinet_deploy.verify.metrics``): mask IoU at probability > 0.5, max |Δ probability|.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sinet_deploy.core.errors import DeviceError
from sinet_deploy.core.jsonsafe import json_safe
from sinet_deploy.device.adb import Adb, quote
from sinet_deploy.device.remote import RemoteDir, check_parity_flags, check_run
from sinet_deploy.runtimes.base import Session
from sinet_deploy.verify.metrics import aggregate, compare


class BenchCommand(Protocol):
    """Builds the benchmark_model command line for the binary and model of a run."""

    def __call__(self, *, runs: int, warmup: int, extra: list[str]) -> str: ...


def gate_threshold(manifest: dict[str, Any] | None, fmt: str = "tflite") -> tuple[float, str]:
    """The mean-IoU bound for this artifact (``fmt``: tflite or executorch), and its source."""
    from sinet_deploy.verify.tolerances import DEVICE_MEAN_IOU, TOLERANCES

    precision = str((manifest or {}).get("precision", "fp32"))
    tol = TOLERANCES.get((fmt, precision))
    if tol is not None and tol.mean_iou is not None and tol.mean_iou < DEVICE_MEAN_IOU:
        return tol.mean_iou, f"registered tolerance for {fmt}/{precision}: {tol.why}"
    return DEVICE_MEAN_IOU, "on-device parity gate (mean mask IoU vs PyTorch)"


def reference_weights(manifest: dict[str, Any] | None, weights: str | None) -> str | None:
    """The PyTorch reference's weights: ``--weights``, else what the manifest was exported from."""
    if weights:
        return weights
    source = (manifest or {}).get("source")
    value = source.get("weights") if isinstance(source, dict) else None
    return value if isinstance(value, str) and value else None


def torch_session(
    manifest: dict[str, Any] | None, weights: str, input_size: tuple[int, int], threads: int
) -> Session:
    """The PyTorch fp32 reference at the artifact's size (and SINet config, if not official)."""
    from sinet_deploy.runtimes import torch_reference

    source = (manifest or {}).get("source")
    config = source.get("config") if isinstance(source, dict) else None
    kwargs = config if isinstance(config, dict) else {}
    return torch_reference(weights, input_size, threads=threads, **kwargs)


def run_parity(
    device: Session,
    desktop: Session,
    reference: Session | None,
    images: list[Path],
    manifest: dict[str, Any] | None,
    progress: Callable[[int, int], None] | None = None,
    reference_note: str | None = None,
    desktop_runtime: str = "litert",
) -> dict[str, Any]:
    """Run every image through the device, the same model on the desktop (``desktop_runtime``:
    litert or executorch) and the reference; the parity block."""
    from sinet_deploy.models.preprocessing import load_input

    h, w = desktop.input_size
    vs_desktop: list[dict[str, float]] = []
    vs_torch: list[dict[str, float]] = []
    for i, path in enumerate(images):
        image = load_input(path, h, w)
        on_device = device(image)
        # compare(reference, test): the device output is the one under test.
        vs_desktop.append(compare(desktop(image), on_device))
        if reference is not None:
            vs_torch.append(compare(reference(image), on_device))
        if progress is not None:
            progress(i + 1, len(images))
    threshold, why = gate_threshold(
        manifest, "executorch" if desktop_runtime == "executorch" else "tflite"
    )
    desk = aggregate(vs_desktop)
    torch_stats = aggregate(vs_torch) if vs_torch else None
    main_rows = vs_torch or vs_desktop
    main = torch_stats or desk
    worst = images[min(range(len(main_rows)), key=lambda k: main_rows[k]["iou"])].name
    return json_safe(
        {
            **main,
            "worst_image": worst,
            "reference": "pytorch" if torch_stats else f"{desktop_runtime}-desktop",
            "threshold_mean_iou": threshold,
            "threshold_why": why,
            "passed": bool(main["mean_iou"] >= threshold),
            "vs_pytorch": torch_stats,
            f"vs_{desktop_runtime}_desktop": desk,
            "vs_desktop": desk,
            "desktop_runtime": desktop_runtime,
            "pytorch_note": reference_note,
        }
    )


@dataclass
class ParitySetup:
    """What parity needs, prepared (and validated) before anything is pushed."""

    images: list[Path]
    desktop: Session  # the same model on the desktop (its I/O contract is reused)
    reference: Session | None  # PyTorch fp32, when weights are known
    reference_note: str | None
    manifest: dict[str, Any]


def prepare_parity(
    artifact: Path, images_dir: Path, weights: str | None, threads: int
) -> ParitySetup:
    """Read the manifest and images and load the references: every local error comes out
    here, before anything is pushed to the device."""
    from sinet_deploy.core.manifest import read_manifest
    from sinet_deploy.models.preprocessing import list_images
    from sinet_deploy.runtimes import load_session

    manifest = read_manifest(artifact)
    images = list_images(images_dir)
    desktop = load_session(artifact, threads=threads)
    weights = reference_weights(manifest, weights)
    if weights is None:
        return ParitySetup(
            images,
            desktop,
            None,
            "no PyTorch reference: the manifest names no SINet weights "
            "(pass --weights to compare with PyTorch)",
            manifest,
        )
    reference = torch_session(manifest, weights, desktop.input_size, threads)
    return ParitySetup(images, desktop, reference, None, manifest)


def device_parity(
    adb: Adb, serial: str, remote: RemoteDir, command: BenchCommand, setup: ParitySetup
) -> dict[str, Any]:
    """Push each image's input bytes, run once with ``--output_filepath``, pull, compare.

    Args:
        adb: the adb client; ``serial`` the device.
        remote: the run folder (model and binary already pushed there).
        command: ``command(runs=, warmup=, extra=)`` → the benchmark_model command line.
        setup: from :func:`prepare_parity`.
    """
    from sinet_deploy.device.session import DeviceSession

    spec = setup.desktop.contract.inputs[0]
    shape_flag = ",".join(str(d) for d in spec.shape)
    # benchmark_model splits --input_layer_value_files on ':'; a name containing one is
    # written with '::' (benchmark_tflite_model.cc).
    name_flag = spec.name.replace(":", "::")
    remote_in, remote_out = remote.file("input.bin"), remote.file("output.bin")
    calls = {"n": 0}

    with tempfile.TemporaryDirectory(prefix="sinet-parity-") as tmp:
        local_in, local_out = Path(tmp) / "input.bin", Path(tmp) / "output.bin"

        def run_once(data: bytes) -> bytes:
            local_in.write_bytes(data)
            adb.push(serial, [local_in], remote_in)
            extra = [
                f"--input_layer={quote(spec.name)}",
                f"--input_layer_shape={shape_flag}",
                f"--input_layer_value_files={quote(name_flag + ':' + remote_in)}",
                f"--output_filepath={quote(remote_out)}",
            ]
            line = f"rm -f {quote(remote_out)}; " + command(runs=1, warmup=0, extra=extra)
            res = adb.shell(serial, line, timeout=300)
            calls["n"] += 1
            check_run(res.rc, res.text, f"parity run {calls['n']}", serial)
            if calls["n"] == 1:
                check_parity_flags(res.text, serial)
            if adb.shell(serial, f"ls {quote(remote_out)}").rc != 0:
                raise DeviceError(
                    f"benchmark_model on {serial} wrote no --output_filepath file",
                    hint="this benchmark_model may be too old for on-device "
                    "parity; use a current LiteRT build",
                )
            local_out.unlink(missing_ok=True)
            adb.pull(serial, [remote_out], local_out)
            return local_out.read_bytes()

        device = DeviceSession(setup.desktop, run_once, name=f"{serial} (on device)")
        try:
            return run_parity(
                device,
                setup.desktop,
                setup.reference,
                setup.images,
                setup.manifest,
                reference_note=setup.reference_note,
            )
        except ValueError as exc:  # split_outputs: the output file has the wrong size
            raise DeviceError(
                f"parity output from {serial} is unusable ({exc})",
                hint="the manifest may not describe this model; re-export",
            ) from None


def et_device_parity(
    adb: Adb, serial: str, remote: RemoteDir, command: BenchCommand, setup: ParitySetup
) -> dict[str, Any]:
    """On-device parity of a ``.pte`` through executor_runner's ``--inputs``/``--output_file``.

    ``--inputs`` takes each input's raw bytes (no header, in input order); ``--output_file
    BASE`` writes each tensor output's bytes to ``BASE-<i>.bin``
    (``examples/portable/executor_runner/executor_runner.cpp``).
    """
    from sinet_deploy.device.et_output import unknown_flags
    from sinet_deploy.device.session import DeviceSession

    n_out = len(setup.desktop.contract.outputs)
    remote_in, remote_base = remote.file("input.bin"), remote.file("output")
    remote_outs = [f"{remote_base}-{i}.bin" for i in range(n_out)]
    calls = {"n": 0}

    with tempfile.TemporaryDirectory(prefix="sinet-parity-") as tmp:
        local_in = Path(tmp) / "input.bin"

        def run_once(data: bytes) -> bytes:
            local_in.write_bytes(data)
            adb.push(serial, [local_in], remote_in)
            extra = [f"--inputs={quote(remote_in)}", f"--output_file={quote(remote_base)}"]
            rm = " ".join(quote(o) for o in remote_outs)
            line = f"rm -f {rm}; " + command(runs=1, warmup=0, extra=extra)
            res = adb.shell(serial, line, timeout=300)
            calls["n"] += 1
            unknown = unknown_flags(res.text)
            if unknown:
                raise DeviceError(
                    f"the executor_runner on {serial} is too old for on-device parity: "
                    f"it does not know --{unknown[0]}",
                    hint="use the executor_runner of a current ExecuTorch release, or drop "
                    "--parity",
                )
            check_run(res.rc, res.text, f"parity run {calls['n']}", serial, "executor_runner")
            chunks = []
            for k, remote_out in enumerate(remote_outs):
                if adb.shell(serial, f"ls {quote(remote_out)}").rc != 0:
                    raise DeviceError(
                        f"executor_runner on {serial} wrote no output file {remote_out}",
                        hint="this executor_runner may be too old for --output_file; use a "
                        "current ExecuTorch build",
                    )
                local_out = Path(tmp) / f"output-{k}.bin"
                local_out.unlink(missing_ok=True)
                adb.pull(serial, [remote_out], local_out)
                chunks.append(local_out.read_bytes())
            return b"".join(chunks)

        device = DeviceSession(setup.desktop, run_once, name=f"{serial} (on device)")
        try:
            return run_parity(
                device,
                setup.desktop,
                setup.reference,
                setup.images,
                setup.manifest,
                reference_note=setup.reference_note,
                desktop_runtime="executorch",
            )
        except ValueError as exc:  # split_outputs: an output file has the wrong size
            raise DeviceError(
                f"parity output from {serial} is unusable ({exc})",
                hint="the manifest may not describe this model; re-export",
            ) from None
