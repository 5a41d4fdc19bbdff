"""Sessions: one contract (uint8 RGB in, probability out) for torch, ONNX Runtime and LiteRT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sinet_deploy.core.errors import ArtifactError, ImageError, UserInputError
from sinet_deploy.runtimes import load_session, torch_reference
from sinet_deploy.runtimes.base import TensorSpec, dequantize, quantize
from sinet_deploy.verify.metrics import compare
from sinet_deploy.verify.tolerances import tolerance_for
from tests.conftest import PEERS, need

SIZE = (64, 96)


@pytest.fixture(scope="module")
def random_onnx(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Seeded random-weight SINet exported to ONNX with both I/O contracts (no onnx2tf)."""
    from sinet_deploy.convert.publish import export_artifacts

    out: dict[str, Path] = {}
    for io in ("image", "raw"):
        folder = tmp_path_factory.mktemp(f"onnx_{io}")
        report = export_artifacts(
            "random", formats=["onnx"], precisions=["fp32"], out_dir=folder, input_size=SIZE, io=io
        )
        report.raise_for_failures()
        path = report.results[0].path
        assert path is not None
        out[io] = path
    return out


def test_torch_reference_contract() -> None:
    ref = torch_reference("random", SIZE)
    assert ref.runtime == "torch" and ref.input_size == SIZE and ref.manifest is None
    x = np.random.default_rng(0).integers(0, 256, (1, *SIZE, 3), dtype=np.uint8)
    p = ref(x)
    assert p.shape == (1, *SIZE, 1) and p.dtype == np.float32
    assert p.min() >= 0.0 and p.max() <= 1.0
    (native,) = ref.native_inputs()
    assert native.shape == (1, 3, *SIZE) and native.dtype == np.float32
    (logits,) = ref.run_native([native])
    assert logits.shape == (1, 2, *SIZE)


def test_torch_reference_rejects_bad_input() -> None:
    ref = torch_reference("random", SIZE)
    with pytest.raises(ImageError, match="uint8 RGB"):
        ref(np.zeros((1, *SIZE, 3), dtype=np.float32))
    with pytest.raises(ImageError):
        ref(np.zeros((1, 32, 32, 3), dtype=np.uint8))


def test_onnx_sessions_match_reference_for_both_io(random_onnx: dict[str, Path]) -> None:
    ref = torch_reference("random", SIZE)
    x = np.random.default_rng(1).integers(0, 256, (1, *SIZE, 3), dtype=np.uint8)
    bound = tolerance_for("onnx", "fp32").max_abs_prob_diff
    assert bound is not None
    for io, path in random_onnx.items():
        sess = load_session(path)
        assert sess.runtime == "onnxruntime" and sess.input_size == SIZE
        assert sess.manifest is not None and sess.contract.io == io
        assert compare(ref(x), sess(x))["max_abs_prob_diff"] <= bound
        native = sess.native_inputs()
        expected = (1, *SIZE, 3) if io == "image" else (1, 3, *SIZE)
        assert native[0].shape == expected
        assert native[0].dtype == (np.uint8 if io == "image" else np.float32)
        out = sess.run_native(native)
        assert out[0].shape == ((1, *SIZE, 1) if io == "image" else (1, 2, *SIZE))


def test_onnx_without_manifest_is_still_an_image_model(
    random_onnx: dict[str, Path], tmp_path: Path
) -> None:
    bare = tmp_path / "model.onnx"
    bare.write_bytes(random_onnx["image"].read_bytes())
    sess = load_session(bare)
    assert sess.manifest is None and sess.contract.io == "image"
    x = np.zeros((1, *SIZE, 3), dtype=np.uint8)
    assert sess(x).shape == (1, *SIZE, 1)


def test_load_session_errors(tmp_path: Path, random_onnx: dict[str, Path]) -> None:
    with pytest.raises(ArtifactError, match="does not exist"):
        load_session(tmp_path / "nope.onnx")
    (tmp_path / "m.xyz").write_bytes(b"x")
    with pytest.raises(ArtifactError, match="unsupported model type"):
        load_session(tmp_path / "m.xyz")
    (tmp_path / "bad.onnx").write_bytes(b"not an onnx file")
    with pytest.raises(ArtifactError, match="cannot load"):
        load_session(tmp_path / "bad.onnx")
    (tmp_path / "bad.tflite").write_bytes(b"not a flatbuffer at all")
    with pytest.raises(ArtifactError, match="cannot load"):
        load_session(tmp_path / "bad.tflite")
    with pytest.raises(UserInputError, match="threads"):
        load_session(random_onnx["image"], threads=0)
    with pytest.raises(UserInputError, match="provider"):
        load_session(random_onnx["image"], provider="tpu")
    broken = tmp_path / "copy.onnx"
    broken.write_bytes(random_onnx["image"].read_bytes())
    broken.with_suffix(".json").write_text("{not json")
    with pytest.raises(ArtifactError, match="unreadable"):
        load_session(broken)


def test_quantize_roundtrip() -> None:
    spec = TensorSpec("x", (4,), "int8", None, (0.5, -3))
    q = quantize(np.array([0.0, 1.0, 1000.0, -1000.0]), spec)
    assert q.dtype == np.int8 and q.tolist() == [-3, -1, 127, -128]
    assert dequantize(q, spec).tolist() == [0.0, 1.0, 65.0, -62.5]
    plain = TensorSpec("x", (2,), "uint8")
    assert quantize(np.array([3.4, 300.0]), plain).tolist() == [3, 255]


def test_peer_tflite_is_benchmarkable_not_callable() -> None:
    peer = need(PEERS / "selfie_segmentation.tflite")
    sess = load_session(peer)
    assert sess.runtime == "litert" and sess.manifest is None
    assert sess.contract.io == "peer" and sess.input_size == (256, 256)
    (x,) = sess.native_inputs()
    assert x.shape == (1, 256, 256, 3) and x.dtype == np.float32
    assert x.min() >= 0.0 and x.max() <= 1.0
    (y,) = sess.run_native([x])
    assert y.shape == (1, 256, 256, 1)
    with pytest.raises(ArtifactError, match="no sinet-deploy manifest"):
        sess(np.zeros((1, 256, 256, 3), dtype=np.uint8))
    from sinet_deploy.runtimes.litert_rt import LiteRTSession

    assert isinstance(sess, LiteRTSession)
    assert sess.delegation()["xnnpack_partitions"] >= 1


def test_tflite_op_counts_of_peer() -> None:
    from sinet_deploy.runtimes.litert_rt import op_counts

    counts = op_counts(need(PEERS / "selfie_segmentation.tflite"))
    assert counts["CONV_2D"] > 10
    assert "CUSTOM:Convolution2DTransposeBias" in counts


def test_session_describe_is_json(random_onnx: dict[str, Path]) -> None:
    d = load_session(random_onnx["raw"]).describe()
    assert json.loads(json.dumps(d))["inputs"][0]["layout"] == "nchw"


def test_torch_session_leaves_the_callers_subnormals_alone() -> None:
    """The session flushes subnormals only while its model runs (CPU state is global)."""
    import numpy as np

    from sinet_deploy.runtimes import torch_reference

    session = torch_reference("random", (32, 32))
    session(np.zeros((1, 32, 32, 3), np.uint8))
    tiny = np.float32(1e-39)  # subnormal: becomes 0 only in flush-to-zero mode
    assert tiny * np.float32(1.0) != 0


def test_litert_xnnpack_fp16_provider(tmp_path: Path) -> None:
    """XNNPACK's force-fp16 flag through LiteRT's CompiledModel: the same contract, outputs
    within fp16 resolution of the default fp32 run."""
    pytest.importorskip("ai_edge_litert.compiled_model", reason="LiteRT < 2.0 has no CompiledModel")
    from tests.device_support import make_tiny_tflite

    model = make_tiny_tflite(tmp_path / "tiny_fp32.tflite")
    fp32 = load_session(model)
    fp16 = load_session(model, provider="xnnpack-fp16")
    assert fp16.contract == fp32.contract and fp16.input_size == fp32.input_size
    image = np.random.default_rng(5).integers(0, 256, (1, *fp32.input_size, 3), dtype=np.uint8)
    got, want = fp16(image), fp32(image)
    assert got.shape == want.shape and got.dtype == np.float32
    # Probabilities lie in [0, 1], where one fp16 ulp is at most 2**-11; a handful of fp16
    # roundings (the input scaling, the op, the sigmoid) stay within 8 of them.
    assert float(np.abs(got - want).max()) <= 8 * 2.0**-11
    with pytest.raises(UserInputError, match="provider"):
        load_session(model, provider="fp16")
