"""PyTorch sessions: the fp32 reference every artifact is compared with."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sinet_deploy.models.config import check_input_size
from sinet_deploy.runtimes.base import IOContract, Session, TensorSpec

if TYPE_CHECKING:
    from torch import nn


class TorchSession(Session):
    """A PyTorch module with the checkpoint contract (normalised BGR NCHW in, logits out).

    ``__call__`` normalises outside the module and applies the softmax after it, exactly as the
    authors' code does, so this is the reference for every artifact.
    """

    runtime = "torch"

    def __init__(
        self,
        module: nn.Module,
        input_size: tuple[int, int],
        *,
        name: str,
        threads: int = 1,
        io: str = "raw",
    ) -> None:
        h, w = input_size
        if io == "raw":
            inputs = [TensorSpec("input", (1, 3, h, w), "float32", "nchw")]
            outputs = [TensorSpec("logits", (1, 2, h, w), "float32", "nchw")]
        else:  # a deploy-form ImageInput module: uint8 NHWC in, probability NHWC out
            inputs = [TensorSpec("image", (1, h, w, 3), "uint8", "nhwc")]
            outputs = [TensorSpec("foreground", (1, h, w, 1), "float32", "nhwc")]
        super().__init__(name, (h, w), None, IOContract(io, inputs, outputs))
        self.module = module.eval()
        self.threads = threads

    def run_native(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        # torch's thread count is process-global: set it on every call so interleaved
        # benchmarks of sessions with different thread counts stay honest.
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        # Flush subnormal activations to zero, as the ONNX Runtime sessions do: on x86 each
        # one costs a microcode assist, and none changes a float32 probability. The mode is
        # the CPU thread's global state, so it is on only while the model runs: the caller's
        # own arithmetic afterwards keeps IEEE subnormals.
        torch.set_flush_denormal(True)
        try:
            with torch.inference_mode():
                out = self.module(*(torch.from_numpy(np.ascontiguousarray(x)) for x in inputs))
        finally:
            torch.set_flush_denormal(False)
        outs = out if isinstance(out, (tuple, list)) else [out]
        return [o.detach().cpu().numpy() for o in outs]


def torch_reference(
    weights: str | Path = "official",
    input_size: tuple[int, int] = (224, 224),
    *,
    threads: int = 1,
    **config: Any,
) -> TorchSession:
    """The PyTorch fp32 reference (reference form, not the deploy form) as a session.

    Args:
        weights: ``"official"``, ``"random"`` or a checkpoint path.
        input_size: ``(H, W)``, multiples of 32.
        threads: intra-op threads used while running.
        **config: SINet config options (see :class:`sinet_deploy.models.SINetConfig`).
    """
    from sinet_deploy.models import load_model

    check_input_size(*input_size)
    model = load_model(weights, **config)
    label = "official" if str(weights) == "official" else Path(str(weights)).name
    return TorchSession(
        model,
        (int(input_size[0]), int(input_size[1])),
        name=f"torch-reference ({label})",
        threads=threads,
    )
