"""Checkpoints: every accepted layout loads; every bad one gets one line, exit 2, no code run."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from sinet_deploy.core.errors import CheckpointError
from sinet_deploy.models import load_model
from sinet_deploy.models.checkpoint import load_state_dict


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    return load_model("random").state_dict()


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "module_prefix"])
def test_accepted_layouts(tmp_path: Path, random_state: dict, wrap: str) -> None:
    obj: object = random_state
    if wrap == "state_dict":
        obj = {"state_dict": random_state, "epoch": 3}
    elif wrap == "model":
        obj = {"model": random_state}
    elif wrap == "module_prefix":
        obj = {f"module.{k}": v for k, v in random_state.items()}
    path = tmp_path / "ckpt.pth"
    torch.save(obj, path)
    model = load_model(path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, random_state[k])


class _RunsCode:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {os.environ['SINET_TEST_MARKER']}",))


def test_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    os.environ["SINET_TEST_MARKER"] = str(marker)
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": _RunsCode()}, path)
    with pytest.raises(CheckpointError, match="would run code"):
        load_state_dict(path)
    assert not marker.exists()


def test_text_file_named_pth(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint|cannot read"):
        load_state_dict(path)


def test_truncated_checkpoint(tmp_path: Path, random_state: dict) -> None:
    path = tmp_path / "full.pth"
    torch.save(random_state, path)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated|corrupt|cannot read"):
        load_state_dict(cut)


def test_truncated_legacy_official_checkpoint(tmp_path: Path, official_weights: Path) -> None:
    cut = tmp_path / "cut.pth"
    cut.write_bytes(official_weights.read_bytes()[:200_000])
    with pytest.raises(CheckpointError):
        load_state_dict(cut)


def test_zero_byte_and_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pth"
    empty.touch()
    with pytest.raises(CheckpointError, match="empty"):
        load_model(empty)
    with pytest.raises(CheckpointError, match="directory"):
        load_model(tmp_path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_model(tmp_path / "missing.pth")


def test_other_shape_says_which_config_fits(tmp_path: Path) -> None:
    path = tmp_path / "lovasz_1class.pth"
    torch.save(load_model("random", classes=1).state_dict(), path)
    with pytest.raises(CheckpointError, match="does not fit") as info:
        load_model(path)
    assert "--config classes=1" in info.value.one_line()
    assert load_model(path, classes=1).config.classes == 1


def test_not_a_sinet_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "resnet.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(CheckpointError, match="not a SINet checkpoint"):
        load_model(path)


def test_non_tensor_entries(tmp_path: Path) -> None:
    path = tmp_path / "odd.pth"
    torch.save({"a": 1}, path)
    with pytest.raises(CheckpointError, match="not a tensor"):
        load_state_dict(path)


def test_cli_bad_checkpoints_one_line_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.pth"
    bad.write_text("hello")
    marker = tmp_path / "pwned"
    os.environ["SINET_TEST_MARKER"] = str(marker)
    evil = tmp_path / "evil.pth"
    torch.save(_RunsCode(), evil)
    for path in (bad, evil, tmp_path / "missing.pth", tmp_path):
        r = cli("info", "--weights", str(path))
        assert r.code == 2, r.err
        assert "Traceback" not in r.err and r.err.count("\n") == 1, r.err
        assert r.err.startswith("error:")
    assert not marker.exists()
