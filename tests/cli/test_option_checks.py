"""Options out of range are refused in one line (exit 2) before any work or any folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sinet_deploy.core.machine import MAX_THREADS_PER_CORE, usable_cores
from tests.conftest import PEERS, need, one_line


@pytest.fixture
def dummy_onnx(tmp_path: Path) -> Path:
    """Passes the path checks; the option errors must come before anything loads it."""
    path = tmp_path / "m.onnx"
    path.write_bytes(b"not loaded")
    return path


def test_bench_threads_above_4x_cores(cli: Any, tmp_path: Path, dummy_onnx: Path) -> None:
    limit = MAX_THREADS_PER_CORE * usable_cores()
    res = cli("bench", dummy_onnx, "--threads", f"1,{limit + 1}", "--report", tmp_path / "r")
    one_line(res, 2, "--threads", f"between 1 and {limit}")
    assert not (tmp_path / "r").exists()
    one_line(cli("bench", dummy_onnx, "--threads", "0"), 2, "--threads")


@pytest.mark.parametrize("value", ["0", "-1", "100000"])
def test_parity_threads_refused_like_bench(cli: Any, dummy_onnx: Path, value: str) -> None:
    one_line(cli("parity", dummy_onnx, "--threads", value), 2, "--threads", "between 1 and")


@pytest.mark.parametrize("command", ["parity", "bench"])
def test_report_errors_name_report(
    cli: Any, tmp_path: Path, dummy_onnx: Path, command: str
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("a file")
    line = one_line(cli(command, dummy_onnx, "--report", taken), 2, "--report", "is a file")
    assert "--out" not in line


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--coreml-images", "-1"), ("--coreml-images",)),
        (("--runs", "0"), ("--runs", "at least 1")),
        (("--warmup", "-1"), ("--warmup",)),
        (("--formats", "keras"), ("--formats", "keras")),
        (("--precisions", "int4"), ("--precisions", "int4")),
        (("--threads", "100000"), ("--threads",)),
    ],
)
def test_pipeline_refuses_before_any_folder(
    cli: Any, tmp_path: Path, args: tuple[str, str], words: tuple[str, ...]
) -> None:
    out = tmp_path / "p"
    res = cli("pipeline", "--weights", "random", "--out", out, *args)
    one_line(res, 2, *words)
    assert not (out / "artifacts").exists() and not (out / "report").exists()


def test_export_bogus_format_leaves_no_format_folder(cli: Any, tmp_path: Path) -> None:
    res = cli("export", "--weights", "random", "--formats", "onnx,keras", "--out", tmp_path)
    one_line(res, 2, "keras")
    assert list(tmp_path.iterdir()) == []


def test_profile_errors_name_the_file(cli: Any, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"TFL3" + b"\x00garbage" * 20)
    one_line(cli("profile", junk), 2, "junk.tflite")


def test_profile_custom_op_peerone_line(cli: Any) -> None:
    peer = need(PEERS / "selfie_segmentation.tflite")
    one_line(cli("profile", peer), 2, "selfie_segmentation.tflite", "custom op")


def test_plain_progress_prints_repeated_steps_at_most_every_interval(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A CI log gets one line per step, but a benchmark's rounds only every interval."""
    from sinet_deploy.cli.progress import plain_progress

    now = [0.0]
    update = plain_progress(clock=lambda: now[0], interval_s=10.0)
    steps = [("loading a", 0.0), ("loading b", 0.5)]
    steps += [(f"round {r}/100 {m}", 1.0 + 0.2 * r) for r in range(1, 101) for m in "ab"]
    steps += [("parity x.jpg", 30.0), ("parity y.jpg", 30.1), ("parity done", 30.2)]
    for description, at in steps:
        now[0] = at
        update(description, 0, 10)
    lines = [ln.split("] ", 1)[1] for ln in capsys.readouterr().err.splitlines()]
    # every non-repeated step; the first round, then one about every 10 s; parity's first
    # image and its end
    assert lines == [
        "loading a",
        "loading b",
        "round 1/100 a",
        "round 51/100 a",
        "parity x.jpg",
        "parity done",
    ]
