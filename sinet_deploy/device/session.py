"""A phone as a runtime: a :class:`~sinet_deploy.runtimes.base.Session` whose ``run_native``
runs benchmark_model on the device with the input's bytes and reads back its output's bytes.

It borrows the I/O contract of the desktop LiteRT session of the same ``.tflite`` file (the same
graph has the same tensors), so the pre- and post-processing (quantization, layout, softmax of
raw logits) is the shared code in ``runtimes.base``, not a copy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sinet_deploy.core.errors import ArtifactError
from sinet_deploy.device.tensors import split_outputs
from sinet_deploy.runtimes.base import Session

#: ``run_once(input_bytes) -> output_bytes``: one benchmark_model run on the device.
RunOnce = Callable[[bytes], bytes]


class DeviceSession(Session):
    """``session(image) -> probability`` computed on a phone (or the simulated device)."""

    runtime = "device"

    def __init__(self, like: Session, run_once: RunOnce, *, name: str) -> None:
        super().__init__(name, like.input_size, like.manifest, like.contract)
        self._run_once = run_once

    def run_native(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if len(inputs) != 1 or len(self.contract.inputs) != 1:
            raise ArtifactError(
                f"{self.name}: on-device parity supports one-input models",
                hint="export with the default --io image",
            )
        raw = self._run_once(np.ascontiguousarray(inputs[0]).tobytes())
        return split_outputs(raw, self.contract.outputs)
