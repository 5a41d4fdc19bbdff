"""Read a saved ``.mlpackage`` into plain Python: the ML program's ops, constants and I/O.

Only the files are read: ``Manifest.json`` names the root model, whose protobuf (``Model``, with
an ``mlProgram``) holds the MIL program, and ``weights/weight.bin`` holds the large constants
(:mod:`.blob`). Nothing here runs Core ML, so it works on Linux.

The protobuf classes are coremltools' generated ``coremltools/proto/*_pb2.py``. Importing them as
``coremltools.proto`` runs ``coremltools/__init__``, which imports TensorFlow and PyTorch when
they are installed (8 s here, plus a screen of warnings), so they are loaded as a standalone
package from the same directory; they only use relative imports and ``google.protobuf``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from sinet_deploy.core.errors import ArtifactError, MissingDependencyError
from sinet_deploy.runtimes.mil_eval.blob import BlobFile

_PROTO_ALIAS = "_sinet_deploy_coreml_proto"

#: MIL ``DataType`` names → NumPy dtypes (``STRING`` values stay Python ``str``).
_NP_DTYPES = {
    "BOOL": np.dtype(bool),
    "FLOAT16": np.dtype(np.float16),
    "FLOAT32": np.dtype(np.float32),
    "FLOAT64": np.dtype(np.float64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
}


def proto_modules() -> tuple[ModuleType, ModuleType]:
    """``(Model_pb2, MIL_pb2)`` of the installed coremltools, without importing coremltools.

    Raises:
        MissingDependencyError: coremltools (or protobuf) is not installed.
    """
    if "coremltools.proto.Model_pb2" in sys.modules:  # coremltools is loaded anyway: reuse
        return sys.modules["coremltools.proto.Model_pb2"], sys.modules["coremltools.proto.MIL_pb2"]
    try:
        if _PROTO_ALIAS not in sys.modules:
            spec = importlib.util.find_spec("coremltools")  # locates, does not import
            if spec is None or spec.origin is None:
                raise ImportError("coremltools")
            pkg = importlib.machinery.ModuleSpec(_PROTO_ALIAS, None, is_package=True)
            pkg.submodule_search_locations = [str(Path(spec.origin).parent / "proto")]
            sys.modules[_PROTO_ALIAS] = importlib.util.module_from_spec(pkg)
        model_pb2 = importlib.import_module(f"{_PROTO_ALIAS}.Model_pb2")
        mil_pb2 = importlib.import_module(f"{_PROTO_ALIAS}.MIL_pb2")
    except ImportError:
        sys.modules.pop(_PROTO_ALIAS, None)
        raise MissingDependencyError(
            "reading .mlpackage files needs coremltools (its protobuf definitions)",
            hint="pip install 'sinet-deploy[coreml]'",
        ) from None
    return model_pb2, mil_pb2


@dataclass(frozen=True)
class TensorType:
    """A MIL value type: ``dtype`` (NumPy dtype, or ``"str"``) and ``shape`` (``None``: unknown
    dimension; ``shape`` itself ``None`` for a non-tensor type)."""

    dtype: Any
    shape: tuple[int | None, ...] | None


@dataclass(frozen=True)
class Inline:
    """A constant written directly into an op's input binding (not a named value)."""

    value: Any


@dataclass
class Op:
    """One MIL operation.

    ``inputs`` maps each parameter to its bindings: a ``str`` names a value, an
    :class:`Inline` holds a constant. ``outputs`` are ``(name, type)`` pairs in order;
    ``attributes`` hold constants too (``const``'s ``val``, iOS16 ``constexpr`` operands).
    """

    type: str
    name: str
    inputs: dict[str, list[Any]]
    outputs: list[tuple[str, TensorType]]
    attributes: dict[str, Any]
    has_blocks: bool = False


@dataclass
class Program:
    """The ``main`` function of an ML program, with everything needed to evaluate it."""

    path: Path
    opset: str
    inputs: list[tuple[str, TensorType]]
    outputs: list[str]
    ops: list[Op]
    #: Model-level feature descriptions: name → {"kind": "image"|"array", ...}.
    input_features: dict[str, dict[str, Any]] = field(default_factory=dict)
    output_features: dict[str, dict[str, Any]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    specification_version: int = 0


def _dtype(type_name: str, where: str) -> Any:
    if type_name == "STRING":
        return "str"
    try:
        return _NP_DTYPES[type_name]
    except KeyError:
        raise ArtifactError(
            f"{where}: MIL dtype {type_name} is not supported by the reference evaluator",
            hint="export with fp32/fp16 compute and int8 weights",
        ) from None


def _value_type(mil_pb2: ModuleType, vt: Any, where: str) -> TensorType:
    kind = vt.WhichOneof("type")
    if kind != "tensorType":
        return TensorType(kind, None)
    tt = vt.tensorType
    name = mil_pb2.DataType.Name(tt.dataType)
    shape = tuple(
        d.constant.size if d.WhichOneof("dimension") == "constant" else None for d in tt.dimensions
    )
    return TensorType(_dtype(name, where), shape)


class _Loader:
    """Decodes MIL ``Value`` messages (immediate or from the blob) into NumPy arrays."""

    def __init__(self, mil_pb2: ModuleType, package: Path, weights_dir: Path) -> None:
        self.mil = mil_pb2
        self.package = package
        self.weights_dir = weights_dir
        self.blobs: dict[str, BlobFile] = {}

    def value(self, v: Any, where: str) -> Any:
        t = _value_type(self.mil, v.type, where)
        which = v.WhichOneof("value")
        if t.shape is None:
            raise ArtifactError(
                f"{where}: non-tensor constant ({t.dtype}) is not supported",
                hint="the reference evaluator reads tensor constants only",
            )
        if any(d is None for d in t.shape):
            raise ArtifactError(
                f"{where}: constant with an unknown dimension",
                hint="the package is corrupt; re-export the model",
            )
        shape = tuple(int(d) for d in t.shape if d is not None)
        count = int(np.prod(shape, dtype=np.int64))
        if which == "blobFileValue":
            if t.dtype == "str":
                raise ArtifactError(
                    f"{where}: string stored in a blob",
                    hint="the package is corrupt; re-export the model",
                )
            arr = self._blob(v.blobFileValue, t.dtype, count, where)
        elif which == "immediateValue":
            arr = self._immediate(v.immediateValue.tensor, t.dtype, count, where)
        else:
            raise ArtifactError(
                f"{where}: constant without a value",
                hint="the package is corrupt; re-export the model",
            )
        if t.dtype == "str":
            return arr[0] if shape == () else list(arr)
        return np.asarray(arr).reshape(shape)

    def _blob(self, ref: Any, dtype: np.dtype, count: int, where: str) -> np.ndarray:
        file_name = ref.fileName.split("/")[-1]  # "@model_path/weights/weight.bin"
        blob = self.blobs.get(file_name)
        if blob is None:
            blob = self.blobs[file_name] = BlobFile(self.weights_dir / file_name)
        return blob.read(int(ref.offset), dtype, count)

    @staticmethod
    def _immediate(tensor: Any, dtype: Any, count: int, where: str) -> Any:
        kind = tensor.WhichOneof("value")
        if kind == "strings":
            return list(tensor.strings.values)
        if kind == "bytes":  # fp16, int8, uint8 ... as little-endian raw bytes
            raw = tensor.bytes.values
            arr = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
        elif kind in ("floats", "ints", "bools", "longInts", "doubles"):
            arr = np.asarray(list(getattr(tensor, kind).values)).astype(dtype)
        elif kind is None and count == 0:
            arr = np.zeros(0, dtype=dtype)
        else:
            raise ArtifactError(
                f"{where}: unreadable immediate value ({kind})",
                hint="the package is corrupt; re-export the model",
            )
        if arr.size != count:
            raise ArtifactError(
                f"{where}: {arr.size} values for a tensor of {count}",
                hint="the package is corrupt; re-export the model",
            )
        return arr.astype(dtype, copy=False)


def _root_model(package: Path) -> Path:
    manifest = package / "Manifest.json"
    try:
        info = json.loads(manifest.read_text())
        root = info["itemInfoEntries"][info["rootModelIdentifier"]]["path"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"{package.name} has no readable Manifest.json ({exc})",
            hint="pass a .mlpackage directory written by coremltools",
        ) from None
    return package / "Data" / root


def _features(features: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for f in features:
        kind = f.type.WhichOneof("Type")
        entry: dict[str, Any] = {"description": f.shortDescription}
        if kind == "imageType":
            img = f.type.imageType
            color = type(img).ColorSpace.Name(img.colorSpace)
            entry.update(kind="image", width=img.width, height=img.height, color_space=color)
        elif kind == "multiArrayType":
            arr = f.type.multiArrayType
            entry.update(
                kind="array",
                shape=list(arr.shape),
                dtype=type(arr).ArrayDataType.Name(arr.dataType),
            )
        else:
            entry.update(kind=kind)
        out[f.name] = entry
    return out


def load_program(path: str | Path, function: str = "main") -> Program:
    """Parse an ``.mlpackage`` (a directory) into a :class:`Program`.

    Args:
        path: the ``.mlpackage`` directory.
        function: the program function to read (``main`` unless the package has several).

    Raises:
        ArtifactError: not an ML program package, or its files are corrupt.
        MissingDependencyError: coremltools is not installed.
    """
    package = Path(path)
    if not package.is_dir():
        raise ArtifactError(
            f"{package} is not an .mlpackage directory",
            hint="pass the path of a .mlpackage written by `sinet-deploy export`",
        )
    model_pb2, mil_pb2 = proto_modules()
    spec_path = _root_model(package)
    model = model_pb2.Model()
    try:
        model.ParseFromString(spec_path.read_bytes())
    except Exception as exc:  # protobuf raises DecodeError/OSError with no common base
        raise ArtifactError(
            f"cannot parse {spec_path.relative_to(package)} in {package.name} "
            f"({type(exc).__name__})",
            hint="re-export the model",
        ) from None
    if model.WhichOneof("Type") != "mlProgram":
        raise ArtifactError(
            f"{package.name} holds a {model.WhichOneof('Type')} model, not an ML program",
            hint="the reference evaluator reads ML programs only",
        )
    prog = model.mlProgram
    if function not in prog.functions:
        raise ArtifactError(
            f"{package.name} has no function {function!r} (has {', '.join(prog.functions)})",
            hint="pick one of those",
        )
    fn = prog.functions[function]
    block = fn.block_specializations[fn.opset]
    loader = _Loader(mil_pb2, package, spec_path.parent / "weights")

    ops = []
    for op in block.operations:
        where = f"{package.name}: {op.type}"
        inputs: dict[str, list[Any]] = {}
        for key, arg in op.inputs.items():
            inputs[key] = [
                b.name
                if b.WhichOneof("binding") == "name"
                else Inline(loader.value(b.value, where))
                for b in arg.arguments
            ]
        attrs = {k: loader.value(v, where) for k, v in op.attributes.items()}
        outputs = [(o.name, _value_type(mil_pb2, o.type, where)) for o in op.outputs]
        ops.append(
            Op(
                op.type,
                str(attrs.get("name", outputs[0][0] if outputs else op.type)),
                inputs,
                outputs,
                attrs,
                has_blocks=len(op.blocks) > 0,
            )
        )

    desc = model.description
    meta = desc.metadata
    return Program(
        path=package,
        opset=fn.opset,
        inputs=[(i.name, _value_type(mil_pb2, i.type, f"input {i.name}")) for i in fn.inputs],
        outputs=list(block.outputs),
        ops=ops,
        input_features=_features(desc.input),
        output_features=_features(desc.output),
        metadata={
            "short_description": meta.shortDescription,
            "author": meta.author,
            "license": meta.license,
            "version": meta.versionString,
            "user_defined": dict(meta.userDefined),
        },
        specification_version=model.specificationVersion,
    )
