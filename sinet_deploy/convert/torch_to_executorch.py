"""ExecuTorch programs (``.pte``) with the XNNPACK delegate: ``torch.export`` → edge → lower.

The module given is the deploy form with the artifact's I/O (``export_module``: uint8 RGB NHWC
image in, foreground probability NHWC out; or the checkpoint's raw contract), so the program's
one method ``forward`` has exactly the contract every other artifact has:

1. ``torch.export.export`` traces the module to an ATen graph (static shapes);
2. int8 only: ``prepare_pt2e`` with ExecuTorch's ``XNNPACKQuantizer`` (symmetric int8 weights,
   per output channel; int8 activations, static min/max ranges, the sigmoid's input clipped to
   ±8), the calibration images run through the prepared module, ``convert_pt2e`` folds the
   observers into quantize/dequantize pairs, which XNNPACK's partitioner then turns into its
   int8 kernels;
3. ``to_edge_transform_and_lower(..., partitioner=[XnnpackPartitioner()])`` hands every
   subgraph XNNPACK supports to the delegate; what it cannot take stays as ExecuTorch's portable
   (reference C++) kernels between the delegate calls, so the delegated/portable split is what
   decides speed and is recorded in the manifest (:func:`delegation_facts`);
4. ``to_executorch()`` plans memory and serializes the flatbuffer.

Heavy imports (torch, executorch, torchao) happen only inside the functions: importing this
module costs nothing, so the pipeline can register the converter when executorch is merely
installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sinet_deploy.core.errors import ConversionError, MissingDependencyError, UserInputError

if TYPE_CHECKING:
    import numpy as np
    from torch import nn

PRECISIONS = ("fp32", "int8")
OBSERVERS = ("minmax", "histogram")
#: What the program's tensors are computed in, per precision (for the manifest).
WEIGHTS = {
    "fp32": "float32 weights and activations (XNNPACK f32 kernels)",
    "int8": "int8 weights (symmetric, per output channel) and int8 activations (static, "
    "calibrated per tensor, sigmoid inputs limited to ±logit_clip); the uint8 cast, NHWC "
    "permute and normalisation stay float32",
}


@dataclass(frozen=True)
class ExecuTorchConfig:
    """Options of the ExecuTorch edge.

    Attributes:
        precision: ``fp32`` or ``int8`` (static w8a8 through XNNPACK's quantizer).
        per_channel: int8 weight scales per output channel (per tensor otherwise).
        logit_clip: int8 only: the calibrated range of every quantized tensor that feeds a
            sigmoid is limited to ±``logit_clip`` (0: off); see :func:`clip_sigmoid_inputs`.
        observer: int8 activation ranges: ``minmax`` (the exact calibration min/max, as the
            full-integer TFLite model) or ``histogram`` (XNNPACK's default: the range that
            minimises the histogram's quantization error, which may cut outliers).
    """

    precision: Literal["fp32", "int8"] = "fp32"
    per_channel: bool = True
    logit_clip: float = 8.0
    observer: Literal["minmax", "histogram"] = "minmax"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise UserInputError(
                f"ExecuTorch export has no precision {self.precision!r}",
                hint=f"use one of {', '.join(PRECISIONS)}",
            )
        if self.logit_clip < 0:
            raise UserInputError("logit_clip must be ≥ 0", hint="use 0 (off) or e.g. 8")
        if self.observer not in OBSERVERS:
            raise UserInputError(
                f"unknown int8 activation observer {self.observer!r}",
                hint=f"use one of {', '.join(OBSERVERS)}",
            )


def executorch_installed() -> bool:
    """Whether the ``executorch`` distribution can be imported (located, not imported)."""
    return importlib.util.find_spec("executorch") is not None


def require_executorch() -> None:
    """:class:`MissingDependencyError` with the install hint when executorch is absent."""
    if not executorch_installed():
        raise MissingDependencyError(
            "executorch is not installed", hint="pip install 'sinet-deploy[executorch]'"
        )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporter's deprecation chatter (pytree ``LeafSpec``, torchao enums).

    torch.export and executorch emit several FutureWarnings per export about their own internal
    APIs; they say nothing about the model and would fill the export log.
    """
    from sinet_deploy.runtimes.executorch_rt import quiet_executorch_import

    with warnings.catch_warnings(), quiet_executorch_import():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def quantize_int8(
    module: nn.Module,
    example: Any,
    batches: Iterable[Any],
    *,
    per_channel: bool = True,
    logit_clip: float = 0.0,
    observer: str = "minmax",
    report: dict[str, Any] | None = None,
) -> nn.Module:
    """The PT2E-quantized module (observers calibrated on ``batches``, then converted).

    Args:
        module: float module in eval mode.
        example: one input tensor (for tracing).
        batches: calibration inputs, each a tensor shaped like ``example``.
        per_channel: per-output-channel weight scales.
        logit_clip: limit the calibrated range of sigmoid inputs to ± this (0: off).
        observer: activation observer, ``minmax`` or ``histogram`` (XNNPACK's default).
        report: when given, receives ``sigmoid_inputs_clipped`` (how many ranges were limited).
    """
    import torch

    with _quiet():
        from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (
            XNNPACKQuantizer,
            get_symmetric_quantization_config,
        )
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    with _quiet(), torch.no_grad():
        graph = torch.export.export(module, (example,)).module()
        qconfig = get_symmetric_quantization_config(is_per_channel=per_channel)
        if observer == "minmax":
            qconfig = _with_minmax_activations(qconfig)
        quantizer = XNNPACKQuantizer().set_global(qconfig)
        prepared = prepare_pt2e(graph, quantizer)  # type: ignore[arg-type]
        seen = 0
        for batch in batches:
            prepared(batch)
            seen += 1
        if seen == 0:
            raise UserInputError("int8 ExecuTorch export needs at least one calibration image")
        clipped = clip_sigmoid_inputs(prepared, logit_clip) if logit_clip > 0 else []
        if report is not None:
            report["sigmoid_inputs_clipped"] = len(clipped)
        return convert_pt2e(prepared)  # type: ignore[no-any-return]


def _with_minmax_activations(qconfig: Any) -> Any:
    """``qconfig`` with its static activation observers replaced by exact min/max ones."""
    from torchao.quantization.pt2e import MinMaxObserver

    def minmax(spec: Any) -> Any:
        if spec is None:
            return None
        return dataclasses.replace(
            spec, observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=2**-12)
        )

    return dataclasses.replace(
        qconfig,
        input_activation=minmax(qconfig.input_activation),
        output_activation=minmax(qconfig.output_activation),
    )


#: Elementwise ops through which a range limit on a sigmoid's input carries back unchanged
#: (``|x| <= L`` before ``neg``/``abs``/``leaky_relu(·, -1)`` keeps ``|y| <= L`` after them).
_PASS_BACK = ("aten.neg.default", "aten.abs.default", "aten.leaky_relu.default")


def clip_sigmoid_inputs(prepared: Any, limit: float) -> list[str]:
    """Limit the calibrated min/max of each observer that feeds a sigmoid to ±``limit``.

    XNNPACK's quantizer leaves the sigmoid itself in float, so the tensor before it is quantized
    on its observer's full range: SINet's final logit spans about −50…31, which puts a 0.32
    step on the mask boundary. Beyond ±8 the sigmoid is within 3.4e-4 of 0 or 1, so saturating
    there changes no mask pixel and gives an 8x finer step (the full-integer TFLite model clips
    its LOGISTIC inputs the same way). Observers are found by walking back from each sigmoid
    through :data:`_PASS_BACK` ops only: through an upsample, a clipped range would change the
    interpolated values, not only saturate them.

    Returns:
        The names of the observers whose ranges were limited.
    """
    import torch
    from torchao.quantization.pt2e import MinMaxObserver

    modules = dict(prepared.named_modules())
    names: list[str] = []
    for node in prepared.graph.nodes:
        if node.op != "call_function" or "sigmoid" not in str(node.target):
            continue
        src = node.args[0]
        while src.op == "call_function" and any(k in str(src.target) for k in _PASS_BACK):
            src = src.args[0]
        obs = modules.get(str(src.target)) if src.op == "call_module" else None
        if obs is None or not hasattr(obs, "min_val") or not hasattr(obs, "max_val"):
            continue
        # A min/max observer over the clipped range replaces whatever observer was there (a
        # histogram observer derives its range from bins laid over the old min/max).
        clipped = MinMaxObserver(
            dtype=obs.dtype,
            qscheme=obs.qscheme,
            quant_min=obs.quant_min,
            quant_max=obs.quant_max,
            eps=float(obs.eps),
        )
        with torch.no_grad():
            clipped.min_val = obs.min_val.detach().clone().clamp(-limit, limit)
            clipped.max_val = obs.max_val.detach().clone().clamp(-limit, limit)
        setattr(prepared, str(src.target), clipped)
        names.append(str(src.target))
    return names


def delegation_facts(graph_module: Any) -> dict[str, Any]:
    """Delegated vs portable operator counts of a lowered edge graph.

    ``getitem`` nodes (unpacking a delegate call's outputs) are bookkeeping, not operators, and
    are left out of the portable counts.
    """
    with _quiet():
        from executorch.devtools.backend_debug import get_delegation_info

    info = get_delegation_info(graph_module)
    delegated: dict[str, int] = {}
    portable: dict[str, int] = {}
    for op, row in sorted(info.delegation_by_operator.items()):
        if op == "getitem":
            continue
        if row.delegated:
            delegated[op] = int(row.delegated)
        if row.non_delegated:
            portable[op] = int(row.non_delegated)
    return {
        "backend": "XnnpackBackend",
        "delegated_subgraphs": int(info.num_delegated_subgraphs),
        "delegated_ops": sum(delegated.values()),
        "portable_ops": sum(portable.values()),
        "delegated_op_counts": delegated,
        "portable_op_counts": portable,
    }


def lower_to_pte(module: nn.Module, example: Any, dest: Path) -> dict[str, Any]:
    """Export, lower to XNNPACK and write the ``.pte`` at ``dest``; returns graph facts.

    Raises:
        ConversionError: torch.export or the lowering failed (the message names the step).
    """
    import torch

    with _quiet():
        from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
        from executorch.exir import to_edge_transform_and_lower

    step = "torch.export"
    try:
        with _quiet(), torch.no_grad():
            program = torch.export.export(module, (example,))
            step = "XNNPACK lowering"
            edge = to_edge_transform_and_lower(program, partitioner=[XnnpackPartitioner()])
            facts = delegation_facts(edge.exported_program().graph_module)
            step = "to_executorch"
            buffer = edge.to_executorch().buffer
    except (RuntimeError, ValueError, TypeError, AssertionError) as exc:
        # torch.export and exir raise plain exceptions (often AssertionError) for unsupported
        # graphs; the first line says which op or guard failed.
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise ConversionError(
            f"ExecuTorch {step} failed: {first}",
            hint="report it with `sinet-deploy env`; other formats are unaffected",
        ) from exc
    Path(dest).write_bytes(buffer)
    return facts


def fp32_form(module: nn.Module) -> tuple[nn.Module, list[str]]:
    """The deploy module with the decoder's softmax gate written as an exact sigmoid.

    ``1 - max(softmax(l0, l1)) = sigmoid(-|l1 - l0|)`` (:mod:`.int8_form`'s gate rewrite): XNNPACK
    has no ``amax`` and runs softmax only along the last axis, so the original gate stays as
    portable kernels and splits the delegate into two subgraphs. Models with another class count
    keep the original gate. Returns the module and the rewrites applied.
    """
    from sinet_deploy.convert.int8_form import Int8FormConfig, int8_form
    from sinet_deploy.models.deploy import ImageInput, SINetDeploy

    core = module.core if isinstance(module, ImageInput) else module
    if not isinstance(core, SINetDeploy) or core.config.classes != 2:
        return module, []
    cfg = Int8FormConfig(
        prelu="keep", avg_pool=False, affine_conv=False, input_conv=False, gate=True
    )
    return int8_form(module, cfg), ["decoder gate 1 - max(softmax) as sigmoid(-|l1 - l0|)"]


#: The exact fp32 rewrites the int8 body carries (the full-integer TFLite model's form).
INT8_REWRITES = (
    "activation-range equalization (max factor 8)",
    "PReLU as A*y + B*leaky_relu(y)",
    "average pools as depthwise convolutions",
    "per-channel affines as 1x1 depthwise convolutions",
    "decoder gate 1 - max(softmax) as sigmoid(-|l1 - l0|)",
)


def int8_program(
    weights: str | Path,
    input_size: tuple[int, int],
    calib: Any,
    config: ExecuTorchConfig | None = None,
    **model_config: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    """The image-I/O module whose SINet body is PT2E-quantized; the uint8 input stays float.

    The body is the full-integer TFLite model's fp32 form (:func:`.quantize_tflite.int8_module`:
    activation-range equalization on the calibration set, PReLU as leaky-ReLU combinations, the
    decoder gate as a sigmoid; each exact in fp32). Only the body is quantized: the uint8 cast,
    NHWC permute and image-wide normalisation stay in float32 and the first quantize sits on
    the normalised tensor, as in the TFLite model. The options were chosen on a split of the
    calibration portraits (``docs/executorch.md``).

    Args:
        weights: ``"official"``, ``"random"`` or a checkpoint path.
        input_size: ``(H, W)``.
        calib: the :class:`~.calibration.CalibrationSet` (uint8 RGB images of ``input_size``).
        config: per-channel weights and the logit clip (``precision`` is not read).
        **model_config: SINet config options.

    Returns:
        The module (uint8 RGB NHWC in, probability NHWC out) and the manifest options that
        describe it (rewrites, equalization statistics, quantizer).
    """
    import torch

    from sinet_deploy.convert.quantize_tflite import TFLiteInt8Config, int8_module

    cfg = config or ExecuTorchConfig(precision="int8")
    form = TFLiteInt8Config()
    module, stats = int8_module(
        weights, input_size, calib, form.form, form.equalize, layout="nhwc", **model_config
    )
    core = module.core
    # The body's calibration inputs are exactly what the wrapper feeds it: captured from the
    # wrapper's own forward rather than re-implementing its normalisation here.
    seen: list[Any] = []
    hook = core.register_forward_pre_hook(lambda _m, args: seen.append(args[0].contiguous()))
    try:
        with torch.no_grad():
            for batch in to_torch_batches(calib.images):
                module(batch)
    finally:
        hook.remove()
    report: dict[str, Any] = {}
    module.core = quantize_int8(
        core,
        seen[0],
        seen,
        per_channel=cfg.per_channel,
        logit_clip=cfg.logit_clip,
        observer=cfg.observer,
        report=report,
    )
    options = {
        "rewrites": list(INT8_REWRITES),
        "equalization": stats,
        "quantizer": (
            "executorch XNNPACKQuantizer, get_symmetric_quantization_config("
            f"is_per_channel={cfg.per_channel}), {cfg.observer} activation observers; "
            "torchao prepare_pt2e / convert_pt2e"
        ),
        "activation_observer": cfg.observer,
        "logit_clip": cfg.logit_clip,
        **report,
    }
    return module, options


def to_torch_batches(images: np.ndarray, layout: str = "nhwc") -> list[Any]:
    """uint8 RGB ``[N, H, W, 3]`` → one ``[1, …]`` uint8 tensor per image, in ``layout``."""
    import numpy as np
    import torch

    out = []
    for i in range(images.shape[0]):
        x = images[i : i + 1]
        if layout == "nchw":
            x = x.transpose(0, 3, 1, 2)
        out.append(torch.from_numpy(np.ascontiguousarray(x)))
    return out
