"""LiteRT (TensorFlow Lite) sessions, and what a ``.tflite`` graph contains.

``ai-edge-litert`` is the maintained runtime; ``tflite-runtime`` stopped at 2.14 and fails to
load models under NumPy 2, so it is only a fallback for users who have nothing else. The default
XNNPACK delegate stays on: it is what phones and desktops use, and MediaPipe's selfie segmenter
(a peer) runs its custom op only through it.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import os
import sys
import tempfile
import weakref
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
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

#: ``provider`` values: ``cpu``/``xnnpack`` keep LiteRT's default XNNPACK delegate;
#: ``reference`` runs the builtin kernels only (no delegate); ``xnnpack-fp16`` asks XNNPACK to
#: run the float operators in fp16 (:class:`ForceFp16Runner`).
PROVIDERS = ("cpu", "xnnpack", "reference", "xnnpack-fp16")

#: XNNPACK delegate flags (tensorflow/lite/delegates/xnnpack/xnnpack_delegate.h): int8 (QS8),
#: uint8 (QU8) and "force FP16 inference for FP32 operators".
XNNPACK_FLAG_QS8, XNNPACK_FLAG_QU8, XNNPACK_FLAG_FORCE_FP16 = 0x1, 0x2, 0x4


def interpreter_class() -> tuple[Any, Any, str]:
    """``(Interpreter, OpResolverType or None, package name)`` from the best installed runtime."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        return Interpreter, OpResolverType, "ai-edge-litert"
    except ImportError:
        pass
    try:  # pragma: no cover - only where the user has nothing newer
        from tflite_runtime.interpreter import Interpreter as LegacyInterpreter

        try:
            from tflite_runtime.interpreter import OpResolverType as LegacyResolver
        except ImportError:
            LegacyResolver = None
        return LegacyInterpreter, LegacyResolver, "tflite-runtime"
    except ImportError:
        raise MissingDependencyError(
            "no TFLite runtime installed (ai-edge-litert)",
            hint="pip install 'sinet-deploy[tflite]'",
        ) from None


def reference_interpreter(
    model: bytes, *, num_threads: int | None = None, preserve_all_tensors: bool = False
) -> Any:
    """An allocated LiteRT ``Interpreter`` on the builtin reference kernels, with no delegate.

    Tools that read intermediate tensors need it: inside an XNNPACK partition they are never
    written back. It raises what LiteRT raises (``ValueError``/``RuntimeError``), e.g. for a
    custom op only the default delegates resolve; :func:`op_by_op_error` words that.
    """
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs: dict[str, Any] = {"model_content": model}
    if num_threads is not None:
        kwargs["num_threads"] = num_threads
    if preserve_all_tensors:
        kwargs["experimental_preserve_all_tensors"] = True
    it = Interpreter(
        **kwargs,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    return it


def op_by_op_error(exc: BaseException, what: str, *, command: str, examples: str) -> ArtifactError:
    """The one-line error for a model LiteRT cannot run op by op (usually a custom op, such as
    MediaPipe's ``Convolution2DTransposeBias``, which only the default delegates resolve).

    Args:
        exc: what LiteRT raised; its first line is quoted.
        what: the start of the message, e.g. ``"LiteRT cannot run model.tflite op by op"``.
        command: the command that needs op-by-op execution (``diagnose``, ``profile``).
        examples: which of sinet-deploy's models it works on (``"exports"``).
    """
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return ArtifactError(
        f"{what}: {first}",
        hint=f"{command} works on models without custom ops, such as sinet-deploy's {examples}",
    )


def _spec(detail: dict[str, Any]) -> TensorSpec:
    shape = tuple(int(d) for d in detail["shape"])
    scale, zero = detail.get("quantization", (0.0, 0))
    quant = (float(scale), int(zero)) if scale else None
    return TensorSpec(
        detail["name"], shape, np.dtype(detail["dtype"]).name, guess_layout(shape), quant
    )


class LiteRTSession(Session):
    """A LiteRT ``Interpreter`` behind the :class:`Session` contract."""

    runtime = "litert"

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
                f"unknown LiteRT provider {provider!r}", hint=f"use one of {', '.join(PROVIDERS)}"
            )
        if provider == "xnnpack-fp16":
            self._fp16: ForceFp16Runner | None = ForceFp16Runner(path, threads)
            inputs, outputs = self._fp16.specs()
            contract = contract_from_manifest(manifest, inputs, outputs)
            super().__init__(path.name, spatial_size(contract.inputs[0]), manifest, contract)
            self.path, self.threads, self.provider = path, threads, provider
            self.package = "ai-edge-litert"
            return
        self._fp16 = None
        interpreter, resolver, self.package = interpreter_class()
        kwargs: dict[str, Any] = {"model_path": str(path), "num_threads": threads}
        if provider == "reference" and resolver is not None:
            kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            with _without_info_logs():
                self.interpreter = interpreter(**kwargs)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ArtifactError(
                f"LiteRT cannot load {path.name}: {str(exc).splitlines()[0]}",
                hint="re-export the model; peers with custom ops need the "
                "default XNNPACK delegate (provider 'cpu')",
            ) from None
        self._in = self.interpreter.get_input_details()
        self._out = self.interpreter.get_output_details()
        inputs = [_spec(d) for d in self._in]
        outputs = [_spec(d) for d in self._out]
        contract = contract_from_manifest(manifest, inputs, outputs)
        super().__init__(path.name, spatial_size(contract.inputs[0]), manifest, contract)
        self.path = path
        self.threads = threads
        self.provider = provider

    def run_native(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        if self._fp16 is not None:
            return self._fp16.run(inputs)
        it = self.interpreter
        for detail, x in zip(self._in, inputs, strict=True):
            it.set_tensor(detail["index"], x)
        it.invoke()
        # get_tensor copies: the interpreter reuses its buffers on the next invoke.
        return [it.get_tensor(d["index"]) for d in self._out]

    def delegation(self) -> dict[str, Any]:
        """How the default delegate split this graph (see :func:`delegate_partitions`)."""
        if self._fp16 is not None:
            return {"fully_accelerated": self._fp16.model.is_fully_accelerated()}
        return delegate_partitions(self.interpreter)


#: What LiteRT's CompiledModel writes to fd 2 while it sets up or tears down: registry and
#: accelerator INFO/WARNING lines, and the vendor plugins it probes (OpenVINO, NPUs) but this
#: runner never uses.
_COMPILED_MODEL_CHATTER = ("INFO: ", "WARNING: [", "└ Could not load shared library")


_QUIET_EXIT = {"registered": False}


def _register_quiet_exit() -> None:
    if not _QUIET_EXIT["registered"]:
        _QUIET_EXIT["registered"] = True
        atexit.register(_quiet_exit)


def _quiet_exit() -> None:
    """Point fd 2 at /dev/null once Python is done: what follows is only LiteRT's static
    destructors logging "DestroyAccelerator", after every line of the command's output."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)


def _release_quietly(resources: dict[str, Any]) -> None:
    with _without_info_logs(drop=_COMPILED_MODEL_CHATTER):
        if "model" in resources:
            resources["model"].close()
        resources.clear()
        gc.collect()


class ForceFp16Runner:
    """A model run by LiteRT's ``CompiledModel`` with XNNPACK's force-fp16 flag.

    The ``Interpreter`` API takes no delegate flags; ``CompiledModel`` (LiteRT ≥ 2.0) passes
    them to XNNPACK, which then computes the float operators in IEEE fp16 where the CPU has
    fp16 arithmetic (ARMv8.2 FP16 on phones, AVX512-FP16 on recent Xeons) and emulates it
    elsewhere. The flag changes only float operators: a full-integer graph runs as without it.
    """

    def __init__(self, path: Path, threads: int, model_bytes: bytes | None = None) -> None:
        try:
            from ai_edge_litert.compiled_model import CompiledModel
            from ai_edge_litert.cpu_options import CpuOptions
            from ai_edge_litert.options import Options
        except ImportError:
            raise MissingDependencyError(
                "this LiteRT has no CompiledModel API (needed for xnnpack-fp16)",
                hint="pip install 'ai-edge-litert>=2.0'",
            ) from None
        flags = XNNPACK_FLAG_QS8 | XNNPACK_FLAG_QU8 | XNNPACK_FLAG_FORCE_FP16
        options = Options(cpu_options=CpuOptions(num_threads=threads, xnnpack_flags=flags))
        try:
            with _without_info_logs(drop=_COMPILED_MODEL_CHATTER):
                model = (
                    CompiledModel.from_file(str(path), options=options)
                    if model_bytes is None
                    else CompiledModel.from_buffer(model_bytes, options=options)
                )
                signatures = list(model.get_signature_list())
        except (ValueError, RuntimeError) as exc:
            raise ArtifactError(
                f"LiteRT cannot compile {path.name} for xnnpack-fp16: "
                f"{' '.join(str(exc).split())[:200]}",
                hint="re-export the model, or use the default provider",
            ) from None
        if not signatures:
            raise ArtifactError(
                f"{path.name} has no signature, which LiteRT's CompiledModel needs",
                hint="sinet-deploy's .tflite artifacts have one; re-export the model",
            )
        key = signatures[0]
        self._in = list(model.get_input_tensor_details(key).values())
        self._out = list(model.get_output_tensor_details(key).values())
        # The LiteRT objects live only in this dict: LiteRT logs every accelerator it tears
        # down, whenever the last reference goes (often at interpreter exit, after the
        # command's output), so the finalizer empties it inside a quiet context.
        self._res: dict[str, Any] = {
            "model": model,
            "inputs": model.create_input_buffers(0),
            "outputs": model.create_output_buffers(0),
        }
        weakref.finalize(self, _release_quietly, self._res)
        # The first buffer write creates LiteRT's process-wide tensor-buffer environment,
        # which logs its accelerators now and again when C++ statics are destroyed at exit.
        with _without_info_logs(drop=_COMPILED_MODEL_CHATTER):
            for buf, d in zip(self._res["inputs"], self._in, strict=True):
                buf.write(np.zeros([int(v) for v in d["shape"]], np.dtype(d["dtype"])))
        _register_quiet_exit()

    @property
    def model(self) -> Any:
        return self._res["model"]

    def specs(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        return [_spec(d) for d in self._in], [_spec(d) for d in self._out]

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        res = self._res
        for buf, x in zip(res["inputs"], inputs, strict=True):
            buf.write(np.ascontiguousarray(x))
        res["model"].run_by_index(0, res["inputs"], res["outputs"])
        out = []
        for buf, d in zip(res["outputs"], self._out, strict=True):
            shape = tuple(int(v) for v in d["shape"])
            out.append(buf.read(int(np.prod(shape)), np.dtype(d["dtype"])).reshape(shape))
        return out


def _flush_c_stdio() -> None:
    """Flush the C library's stdio buffers: LiteRT's newer loggers write through a buffered
    ``FILE*``, so their lines would otherwise reach fd 2 later, after it is restored."""
    import ctypes

    if os.name != "posix":  # CDLL(None) (the process's own symbols) is POSIX-only
        return
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).fflush(None)


@contextmanager
def _without_info_logs(*, drop: tuple[str, ...] = ("INFO: ",)) -> Iterator[None]:
    """Drop LiteRT's C++ ``INFO:`` lines ("Created TensorFlow Lite XNNPACK delegate for CPU.").

    They are written straight to file descriptor 2, past Python's ``sys.stderr``, and would
    land in the middle of a command's output. Anything else written meanwhile (warnings,
    errors) is passed on to stderr unchanged.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (embedded interpreters): leave it alone
        yield
        return
    failed = False
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            _flush_c_stdio()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            rest = [
                ln
                for ln in sink.read().decode(errors="replace").splitlines(keepends=True)
                if not ln.startswith(drop)
            ]
            # When loading failed, LiteRT's C++ lines repeat what the exception says; the
            # caller turns that into the command's one error line, so they are dropped.
            if rest and not failed:
                sys.stderr.write("".join(rest))


# --- graph inspection -----------------------------------------------------------------------


def _schema() -> Any:
    from ai_edge_litert import schema_py_generated as schema

    return schema


def read_model_object(data: bytes) -> Any:
    """Parse a ``.tflite`` flatbuffer into the mutable object API (``ModelT``)."""
    from ai_edge_litert.tools import flatbuffer_utils

    try:
        return flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise ArtifactError(
            f"not a readable TFLite flatbuffer ({type(exc).__name__})", hint="re-export the model"
        ) from None


def op_code_names(model: Any) -> list[str]:
    """The name of each entry of a ``ModelT``'s ``operatorCodes`` (``CONV_2D``, ``CUSTOM:x``)."""
    schema = _schema()
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    out = []
    for code in model.operatorCodes or []:
        # deprecatedBuiltinCode holds codes < 127 in older files; the larger one is right.
        builtin = max(code.builtinCode, code.deprecatedBuiltinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            name = code.customCode
            out.append(f"CUSTOM:{name.decode() if isinstance(name, bytes) else name}")
        else:
            out.append(names.get(builtin, str(builtin)))
    return out


def op_counts(path_or_bytes: Path | bytes) -> dict[str, int]:
    """Builtin (and custom) operator counts of every subgraph, e.g. ``{"CONV_2D": 39, …}``."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    model = read_model_object(data)
    names = op_code_names(model)
    counts = Counter(
        names[op.opcodeIndex]
        for subgraph in model.subgraphs or []
        for op in subgraph.operators or []
    )
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


#: Ops whose multiply-accumulates :func:`graph_macs` counts, by how their weights are laid out.
_MAC_OPS = {
    "CONV_2D": "ohwi",  # out elements × kh × kw × cin (per group)
    "DEPTHWISE_CONV_2D": "1hwo",  # out elements × kh × kw
    "FULLY_CONNECTED": "oi",  # out elements × in features
    "TRANSPOSE_CONV": "t",  # in elements × kh × kw × cout
    "CUSTOM:Convolution2DTransposeBias": "t",  # MediaPipe's transpose conv (weights OHWI)
}


def graph_macs(path_or_bytes: Path | bytes) -> int | None:
    """Multiply-accumulates per inference of a ``.tflite`` graph's convolutions and fully
    connected layers, from its tensor shapes (``None`` when a shape is dynamic or missing).

    Element-wise ops, pooling and resizes are not counted, as in the usual MAC figures.
    """
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    model = read_model_object(data)
    names = op_code_names(model)
    total = 0
    for graph in model.subgraphs or []:
        tensors = graph.tensors or []
        for op in graph.operators or []:
            kind = _MAC_OPS.get(names[op.opcodeIndex])
            if kind is None:
                continue
            shapes = [
                [] if i < 0 or tensors[i].shape is None else [int(d) for d in tensors[i].shape]
                for i in list(op.inputs) + list(op.outputs)
            ]
            if kind == "t" and names[op.opcodeIndex] == "TRANSPOSE_CONV":
                # inputs: output shape, weights, data (MediaPipe's custom op: data, weights)
                shapes = [shapes[2], shapes[1], *shapes[3:]]
            x, w, out = shapes[0], shapes[1], shapes[-1]
            if not x or not w or not out or min(x + w + out) < 1:
                return None
            n_out, n_in = int(np.prod(out)), int(np.prod(x))
            if kind == "ohwi":
                total += n_out * w[1] * w[2] * w[3]
            elif kind == "1hwo":
                total += n_out * w[1] * w[2]
            elif kind == "oi":
                total += n_out * w[-1]
            else:
                total += n_in * w[0] * w[1] * w[2]
    return total


def integer_convolutions(path_or_bytes: Path | bytes) -> bool:
    """Whether a ``.tflite``'s convolutions run on integer (quantized) inputs."""
    schema = _schema()
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    model = read_model_object(data)
    names = op_code_names(model)
    integer = (schema.TensorType.INT8, schema.TensorType.UINT8)
    return any(
        graph.tensors[op.inputs[0]].type in integer
        for graph in model.subgraphs or []
        for op in graph.operators or []
        if names[op.opcodeIndex] in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs)
    )


def delegate_partitions(interpreter: Any) -> dict[str, Any]:
    """Count delegate partitions and the ops left on the builtin CPU kernels.

    LiteRT's "Replacing N out of M node(s) with delegate … yielding K partitions" line is not
    printed by the release builds, so this reads the node list instead: after delegation each
    partition is one extra ``DELEGATE`` node, and the ops still executed outside it are found by
    walking back from the graph outputs and the partitions' inputs.
    """
    ops = interpreter._get_ops_details()
    delegates = [op for op in ops if op["op_name"] == "DELEGATE"]
    original = [op for op in ops if op["op_name"] != "DELEGATE"]
    if not delegates:
        return {
            "xnnpack_partitions": 0,
            "xnnpack_compute_partitions": 0,
            "delegated_ops": 0,
            "total_ops": len(original),
            "undelegated_ops": dict(Counter(op["op_name"] for op in original)),
        }
    produced_by = {int(t): op for op in original for t in op["outputs"]}
    delegate_out = {int(t) for op in delegates for t in op["outputs"]}
    needed = [int(d["index"]) for d in interpreter.get_output_details()]
    needed += [int(t) for op in delegates for t in op["inputs"]]
    cpu_ops: dict[int, dict[str, Any]] = {}
    while needed:
        t = needed.pop()
        op = produced_by.get(t)
        if t in delegate_out or op is None or op["index"] in cpu_ops:
            continue
        cpu_ops[op["index"]] = op
        needed.extend(int(i) for i in op["inputs"] if i >= 0)
    # A partition that only reads constants (fp16 models: the DEQUANTIZE of every weight) runs
    # once at load; count the ones on the input's path separately.
    dynamic = {int(d["index"]) for d in interpreter.get_input_details()}
    changed = True
    while changed:
        changed = False
        for op in original:
            if any(int(t) in dynamic for t in op["inputs"]) and not all(
                int(t) in dynamic for t in op["outputs"]
            ):
                dynamic.update(int(t) for t in op["outputs"])
                changed = True
    compute = [op for op in delegates if any(int(t) in dynamic for t in op["inputs"])]
    return {
        "xnnpack_partitions": len(delegates),
        "xnnpack_compute_partitions": len(compute),
        "delegated_ops": len(original) - len(cpu_ops),
        "total_ops": len(original),
        "undelegated_ops": dict(Counter(op["op_name"] for op in cpu_ops.values())),
    }


def analyze(path: Path, *, threads: int = 1) -> dict[str, Any]:
    """``op_counts``, ``transpose_ops`` and the XNNPACK delegation of a ``.tflite`` file."""
    counts = op_counts(Path(path))
    session = LiteRTSession(Path(path), None, threads=threads)
    return {
        "op_counts": counts,
        "transpose_ops": counts.get("TRANSPOSE", 0),
        **session.delegation(),
    }
