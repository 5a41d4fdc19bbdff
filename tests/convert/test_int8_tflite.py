"""Full-integer TFLite: the quantizer child process on a tiny model, and the real SINet (slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A tiny SavedModel shaped like SINet's trouble spots, quantized by our child process.

    A CONCATENATION followed by a MUL is exactly where TensorFlow's calibrator logs the MUL's
    range for the concat (in-place buffer reuse); the LOGISTIC input spans -12..5.
    """
    import tensorflow as tf

    from sinet_deploy.convert.quantize_tflite import _run_quantizer

    out = tmp_path_factory.mktemp("tiny_int8")
    rng = np.random.default_rng(0)
    w1 = tf.constant(rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32))
    w2 = tf.constant(rng.normal(0, 0.3, (1, 1, 8, 4)).astype(np.float32))
    w3 = tf.constant(rng.normal(0, 0.3, (3, 3, 12, 1)).astype(np.float32))
    k = tf.constant(np.linspace(0.5, 8, 12).astype(np.float32))

    class Tiny(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            y = tf.nn.leaky_relu(tf.nn.conv2d(x / 255.0 - 0.5, w1, 1, "SAME"), -1.0)
            z = tf.nn.conv2d(y, w2, 1, "SAME") * 0.05
            c = tf.concat([y, z], -1) * k
            return tf.sigmoid(tf.nn.conv2d(c, w3, 1, "SAME"))

    model = Tiny()
    tf.saved_model.save(model, str(out / "sm"), signatures=model.__call__)
    images = rng.integers(0, 256, (8, 16, 16, 3), dtype=np.uint8)
    np.save(out / "calib.npy", images)
    spec = {
        "saved_model": str(out / "sm"),
        "calib": str(out / "calib.npy"),
        "out": str(out / "q.tflite"),
        "input_dtype": "uint8",
        "logit_clip": 8.0,
        "per_channel": True,
    }
    report = _run_quantizer(spec, out, 600)
    ref = np.concatenate([model(images[i : i + 1].astype(np.float32)).numpy() for i in range(8)])
    return {"path": out / "q.tflite", "report": report, "images": images, "ref": ref, "spec": spec}


def test_tiny_full_integer_model_is_one_xnnpack_partition(tiny_int8: dict) -> None:  # type: ignore[type-arg]
    from sinet_deploy.runtimes.litert_rt import LiteRTSession, analyze

    path = tiny_int8["path"]
    graph = analyze(path)
    assert graph["xnnpack_partitions"] == 1
    # Only the uint8→int8 input QUANTIZE runs before the partition.
    assert graph["undelegated_ops"] == {"QUANTIZE": 1}
    session = LiteRTSession(path, None)
    assert session.contract.inputs[0].dtype == "uint8"
    assert session.contract.inputs[0].quantization == (1.0, 0)  # pixels map exactly
    images, ref = tiny_int8["images"], tiny_int8["ref"]
    got = np.concatenate([session.run_native([images[i : i + 1]])[0] for i in range(len(images))])
    assert float(np.abs(got - ref).max()) < 0.05


def test_quantizer_replaces_the_calibrators_inflated_ranges(tiny_int8: dict) -> None:  # type: ignore[type-arg]
    from ai_edge_litert.interpreter import Interpreter

    report = tiny_int8["report"]
    assert report["ranges_corrected"] >= 1 and report["logistic_inputs_clipped"] == 1
    it = Interpreter(model_path=str(tiny_int8["path"]))
    it.allocate_tensors()
    scales = {d["name"]: d["quantization"][0] for d in it.get_tensor_details()}
    concat = next(s for n, s in scales.items() if n.startswith("concat"))
    # true concat range ≈ [-0.08, 1.77]; TF's calibrator alone records the MUL's [-0.56, 8.3]
    assert concat * 255 < 2.5


def test_float_tail_keeps_the_head_in_float(tiny_int8: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """``float_tail``: the sigmoid and the conv before it stay float32 (no RESIZE here: the
    walk stops at the first op that is not part of the head)."""
    from ai_edge_litert.interpreter import Interpreter

    from sinet_deploy.convert.quantize_tflite import _run_quantizer, tail_nodes

    spec = {**tiny_int8["spec"], "out": str(tmp_path / "q_tail.tflite"), "float_tail": True}
    report = _run_quantizer(spec, tmp_path, 600)
    assert len(report["float_nodes"]) == 2
    model = (tmp_path / "q_tail.tflite").read_bytes()
    it = Interpreter(model_content=model)
    it.allocate_tensors()
    details = it.get_tensor_details()
    ops = it._get_ops_details()
    dtype = {op["op_name"]: details[op["inputs"][0]]["dtype"] for op in ops}
    assert dtype["LOGISTIC"] == np.float32
    conv_inputs = [details[op["inputs"][0]]["dtype"] for op in ops if op["op_name"] == "CONV_2D"]
    assert conv_inputs[-1] == np.float32 and conv_inputs[0] == np.int8
    assert tail_nodes(model)[:1] == report["float_nodes"][:1]
    images, ref = tiny_int8["images"], tiny_int8["ref"]
    got = np.concatenate([_run(model, images[i : i + 1]) for i in range(len(images))])
    assert float(np.abs(got - ref).max()) < 0.05


def _run(model: bytes, image: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_content=model)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], image)
    it.invoke()
    return np.asarray(it.get_tensor(it.get_output_details()[0]["index"]))


def test_dequantized_twin_tracks_the_int8_model(tiny_int8: dict) -> None:  # type: ignore[type-arg]
    from sinet_deploy.verify.layerwise import tflite_layerwise

    images = [tiny_int8["images"][i : i + 1] for i in range(3)]
    report = tflite_layerwise(tiny_int8["path"], images)
    data = report.as_dict()
    assert data["matched_tensors"] >= 8
    ops = {t["op"] for t in data["tensors"]}
    assert {"CONV_2D", "CONCATENATION", "LOGISTIC"} <= ops
    assert all(t["sqnr_db"] is None or t["sqnr_db"] > 15 for t in data["tensors"])


# --- the real SINet (slow) -------------------------------------------------------------------


@pytest.fixture(scope="module")
def calib_split(official_weights: Path) -> dict[str, np.ndarray]:
    from tests._int8_data import calib_split as split

    return split()


@pytest.mark.slow
def test_sinet_int8_tflite_is_one_partition_and_accurate(
    calib_split: dict,
    tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    from sinet_deploy.convert.calibration import CalibrationConfig, CalibrationSet, tensor_sha256
    from sinet_deploy.convert.quantize_tflite import convert_int8_tflite
    from sinet_deploy.runtimes.litert_rt import LiteRTSession, analyze
    from sinet_deploy.verify.tolerances import INT8_ACCEPTANCE

    images = calib_split["calib"]
    calib = CalibrationSet(images, "folder", [], tensor_sha256(images), CalibrationConfig())
    dest = tmp_path / "sinet_int8.tflite"
    result = convert_int8_tflite("official", (224, 224), calib, dest, tmp_path)
    graph = analyze(dest)
    assert graph["xnnpack_partitions"] == 1
    assert set(graph["undelegated_ops"]) <= {"QUANTIZE"}  # the uint8 input only
    assert not {"PRELU", "SOFTMAX", "AVERAGE_POOL_2D"} & set(graph["op_counts"])
    assert result.quantizer["ranges_corrected"] > 0
    # The head stays float: sigmoid ← last conv ← last bilinear upsample.
    assert len(result.quantizer["float_nodes"]) == 3
    from tests._int8_data import score

    stats = score(LiteRTSession(dest, None), calib_split)
    assert not INT8_ACCEPTANCE[("tflite", "int8")].failures(stats), stats
