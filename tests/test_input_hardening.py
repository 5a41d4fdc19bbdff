"""Bad checkpoints, configs and predict inputs: one line, exit 2, nothing written.

Non-finite weights are refused when the checkpoint is read; a safetensors file is recognised by
its header whatever its name; non-finite outputs never become a mask; two inputs that would
write the same mask are refused before anything is written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.conftest import PEERS, need, one_line


@pytest.fixture(scope="module")
def state() -> dict[str, Any]:
    from sinet_deploy.models import build_model

    return {k: v.clone().contiguous() for k, v in build_model().state_dict().items()}


def _image(path: Path, value: int = 120) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((48, 64, 3), value, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
@pytest.mark.parametrize("fmt", ["pth", "safetensors"])
def test_non_finite_weights_refused_naming_the_tensor(
    cli: Any, tmp_path: Path, state: dict[str, Any], bad: float, fmt: str
) -> None:
    import torch

    name = "encoder.level2_0.conv.weight"
    poisoned = {k: v.clone() for k, v in state.items()}
    key = name if name in poisoned else next(k for k in poisoned if k.endswith("conv.weight"))
    poisoned[key].view(-1)[3] = bad
    path = tmp_path / f"poisoned.{fmt}"
    if fmt == "pth":
        torch.save(poisoned, path)
    else:
        from safetensors.torch import save_file

        save_file(poisoned, str(path))
    line = one_line(cli("info", "--weights", path), 2, key, "non-finite")
    assert ("1 NaN" in line) == (bad != bad)
    res = cli("export", "--weights", path, "--formats", "onnx", "--out", tmp_path / "o")
    one_line(res, 2, key)
    assert not (tmp_path / "o" / "onnx").exists()


def test_safetensors_named_pth_is_loaded(cli: Any, tmp_path: Path, state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "weights.pth"  # safetensors inside, .pth outside
    save_file(state, str(path))
    res = cli("info", "--weights", path, "--json")
    assert res.code == 0, res.err
    assert res.json()["num_parameters"] == 86910  # type: ignore[index]


def test_truncated_safetensors(cli: Any, tmp_path: Path, state: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file(state, str(path))
    path.write_bytes(path.read_bytes()[:-1000])
    one_line(cli("info", "--weights", path), 2, "truncated or corrupt")


def test_text_pth_is_not_a_checkpoint(cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "weights.pth"
    path.write_text("<html><body>404 Not Found</body></html>\n")
    one_line(cli("info", "--weights", path), 2, "not a PyTorch checkpoint", "text file")


def test_wrong_shape_hint_never_repeats_the_failed_config(
    cli: Any, tmp_path: Path, state: dict[str, Any]
) -> None:
    import torch

    three = {k: v.clone() for k, v in state.items()}
    w = three["classifier.1.weight"]
    three["classifier.1.weight"] = torch.zeros(3, *w.shape[1:])
    path = tmp_path / "three.pth"
    torch.save(three, path)
    # the default config fails; classes=3 is a fair suggestion
    one_line(cli("info", "--weights", path), 2, "--config classes=3")
    # classes=3 fails too (another tensor still has 2 classes): do not suggest it again
    line = one_line(cli("info", "--weights", path, "--config", "classes=3"), 2, "does not fit")
    assert "pass --config" not in line and "no classes/p/q/chnn setting fits" in line


@pytest.mark.parametrize(
    ("option", "word"),
    [("classes=banana", "classes='banana'"), ("p=1.5", "p='1.5'"), ("branches=x", "branches")],
)
def test_config_type_errors(cli: Any, option: str, word: str) -> None:
    one_line(cli("info", "--weights", "random", "--config", option), 2, word)


def test_diagnose_custom_op_peer(cli: Any) -> None:
    peer = need(PEERS / "selfie_segmentation.tflite")
    one_line(cli("diagnose", peer), 2, "selfie_segmentation.tflite", "custom op")


def test_predict_same_stem_gets_distinct_names(cli: Any, tmp_path: Path) -> None:
    a = _image(tmp_path / "a" / "me.png", 50)
    b = _image(tmp_path / "b" / "me.jpg", 200)
    out = tmp_path / "o"
    res = cli("predict", a, b, "--weights", "random", "--out", out, "--json")
    assert res.code == 0, res.err
    assert sorted(p.name for p in out.glob("*_mask.png")) == ["a_me_mask.png", "b_me_mask.png"]
    # the same file twice is one image, not a conflict
    out2 = tmp_path / "o2"
    res = cli("predict", a, tmp_path / "a" / ".." / "a" / "me.png", "--weights", "random",
              "--out", out2, "--json")  # fmt: skip
    assert res.code == 0, res.err
    assert sorted(p.name for p in out2.iterdir()) == ["me_mask.png", "me_overlay.jpg"]


def test_predict_non_finite_output_writes_no_mask(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sinet_deploy import predictor as predict_mod

    def nan_predictor(**_: Any) -> predict_mod.Predictor:
        return predict_mod.Predictor(
            lambda x: np.full((1, 64, 64, 1), np.nan, np.float32), (64, 64), "broken"
        )

    monkeypatch.setattr(predict_mod, "make_predictor", nan_predictor)
    good = _image(tmp_path / "good.png")
    out = tmp_path / "o"
    one_line(cli("predict", good, "--out", out), 2, "non-finite", "no mask written")
    assert not out.exists()


@pytest.mark.parametrize(
    "extra",
    [("--input-size", "320x320"), ("--weights", "random"), ("--config", "classes=1")],
)
def test_predict_model_with_ignored_options(
    cli: Any, tmp_path: Path, extra: tuple[str, str]
) -> None:
    img = _image(tmp_path / "x.png")
    res = cli("predict", img, "--model", tmp_path / "m.onnx", *extra, "--out", tmp_path / "o")
    one_line(res, 2, extra[0], "--model")
    assert not (tmp_path / "o").exists()
