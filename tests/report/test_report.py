"""Reports: results.json schema, report.md tables, a self-contained report.html with plots."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sinet_deploy.core.machine import machine_info
from sinet_deploy.report.notes import busy_warning
from sinet_deploy.report.results import SCHEMA_VERSION
from sinet_deploy.report.summary import recommendation, summary_rows
from sinet_deploy.report.tables import summary_table
from sinet_deploy.report.write import write_report


def _bench(tmp_path: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)

    def row(name: str, kind: str, role: str, median: float, **kw: Any) -> dict[str, Any]:
        lat = list(median + rng.normal(0, median * 0.05, 20))
        return {
            "name": name,
            "runtime": kw.pop("runtime", "litert"),
            "kind": kind,
            "role": role,
            "threads": 1,
            "provider": "cpu",
            "path": str(tmp_path / name) if kind != "torch" else None,
            "file_size_bytes": 400_000,
            "init_ms": 120.0,
            "peak_rss_mb": 60.0,
            "median_ms": median,
            "p10_ms": median * 0.9,
            "p90_ms": median * 1.1,
            "p99_ms": median * 1.3,
            "fps": 1000 / median,
            "latencies_ms": lat,
            "skipped": None,
            "note": None,
            **kw,
        }

    rows = [
        row("pytorch-eager", "torch", "reference", 6.7, runtime="torch", speedup_vs_torch=1.0),
        row("sinet_224x224_fp32.tflite", "artifact", "sinet", 2.6, speedup_vs_torch=2.58),
        row("sinet_224x224_fp16.tflite", "artifact", "sinet", 2.5, speedup_vs_torch=2.68),
        row("selfie.tflite", "peer", "peer", 2.1, speedup_vs_torch=3.19),
        {
            "name": "pytorch-cuda-graph",
            "runtime": "torch-cuda-graph",
            "kind": "torch-cuda-graph",
            "role": "sinet",
            "threads": 1,
            "provider": "cpu",
            "skipped": "no NVIDIA GPU",
            "latencies_ms": [],
        },
    ]
    return {
        "runs": 20,
        "warmup": 2,
        "rounds": 4,
        "wall_s": 3.0,
        "ratio_columns": {},
        "results": rows,
    }


def _parity(tmp_path: Path) -> dict[str, Any]:
    overlay_dir = tmp_path / "overlays"
    overlay_dir.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(overlay_dir / "x.png")

    def row(name: str, ious: list[float], passed: bool) -> dict[str, Any]:
        return {
            "artifact": name,
            "path": str(tmp_path / name),
            "runtime": "litert",
            "format": "tflite",
            "precision": "fp16" if "fp16" in name else "fp32",
            "against": "PyTorch",
            "images": len(ious),
            "mean_iou": float(np.mean(ious)),
            "min_iou": min(ious),
            "pixel_agreement": 0.999,
            "max_abs_prob_diff": 1e-5,
            "mean_abs_prob_diff": 1e-7,
            "sqnr_db": None,
            "worst_image": "a.jpg",
            "passed": passed,
            "failures": [] if passed else ["min_iou 0.9 < 0.995"],
            "per_image": [{"image": f"{i}.jpg", "iou": v} for i, v in enumerate(ious)],
            "overlays": [
                {
                    "file": "overlays/x.png",
                    "image": "a.jpg",
                    "iou": min(ious),
                    "caption": f"{name} worst",
                }
            ]
            if not passed
            else [],
        }

    return {
        "reference": "PyTorch fp32",
        "images_source": "test",
        "n_images": 3,
        "passed": False,
        "failed": ["sinet_224x224_fp16.tflite"],
        "results": [
            row("sinet_224x224_fp32.tflite", [1.0, 1.0, 1.0], True),
            row("sinet_224x224_fp16.tflite", [0.999, 0.9, 0.998], False),
        ],
        "pairs": [],
    }


def test_write_report_files_schema_and_embedded_images(tmp_path: Path) -> None:
    bench, parity = _bench(tmp_path), _parity(tmp_path)
    paths = write_report(
        tmp_path, machine=machine_info(), bench=bench, parity=parity, command="sinet-deploy bench x"
    )
    assert {p.name for p in paths.values()} == {"results.json", "report.md", "report.html"}
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files

    def no_constants(name: str) -> None:
        raise AssertionError(f"non-JSON constant {name}")

    data = json.loads(paths["json"].read_text(), parse_constant=no_constants)
    assert data["schema_version"] == SCHEMA_VERSION
    assert {
        "generated_at",
        "command",
        "machine",
        "summary",
        "bench",
        "parity",
        "pipeline",
    } <= data.keys()
    m = data["machine"]
    assert m["cpu_model"] and m["logical_cores"] >= 1 and m["python"]
    assert {"torch", "onnxruntime", "ai-edge-litert", "tensorflow", "coremltools"} <= set(
        m["libraries"]
    )
    assert len(data["bench"]["results"][1]["latencies_ms"]) == 20  # raw data kept for replots

    html = paths["html"].read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) == 3  # latency plot, IoU plot, one overlay
    assert "http://" not in html and "https://" not in html  # self-contained
    assert "FAIL" in html and "no NVIDIA GPU" in html and "sinet_224x224_fp16.tflite" in html

    md = paths["markdown"].read_text()
    assert "| model |" in md and "![sinet_224x224_fp16.tflite worst](overlays/x.png)" in md
    assert "skipped — no NVIDIA GPU: pytorch-cuda-graph" in md
    assert oct(paths["html"].stat().st_mode & 0o777) == "0o644"


def test_report_without_matplotlib_still_writes_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    paths = write_report(tmp_path, machine={"cpu_model": "x"}, bench=_bench(tmp_path))
    html = paths["html"].read_text()
    assert "data:image/png" not in html and "matplotlib is not installed" in html


def test_summary_joins_bench_and_parity_by_path(tmp_path: Path) -> None:
    rows = summary_rows(_bench(tmp_path), _parity(tmp_path))
    by = {r["name"]: r for r in rows}
    assert by["sinet_224x224_fp32.tflite"]["mean_iou"] == 1.0
    assert by["sinet_224x224_fp16.tflite"]["passed"] is False
    assert by["pytorch-eager"]["passed"] is None and by["selfie.tflite"]["mean_iou"] is None
    assert "pytorch-cuda-graph" not in by  # skipped rows are not in the summary
    # the fp16 artifact is faster but failed its gate: the recommendation is the fp32 one
    rec = recommendation(rows)
    assert rec is not None and rec.startswith("Ship sinet_224x224_fp32.tflite") and "2.6×" in rec


def test_recommendation_breaks_latency_ties_by_accuracy() -> None:
    def row(name: str, ms: float, iou: float) -> dict[str, Any]:
        return {
            "name": name,
            "median_ms": ms,
            "mean_iou": iou,
            "passed": True,
            "threads": 1,
            "speedup_vs_torch": 6.7 / ms,
        }

    rows = [row("fp16", 2.50, 0.9996), row("fp32", 2.55, 1.0), row("int8", 1.5, 0.97)]
    assert recommendation(rows).startswith("Ship int8")  # type: ignore[union-attr]
    rows[2]["median_ms"] = 2.0 * 1.5  # int8 no longer fastest: fp16 and fp32 tie within 5%
    rec = recommendation(rows)
    assert rec is not None and rec.startswith("Ship fp32") and "ties within 5%: fp16" in rec


def test_summary_table_drops_columns_nobody_filled(tmp_path: Path) -> None:
    header, cells, align = summary_table(summary_rows(_bench(tmp_path), None))
    assert "mean IoU" not in header and "gate" not in header and "median ms" in header
    assert len(align) == len(header) == len(cells[0])
    header, _, _ = summary_table(summary_rows(None, _parity(tmp_path)))
    assert "median ms" not in header and "gate" in header


def test_busy_machine_is_flagged_from_wall_over_cpu_time(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    for r in bench["results"][:4]:
        r["busy_factor"], r["preemptions_per_run"] = 1.02, 0.1
    assert busy_warning(bench) is None
    bench["machine_load"] = {"other_processes_cores": 0.1, "steal_cores": 0.0}
    assert busy_warning(bench) is None
    bench["results"][2]["busy_factor"] = 1.8
    warning = busy_warning(bench)
    assert warning and "1.80×" in warning and "sinet_224x224_fp16.tflite" in warning
    bench["results"][2]["busy_factor"] = 1.0
    bench["machine_load"] = {"other_processes_cores": 1.25, "steal_cores": 0.0}
    warning = busy_warning(bench)
    assert warning and "other processes used 1.25 cores" in warning
    html = write_report(tmp_path, machine={"cpu_model": "x"}, bench=bench)["html"].read_text()
    assert 'class="warn"' in html
