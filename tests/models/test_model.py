"""The reference SINet is the authors' model: keys, shapes, parameters and golden logits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from sinet_deploy.models import export_module, load_model
from sinet_deploy.models.config import SINetConfig
from sinet_deploy.models.sinet import SINet, count_macs, count_parameters, shuffle_permutation
from sinet_deploy.verify.tolerances import FP32_LOGIT_DIFF, FP32_PROB_DIFF
from tests.conftest import GOLDEN, need

GOLDEN_ATOL = FP32_LOGIT_DIFF  # float32 accumulation order only (see the registry)


def test_state_dict_matches_manifest_exactly() -> None:
    manifest = json.loads(need(GOLDEN / "sinet_state_dict_manifest.json").read_text())
    sd = SINet().state_dict()
    assert list(sd) == list(manifest["state_dict"])
    for key, spec in manifest["state_dict"].items():
        assert list(sd[key].shape) == spec["shape"], key
        assert str(sd[key].dtype).removeprefix("torch.") == spec["dtype"], key
    assert count_parameters(SINet()) == manifest["num_parameters"] == 86910


def test_macs_official() -> None:
    # SINET_SPEC.md: about 0.064 G multiply-accumulates at 224x224.
    assert 0.060e9 < count_macs(SINet(), 224, 224) < 0.068e9


def test_shuffle_permutation_is_the_authors_view_transpose() -> None:
    x = torch.arange(2 * 12).reshape(1, 12, 1, 2).float()
    authors = x.view(1, 2, 6, 1, 2).transpose(1, 2).contiguous().view(1, 12, 1, 2)
    ours = x.index_select(1, torch.tensor(shuffle_permutation(12)))
    assert torch.equal(authors, ours)


@pytest.mark.parametrize("deploy", [False, True], ids=["reference", "deploy"])
@pytest.mark.parametrize("name", ["random_224", "random_256x320", "astronaut_224"])
def test_golden_logits(official_weights: object, deploy: bool, name: str) -> None:
    golden = np.load(need(GOLDEN / "sinet_official_outputs.npz"))
    model = load_model("official", deploy=deploy)
    with torch.no_grad():
        y = model(torch.from_numpy(golden[f"x_{name}"])).numpy()
    assert y.shape == golden[f"y_{name}"].shape
    assert np.abs(y - golden[f"y_{name}"]).max() <= GOLDEN_ATOL


def _graph_ops(model: torch.nn.Module) -> set[str]:
    """Names of every function, method and module type in the traced deploy graph."""
    gm = torch.fx.symbolic_trace(model)
    mods = dict(gm.named_modules())
    names = set()
    for n in gm.graph.nodes:
        if n.op == "call_module":
            names.add(type(mods[n.target]).__name__)
        elif n.op in ("call_function", "call_method"):
            names.add(getattr(n.target, "__name__", str(n.target)))
    return names


@pytest.mark.parametrize(
    "cfg",
    [
        {},
        {"chnn": 2},
        {"classes": 1},
        {"classes": 3},
        {"p": 3, "q": 2, "branches": [((3, 1), (5, 1))] * 3 + [((3, 2), (3, 4))] * 2},
    ],
)
def test_deploy_form_equals_reference_on_random_weights(cfg: dict) -> None:
    ref = load_model("random", **cfg)
    dep = load_model("random", deploy=True, **cfg)
    x = torch.randn(2, 3, 64, 96) * 0.02
    with torch.no_grad():
        a, b = ref(x), dep(x)
    assert torch.allclose(a, b, atol=FP32_LOGIT_DIFF, rtol=0), (a - b).abs().max()
    ops = _graph_ops(dep)
    # No shuffle, no 5-D view, no transpose, no BatchNorm left in the deploy form.
    assert "conv2d" not in ops and "Conv2d" in ops  # sanity: the trace sees the modules
    assert not ops & {
        "index_select",
        "transpose",
        "view",
        "BatchNorm2d",
        "permute",
        "reshape",
        "Linear",
    }, ops


def test_reference_has_no_batchnorm_in_training_mode() -> None:
    assert not load_model("random").training


def test_export_module_image_io_matches_reference_probability() -> None:
    ref = load_model("random")
    exp = export_module("random", input_size=(64, 96))
    img = torch.randint(0, 256, (1, 64, 96, 3), dtype=torch.uint8)
    from sinet_deploy.models.inference import reference_probability

    p_ref = reference_probability(ref, img.numpy())
    with torch.no_grad():
        p = exp(img).numpy()
    assert p.shape == (1, 64, 96, 1)
    assert np.abs(p - p_ref).max() <= FP32_PROB_DIFF


def test_export_module_raw_io_is_logits() -> None:
    exp = export_module("random", input_size=(64, 64), io="raw")
    with torch.no_grad():
        assert exp(torch.zeros(1, 3, 64, 64)).shape == (1, 2, 64, 64)


def test_unknown_config_key_is_an_error() -> None:
    from sinet_deploy.core.errors import UserInputError

    with pytest.raises(UserInputError, match="unknown SINet config"):
        SINetConfig.from_kwargs(clases=2)


@pytest.mark.parametrize("size", ["100x224", "224x0", "abc", "224x224x3"])
def test_bad_input_size(size: str) -> None:
    from sinet_deploy.core.errors import InputSizeError
    from sinet_deploy.models.config import parse_input_size

    with pytest.raises(InputSizeError):
        parse_input_size(size)


def test_deploy_form_has_no_subnormal_weights_and_says_how_many_it_flushed() -> None:
    """A subnormal float32 weight is below 2**-126: x86 runs each product with it in microcode.
    The deploy form sets them to zero, which changes no output float32 can resolve."""
    from sinet_deploy.models.deploy import flush_subnormals, to_deploy

    def subnormal(t: torch.Tensor) -> torch.Tensor:  # by bits: immune to flush-denormal mode
        bits = t.detach().contiguous().view(torch.int32)
        return ((bits & 0x7F800000) == 0) & ((bits & 0x007FFFFF) != 0)

    ref = load_model("random")
    first = next(p for p in ref.parameters() if p.dim() == 4)
    with torch.no_grad():
        first.view(-1)[:3] = torch.tensor([1e-40, -3e-39, 5e-39])
    dep = to_deploy(ref)  # BN folding may rescale them (or, in flush mode, zero them)
    for t in [*dep.parameters(), *dep.buffers()]:
        if t.dtype == torch.float32:
            assert not subnormal(t).any()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ref(x), dep(x), atol=FP32_LOGIT_DIFF, rtol=0)
    w = next(p for p in dep.parameters() if p.dim() == 4)
    subnormal_bits = torch.tensor(
        [1, -0x7FFFFFFB, 0x007FFFFF, 0], dtype=torch.int32
    )  # -0x7FFFFFFB: sign bit set, mantissa 5
    for flush_mode in (False, True):  # whatever the process's flush-denormal state
        previous = torch.set_flush_denormal(flush_mode)
        try:
            with torch.no_grad():
                w.view(-1)[:4] = subnormal_bits.view(torch.float32)
            assert flush_subnormals(dep) == 3 and flush_subnormals(dep) == 0
            assert not subnormal(w).any() and (w.view(-1)[:4] == 0).all()
        finally:
            torch.set_flush_denormal(False)
        del previous
