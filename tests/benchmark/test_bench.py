"""The interleaved benchmark: statistics, round plan, interleaving, worker errors, the CLI."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sinet_deploy.benchmark.timing import (
    Candidate,
    Row,
    add_ratios,
    artifact_input_size,
    latency_stats,
    plan_rounds,
    round_order,
    run_benchmark,
)
from sinet_deploy.core.errors import ArtifactError, SinetDeployError, UserInputError
from tests.conftest import PEERS, need

FAKES = str(Path(__file__).parents[1] / "fake_sessions.py")


def tiny_onnx(path: Path, size: int = 32, manifest: bool = True) -> Path:
    """A real ONNX model with the artifact contract (uint8 image → [1,H,W,1] 'probability' =
    channel mean / 255), plus a manifest saying onnx/fp32. Not SINet: it fails any gate."""
    import onnx
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceMean", ["f"], ["m"], axes=[3], keepdims=1),
        helper.make_node("Div", ["m", "k"], ["foreground"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, [1, size, size, 3])],
        [helper.make_tensor_value_info("foreground", TensorProto.FLOAT, [1, size, size, 1])],
        [helper.make_tensor("k", TensorProto.FLOAT, [], [255.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    if manifest:
        from sinet_deploy.core.manifest import write_manifest

        write_manifest(
            path,
            {
                "format": "onnx",
                "precision": "fp32",
                "input_size": [size, size],
                "options": {"io": "image"},
                "inputs": [
                    {
                        "name": "image",
                        "shape": [1, size, size, 3],
                        "dtype": "uint8",
                        "layout": "nhwc",
                    }
                ],
                "outputs": [
                    {
                        "name": "foreground",
                        "shape": [1, size, size, 1],
                        "dtype": "float32",
                        "layout": "nhwc",
                    }
                ],
            },
        )
    return path


# --- statistics and plans ------------------------------------------------------------------


def test_latency_stats_match_numpy_definitions() -> None:
    s = latency_stats([float(v) for v in range(1, 11)])
    assert s["median_ms"] == 5.5
    assert s["p10_ms"] == pytest.approx(1.9)
    assert s["p90_ms"] == pytest.approx(9.1)
    assert s["p99_ms"] == pytest.approx(9.91)
    assert s["mean_ms"] == 5.5 and s["min_ms"] == 1.0
    assert s["fps"] == pytest.approx(1000 / 5.5)
    with pytest.raises(ValueError):
        latency_stats([])


@pytest.mark.parametrize("runs", [1, 4, 7, 50, 53])
def test_plan_rounds_sums_to_runs_and_is_balanced(runs: int) -> None:
    plan = plan_rounds(runs)
    assert sum(plan) == runs
    assert max(plan) - min(plan) <= 1
    assert plan_rounds(10, rounds=3) == [4, 3, 3]


def test_plan_rounds_rejects_zero_runs() -> None:
    with pytest.raises(UserInputError):
        plan_rounds(0)


def test_round_order_rotates_every_candidate_through_every_position() -> None:
    n = 3
    orders = [round_order(n, r) for r in range(n)]
    assert orders[0] == [0, 1, 2] and orders[1] == [1, 2, 0]
    for pos in range(n):
        assert sorted(o[pos] for o in orders) == list(range(n))


def test_ratios_are_per_thread_count_and_name_their_baselines() -> None:
    def row(name: str, kind: str, threads: int, median: float, role: str = "sinet") -> Row:
        return Row(
            name=name,
            runtime="x",
            kind=kind,
            role=role,
            threads=threads,
            provider="cpu",
            median_ms=median,
        )

    rows = [
        row("torch", "torch", 1, 6.0, "reference"),
        row("a", "artifact", 1, 3.0),
        row("b", "artifact", 1, 2.0),
        row("peer", "peer", 1, 1.0, "peer"),
        row("torch", "torch", 2, 4.0, "reference"),
        row("a", "artifact", 2, 1.0),
    ]
    add_ratios(rows)
    assert rows[1].speedup_vs_torch == 2.0 and rows[2].speedup_vs_torch == 3.0
    assert rows[1].time_vs_fastest_sinet == 1.5 and rows[2].time_vs_fastest_sinet == 1.0
    assert rows[3].time_vs_fastest_sinet == 0.5  # the peer is compared, never the baseline
    assert rows[5].speedup_vs_torch == 4.0 and rows[5].time_vs_fastest_sinet == 1.0


def test_artifact_input_size_from_manifest_then_name(tmp_path: Path) -> None:
    p = tiny_onnx(tmp_path / "model.onnx", size=64)
    assert artifact_input_size(p) == (64, 64)
    assert artifact_input_size(tmp_path / "sinet_256x320_fp32.tflite") == (256, 320)
    assert artifact_input_size(tmp_path / "other.tflite") == (224, 224)


# --- the harness with fake sessions in real worker processes --------------------------------


def test_workers_run_interleaved_in_rotated_rounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "calls.log"
    monkeypatch.setenv("SINET_TEST_CALL_LOG", str(log))
    cands = [
        Candidate("factory", path=FAKES, factory="session_a", label="A"),
        Candidate("factory", path=FAKES, factory="session_b", label="B"),
        Candidate("torch-cuda-graph", skip="no GPU in this test"),
    ]
    calls: list[tuple[str, int, int]] = []
    res = run_benchmark(
        cands,
        runs=4,
        warmup=1,
        rounds=2,
        progress=lambda d, done, total: calls.append((d, done, total)),
    )
    # load (one call each), warm-up, then round 0 in order A,B and round 1 rotated to B,A.
    # (each timed chunk is preceded by one untimed re-warm call)
    assert log.read_text().split() == list("ABABAAABBBBBBAAA")
    assert res.order == [["A", "B"], ["B", "A"]]
    a, b, skipped = res.rows
    for r in (a, b):
        assert len(r.latencies_ms) == 4 and r.runs == 4 and r.rounds == 2
        assert r.p10_ms <= r.median_ms <= r.p90_ms <= r.p99_ms  # type: ignore[operator]
        assert r.fps == pytest.approx(1000 / r.median_ms)  # type: ignore[operator]
        assert r.init_ms and r.init_ms > 0 and r.peak_rss_mb and r.peak_rss_mb > 0
        assert r.format == "onnx" and r.runtime == "fake"
        assert r.cpu_median_ms and r.cpu_median_ms > 0 and r.busy_factor is not None
    assert min(a.time_vs_fastest_sinet, b.time_vs_fastest_sinet) == 1.0  # type: ignore[type-var]
    assert skipped.skipped == "no GPU in this test" and not skipped.latencies_ms
    assert calls[-1][1] == calls[-1][2] == 2 * (4 + 1)  # progress reached its total
    assert "latencies_ms" not in res.to_dict(with_latencies=False)["results"][0]
    load = res.to_dict()["machine_load"]
    assert "loadavg_1min_start" in load
    if Path("/proc/stat").exists():
        assert load["other_processes_cores"] >= 0 and load["steal_cores"] >= 0


def test_worker_load_error_keeps_its_type_and_message() -> None:
    with pytest.raises(ArtifactError, match="fake.tflite is truncated") as info:
        run_benchmark([Candidate("factory", path=FAKES, factory="broken_artifact")], runs=1)
    assert info.value.exit_code == 2 and info.value.hint == "re-export it"
    with pytest.raises(SinetDeployError, match="ValueError: something inside") as info2:
        run_benchmark([Candidate("factory", path=FAKES, factory="crashing")], runs=1)
    assert info2.value.exit_code == 1


def test_bad_arguments_are_user_errors() -> None:
    with pytest.raises(UserInputError):
        run_benchmark([], runs=5)
    with pytest.raises(UserInputError):
        run_benchmark([Candidate("factory", path=FAKES, factory="session_a")], runs=3, warmup=-1)


# --- the CLI --------------------------------------------------------------------------------


def test_bench_cli_json_rows_for_a_real_onnx_model(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = tiny_onnx(tmp_path / "tiny.onnx")
    peer = tiny_onnx(tmp_path / "peer.onnx", size=64, manifest=False)
    res = cli(
        "bench",
        model,
        "--peer",
        peer,
        "--no-torch",
        "--runs",
        "6",
        "--warmup",
        "1",
        "--threads",
        "1,2",
        "--json",
        "--report",
        tmp_path / "rep",
    )
    assert res.code == 0, res.err
    data = res.json()
    assert data["machine"]["cpu_model"] and data["machine"]["libraries"]["onnxruntime"]
    measured = [r for r in data["results"] if not r["skipped"]]
    assert [(r["name"], r["threads"]) for r in measured] == [
        ("tiny.onnx", 1),
        ("peer.onnx", 1),
        ("tiny.onnx", 2),
        ("peer.onnx", 2),
    ]
    for r in measured:
        assert {"name", "runtime", "threads", "median_ms", "p90_ms", "fps"} <= r.keys()
        assert r["runtime"] == "onnxruntime" and r["median_ms"] > 0
        assert r["file_size_bytes"] == (tmp_path / r["name"]).stat().st_size
    assert next(r for r in measured if r["name"] == "peer.onnx")["role"] == "peer"
    # the CUDA rows are recorded as skipped on a machine without an NVIDIA GPU
    skipped = [r for r in data["results"] if r["skipped"]]
    if skipped:
        assert {r["kind"] for r in skipped} >= {"torch-cuda", "torch-cuda-graph"}
    for name in ("report.html", "report.md", "results.json"):
        assert (tmp_path / "rep" / name).is_file()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["missing.tflite"], "does not exist"),
        (["--threads", "0", "{model}"], "--threads"),
        (["--threads", "one", "{model}"], "--threads"),
        (["{model}", "--runs", "0"], "--runs"),
        (["{text}"], "not a .tflite"),
        ([], "nothing to benchmark"),
    ],
)
def test_bench_cli_user_errors_are_one_line_exit_2(
    cli,
    tmp_path: Path,
    args: list[str],  # type: ignore[no-untyped-def]
    needle: str,
) -> None:
    model = tiny_onnx(tmp_path / "tiny.onnx")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    args = [a.format(model=model, text=text) for a in args]
    res = cli("bench", *args, "--no-torch")
    assert res.code == 2, res.err
    assert needle in res.err and "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1


def test_bench_cli_corrupt_model_is_exit_2(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\x08\x07not really onnx" * 10)
    res = cli("bench", bad, "--no-torch", "--no-cuda", "--runs", "1")
    assert res.code == 2, res.err
    assert "broken.onnx" in res.err and "Traceback" not in res.err


# --- real artifacts (slow) --------------------------------------------------------------------


@pytest.mark.slow
def test_bench_real_artifacts_with_the_mediapipe_peer(
    cli,
    exported_artifacts,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    peer = need(PEERS / "selfie_segmentation.tflite")
    res = cli(
        "bench",
        exported_artifacts["tflite/fp32"],
        exported_artifacts["onnx/fp32"],
        "--peer",
        peer,
        "--threads",
        "1",
        "--runs",
        "10",
        "--warmup",
        "2",
        "--json",
        "--report",
        tmp_path / "rep",
    )
    assert res.code == 0, res.err
    rows = {r["name"]: r for r in res.json()["results"] if not r["skipped"]}
    assert set(rows) == {
        "pytorch-eager",
        "sinet_224x224_fp32.tflite",
        "sinet_224x224_fp32.onnx",
        "selfie_segmentation.tflite",
    }
    assert rows["selfie_segmentation.tflite"]["input_size"] == [256, 256]
    assert rows["sinet_224x224_fp32.tflite"]["runtime"] == "litert"
    assert rows["pytorch-eager"]["speedup_vs_torch"] == 1.0
    assert all(math.isfinite(r["median_ms"]) and r["peak_rss_mb"] > 0 for r in rows.values())
    html = (tmp_path / "rep" / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 1
    assert np.isclose(
        rows["sinet_224x224_fp32.tflite"]["fps"],
        1000 / rows["sinet_224x224_fp32.tflite"]["median_ms"],
    )


def test_cuda_rows_are_listed_and_skipped_with_a_reason_without_a_gpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sinet_deploy.benchmark import timing

    arts = ["/x/sinet_224x224_fp32.onnx", "/x/sinet_224x224_fp32.tflite"]
    monkeypatch.setattr(timing, "cuda_unavailable_reason", lambda: "no GPU here")
    rows = timing.cuda_candidates(arts, weights="official", input_size=(224, 224))
    assert [(c.kind, c.provider) for c in rows] == [
        ("torch-cuda", "cpu"),
        ("torch-cuda-graph", "cpu"),
        ("artifact", "cuda"),
    ]
    assert {c.skip for c in rows} == {"no GPU here"}
    monkeypatch.setattr(timing, "cuda_unavailable_reason", lambda: None)
    assert all(
        c.skip is None
        for c in timing.cuda_candidates(arts, weights="official", input_size=(224, 224))
    )


def test_cuda_graph_row_runs_or_says_why_not() -> None:
    """In a worker: skipped with torch's own reason on a CPU machine, measured on a GPU one."""
    (row,) = run_benchmark(
        [Candidate("torch-cuda-graph", weights="random", input_size=(64, 64))], runs=3, warmup=1
    ).rows
    if row.skipped:
        assert "CUDA" in row.skipped and not row.latencies_ms
    else:
        assert row.runtime == "torch-cuda-graph" and row.median_ms and row.median_ms > 0


def test_paired_ratio_cancels_a_slow_spell_that_hits_both_rows() -> None:
    from sinet_deploy.benchmark.timing import paired_ratio, ratio_matrix

    def row(name: str, lat: list[float]) -> Row:
        r = Row(
            name=name,
            runtime="x",
            kind="artifact",
            role="sinet",
            threads=1,
            provider="cpu",
            latencies_ms=lat,
        )
        r.finish()
        return r

    plan = [2, 2, 2]
    # B is 2x A in every round; rounds 2 and 3 are 3x slower for both (the machine got busy).
    a = row("a", [1, 1, 3, 3, 3, 3])
    b = row("b", [2, 2, 6, 6, 6, 6])
    assert paired_ratio(b, a, plan) == pytest.approx(2.0)
    # A noisy spell that hits only some rounds of one row moves the plain medians more:
    c = row("c", [2, 2, 2, 2, 6, 6])
    d = row("d", [1, 1, 3, 3, 3, 3])
    assert paired_ratio(c, d, plan) == pytest.approx((2 * 2 / 3 * 2) ** (1 / 3))
    assert paired_ratio(c, d, None) == pytest.approx(c.median_ms / d.median_ms)  # type: ignore[operator]
    m = ratio_matrix([a, b], plan)
    assert m["b @ 1 thread"]["a @ 1 thread"] == pytest.approx(2.0)
    assert m["a @ 1 thread"]["b @ 1 thread"] == pytest.approx(0.5)
