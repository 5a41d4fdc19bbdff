"""ONNX → TFLite with onnx2tf 1.28, offline, in a child process.

Why onnx2tf: it is the maintained ONNX→TFLite converter that maps an NCHW ONNX graph to a
native NHWC TFLite graph (no per-op transposes when the ONNX graph is clean). Why a child
process: ``onnx2tf.convert`` calls ``sys.exit`` on errors, prints thousands of lines, and
imports TensorFlow; none of that belongs in the caller's process or terminal. Its output is
captured and only shown (as a log file named in the error) when it fails.

Offline: onnx2tf 1.x downloads ``calibration_image_sample_data_20x128x128x3_float32.npy``
(MS-COCO samples used for its own output check and default calibration) unless a file of that
name is in its working directory. We run it in a temporary working directory holding a locally
generated file of that name, and point HTTP(S)_PROXY at a closed local port so any download
attempt fails at once instead of silently reaching the internet. onnx2tf also runs the
``onnxsim`` command, so the interpreter's ``bin`` folder is put first on PATH.

Strict mode (the default) fails on SINet's decoder ``1 − confidence`` Sub ("output must come
from a Layer"); ``-dsm`` (disable strict mode) converts it, and the parity gate checks the result.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ConversionError, MissingDependencyError, UserInputError

#: The file onnx2tf would otherwise download (onnx2tf/utils/common_functions.py).
SAMPLE_DATA_NAME = "calibration_image_sample_data_20x128x128x3_float32.npy"
#: Our precision names → the file suffix onnx2tf gives each output.
ONNX2TF_OUTPUTS = {"fp32": "float32", "fp16": "float16", "int8w": "dynamic_range_quant"}
#: Name of the TFLite metadata entry holding our JSON contract.
METADATA_NAME = "sinet_deploy"
DEFAULT_TIMEOUT_S = 1200.0


@dataclass(frozen=True)
class TFLiteConvertConfig:
    """Options of :func:`convert_onnx_to_tflite`.

    Attributes:
        precisions: any of ``fp32``, ``fp16`` (fp16 weights), ``int8w`` (weight-only int8,
            "dynamic range"); one onnx2tf run produces them all.
        input_names / output_names: the TFLite I/O tensor names, in graph order (onnx2tf keeps
            input names but calls outputs ``Identity``).
        metadata: JSON-able dict embedded in the model's metadata as ``sinet_deploy``.
        timeout_s: kill onnx2tf after this long.
    """

    precisions: tuple[str, ...] = ("fp32",)
    input_names: tuple[str, ...] = ("image",)
    output_names: tuple[str, ...] = ("foreground",)
    metadata: dict[str, Any] = field(default_factory=dict)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        unknown = [p for p in self.precisions if p not in ONNX2TF_OUTPUTS]
        if unknown or not self.precisions:
            raise UserInputError(
                f"onnx2tf cannot produce precision(s) {unknown or '(none)'}",
                hint=f"use {', '.join(ONNX2TF_OUTPUTS)}",
            )


def onnx2tf_version() -> str | None:
    """The installed onnx2tf version, read without importing it (that imports TensorFlow)."""
    from importlib import metadata

    try:
        return metadata.version("onnx2tf")
    except metadata.PackageNotFoundError:
        return None


def write_sample_data(folder: Path) -> Path:
    """The local stand-in for onnx2tf's downloaded sample data: 20 smooth RGB images in [0, 1].

    onnx2tf uses it only for its own ONNX-vs-TF check and default full-integer calibration
    (neither of which we use: our parity gate and our calibration set do those jobs).
    """
    rng = np.random.default_rng(20)
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32) / 127.0
    base = np.stack([yy, xx, (yy + xx) / 2], axis=-1)
    data = np.clip(
        base[None] * rng.uniform(0.3, 1.0, (20, 1, 1, 3)) + rng.normal(0, 0.05, (20, 128, 128, 3)),
        0,
        1,
    ).astype(np.float32)
    path = folder / SAMPLE_DATA_NAME
    np.save(path, data)
    return path


def convert_onnx_to_tflite(
    onnx_path: Path, out_dir: Path, config: TFLiteConvertConfig
) -> dict[str, Path]:
    """Convert an (NCHW) ONNX graph to TFLite files, one per requested precision.

    Args:
        onnx_path: simplified ONNX model (NCHW I/O gives a transpose-free NHWC TFLite graph).
        out_dir: folder for the outputs, named ``<onnx stem>_<precision>.tflite``.
        config: see :class:`TFLiteConvertConfig`.

    Returns:
        precision → path of the converted, renamed and metadata-stamped ``.tflite``.

    Raises:
        MissingDependencyError: onnx2tf is not installed.
        ConversionError: onnx2tf failed or produced no file (the log is kept and named).
    """
    if onnx2tf_version() is None:
        raise MissingDependencyError(
            "onnx2tf is not installed", hint="pip install 'sinet-deploy[tflite]'"
        )
    out_dir = Path(out_dir)
    results: dict[str, Path] = {}
    with tempfile.TemporaryDirectory(prefix="sinet_onnx2tf_") as tmp:
        work = Path(tmp)
        write_sample_data(work)
        src = work / "model.onnx"
        prepare_for_onnx2tf(Path(onnx_path), src)
        cmd = [sys.executable, "-m", "onnx2tf", "-i", str(src), "-o", str(work / "tf"), "-dsm"]
        if "int8w" in config.precisions:
            cmd.append("-odrqt")
        log = run_logged(cmd, work, config.timeout_s)
        for precision in config.precisions:
            produced = work / "tf" / f"model_{ONNX2TF_OUTPUTS[precision]}.tflite"
            if not produced.is_file():
                raise ConversionError(
                    f"onnx2tf finished but wrote no {produced.name}",
                    hint=f"full log: {keep_log(log)}",
                )
            dest = out_dir / f"{Path(onnx_path).stem}_{precision}.tflite"
            data = rewrite_io(
                produced.read_bytes(),
                config.input_names,
                config.output_names,
                {**config.metadata, "precision": precision},
            )
            dest.write_bytes(data)
            results[precision] = dest
    return results


def prepare_for_onnx2tf(src: Path, dest: Path) -> Path:
    """Copy ``src`` to ``dest`` with every PRelu slope made explicitly 4-D ``(1, C, 1, 1)``.

    torch exports per-channel PReLU slopes as ``(C, 1, 1)``. onnx2tf transposes a constant to
    NHWC only when its rank equals the input's; a rank-3 slope is instead broadcast by shape
    matching, which picks the wrong axis whenever the channel count equals the feature map's
    height (e.g. ``--input-size 256x320``: 64 channels at 64×80), and the conversion dies with
    "Layer weight shape (1, 1, 64) not compatible with provided weight shape (64, 1, 1)".
    A ``(1, C, 1, 1)`` slope is the same broadcast in ONNX and is transposed exactly.
    """
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(src))
    inits = {init.name: init for init in model.graph.initializer}
    # only slopes that nothing but PRelu reads (reshaping a shared constant would change others)
    other_uses = {name for n in model.graph.node if n.op_type != "PRelu" for name in n.input}
    for node in model.graph.node:
        if node.op_type != "PRelu" or node.input[1] not in inits or node.input[1] in other_uses:
            continue
        init = inits[node.input[1]]
        dims = list(init.dims)
        if len(dims) == 3 and dims[1:] == [1, 1]:
            arr = numpy_helper.to_array(init).reshape(1, dims[0], 1, 1)
            init.CopyFrom(numpy_helper.from_array(arr, init.name))
    onnx.save(model, str(dest))
    return dest


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    # Any HTTP(S) request (the sample-data download) fails fast instead of going online.
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[var] = "http://127.0.0.1:9"
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("CUDA_VISIBLE_DEVICES", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_logged(cmd: list[str], cwd: Path, timeout_s: float) -> str:
    """Run onnx2tf with stdout+stderr captured; raise ConversionError with the log on failure."""
    try:
        proc = subprocess.run(
            cmd,
            cwd=cwd,
            env=subprocess_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else ""
        raise ConversionError(
            f"onnx2tf did not finish within {timeout_s:.0f} s", hint=f"full log: {keep_log(out)}"
        ) from None
    log = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        raise ConversionError(
            f"onnx2tf failed (exit {proc.returncode}): {last_error(log)}",
            hint=f"full log: {keep_log(log)}",
        )
    return log


def last_error(log: str) -> str:
    import re

    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in log.splitlines()]
    lines = [ln for ln in lines if ln]
    for ln in reversed(lines):
        if "ERROR" in ln or "Error" in ln:
            return ln[:300]
    return lines[-1][:300] if lines else "(no output)"


def keep_log(log: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="sinet_deploy_onnx2tf_", suffix=".log")
    with os.fdopen(fd, "w") as fh:
        fh.write(log)
    return Path(name)


def rewrite_io(
    data: bytes,
    input_names: tuple[str, ...],
    output_names: tuple[str, ...],
    metadata: dict[str, Any] | None = None,
) -> bytes:
    """Name the graph I/O tensors, add a ``serving_default`` signature, embed our metadata.

    onnx2tf can do the renaming only with the ``flatc`` binary installed; this edits the
    flatbuffer with LiteRT's own schema instead. The JSON goes into a model metadata entry
    named ``sinet_deploy`` (metadata entries are opaque buffers that runtimes ignore).
    """
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    graph = model.subgraphs[0]
    if len(graph.inputs) != len(input_names) or len(graph.outputs) != len(output_names):
        raise ConversionError(
            f"converted graph has {len(graph.inputs)} inputs / {len(graph.outputs)} outputs, "
            f"expected {len(input_names)} / {len(output_names)}"
        )
    sig = schema.SignatureDefT()
    sig.signatureKey = "serving_default"
    sig.subgraphIndex = 0
    sig.inputs, sig.outputs = [], []
    for indices, names, maps in (
        (graph.inputs, input_names, sig.inputs),
        (graph.outputs, output_names, sig.outputs),
    ):
        for index, name in zip(indices, names, strict=True):
            graph.tensors[index].name = name.encode()
            tmap = schema.TensorMapT()
            tmap.name, tmap.tensorIndex = name, int(index)
            maps.append(tmap)
    model.signatureDefs = [sig]
    if metadata is not None:
        buf = schema.BufferT()
        buf.data = np.frombuffer(json.dumps(metadata, sort_keys=True).encode(), dtype=np.uint8)
        model.buffers.append(buf)
        entry = schema.MetadataT()
        entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
        model.metadata = [m for m in (model.metadata or []) if _md_name(m) != METADATA_NAME]
        model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _md_name(entry: Any) -> str:
    name = entry.name
    return name.decode() if isinstance(name, bytes) else str(name)


def read_embedded_metadata(path: Path) -> dict[str, Any] | None:
    """The ``sinet_deploy`` JSON embedded by :func:`rewrite_io`, or ``None``."""
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(Path(path).read_bytes()))
    for entry in model.metadata or []:
        if _md_name(entry) == METADATA_NAME:
            raw = model.buffers[entry.buffer].data
            return dict(json.loads(bytes(np.asarray(raw, dtype=np.uint8)).decode()))
    return None
