"""``profile``: one-op cuts of a TFLite model compute what the whole model computes, and time."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("ai_edge_litert")

from sinet_deploy.benchmark.op_profile import profile, split_ops
from sinet_deploy.core.errors import ArtifactError, UserInputError


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fp32, fp16-weight and full-integer versions of a net with conv, PReLU, pool, concat."""
    import tensorflow as tf

    out = tmp_path_factory.mktemp("op_profile")
    rng = np.random.default_rng(0)
    w1 = tf.constant(rng.normal(0, 0.3, (3, 3, 3, 8)).astype(np.float32))
    w2 = tf.constant(rng.normal(0, 0.3, (1, 1, 8, 4)).astype(np.float32))
    slope = tf.constant(rng.uniform(-0.5, 1.2, 8).astype(np.float32))

    class Tiny(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 16, 16, 3], tf.float32)])
        def __call__(self, x: tf.Tensor) -> tf.Tensor:
            y = tf.nn.conv2d(x, w1, 1, "SAME")
            y = tf.maximum(y, 0.0) + slope * tf.minimum(y, 0.0)
            z = tf.nn.conv2d(tf.nn.avg_pool2d(y, 2, 2, "VALID"), w2, 1, "SAME")
            return tf.sigmoid(tf.concat([z, z * 0.5], -1))

    model = Tiny()
    fn = model.__call__.get_concrete_function()
    paths = {}
    for kind in ("fp32", "fp16", "int8"):
        conv = tf.lite.TFLiteConverter.from_concrete_functions([fn], model)
        if kind == "fp16":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_types = [tf.float16]
        if kind == "int8":
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8

            def samples():  # type: ignore[no-untyped-def]
                for _ in range(8):
                    yield [rng.normal(0, 1, (1, 16, 16, 3)).astype(np.float32)]

            conv.representative_dataset = samples
        paths[kind] = out / f"tiny_{kind}.tflite"
        paths[kind].write_bytes(conv.convert())
    return paths


def _intermediates(path: Path, x: np.ndarray) -> tuple[object, dict[int, np.ndarray]]:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(
        model_path=str(path),
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    values = {}
    for d in it.get_tensor_details():
        with contextlib.suppress(ValueError):  # tensors without data (optional, freed)
            values[d["index"]] = it.get_tensor(d["index"])
    return it, values


@pytest.mark.parametrize("kind", ["fp32", "int8"])
def test_each_one_op_model_reproduces_its_op_in_the_whole_model(
    tiny_models: dict[str, Path], kind: str
) -> None:
    """Feed every cut the tensors the whole model fed that op: it must give the same output."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    rng = np.random.default_rng(1)
    path = tiny_models[kind]
    dtype = np.int8 if kind == "int8" else np.float32
    x = (
        rng.integers(-128, 128, (1, 16, 16, 3)).astype(dtype)
        if kind == "int8"
        else rng.normal(0, 1, (1, 16, 16, 3)).astype(dtype)
    )
    whole_it, values = _intermediates(path, x)
    ops = whole_it._get_ops_details()  # type: ignore[attr-defined]
    # The cut keeps tensor names: each cut input is matched to the whole model's tensor by name.
    index_of = {d["name"]: d["index"] for d in whole_it.get_tensor_details()}  # type: ignore[attr-defined]
    cuts = split_ops(path.read_bytes())
    assert [c.op for c in cuts] == [o["op_name"] for o in ops]
    checked = 0
    for cut, op in zip(cuts, ops, strict=True):
        if cut.data is None:
            continue
        it = Interpreter(
            model_content=cut.data,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        it.allocate_tensors()
        details = it.get_input_details()
        assert details
        for d in details:
            src = index_of[d["name"]]
            assert src in {int(t) for t in op["inputs"]}, (cut.op, d["name"])
            it.set_tensor(d["index"], values[src])
        it.invoke()
        got = it.get_tensor(it.get_output_details()[0]["index"])
        np.testing.assert_array_equal(got, values[int(op["outputs"][0])], err_msg=cut.op)
        checked += 1
    assert checked >= 4


def test_weight_dequantize_of_an_fp16_model_is_listed_not_timed(
    tiny_models: dict[str, Path],
) -> None:
    cuts = split_ops(tiny_models["fp16"].read_bytes())
    constant = [c for c in cuts if c.skipped == "constant"]
    assert constant and {c.op for c in constant} == {"DEQUANTIZE"}
    assert all(c.data is None for c in constant)
    assert any(c.data is not None for c in cuts)


def test_profile_two_models_in_one_run(tiny_models: dict[str, Path]) -> None:
    report = profile([tiny_models["int8"], tiny_models["fp32"]], runs=5, warmup=1)
    data = report.as_dict()
    assert data["threads"] == 1 and data["whole_model_ratio"] > 0
    assert "int8_dot_product" in data["machine"]
    for model in report.models:
        assert model.whole_ms > 0 and model.sum_ms > 0
        kinds = model.by_type()
        assert sum(k["count"] for k in kinds.values()) == len(model.ops)
        assert abs(sum(k["share"] for k in kinds.values()) - 1.0) < 1e-3
        timed = [t for t in model.ops if t.us is not None]
        assert timed and all(t.us > 0 and t.delegated is not None for t in timed)
    int8 = report.models[0].by_type()
    assert "QUANTIZE" in int8 or "CONV_2D" in int8
    json.dumps(data)


def test_profile_rejects_bad_input(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    with pytest.raises(ArtifactError, match="not found"):
        profile([tmp_path / "missing.tflite"])
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(ArtifactError):
        profile([junk])
    with pytest.raises(ArtifactError, match="not a .tflite"):
        profile([tmp_path / "model.onnx"])
    with pytest.raises(UserInputError, match="runs"):
        profile([tiny_models["fp32"]], runs=0)
    with pytest.raises(UserInputError, match="one model, or two"):
        profile([tiny_models["fp32"]] * 3)


def test_profile_cli(cli, tiny_models: dict[str, Path], tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = cli("profile", str(tiny_models["int8"]), "--against", str(tiny_models["fp32"]))
    assert res.code == 0, res.err
    assert "time by op type" in res.out and "whole model" in res.out
    assert "A = tiny_int8.tflite" in res.out and "CONV_2D" in res.out
    res = cli("profile", str(tiny_models["fp32"]), "--json", "--runs", "3")
    assert res.code == 0, res.err
    data = res.json()
    assert data["models"][0]["by_type"]["CONV_2D"]["count"] == 2  # type: ignore[index]
    res = cli("profile", str(tmp_path / "nope.tflite"))
    assert res.code == 2 and "not found" in res.err and "Traceback" not in res.err


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ({"avx2", "fma"}, (False, [])),
        ({"avx2", "avx512_vnni", "avx_vnni"}, (True, ["avx512_vnni", "avx_vnni"])),
        ({"fp", "asimd", "asimddp", "i8mm"}, (True, ["asimddp", "i8mm"])),
        (None, (None, [])),
    ],
)
def test_int8_dot_product_flags(
    monkeypatch: pytest.MonkeyPatch, flags: set[str] | None, expected: tuple[object, list[str]]
) -> None:
    from sinet_deploy.core import environment

    monkeypatch.setattr(environment, "cpu_flags", lambda: flags)
    got = environment.int8_dot_product()
    assert (got["int8_dot_product"], got["int8_flags"]) == expected


def test_cpu_flags_reads_this_machine() -> None:
    from sinet_deploy.core.environment import cpu_flags

    flags = cpu_flags()
    if Path("/proc/cpuinfo").is_file():
        assert flags  # every Linux CPU lists some feature flags
    else:
        assert flags is None
