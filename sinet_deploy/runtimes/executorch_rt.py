"""ExecuTorch sessions: a ``.pte`` program run by ``executorch.runtime`` (the pybind runtime).

The XNNPACK delegate is inside the program (chosen at export), so there is nothing to select at
load time: ``provider`` is ``cpu`` (or its alias ``xnnpack``). The program's tensor specs come
from its method metadata; names come from the manifest (a ``.pte`` stores none).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator
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

PROVIDERS = ("cpu", "xnnpack")
METHOD = "forward"

#: ExecuTorch's ``ScalarType`` codes (``TensorInfo.dtype()``) → NumPy dtype names.
_SCALAR_TYPES = {
    0: "uint8",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "int64",
    5: "float16",
    6: "float32",
    7: "float64",
    11: "bool",
}

#: Bytes 4..8 of every serialized ExecuTorch program: the flatbuffer file identifier ("ET" +
#: schema version). Checked before the runtime sees the file, so a file that is not a program
#: at all is refused with a clear message instead of whatever the C++ loader reports.
_MAGIC_PREFIX = b"ET"


#: Loggers that warn on every import of executorch (which imports torchao): torchao cannot load
#: its CUDA-only kernels (``_C_mxfp8``, ``_C_cutlass_90a``) on a CPU build of torch, and torch's
#: pytree deprecates torchao's enum registration. Neither concerns a CPU ExecuTorch program.
_NOISY_LOGGERS = ("torchao", "torch.utils._pytree")


@contextlib.contextmanager
def quiet_executorch_import() -> Iterator[None]:
    """Keep the import-time warnings of executorch/torchao (see above) out of the output."""
    loggers = [logging.getLogger(name) for name in _NOISY_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


#: The runtime's informational C++ log lines (``[cpuinfo_utils.cpp:71] Reading file …``,
#: ``[threadpool.cpp:66] Resetting threadpool to 1 threads.``), written to fd 2 on start-up and
#: on every thread-pool resize.
_RUNTIME_CHATTER = re.compile(r"^\[[\w.]+\.cpp:\d+\] ")


@contextlib.contextmanager
def _without_runtime_chatter() -> Iterator[None]:
    """Drop :data:`_RUNTIME_CHATTER` lines; anything else written to fd 2 is passed on.

    They are written straight to file descriptor 2, past Python's ``sys.stderr``, and would land
    in the middle of a command's output (the same trick as LiteRT's ``INFO:`` lines).
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters): leave it alone
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            rest = [ln for ln in text.splitlines(keepends=True) if not _RUNTIME_CHATTER.match(ln)]
            if rest:
                sys.stderr.write("".join(rest))


def _names(manifest: dict[str, Any] | None, key: str, count: int, default: str) -> list[str]:
    specs = (manifest or {}).get(key, [])
    names = [str(s.get("name")) for s in specs if isinstance(s, dict) and s.get("name")]
    if len(names) == count:
        return names
    return [default if count == 1 else f"{default}{i}" for i in range(count)]


def _spec(info: Any, name: str) -> TensorSpec:
    shape = tuple(int(d) for d in info.sizes())
    dtype = _SCALAR_TYPES.get(int(info.dtype()), f"scalar_type_{int(info.dtype())}")
    return TensorSpec(name, shape, dtype, guess_layout(shape))


def check_program_file(path: Path) -> None:
    """:class:`ArtifactError` unless ``path`` starts like a serialized ExecuTorch program."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise ArtifactError(
            f"cannot read {path.name} ({exc.strerror})", hint="check the file"
        ) from None
    if len(head) < 8 or head[4:6] != _MAGIC_PREFIX:
        raise ArtifactError(
            f"{path.name} is not an ExecuTorch program (no ET flatbuffer header)",
            hint="re-export it with `sinet-deploy export --formats executorch`",
        )


#: Whether this process has loaded a program (see :func:`_set_threadpool`).
_PROGRAM_LOADED = False


def _threadpool_size(portable_lib: Any) -> int:
    return int(portable_lib._threadpool_get_thread_count())


def _set_threadpool(portable_lib: Any, threads: int) -> None:
    """Size ExecuTorch's process-wide thread pool, but only before the first program loads.

    A loaded XNNPACK method keeps a pointer to the pool, and ``_unsafe_reset_threadpool``
    frees it: resizing after a load made the next ``execute`` crash (segmentation fault,
    executorch 1.5.1). So the first session of a process decides; later ones run with that
    pool and report its size as their ``threads``.
    """
    global _PROGRAM_LOADED
    # The pool is created on first use, which logs the cpuinfo probing to fd 2.
    with _without_runtime_chatter():
        if not _PROGRAM_LOADED and _threadpool_size(portable_lib) != threads:
            portable_lib._unsafe_reset_threadpool(threads)
    _PROGRAM_LOADED = True


class ExecuTorchSession(Session):
    """One loaded ``forward`` method of a ``.pte`` behind the :class:`Session` contract.

    ``threads`` sizes ExecuTorch's thread pool, which is global to the process (the pybind
    runtime has no per-program setting) and can only be sized before the first program loads
    (:func:`_set_threadpool`): the first session of a process decides, and ``self.threads`` is
    the pool's real size. Benchmarks run one session per worker process, so each row gets the
    count it asked for.
    """

    runtime = "executorch"

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
                f"unknown ExecuTorch provider {provider!r}",
                hint=f"use one of {', '.join(PROVIDERS)} (the delegate is chosen at export)",
            )
        check_program_file(path)
        try:
            import torch  # noqa: F401  (executorch.runtime exchanges torch tensors)

            # The runtime's C++ side prints cpuinfo probing and thread-pool lines straight to
            # fd 2 (past sys.stderr) when it starts and when the pool is resized.
            with quiet_executorch_import(), _without_runtime_chatter(), warnings.catch_warnings():
                # portable_lib warns that its (stable since 0.4) pybind API is "experimental".
                warnings.simplefilter("ignore")
                from executorch.extension.pybindings import portable_lib
                from executorch.runtime import Runtime

                runtime = Runtime.get()
        except ImportError:
            raise MissingDependencyError(
                "executorch is not installed", hint="pip install 'sinet-deploy[executorch]'"
            ) from None
        _set_threadpool(portable_lib, threads)
        try:
            with _without_runtime_chatter():
                self.program = runtime.load_program(path)
                method = self.program.load_method(METHOD)
        except Exception as exc:  # the pybind loader raises bare RuntimeError/ValueError codes
            raise ArtifactError(
                f"ExecuTorch cannot load {path.name}: {str(exc).splitlines()[0][:200]}",
                hint="re-export the model or check the file",
            ) from None
        if method is None:
            raise ArtifactError(
                f"{path.name} has no method {METHOD!r}",
                hint="sinet-deploy runs programs exported with a forward method",
            )
        self.method = method
        meta = method.metadata
        n_in, n_out = int(meta.num_inputs()), int(meta.num_outputs())
        in_names = _names(manifest, "inputs", n_in, "input")
        out_names = _names(manifest, "outputs", n_out, "output")
        inputs = [_spec(meta.input_tensor_meta(i), in_names[i]) for i in range(n_in)]
        outputs = [_spec(meta.output_tensor_meta(i), out_names[i]) for i in range(n_out)]
        if not inputs or not outputs:
            raise ArtifactError(
                f"{path.name}: method {METHOD!r} has no tensor input or output",
                hint="sinet-deploy runs image models",
            )
        contract = contract_from_manifest(manifest, inputs, outputs)
        super().__init__(path.name, spatial_size(contract.inputs[0]), manifest, contract)
        self.path = path
        self.provider = provider
        self.threads = _threadpool_size(portable_lib)

    def run_native(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        outputs = self.method.execute([torch.from_numpy(np.ascontiguousarray(x)) for x in inputs])
        # The runtime copies outputs out of its planned arenas on every call (see
        # executorch.runtime.Program.load_method), so no extra copy is needed here.
        return [o.numpy() if isinstance(o, torch.Tensor) else np.asarray(o) for o in outputs]
