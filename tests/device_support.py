"""Helpers for the device tests: tiny .tflite models, free ports, a private adb server.

The tiny models are written with LiteRT's flatbuffer schema (no TensorFlow import, so they cost
milliseconds): uint8 RGB ``image`` [1,H,W,3] → CAST → 1x1 CONV_2D → LOGISTIC → ``foreground``
[1,H,W,1], optionally followed by QUANTIZE to int8 (a full-integer style output with a scale and
zero point). Their manifests follow the exporter's format (``runtimes.base.TensorSpec.as_dict``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from sinet_deploy.core.manifest import write_manifest

ADB = shutil.which("adb")
OUT_SCALE, OUT_ZERO = 1.0 / 256.0, -128


def make_tiny_tflite(path: Path, size: int = 16, *, int8_output: bool = False) -> Path:
    """Write a tiny segmentation-shaped .tflite and its manifest; returns ``path``."""
    from ai_edge_litert import schema_py_generated as s
    from ai_edge_litert.tools import flatbuffer_utils

    def buffer(data: bytes = b"") -> s.BufferT:
        b = s.BufferT()
        b.data = list(data) if data else None
        return b

    def tensor(
        name: str, shape: list[int], ttype: int, buf: int, quant: tuple[float, int] | None = None
    ) -> s.TensorT:
        t = s.TensorT()
        t.name, t.shape, t.type, t.buffer = name.encode(), shape, ttype, buf
        if quant is not None:
            q = s.QuantizationParametersT()
            q.scale, q.zeroPoint = [quant[0]], [quant[1]]
            t.quantization = q
        return t

    def opcode(code: int) -> s.OperatorCodeT:
        oc = s.OperatorCodeT()
        oc.builtinCode = code
        oc.deprecatedBuiltinCode = min(code, 127)
        oc.version = 1
        return oc

    def op(index: int, inputs: list[int], outputs: list[int]) -> s.OperatorT:
        o = s.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = index, inputs, outputs
        return o

    weights = np.array([0.021, -0.013, 0.008], dtype=np.float32).reshape(1, 1, 1, 3)
    bias = np.array([-0.9], dtype=np.float32)
    hw = [1, size, size]
    tensors = [
        tensor("image", [*hw, 3], s.TensorType.UINT8, 0),
        tensor("as_float", [*hw, 3], s.TensorType.FLOAT32, 0),
        tensor("w", [1, 1, 1, 3], s.TensorType.FLOAT32, 1),
        tensor("b", [1], s.TensorType.FLOAT32, 2),
        tensor("logit", [*hw, 1], s.TensorType.FLOAT32, 0),
        tensor("foreground" if not int8_output else "prob", [*hw, 1], s.TensorType.FLOAT32, 0),
    ]
    conv = op(1, [1, 2, 3], [4])
    conv.builtinOptionsType = s.BuiltinOptions.Conv2DOptions
    opts = s.Conv2DOptionsT()
    opts.padding, opts.strideW, opts.strideH = s.Padding.VALID, 1, 1
    opts.dilationWFactor = opts.dilationHFactor = 1
    conv.builtinOptions = opts
    ops = [op(0, [0], [1]), conv, op(2, [4], [5])]
    codes = [
        opcode(s.BuiltinOperator.CAST),
        opcode(s.BuiltinOperator.CONV_2D),
        opcode(s.BuiltinOperator.LOGISTIC),
    ]
    out_index = 5
    if int8_output:
        tensors.append(tensor("foreground", [*hw, 1], s.TensorType.INT8, 0, (OUT_SCALE, OUT_ZERO)))
        ops.append(op(3, [5], [6]))
        codes.append(opcode(s.BuiltinOperator.QUANTIZE))
        out_index = 6
    sub = s.SubGraphT()
    sub.tensors, sub.operators = tensors, ops
    sub.inputs, sub.outputs = [0], [out_index]
    sub.name = b"main"
    model = s.ModelT()
    model.version = 3
    model.operatorCodes = codes
    model.subgraphs = [sub]
    model.buffers = [buffer(), buffer(weights.tobytes()), buffer(bias.tobytes())]
    # Padded past 1 KiB so that pushing it trips the simulator's disconnect-push failure.
    model.description = b"sinet-deploy device test model" + b" " * 2048
    path = Path(path)
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    out_spec = {
        "name": "foreground",
        "shape": [*hw, 1],
        "dtype": "int8" if int8_output else "float32",
        "layout": "nhwc",
        "quantization": {"scale": OUT_SCALE, "zero_point": OUT_ZERO} if int8_output else None,
    }
    write_manifest(
        path,
        {
            "format": "tflite",
            "precision": "int8" if int8_output else "fp32",
            "input_size": [size, size],
            "inputs": [
                {
                    "name": "image",
                    "shape": [*hw, 3],
                    "dtype": "uint8",
                    "layout": "nhwc",
                    "quantization": None,
                }
            ],
            "outputs": [out_spec],
            "source": {"weights": None, "note": "a test model, not SINet"},
            "options": {"io": "image"},
        },
    )
    return path


def write_images(folder: Path, n: int = 3, size: int = 40) -> Path:
    """A few small, varied RGB PNGs (gradients with a bright disc: masks that are not empty)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    for i in range(n):
        r = ((xx * (3 + i)) % 256).astype(np.uint8)
        g = ((yy * (5 + 2 * i)) % 256).astype(np.uint8)
        disc = ((xx - size / 2 - i) ** 2 + (yy - size / 2) ** 2) < (size / (3 + i)) ** 2
        b = np.where(disc, 250, 20 + 30 * i).astype(np.uint8)
        Image.fromarray(np.stack([r, g, b], axis=-1)).save(folder / f"img_{i}.png")
    return folder


def free_port() -> int:
    """A TCP port nobody listens on *now* (outside adb's emulator range 5554-5585).

    Another process may take it before the caller binds it: callers that start a server on it
    retry (:func:`private_adb_server`); callers that need a port that stays refused use
    :func:`refused_port`.
    """
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if not 5554 <= port <= 5585:
            return port


def read_line(stream: IO[str], timeout: float) -> str:
    """One line from a child's pipe, or AssertionError after ``timeout`` seconds (a hung child
    fails the test instead of hanging the suite)."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not got:
        raise AssertionError(f"no line from the child process within {timeout:g} s")
    return got[0]


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port held bound but never listening: connections to it are refused, and no other
    process can take it while the block runs (no race)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@dataclass
class AdbServer:
    """A private adb server: its own port and HOME, so no user's server or keys are touched."""

    port: int
    home: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "ANDROID_ADB_SERVER_PORT": str(self.port),
            "HOME": str(self.home),
            "ANDROID_SDK_HOME": str(self.home),
            "TMPDIR": str(self.home),
        }

    def adb(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        assert ADB is not None
        return subprocess.run(
            [ADB, "-P", str(self.port), *args],
            env=self.env,
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
        )

    def connect(self, serial: str, state: str = "device", timeout: float = 15) -> None:
        """``adb connect`` and wait until the device shows ``state``.

        ``adb connect`` blocks for ~10 s when the device never answers CNXN (an offline
        device), so it runs in the background and only the device list is waited on; the
        client is then stopped by its own pid (the server keeps the connection).
        """
        assert ADB is not None
        client = subprocess.Popen(
            [ADB, "-P", str(self.port), "connect", serial],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                listing = self.adb("devices").stdout
                if any(
                    line.split()[:2] == [serial, state]
                    for line in listing.splitlines()
                    if line.strip()
                ):
                    return
                time.sleep(0.1)
            raise AssertionError(f"{serial} never became {state!r}: {listing!r}")
        finally:
            if client.poll() is None:
                client.terminate()
            client.wait(timeout=5)

    def disconnect(self, serial: str) -> None:
        self.adb("disconnect", serial)


@contextlib.contextmanager
def private_adb_server(home: Path) -> Iterator[AdbServer]:
    """Start a private adb server; kill exactly that server at the end."""
    home.mkdir(parents=True, exist_ok=True)
    # The port is free when chosen, but another process may bind it before adb does: adb then
    # fails to start, and a fresh port is tried (adb cannot be handed a bound socket).
    for _attempt in range(5):
        server = AdbServer(free_port(), home)
        started = server.adb("start-server", timeout=60)
        if started.returncode == 0:
            break
    else:
        raise RuntimeError(f"adb start-server failed 5 times: {started.stderr}")
    try:
        yield server
    finally:
        server.adb("kill-server", timeout=30)
