"""Parity metrics and the tolerance registry."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from sinet_deploy.core.errors import UserInputError
from sinet_deploy.core.jsonsafe import json_safe
from sinet_deploy.verify.metrics import aggregate, compare, mask_iou, sqnr_db
from sinet_deploy.verify.tolerances import TOLERANCES, Tolerance, tolerance_for


def test_identical_maps_are_perfect() -> None:
    p = np.random.default_rng(0).random((1, 8, 8, 1)).astype(np.float32)
    m = compare(p, p.copy())
    assert m["max_abs_prob_diff"] == 0.0 and m["mean_abs_prob_diff"] == 0.0
    assert m["iou"] == 1.0 and m["pixel_agreement"] == 1.0
    assert math.isinf(m["sqnr_db"])


def test_known_values() -> None:
    ref = np.zeros((1, 2, 2, 1))
    ref[0, 0, :, 0] = 0.9  # two foreground pixels
    test = ref.copy()
    test[0, 0, 1, 0] = 0.4  # one of them drops below 0.5
    m = compare(ref, test)
    assert m["max_abs_prob_diff"] == pytest.approx(0.5)
    assert m["mean_abs_prob_diff"] == pytest.approx(0.125)
    assert m["iou"] == pytest.approx(0.5)
    assert m["pixel_agreement"] == pytest.approx(0.75)
    signal, noise = 2 * 0.81, 0.25
    assert m["sqnr_db"] == pytest.approx(10 * math.log10(signal / noise))


def test_empty_masks_agree() -> None:
    empty = np.zeros((4, 4), dtype=bool)
    assert mask_iou(empty, empty) == 1.0
    assert mask_iou(empty, ~empty) == 0.0
    assert compare(np.full((3, 3), 0.1), np.full((3, 3), 0.2))["iou"] == 1.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape mismatch"):
        compare(np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 5, 1)))


def test_sqnr_of_zero_signal() -> None:
    assert sqnr_db(np.zeros(3), np.ones(3)) == -math.inf


def test_aggregate_and_json_safe() -> None:
    rows = [
        compare(np.full((2, 2), 0.9), np.full((2, 2), 0.9)),
        compare(np.array([[0.9, 0.9], [0.1, 0.1]]), np.array([[0.9, 0.2], [0.1, 0.1]])),
    ]
    agg = aggregate(rows)
    assert agg["num_images"] == 2
    assert agg["min_iou"] == pytest.approx(0.5)
    assert agg["mean_iou"] == pytest.approx(0.75)
    assert agg["max_abs_prob_diff"] == pytest.approx(0.7)
    assert agg["min_sqnr_db"] == pytest.approx(rows[1]["sqnr_db"])
    assert agg["sqnr_db"] == pytest.approx(rows[1]["sqnr_db"])  # the inf row is left out
    text = json.dumps(json_safe({"a": math.inf, "b": {"c": -math.inf}, "d": 1.5}))
    assert json.loads(text) == {"a": None, "b": {"c": None}, "d": 1.5}
    with pytest.raises(ValueError):
        aggregate([])


def test_registry_has_a_reason_and_a_bound_for_every_entry() -> None:
    for key, tol in TOLERANCES.items():
        assert len(tol.why) > 10, key
        assert any(
            v is not None
            for v in (tol.max_abs_prob_diff, tol.mean_iou, tol.min_iou, tol.pixel_agreement)
        ), key
    with pytest.raises(UserInputError, match="no parity tolerance"):
        tolerance_for("onnx", "int4")


def test_no_bound_is_below_the_resolution_of_what_it_checks() -> None:
    """A probability in [0, 1] cannot be compared finer than float32 resolves it near 1.0;
    a mask IoU over a 224x224 image cannot demand more than "one pixel of 50,176 differs"."""
    from sinet_deploy.verify.tolerances import FP32_LOGIT_DIFF, FP32_PROB_DIFF, ulps

    one_pixel = 1 - 1 / (224 * 224)
    for key, tol in TOLERANCES.items():
        if tol.max_abs_prob_diff is not None:
            assert tol.max_abs_prob_diff >= 8 * ulps(1.0, np.float32), key
        for bound in (tol.mean_iou, tol.min_iou, tol.pixel_agreement):
            assert bound is None or bound <= one_pixel, key
    assert 8 * ulps(1.0, np.float32) <= FP32_PROB_DIFF
    assert 8 * ulps(16.0, np.float32) <= FP32_LOGIT_DIFF


def test_ulps_follow_the_binade_of_the_value() -> None:
    from sinet_deploy.verify.tolerances import quant_steps, ulps

    assert ulps(0.3, np.float16) == 2.0**-12  # [0.25, 0.5): fp16 ulp 2^-12
    assert ulps(0.6, np.float16) == 2.0**-11
    assert ulps(1.0, np.float32) == 2.0**-23
    assert ulps([0.3, 0.6], np.float16, 2).tolist() == [2.0**-11, 2.0**-10]
    assert quant_steps(1 / 255, 0.5) == 0.5 / 255


def test_tolerance_failures_name_the_numbers() -> None:
    tol = Tolerance("test", max_abs_prob_diff=1e-4, mean_iou=0.99, pixel_agreement=0.99)
    ok = {"max_abs_prob_diff": 5e-5, "mean_iou": 0.999, "min_iou": 0.5, "pixel_agreement": 1.0}
    assert tol.failures(ok) == []
    bad = {**ok, "max_abs_prob_diff": 3e-3, "mean_iou": 0.9}
    msgs = tol.failures(bad)
    assert len(msgs) == 2 and "0.003" in msgs[0] and "0.9" in msgs[1]
    # NaN never passes a bound
    assert tol.failures({**ok, "max_abs_prob_diff": float("nan")})


def test_a_failed_gate_names_the_worst_image_and_its_figure(tmp_path: Path) -> None:
    """The gate's message says which bound failed, by how much, and on which portrait."""
    from PIL import Image

    from sinet_deploy.verify.gate import run_gate

    class Prob:  # probability = red channel / 255, optionally with one image's mask inverted
        runtime = "fake"

        def __init__(self, name: str, flip_if_red_above: int | None = None) -> None:
            self.name, self.input_size, self.flip = name, (8, 8), flip_if_red_above

        def __call__(self, x: np.ndarray) -> np.ndarray:
            p = x[..., :1].astype(np.float32) / 255.0
            if self.flip is not None and int(x[0, -1, -1, 0]) > self.flip:
                p = 1.0 - p
            return p

    paths = []
    for name, red in (("calm.png", 10), ("wild.png", 250)):
        img = np.zeros((8, 8, 3), np.uint8)
        img[..., 0] = red
        img[:4, :, 0] = 255 - red  # half the image on each side of p = 0.5
        Image.fromarray(img).save(tmp_path / name)
        paths.append(tmp_path / name)
    tol = Tolerance("test", mean_iou=0.9, min_iou=0.9)
    result = run_gate(
        Prob("m", flip_if_red_above=200), Prob("ref"), fmt="onnx", precision="int8",
        images=paths, num_random=0, tolerance=tol,
    )  # fmt: skip
    assert not result.passed
    assert any("min_iou" in f and "worst: wild.png iou 0" in f for f in result.failures)
    assert "wild.png" in result.message()
