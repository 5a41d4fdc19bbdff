"""The int8 rewrites and the range equalization are exact in fp32 (fast, seeded random SINet)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from sinet_deploy.convert.int8_equalize import (
    EqualizeConfig,
    _RangeRecorder,
    _watch,
    equalize,
    scale_in,
    scale_out,
)
from sinet_deploy.convert.int8_form import (
    FoldedPReLU,
    Int8FormConfig,
    PReLUAsLeaky,
    int8_form,
)
from sinet_deploy.core.errors import UserInputError
from sinet_deploy.models import export_module
from sinet_deploy.verify.tolerances import FP32_LOGIT_DIFF

SIZE = (64, 96)
TOL = 1e-5


def _images(n: int, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [
        torch.randint(0, 256, (1, *SIZE, 3), generator=gen, dtype=torch.uint8) for _ in range(n)
    ]


@pytest.fixture(scope="module")
def deploy() -> nn.Module:
    return export_module("random", input_size=SIZE)


def _max_diff(a: nn.Module, b: nn.Module, images: list[torch.Tensor]) -> float:
    with torch.no_grad():
        return max(float((a(x) - b(x)).abs().max()) for x in images)


@pytest.mark.parametrize(
    "cfg",
    [
        Int8FormConfig(),
        Int8FormConfig(prelu="combo"),
        Int8FormConfig(prelu="fold", leaky_slope=-4.0),
        Int8FormConfig(prelu="combo", leaky_slope=0.25),
        Int8FormConfig(prelu="keep", affine_conv=False, gate=False, avg_pool=False),
    ],
    ids=["fold", "combo", "fold-s-4", "combo-s0.25", "nothing"],
)
def test_rewrites_are_exact_in_fp32(deploy: nn.Module, cfg: Int8FormConfig) -> None:
    rewritten = int8_form(deploy, cfg)
    assert _max_diff(deploy, rewritten, _images(3)) < TOL


def test_no_op_xnnpack_refuses_in_int8_is_left(deploy: nn.Module) -> None:
    rewritten = int8_form(deploy, Int8FormConfig(prelu="combo"))
    kinds = {type(m) for m in rewritten.modules()}
    assert nn.PReLU not in kinds and nn.AvgPool2d not in kinds
    assert PReLUAsLeaky in kinds
    # the deploy form is untouched (int8_form works on a copy)
    assert nn.PReLU in {type(m) for m in deploy.modules()}


def test_fold_uses_three_ops_where_the_producer_can_absorb(deploy: nn.Module) -> None:
    rewritten = int8_form(deploy, Int8FormConfig(prelu="fold", leaky_slope=-4.0))
    folded = sum(isinstance(m, FoldedPReLU) for m in rewritten.modules())
    assert folded > 30  # every PReLU of SINet has a conv or an affine in front of it


def test_prelu_with_one_shared_slope_becomes_a_single_leaky_relu(deploy: nn.Module) -> None:
    shared = copy.deepcopy(deploy)
    prelus = [m for m in shared.modules() if isinstance(m, nn.PReLU)]
    with torch.no_grad():
        prelus[0].weight.fill_(0.2)  # one shared slope: LEAKY_RELU
        prelus[1].weight.fill_(1.0)  # slope 1 is the identity, not a leaky ReLU: the general form
        prelus[2].weight.fill_(0.0)  # XNNPACK's int8 LEAKY_RELU refuses slope 0: general form
    rewritten = int8_form(shared, Int8FormConfig())
    leaky = [m for m in rewritten.modules() if isinstance(m, nn.LeakyReLU)]
    assert [m.negative_slope for m in leaky] == [pytest.approx(0.2)]
    assert _max_diff(shared, rewritten, _images(3)) < TOL


def test_onnx_export_of_int8_form_has_no_prelu_softmax_or_pool(deploy: nn.Module, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from sinet_deploy.convert.torch_to_onnx import (
        OnnxExportConfig,
        export_onnx,
        graph_op_counts,
    )

    path = export_onnx(int8_form(deploy), tmp_path / "m.onnx", OnnxExportConfig((1, *SIZE, 3)))
    ops = graph_op_counts(path)
    for banned in ("PRelu", "Softmax", "AveragePool", "ReduceMax", "Abs", "Max", "Min", "Relu"):
        assert banned not in ops, ops
    assert ops["LeakyRelu"] >= 39


def test_equalize_is_exact_and_balances_channels() -> None:
    module = export_module("random", input_size=SIZE)
    reference = export_module("random", input_size=SIZE)
    calib = _images(4, seed=1)

    def spread(m: nn.Module) -> float:
        rec = _RangeRecorder(_watch(m.core))
        with torch.no_grad():
            for x in calib:
                m(x)
        rec.close()
        r = rec.ranges(100.0)
        ratios = [
            float(v.max() / v.clamp(min=1e-6).min())
            for k, v in r.items()
            if k.endswith(".act") and v.numel() > 2
        ]
        return sum(ratios) / len(ratios)

    before = spread(module)
    stats = equalize(module, calib, EqualizeConfig(max_factor=8))
    assert stats["equalized_tensors"] > 40 and stats["max_factor"] <= 8.0
    assert _max_diff(reference, module, _images(3, seed=2)) < TOL
    assert spread(module) < before


@pytest.mark.parametrize("groups", [1, 2, 6])
def test_scale_helpers_commute_with_any_groups(groups: int) -> None:
    torch.manual_seed(0)
    a = nn.Conv2d(6, 6, 3, padding=1, groups=1)
    b = nn.Conv2d(6, 12, 1, groups=groups)
    x = torch.randn(1, 6, 8, 8)
    with torch.no_grad():
        want = b(torch.relu(a(x)))
        k = torch.rand(6) * 4 + 0.25
        scale_out(a, k)
        scale_in(b, k)
        got = b(torch.relu(a(x)))
    assert float((want - got).abs().max()) <= FP32_LOGIT_DIFF


def test_bad_configs_are_user_errors() -> None:
    with pytest.raises(UserInputError):
        Int8FormConfig(leaky_slope=1.0)
    with pytest.raises(UserInputError):
        Int8FormConfig(prelu="relu")  # type: ignore[arg-type]
    with pytest.raises(UserInputError):
        EqualizeConfig(max_factor=0.5)
    with pytest.raises(UserInputError):
        int8_form(nn.Linear(2, 2))
