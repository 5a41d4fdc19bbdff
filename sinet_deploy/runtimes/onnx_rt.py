"""ONNX Runtime sessions (our artifacts and any third-party ``.onnx``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ArtifactError, MissingDependencyError, UserInputError
from sinet_deploy.runtimes.base import (
    Session,
    TensorSpec,
    contract_from_manifest,
    guess_layout,
    spatial_size,
)

#: ``provider`` argument → ONNX Runtime execution provider.
PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
}


def _spec(arg: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else 1 for d in arg.shape)  # symbolic dims → 1
    return TensorSpec(arg.name, shape, _ORT_TYPES.get(arg.type, arg.type), guess_layout(shape))


class OnnxSession(Session):
    """An ``onnxruntime.InferenceSession`` behind the :class:`Session` contract."""

    runtime = "onnxruntime"

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any] | None,
        *,
        threads: int = 1,
        provider: str = "cpu",
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError(
                "onnxruntime is not installed", hint="pip install 'sinet-deploy[onnx]'"
            ) from None
        if provider not in PROVIDERS:
            raise UserInputError(
                f"unknown ONNX Runtime provider {provider!r}",
                hint=f"use one of {', '.join(PROVIDERS)}",
            )
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        # Subnormal activations cost a microcode assist per operation on x86; values below
        # 1.2e-38 change no probability a float32 graph can resolve (see flush_subnormals).
        opts.add_session_config_entry("session.set_denormal_as_zero", "1")
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=opts, providers=[PROVIDERS[provider]]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ArtifactError(
                f"ONNX Runtime cannot load {path.name}: {str(exc).splitlines()[0][:200]}",
                hint="re-export the model or check the file",
            ) from None
        inputs = [_spec(a) for a in self.session.get_inputs()]
        outputs = [_spec(a) for a in self.session.get_outputs()]
        contract = contract_from_manifest(manifest, inputs, outputs)
        super().__init__(path.name, spatial_size(contract.inputs[0]), manifest, contract)
        self.path = path
        self.threads = threads
        self._names = [s.name for s in inputs]

    def run_native(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return list(self.session.run(None, dict(zip(self._names, inputs, strict=True))))
