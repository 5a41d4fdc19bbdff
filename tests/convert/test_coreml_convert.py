"""CoreML conversion of tiny SINet-like modules, checked by the MIL reference evaluator.

The tiny module has every block a SINet ML program contains (conv-BN-PReLU, depthwise, the
squeeze block as 1×1 convs, avg-pool + align-corners bilinear, the decoder gate, the sigmoid
probability head) behind the CONTRACTS.md image I/O. It is converted a handful of times, once per
session; every test reads those packages back from disk.

fp32 is held to the registry's fp32 gate. Reduced precision is checked by exact properties here
(every fp16 tensor is fp16-rounded, every int8 weight is within half a step of the fp16 one):
a random tiny net has so many pixels near p = 0.5 that mask IoU says nothing about it. The
registry's fp16/int8 IoU gates are checked on the real SINet (test_coreml_sinet.py).
"""

from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from tests._tiny import ConvBNPReLU, DecoderGate, Depthwise, PoolUp, up

pytest.importorskip("coremltools", reason="the coreml extra (coremltools) is not installed")

from sinet_deploy.convert.torch_to_coreml import (
    ConversionNotes,
    CoreMLConfig,
    convert_coreml,
)
from sinet_deploy.core.errors import ConversionError, UserInputError
from sinet_deploy.models.preprocessing import normalize_rgb, preprocessing_contract
from sinet_deploy.runtimes import load_session
from sinet_deploy.runtimes.coreml_rt import CoreMLSession, coreml_available
from sinet_deploy.runtimes.mil_eval import (
    MILEvaluator,
    UnsupportedOpError,
    load_program,
)
from sinet_deploy.runtimes.mil_eval.blob import BlobFile
from sinet_deploy.runtimes.mil_eval.inspect import conv_weight_sources
from sinet_deploy.runtimes.mil_eval.program import proto_modules
from sinet_deploy.runtimes.torch_rt import TorchSession
from sinet_deploy.verify.gate import run_gate
from sinet_deploy.verify.metrics import aggregate, compare
from sinet_deploy.verify.tolerances import tolerance_for

SIZE = (64, 64)


class SqueezeBlock(nn.Module):
    """The deploy form's squeeze block: global mean → 1×1 conv → PReLU → 1×1 conv → PReLU, × x."""

    def __init__(self, c: int = 8, mid: int = 4) -> None:
        super().__init__()
        self.dense = nn.Sequential(
            nn.Conv2d(c, mid, 1), nn.PReLU(mid), nn.Conv2d(mid, c, 1), nn.PReLU(c)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dense(x.mean(dim=(2, 3), keepdim=True)) * x


class TinySINet(nn.Module):
    """uint8 RGB NHWC ``[1,H,W,3]`` → SINet's blocks → probability NHWC ``[1,H,W,1]``.

    ``raw=True``: normalised NCHW in, 2-class logits NCHW out (the checkpoint contract).
    """

    def __init__(self, raw: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.raw = raw
        self.block = ConvBNPReLU(3, 8, 2)
        self.dw = Depthwise(8)
        self.squeeze = SqueezeBlock(8)
        self.pool_up = PoolUp()
        self.gate = DecoderGate(8)
        self.last = nn.Conv2d(2, 1, 3, padding=1, bias=False)
        bn = self.block.bn
        assert bn.running_mean is not None and bn.running_var is not None
        with torch.no_grad():  # non-trivial statistics, so BatchNorm folding is exercised
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
            self.block.act.weight.uniform_(-0.5, 0.5)
        self.register_buffer("scale", torch.tensor([0.017, 0.018, 0.019]).reshape(1, 3, 1, 1))
        self.register_buffer("shift", torch.tensor([-2.0, -1.9, -1.8]).reshape(1, 3, 1, 1))
        self.eval()

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if self.raw:
            x = image * 100.0  # normalised pixels are ~±0.01
        else:
            x = image.to(torch.float32).permute(0, 3, 1, 2) * self.get_buffer("scale")
            x = x + self.get_buffer("shift")
        y = self.squeeze(self.dw(self.block(x)))
        y = y + self.pool_up(y)
        logits = up(self.gate(y), 2)
        if self.raw:
            return logits
        return torch.sigmoid(self.last(logits)).permute(0, 2, 3, 1)


VARIANTS = {  # name: (precision, deployment target, io)
    "fp32": ("fp32", "iOS16", "image"),
    "fp16": ("fp16", "iOS16", "image"),
    "int8": ("int8", "iOS16", "image"),
    "int8_ios18": ("int8", "iOS18", "image"),
    "raw_fp32_ios17": ("fp32", "iOS17", "raw"),
}


@pytest.fixture(scope="session")
def tiny_packages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The tiny module converted once per variant."""
    out = tmp_path_factory.mktemp("coreml_tiny")
    paths = {}
    for name, (precision, target, io) in VARIANTS.items():
        notes = ConversionNotes()
        cfg = CoreMLConfig(
            out=out / f"{name}.mlpackage",
            precision=precision,
            input_size=SIZE,
            io=io,
            deployment_target=target,
        )
        paths[name] = convert_coreml(TinySINet(raw=io == "raw"), cfg, notes)
    return paths


def _images(n: int = 3, seed: int = 0) -> list[np.ndarray]:
    """Smooth random pictures (a noise image makes the tiny net's mask meaningless)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        coarse = rng.integers(0, 256, size=(1, 3, 8, 8)).astype(np.float32)
        big = torch.nn.functional.interpolate(
            torch.from_numpy(coarse), size=SIZE, mode="bilinear", align_corners=False
        )
        out.append(big.permute(0, 2, 3, 1).round().clamp(0, 255).to(torch.uint8).numpy())
    return out


def _torch_prob(image: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return TinySINet()(torch.from_numpy(image)).numpy()


def _stats(path: Path, images: list[np.ndarray]) -> dict[str, Any]:
    session = load_session(path)
    return aggregate([compare(_torch_prob(x), session(x)) for x in images])


# -- numbers ------------------------------------------------------------------------------------


def test_fp32_program_matches_pytorch(tiny_packages: dict[str, Path]) -> None:
    tol = tolerance_for("coreml", "fp32")
    stats = _stats(tiny_packages["fp32"], _images())
    assert not tol.failures(stats), stats
    assert tol.max_abs_prob_diff is not None and stats["max_abs_prob_diff"] <= tol.max_abs_prob_diff


def test_fp16_program_rounds_every_tensor_to_fp16(tiny_packages: dict[str, Path]) -> None:
    program = load_program(tiny_packages["fp16"])
    fp16 = {name for op in program.ops for name, t in op.outputs if t.dtype == np.float16}
    assert len(fp16) > 20
    image = _images(1)[0]
    env = MILEvaluator(program).run({"image": image.transpose(0, 3, 1, 2).astype(np.float32)})
    for name in fp16:
        value = np.asarray(env[name], np.float32)
        np.testing.assert_array_equal(value, value.astype(np.float16).astype(np.float32))


@pytest.mark.parametrize(
    ("variant", "producer"),
    [
        ("int8", "constexpr_affine_dequantize"),
        ("int8_ios18", "constexpr_blockwise_shift_scale"),
    ],
)
def test_every_conv_weight_is_int8(
    tiny_packages: dict[str, Path], variant: str, producer: str
) -> None:
    sources = conv_weight_sources(load_program(tiny_packages[variant]))
    assert len(sources) == 7  # block, dw, 2 squeeze, coarse, side, last
    assert all(s.int8 and s.producer == producer for s in sources), sources


def test_float_programs_keep_float_weights(tiny_packages: dict[str, Path]) -> None:
    for variant, dtype in (("fp32", "float32"), ("fp16", "float16")):
        sources = conv_weight_sources(load_program(tiny_packages[variant]))
        assert {(s.producer, s.stored_dtype) for s in sources} == {("const", dtype)}


def test_int8_is_per_channel_symmetric_quantization_of_the_fp16_weights(
    tiny_packages: dict[str, Path],
) -> None:
    """Each dequantized weight is within half a quantization step of the fp16 program's."""
    fp16 = MILEvaluator(load_program(tiny_packages["fp16"]))
    int8_program = load_program(tiny_packages["int8"])
    int8 = MILEvaluator(int8_program)
    producers = {n: op for op in int8_program.ops for n, _ in op.outputs}
    float_weights = _conv_weights(fp16)
    for (name, w_q), w_f in zip(_conv_weights(int8).items(), float_weights.values(), strict=True):
        dq = producers[_weight_name(int8, name)]
        scale = np.asarray(dq.attributes["scale"], np.float32)
        assert np.all(np.asarray(dq.attributes["zero_point"]) == 0)  # symmetric
        assert scale.size in (1, w_f.shape[0]) and scale.ndim <= 1  # one per output channel
        step = scale.reshape(-1, *([1] * (w_f.ndim - 1)))
        # Half a step, plus what fp16 adds: the scale itself is rounded to fp16 (relative
        # 2**-11, times up to 127 steps) and so is the dequantized weight (half an fp16 ulp).
        ulp = np.spacing(np.abs(w_f).astype(np.float16)).astype(np.float32)
        bound = step * (0.5 + 127 * 2.0**-11) + ulp / 2
        assert np.all(np.abs(w_q - w_f) <= bound), name


def _weight_name(ev: MILEvaluator, conv: str) -> str:
    op = next(o for o in ev.program.ops if o.type == "conv" and o.name == conv)
    return str(op.inputs["weight"][0])


def _conv_weights(ev: MILEvaluator) -> dict[str, np.ndarray]:
    return {
        op.name: np.asarray(ev.constants[str(op.inputs["weight"][0])], np.float32)
        for op in ev.program.ops
        if op.type == "conv"
    }


def test_ios16_and_ios18_decompress_to_the_same_weights(tiny_packages: dict[str, Path]) -> None:
    """constexpr_affine_dequantize (iOS16) and constexpr_blockwise_shift_scale (iOS18) over the
    same int8 data give bit-identical conv weights. (The programs' outputs still differ by fp16
    ulps: the iOS18 program keeps e.g. PReLU slopes in fp32, which iOS17+ allows.)"""
    a = _conv_weights(MILEvaluator(load_program(tiny_packages["int8"])))
    b = _conv_weights(MILEvaluator(load_program(tiny_packages["int8_ios18"])))
    assert len(a) == len(b) == 7
    for wa, wb in zip(a.values(), b.values(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_raw_io_keeps_the_checkpoint_contract(tiny_packages: dict[str, Path]) -> None:
    path = tiny_packages["raw_fp32_ios17"]
    program = load_program(path)
    assert program.opset == "CoreML7"
    assert [n for n, _ in program.inputs] == ["input"] and program.outputs == ["logits"]
    manifest = {
        "options": {"io": "raw"},
        "inputs": [{"name": "input", "layout": "nchw"}],
        "outputs": [{"name": "logits", "layout": "nchw"}],
    }
    session = CoreMLSession(path, manifest)
    image = _images(1)[0]
    with torch.no_grad():
        logits = TinySINet(raw=True)(torch.from_numpy(normalize_rgb(image)))
    want = torch.softmax(logits, 1)[:, 1:2].permute(0, 2, 3, 1).numpy()
    stats = aggregate([compare(want, session(image))])
    assert not tolerance_for("coreml", "fp32").failures(stats), stats


# -- the package ----------------------------------------------------------------------------------


def test_metadata_and_descriptions(tiny_packages: dict[str, Path]) -> None:
    program = load_program(tiny_packages["fp16"])
    meta = program.metadata
    assert "NAVER" in meta["author"] and "MIT" in meta["license"]
    assert meta["short_description"]
    user = meta["user_defined"]
    assert json.loads(user["sinet_deploy.preprocessing"]) == json.loads(
        json.dumps(preprocessing_contract())
    )
    assert user["sinet_deploy.precision"] == "fp16" and user["sinet_deploy.io"] == "image"
    image = program.input_features["image"]
    assert (image["kind"], image["color_space"], image["height"], image["width"]) == (
        "image",
        "RGB",
        *SIZE,
    )
    assert image["description"]
    fg = program.output_features["foreground"]
    assert fg["shape"] == [1, *SIZE, 1] and fg["dtype"] == "FLOAT32" and fg["description"]


def test_blob_reader_agrees_with_coremltools(tiny_packages: dict[str, Path]) -> None:
    from coremltools.libmilstoragepython import _BlobStorageReader

    package = tiny_packages["int8"]
    weights = package / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    ours, theirs = BlobFile(weights), _BlobStorageReader(str(weights))
    readers = {
        "FLOAT16": ("read_fp16_data", np.float16),
        "FLOAT32": ("read_float_data", np.float32),
        "INT8": ("read_int8_data", np.int8),
        "UINT8": ("read_uint8_data", np.uint8),
    }
    checked = 0
    for offset, dtype_name, count in _blob_refs(package):
        method, dtype = readers[dtype_name]
        want = np.frombuffer(getattr(theirs, method)(offset).tobytes(), dtype)
        np.testing.assert_array_equal(ours.read(offset, np.dtype(dtype), count), want)
        checked += 1
    assert checked >= 7


def _blob_refs(package: Path) -> list[tuple[int, str, int]]:
    """(offset, MIL dtype name, element count) of every blob-backed value in the program."""
    model_pb2, mil_pb2 = proto_modules()
    model = model_pb2.Model()
    model.ParseFromString((package / "Data/com.apple.CoreML/model.mlmodel").read_bytes())
    fn = model.mlProgram.functions["main"]
    refs = []

    def visit(value: Any) -> None:
        if value.WhichOneof("value") == "blobFileValue":
            tt = value.type.tensorType
            count = int(np.prod([d.constant.size for d in tt.dimensions]))
            refs.append((value.blobFileValue.offset, mil_pb2.DataType.Name(tt.dataType), count))

    for op in fn.block_specializations[fn.opset].operations:
        for attr in op.attributes.values():
            visit(attr)
        for arg in op.inputs.values():
            for b in arg.arguments:
                if b.WhichOneof("binding") == "value":
                    visit(b.value)
    return refs


def test_session_contract(tiny_packages: dict[str, Path]) -> None:
    session = load_session(tiny_packages["fp16"])
    assert isinstance(session, CoreMLSession)
    available, _ = coreml_available()
    assert session.runtime == ("coreml" if available else "coreml-reference")
    assert session.input_size == SIZE
    assert session.contract.io == "image"
    (native,) = session.native_inputs()
    assert native.shape == (1, *SIZE, 3) and native.dtype == np.uint8
    (out,) = session.run_native([native])
    assert out.shape == (1, *SIZE, 1) and out.dtype == np.float32
    reference = CoreMLSession(tiny_packages["fp16"], None, provider="reference")
    assert reference.runtime == "coreml-reference"
    prob = reference(_images(1)[0])
    assert prob.shape == (1, *SIZE, 1) and prob.min() >= 0.0 and prob.max() <= 1.0


# -- failures -----------------------------------------------------------------------------------


def _flip_bits(package: Path, n_values: int = 8) -> None:
    """Flip the top exponent bit of float weights in the first blobs (data, never headers)."""
    weights = package / "Data" / "com.apple.CoreML" / "weights" / "weight.bin"
    data = bytearray(weights.read_bytes())
    for offset, dtype_name, count in sorted(_blob_refs(package))[:3]:
        data_offset = struct.unpack_from("<IIQQQ", data, offset)[3]
        assert dtype_name == "FLOAT32"
        for i in range(min(n_values, count)):
            data[data_offset + 4 * i + 3] ^= 0x40  # exponent MSB: a weight becomes ~1e38 or ~0
    weights.write_bytes(bytes(data))


def test_corrupted_weights_fail_the_parity_gate(
    tiny_packages: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "corrupt.mlpackage"
    shutil.copytree(tiny_packages["fp32"], bad)
    _flip_bits(bad)
    reference = TorchSession(TinySINet(), SIZE, name="tiny torch", io="image")
    good = run_gate(load_session(tiny_packages["fp32"]), reference, fmt="coreml", precision="fp32")
    broken = run_gate(load_session(bad), reference, fmt="coreml", precision="fp32")
    assert good.passed, good.failures
    assert not broken.passed and broken.failures


def test_unknown_op_in_a_saved_package_is_named(
    tiny_packages: dict[str, Path], tmp_path: Path
) -> None:
    bad = tmp_path / "mystery.mlpackage"
    shutil.copytree(tiny_packages["fp32"], bad)
    spec_path = bad / "Data/com.apple.CoreML/model.mlmodel"
    model_pb2, _ = proto_modules()
    model = model_pb2.Model()
    model.ParseFromString(spec_path.read_bytes())
    fn = model.mlProgram.functions["main"]
    ops = fn.block_specializations[fn.opset].operations
    next(op for op in ops if op.type == "sigmoid").type = "mystery_sigmoid"
    spec_path.write_bytes(model.SerializeToString())
    with pytest.raises(UnsupportedOpError, match="mystery_sigmoid"):
        load_session(bad)


def test_failed_conversion_leaves_nothing(tmp_path: Path) -> None:
    class Broken(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            raise RuntimeError("boom")

    out = tmp_path / "broken.mlpackage"
    with pytest.raises(ConversionError, match="boom"):
        convert_coreml(Broken(), CoreMLConfig(out=out, input_size=SIZE))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "bad",
    [
        {"precision": "int4"},
        {"deployment_target": "iOS15"},
        {"frontend": "onnx"},
        {"io": "nhwc"},
        {"out": Path("model.mlmodel")},
    ],
)
def test_config_validation(bad: dict[str, Any], tmp_path: Path) -> None:
    kwargs: dict[str, Any] = {"out": tmp_path / "m.mlpackage", **bad}
    with pytest.raises(UserInputError):
        CoreMLConfig(**kwargs)


def test_coreml_prediction_matches_the_evaluator_on_macos(tiny_packages: dict[str, Path]) -> None:
    """Apple's runtime vs the reference evaluator (only where Core ML exists)."""
    available, why = coreml_available()
    if not available:
        pytest.skip(f"Core ML prediction needs macOS: {why}")
    image = _images(1)[0]
    for variant in ("fp32", "fp16", "int8"):
        apple = CoreMLSession(tiny_packages[variant], None, provider="cpu")
        ours = CoreMLSession(tiny_packages[variant], None, provider="reference")
        assert apple.runtime == "coreml"
        stats = aggregate([compare(ours(image), apple(image))])
        assert not tolerance_for("coreml", VARIANTS[variant][0]).failures(stats), stats
