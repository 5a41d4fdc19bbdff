"""Core ML sessions for ``.mlpackage`` artifacts.

Two back ends behind the same :class:`~sinet_deploy.runtimes.base.Session` contract:

- ``coreml-reference`` (everywhere): the NumPy evaluator of :mod:`.mil_eval` runs the saved ML
  program. It is a *reference evaluation of the converted program*, not Apple's runtime.
- ``coreml`` (macOS only): ``coremltools.models.MLModel.predict``, i.e. Core ML itself.

``provider`` picks: ``"reference"`` → the evaluator; ``"cpu"`` (the default everywhere in
sinet-deploy) → Core ML on the CPU where Core ML can run, else the evaluator; ``"all"``,
``"cpu_and_gpu"``, ``"cpu_and_ne"`` → Core ML with those compute units (macOS only).
``session.runtime`` always says which one ran.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ArtifactError, MissingDependencyError, UserInputError
from sinet_deploy.runtimes.base import Session, TensorSpec, contract_from_manifest, spatial_size
from sinet_deploy.runtimes.mil_eval import LABEL, MILEvaluator, Program, load_program

#: provider → coremltools ``ComputeUnit`` name (Core ML back end).
COMPUTE_UNITS = {
    "cpu": "CPU_ONLY",
    "all": "ALL",
    "cpu_and_gpu": "CPU_AND_GPU",
    "cpu_and_ne": "CPU_AND_NE",
}
PROVIDERS = ("reference", *COMPUTE_UNITS)

_ARRAY_DTYPES = {
    "FLOAT32": "float32",
    "FLOAT16": "float16",
    "DOUBLE": "float64",
    "INT32": "int32",
    "INT8": "int8",
}


def coreml_available() -> tuple[bool, str]:
    """Whether Core ML prediction can run here, and if not, why (a one-line reason)."""
    if platform.system() != "Darwin":
        return False, f"Core ML runs only on macOS (this is {platform.system()})"
    try:
        import coremltools.libcoremlpython  # noqa: F401
    except ImportError:
        return False, "coremltools was installed without libcoremlpython (the macOS wheel has it)"
    return True, ""


def _specs(program: Program) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Native tensor specs: an image input is the uint8 RGB NHWC picture an app hands over."""
    inputs = []
    for name, t in program.inputs:
        feat = program.input_features.get(name, {})
        if feat.get("kind") == "image":
            if feat.get("color_space") not in ("RGB", "BGR"):
                raise ArtifactError(
                    f"{program.path.name}: {feat.get('color_space')} image input "
                    f"{name!r} is not supported",
                    hint="export an RGB model",
                )
            inputs.append(
                TensorSpec(name, (1, int(feat["height"]), int(feat["width"]), 3), "uint8", "nhwc")
            )
        else:
            shape = tuple(d if d is not None else 1 for d in (t.shape or ()))
            inputs.append(TensorSpec(name, shape, np.dtype(t.dtype).name, None))
    outputs = []
    for name in program.outputs:
        feat = program.output_features.get(name, {})
        shape = tuple(int(d) for d in feat.get("shape", []))
        outputs.append(
            TensorSpec(name, shape, _ARRAY_DTYPES.get(feat.get("dtype", ""), "float32"), None)
        )
    return inputs, outputs


class CoreMLSession(Session):
    """An ``.mlpackage`` behind the :class:`Session` contract (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any] | None,
        *,
        threads: int = 1,
        provider: str = "cpu",
    ) -> None:
        if provider not in PROVIDERS:
            raise UserInputError(
                f"unknown CoreML provider {provider!r}", hint=f"use one of {', '.join(PROVIDERS)}"
            )
        path = Path(path)
        self.program = load_program(path)
        inputs, outputs = _specs(self.program)
        contract = contract_from_manifest(manifest, inputs, outputs)
        super().__init__(path.name, spatial_size(contract.inputs[0]), manifest, contract)
        self.path = path
        self.threads = threads  # the evaluator is single-threaded; Core ML picks its own
        self.provider = provider
        self._image_inputs = {
            n: f for n, f in self.program.input_features.items() if f.get("kind") == "image"
        }
        ok, why = coreml_available()
        if provider == "reference" or (provider == "cpu" and not ok):
            self.runtime = LABEL
            self.fallback_reason = None if provider == "reference" else why
            self._evaluator: MILEvaluator | None = MILEvaluator(self.program)
            self._mlmodel = None
        else:
            if not ok:
                raise MissingDependencyError(
                    f"CoreML provider {provider!r} needs Core ML: {why}",
                    hint="use provider 'reference' (the NumPy evaluator) off macOS",
                )
            self.runtime = "coreml"
            self.fallback_reason = None
            self._evaluator = None
            self._mlmodel = _load_mlmodel(path, COMPUTE_UNITS[provider])

    def run_native(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        names = [s.name for s in self.contract.inputs]
        if len(inputs) != len(names):
            raise ArtifactError(f"{self.name} takes {len(names)} inputs, got {len(inputs)}")
        if self._evaluator is not None:
            feeds = {n: self._to_program(n, x) for n, x in zip(names, inputs, strict=True)}
            out = self._evaluator(feeds)
        else:
            out = self._predict(dict(zip(names, inputs, strict=True)))
        return [np.asarray(out[s.name]) for s in self.contract.outputs]

    def _to_program(self, name: str, x: np.ndarray) -> np.ndarray:
        """What Core ML hands the program for a picture: float pixels 0..255, NCHW."""
        feat = self._image_inputs.get(name)
        if feat is None:
            return x
        img = np.asarray(x)[0]  # HxWx3 RGB uint8
        if feat.get("color_space") == "BGR":
            img = img[..., ::-1]
        return np.ascontiguousarray(img.transpose(2, 0, 1)[None], dtype=np.float32)

    def _predict(self, feeds: dict[str, np.ndarray]) -> dict[str, Any]:
        from PIL import Image

        args: dict[str, Any] = {}
        for name, x in feeds.items():
            args[name] = Image.fromarray(np.asarray(x)[0]) if name in self._image_inputs else x
        assert self._mlmodel is not None
        return dict(self._mlmodel.predict(args))


def _load_mlmodel(path: Path, compute_units: str) -> Any:
    from sinet_deploy.runtimes.coreml_import import import_coremltools

    ct = import_coremltools()
    try:
        return ct.models.MLModel(str(path), compute_units=getattr(ct.ComputeUnit, compute_units))
    except Exception as exc:  # Core ML reports compile errors as bare exceptions
        raise ArtifactError(
            f"Core ML cannot load {path.name}: {str(exc).splitlines()[0][:200]}",
            hint="re-export the model",
        ) from None


def load_coreml(path: Path, manifest: dict[str, Any] | None, **kw: Any) -> Session:
    """The loader registered for ``.mlpackage`` in :mod:`sinet_deploy.runtimes`."""
    return CoreMLSession(Path(path), manifest, **kw)
