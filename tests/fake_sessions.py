"""Tiny session stand-ins for the benchmark and parity tests (no real model, no runtime).

The benchmark workers import this file by path (``Candidate(kind="factory", path=__file__,
factory="...")``), so it must not import pytest or the tests package.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ArtifactError


class BusySession:
    """Spins for ``delay_s`` per call; appends its label to ``$SINET_TEST_CALL_LOG`` if set."""

    runtime = "fake"

    def __init__(self, label: str, delay_s: float) -> None:
        self.name = label
        self.input_size = (8, 8)
        self.manifest: dict[str, Any] = {"format": "onnx", "precision": "fp32"}
        self.delay_s = delay_s
        self.log = os.environ.get("SINET_TEST_CALL_LOG")

    def native_inputs(self) -> list[np.ndarray]:
        return [np.zeros((1, 8, 8, 3), np.uint8)]

    def run_native(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < self.delay_s:
            pass
        if self.log:
            with open(self.log, "a") as fh:
                fh.write(self.name + "\n")
        return [inputs[0][..., :1].astype(np.float32)]


def session_a(threads: int = 1) -> BusySession:
    return BusySession("A", 0.0005)


def session_b(threads: int = 1) -> BusySession:
    return BusySession("B", 0.0015)


def broken_artifact(threads: int = 1) -> Any:
    raise ArtifactError("fake.tflite is truncated", hint="re-export it")


def crashing(threads: int = 1) -> Any:
    raise ValueError("something inside the runtime broke")


class ProbSession:
    """A parity stand-in: foreground probability = a fixed function of the image."""

    runtime = "fake"

    def __init__(
        self,
        name: str,
        fn: Any,
        size: tuple[int, int] = (32, 32),
        fmt: str | None = "onnx",
        precision: str | None = "fp32",
    ) -> None:
        self.name = name
        self.fn = fn
        self.input_size = size
        self.manifest: dict[str, Any] = {"format": fmt, "precision": precision} if fmt else {}

    def __call__(self, image: np.ndarray) -> np.ndarray:
        return self.fn(image)


def brightness(image: np.ndarray) -> np.ndarray:
    """A deterministic 'probability': mean of the channels, scaled to 0..1."""
    return (image.astype(np.float32).mean(axis=-1, keepdims=True) / 255.0).astype(np.float32)
