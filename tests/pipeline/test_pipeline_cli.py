"""``sinet-deploy pipeline``: export → parity → bench → summary + report.

The export stage is exercised by the export tests (and, in slow tests, by the session-wide
``exported_artifacts`` fixture); here it is replaced by a stand-in that returns ready artifacts,
so these tests check the orchestration, the summary, the report and the exit code.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from sinet_deploy.pipeline import export_jobs
from sinet_deploy.pipeline import parity as stage
from sinet_deploy.pipeline import run as end_to_end
from sinet_deploy.pipeline.records import ExportJob, ExportRow, JobResult, ParitySpec
from tests.benchmark.test_bench import tiny_onnx
from tests.conftest import PEERS, need


def _fake_jobs(artifacts: list[Path], failed: tuple[str, str] | None = None) -> Any:
    """A stand-in for ``export_jobs.run_jobs``: "exports" ready artifacts (copies them), then
    runs the real parity step of a job on them."""

    def run_jobs(jobs: list[ExportJob], **kw: Any) -> list[JobResult]:
        job = jobs[0]
        out_dir = job.out_dir
        published, rows = [], []
        for a in artifacts:
            dest = out_dir / a.name
            shutil.copy(a, dest)
            shutil.copy(a.with_suffix(".json"), dest.with_suffix(".json"))
            published.append(dest)
            rows.append(ExportRow("onnx", "fp32", dest, True, 0.1, None, None, 0))
        if failed:
            rows.append(
                ExportRow(
                    failed[0], failed[1], None, False, 0.1, "gate: min_iou 0.9 < 0.995", "gate", 3
                )
            )
        assert job.parity is not None
        parity = stage.pipeline_parity(published, job.parity, weights=job.weights).to_dict()
        return [JobResult(tuple(rows), parity)]

    return run_jobs


def test_pipeline_runs_every_stage_and_exits_3_on_a_failed_gate(
    cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    art = tiny_onnx(tmp_path / "tiny.onnx")
    monkeypatch.setattr(export_jobs, "run_jobs", _fake_jobs([art], ("tflite", "int8")))
    out = tmp_path / "run"
    res = cli(
        "pipeline",
        "--out",
        out,
        "--weights",
        "random",
        "--input-size",
        "32x32",
        "--runs",
        "3",
        "--warmup",
        "1",
        "--json",
    )
    assert res.code == 3, res.err
    data = res.json()
    assert set(data["stages_s"]) == {"export + parity", "bench", "report"}
    assert data["wall_s"] > 0
    names = {r["name"] for r in data["summary"]}
    # The failed export is in the summary too, not only in the export section.
    assert names == {"pytorch-eager", "tiny.onnx", "tflite/int8"}
    failed = next(r for r in data["summary"] if r["name"] == "tflite/int8")
    assert failed["passed"] is False and failed["failure"] == "export gate"
    tiny = next(r for r in data["summary"] if r["name"] == "tiny.onnx")
    assert tiny["passed"] is False and tiny["median_ms"] > 0  # not SINet: fails the matrix
    assert "tflite/int8" in res.err and "tiny.onnx" in res.err
    for name in ("report.html", "report.md", "results.json"):
        assert (out / "report" / name).is_file()
    saved = json.loads((out / "report" / "results.json").read_text())
    assert saved["pipeline"]["exports"][-1]["failure"] == "gate"
    assert any(r["name"] == "tflite/int8" for r in saved["summary"])
    html = (out / "report" / "report.html").read_text()
    assert "Not shipped: tiny.onnx, tflite/int8" in html


def test_pipeline_summary_table_is_one_screen(
    cli,
    tmp_path: Path,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    art = tiny_onnx(tmp_path / "tiny.onnx")
    monkeypatch.setattr(export_jobs, "run_jobs", _fake_jobs([art]))
    res = cli(
        "pipeline",
        "--out",
        tmp_path / "run",
        "--weights",
        "random",
        "--input-size",
        "32x32",
        "--runs",
        "2",
        "--warmup",
        "0",
    )
    assert res.code == 3  # the tiny model is not SINet
    lines = res.out.strip().splitlines()
    assert len(lines) <= 25
    table = "\n".join(lines)
    for col in ("model", "size", "median ms", "FPS", "mean IoU", "gate"):
        assert col in table
    assert "tiny.onnx" in table and "FAIL" in table and "wall time" in table


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--peer", "{missing}"], "does not exist"),
        (["--threads", "0"], "--threads"),
        (["--images", "{missing}"], "not a folder"),
        (["--calib", "{missing}"], "not a folder"),
        (["--input-size", "100x100"], "multiple of 32"),
        (["--out", "{file}"], "is a file"),
        (["--formats", "nosuchformat"], "unknown --formats value(s): nosuchformat"),
    ],
)
def test_pipeline_user_errors_exit_2(
    cli,
    tmp_path: Path,
    args: list[str],
    needle: str,  # type: ignore[no-untyped-def]
) -> None:
    f = tmp_path / "a_file"
    f.write_text("x")
    args = [a.format(missing=tmp_path / "nope.tflite", file=f) for a in args]
    args = args if "--out" in args else ["--out", str(tmp_path / "o"), *args]
    res = cli("pipeline", "--weights", "random", *args)
    assert res.code == 2, res.err
    assert needle in res.err and "Traceback" not in res.err


@pytest.mark.slow
def test_pipeline_on_real_artifacts_with_the_mediapipe_peer(  # type: ignore[no-untyped-def]
    cli, exported_artifacts, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peer = need(PEERS / "selfie_segmentation.tflite")
    arts = [exported_artifacts[k] for k in ("onnx/fp32", "tflite/fp32", "tflite/fp16")]
    monkeypatch.setattr(export_jobs, "run_jobs", _fake_jobs(arts))
    res = cli(
        "pipeline",
        "--out",
        tmp_path / "run",
        "--peer",
        peer,
        "--runs",
        "8",
        "--warmup",
        "2",
        "--json",
    )
    assert res.code == 0, res.err
    data = res.json()
    rows = {r["name"]: r for r in data["summary"]}
    assert set(rows) == {
        "pytorch-eager",
        "sinet_224x224_fp32.onnx",
        "sinet_224x224_fp32.tflite",
        "sinet_224x224_fp16.tflite",
        "selfie_segmentation.tflite",
    }
    for name in ("sinet_224x224_fp32.onnx", "sinet_224x224_fp32.tflite"):
        assert rows[name]["passed"] is True and rows[name]["mean_iou"] == pytest.approx(1.0)
        assert rows[name]["size_bytes"] > 100_000 and rows[name]["fps"] > 0
    assert rows["selfie_segmentation.tflite"]["passed"] is None
    html = (tmp_path / "run" / "report" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 2  # latency + IoU plots (+ overlays)


def test_parallel_export_workers_report_a_fatal_error_once(tmp_path: Path) -> None:
    """Each format exports in its own process; a checkpoint that cannot be read stops them
    all with the workers' own error class (exit 2), not one error row per format."""
    from sinet_deploy.core.errors import CheckpointError, WeightsUnavailableError

    bad = tmp_path / "not_a_checkpoint.pth"
    bad.write_bytes(b"garbage")
    jobs = [
        ExportJob(str(bad), fmt, ("fp32",), tmp_path / "out", (64, 64))
        for fmt in ("onnx", "tflite")
    ]
    (tmp_path / "out").mkdir()
    with pytest.raises((CheckpointError, WeightsUnavailableError)) as info:
        export_jobs.run_jobs(jobs, parallel=True)
    assert info.value.exit_code == 2 and "Traceback" not in str(info.value)
    assert not list((tmp_path / "out").rglob("*.onnx"))  # nothing that looks like an artifact


def test_spread_picks_evenly_spaced_items() -> None:
    items = [Path(f"{i}.jpg") for i in range(10)]
    assert stage.spread(items, 3) == [Path("0.jpg"), Path("4.jpg"), Path("9.jpg")]
    assert stage.spread(items, 0) == items and stage.spread(items, 50) == items
    assert stage.spread(items, 1) == [Path("0.jpg")]


def test_pipeline_parity_gives_slow_evaluators_a_subset_and_keeps_the_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sinet_deploy.runtimes as runtimes
    from sinet_deploy.verify.parity import default_images
    from tests.fake_sessions import ProbSession, brightness

    images = []
    for k in range(3):
        for p in default_images()[0]:
            images.append(tmp_path / f"{k}_{p.name}")
            shutil.copy(p, images[-1])
    images.sort()

    def fake_load(path: Path, threads: int = 1) -> ProbSession:
        s = ProbSession(Path(path).name, brightness)
        if Path(path).suffix == ".mlpackage":
            s.runtime = "coreml-reference"
        return s

    monkeypatch.setattr(runtimes, "load_session", fake_load)
    monkeypatch.setattr(
        runtimes, "torch_reference", lambda w, size, threads=1: ProbSession("ref", brightness, size)
    )
    arts = [tmp_path / "a.onnx", tmp_path / "b.mlpackage", tmp_path / "c.tflite"]
    spec = ParitySpec(tuple(images), "test images", tmp_path / "ov", slow_images=2)
    rep = stage.pipeline_parity(arts, spec, weights="random")
    data = rep.to_dict(per_image=False)
    assert [(r["artifact"], r["images"]) for r in data["results"]] == [
        ("a.onnx", 6),
        ("b.mlpackage", 2),
        ("c.tflite", 6),
    ]
    merged = stage.merge_parity([data], 6, "test images")
    assert merged is not None and "2 of them" in merged["images_source"]
    assert merged["n_images"] == 6 and merged["failed"] == [] and merged["passed"] is True


def test_jobs_follow_converters_and_format_order() -> None:
    from types import SimpleNamespace

    def conv(*a: Any) -> None: ...

    def int8(*a: Any) -> None: ...

    def ml(*a: Any) -> None: ...

    reg = {("tflite", p): SimpleNamespace(fn=conv) for p in ("fp32", "fp16", "int8w")}
    reg[("tflite", "int8")] = SimpleNamespace(fn=int8)
    reg[("coreml", "fp32")] = SimpleNamespace(fn=ml)
    reg[("onnx", "fp32")] = reg[("onnx", "fp16")] = SimpleNamespace(fn=conv)
    reg[("newfmt", "fp32")] = SimpleNamespace(fn=ml)
    jobs = end_to_end.plan_jobs(
        reg, ("onnx", "tflite", "coreml"), ("fp32", "fp16", "int8w", "int8")
    )
    assert jobs == [
        ("onnx", ["fp32", "fp16"]),
        ("tflite", ["fp32", "fp16", "int8w"]),
        ("tflite", ["int8"]),
        ("coreml", ["fp32"]),
        ("newfmt", ["fp32"]),
    ]


@pytest.mark.slow
def test_pipeline_exports_for_real_and_exits_0(  # type: ignore[no-untyped-def]
    cli, official_weights: Path, tmp_path: Path
) -> None:
    """The main job's success path with nothing replaced: real ONNX and TFLite exports (each in
    its own worker process), gated on the packaged portraits plus --images, parity, bench and
    the report."""
    from tests.conftest import CALIB

    calib = sorted(p for p in need(CALIB).iterdir() if p.suffix.lower() in (".jpg", ".png"))
    images = tmp_path / "portraits"
    images.mkdir()
    for p in calib[:3]:
        (images / p.name).symlink_to(p.resolve())
    out = tmp_path / "run"
    res = cli(
        "pipeline",
        "--out",
        out,
        "--formats",
        "onnx,tflite",
        "--precisions",
        "fp32",
        "--images",
        images,
        "--runs",
        "3",
        "--warmup",
        "1",
        "--json",
    )
    assert res.code == 0, res.err
    data = res.json()
    exports = {(e["format"], e["precision"]): e for e in data["exports"]}
    assert set(exports) == {("onnx", "fp32"), ("tflite", "fp32")}
    for e in exports.values():
        art = Path(e["artifact"])
        assert e["passed"] and art.is_file()
        manifest = json.loads(art.with_suffix(".json").read_text())
        # The gate decided on the two packaged portraits plus the three --images.
        names = {r["image"] for r in manifest["parity"]["per_image"]}
        assert names >= {p.name for p in calib[:3]} and len(names) == 5
    assert (out / "report" / "report.html").is_file()
    assert (out / "report" / "results.json").is_file()
