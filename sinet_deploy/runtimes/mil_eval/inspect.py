"""Facts about a saved ML program, read from the package (not from coremltools' memory).

Used by the manifest (op counts, int8 coverage) and by tests that check that *every*
convolution weight of an int8 program is decompressed from int8 data.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from sinet_deploy.runtimes.mil_eval.program import Inline, Op, Program

#: Ops that decompress weights at load time (iOS16 affine, iOS18 block-wise).
DEQUANT_OPS = ("constexpr_affine_dequantize", "constexpr_blockwise_shift_scale")
#: The operand that holds the stored (quantized) values, per decompression op.
_DATA_OPERAND = {
    "constexpr_affine_dequantize": "quantized_data",
    "constexpr_blockwise_shift_scale": "data",
}


@dataclass(frozen=True)
class WeightSource:
    """Where one ``conv`` op's weight comes from."""

    conv: str
    producer: str  # op type producing the weight: const, constexpr_affine_dequantize, ...
    stored_dtype: str  # dtype of the values stored in the package (int8, float16, ...)

    @property
    def int8(self) -> bool:
        return self.producer in DEQUANT_OPS and self.stored_dtype == "int8"


def op_counts(program: Program) -> dict[str, int]:
    """Op type → count, ``const`` excluded."""
    return dict(sorted(Counter(op.type for op in program.ops if op.type != "const").items()))


def _operand(op: Op, key: str) -> Any:
    """An operand's binding: inline value, or value name (iOS16 constexpr: an attribute)."""
    if op.inputs.get(key):
        binding = op.inputs[key][0]
        return binding.value if isinstance(binding, Inline) else binding
    return op.attributes.get(key)


def conv_weight_sources(program: Program) -> list[WeightSource]:
    """For every ``conv``: the op that produces its weight and the dtype stored for it."""
    producers = {name: op for op in program.ops for name, _ in op.outputs}
    out = []
    for op in program.ops:
        if op.type != "conv":
            continue
        weight = _operand(op, "weight")
        if not isinstance(weight, str):  # inline constant
            out.append(WeightSource(op.name, "inline", str(np.asarray(weight).dtype)))
            continue
        src = producers.get(weight)
        if src is None:
            out.append(WeightSource(op.name, "input", "?"))
            continue
        if src.type in _DATA_OPERAND:
            data = _operand(src, _DATA_OPERAND[src.type])
            if isinstance(data, str):
                data_op = producers.get(data)
                data = data_op.attributes.get("val") if data_op is not None else None
            dtype = str(np.asarray(data).dtype) if data is not None else "?"
        elif src.type == "const":
            dtype = str(np.asarray(src.attributes.get("val")).dtype)
        else:
            dtype = str(src.outputs[0][1].dtype)
        out.append(WeightSource(op.name, src.type, dtype))
    return out


def summary(program: Program) -> dict[str, Any]:
    """Manifest-ready facts: opset, op counts, how many conv weights are stored as int8."""
    sources = conv_weight_sources(program)
    return {
        "opset": program.opset,
        "specification_version": program.specification_version,
        "op_counts": op_counts(program),
        "conv_ops": len(sources),
        "conv_weights_int8": sum(s.int8 for s in sources),
        "conv_weight_producers": dict(Counter(s.producer for s in sources)),
    }
