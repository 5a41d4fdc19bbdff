"""``sinet-deploy android-assets``: the model + manifest pair the Android demo bundles."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sinet_deploy.android import assets as aa
from sinet_deploy.core.errors import ParityGateError, UserInputError
from sinet_deploy.core.manifest import manifest_path, write_manifest

SHA = "ab" * 32


def _manifest(
    precision: str = "fp32", sha: str = SHA, size: tuple[int, int] = (224, 224), io: str = "image"
) -> dict[str, Any]:
    h, w = size
    return {
        "format": "tflite",
        "precision": precision,
        "input_size": [h, w],
        "inputs": [
            {
                "name": "image",
                "shape": [1, h, w, 3],
                "dtype": "uint8",
                "layout": "nhwc",
                "quantization": None,
            }
        ],
        "outputs": [
            {
                "name": "foreground",
                "shape": [1, h, w, 1],
                "dtype": "float32",
                "layout": "nhwc",
                "quantization": None,
            }
        ],
        "source": {"checkpoint_sha256": sha},
        "options": {"io": io},
    }


def _pair(folder: Path, precision: str = "fp32", **kw: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"sinet_224x224_{precision}.tflite"
    model.write_bytes(b"TFL3" + precision.encode() * 10)
    write_manifest(model, _manifest(precision, **kw))
    return model


def test_reusable_only_when_everything_matches(tmp_path: Path) -> None:
    model = _pair(tmp_path)
    ok = {"precision": "fp32", "checkpoint_sha256": SHA, "input_size": (224, 224)}
    assert aa.reusable(model, **ok) is None
    assert "other weights" in (aa.reusable(model, **{**ok, "checkpoint_sha256": "cd" * 32}) or "")
    assert "precision" in (aa.reusable(model, **{**ok, "precision": "fp16"}) or "")
    assert "input size" in (aa.reusable(model, **{**ok, "input_size": (256, 256)}) or "")
    model.write_bytes(b"edited by hand")
    assert "changed" in (aa.reusable(model, **ok) or "")
    assert aa.reusable(tmp_path / "none.tflite", **ok) == "no model yet"
    raw = _pair(tmp_path / "raw", io="raw")
    assert "--io image" in (aa.reusable(raw, **ok) or "")


@dataclass
class _Result:
    path: Path | None
    manifest: Path | None


class _Report:
    def __init__(self, results: list[_Result], passed: bool) -> None:
        self.results, self.passed = results, passed

    def raise_for_failures(self) -> None:
        if not self.passed:
            raise ParityGateError("tflite/fp32 failed its gate (fake)")

    def as_dict(self) -> dict[str, Any]:
        return {
            "results": [
                {"artifact": str(r.path), "manifest": str(r.manifest)} for r in self.results
            ],
            "passed": self.passed,
            "out_dir": "x",
        }


@pytest.fixture
def fake_export(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Replace the (slow) export pipeline: write a fake pair like it does, count the calls."""
    from sinet_deploy.convert import publish as pipeline

    state: dict[str, Any] = {"calls": [], "pass": True}

    def export_artifacts(weights: Any, **kw: Any) -> _Report:
        state["calls"].append(kw)
        (precision,) = kw["precisions"]
        model = _pair(Path(kw["out_dir"]) / "tflite", precision)
        if not state["pass"]:
            model.unlink()
            manifest_path(model).unlink()
            return _Report([_Result(None, None)], False)
        return _Report([_Result(model, manifest_path(model))], True)

    monkeypatch.setattr(pipeline, "export_artifacts", export_artifacts)
    monkeypatch.setattr(pipeline, "source_sha256", lambda weights: SHA)
    return state


def test_exports_then_reuses_then_forces(tmp_path: Path, fake_export: dict[str, Any]) -> None:
    out = tmp_path / "assets"
    first = aa.prepare_android_assets(out)
    assert not first.reused and first.model == out / "sinet_224x224_fp32.tflite"
    assert first.model.is_file() and first.manifest.is_file()
    assert fake_export["calls"][0]["io"] == "image"
    assert fake_export["calls"][0]["formats"] == ("tflite",)
    assert first.export and first.export["results"][0]["artifact"] == str(first.model)
    assert sorted(p.name for p in out.iterdir()) == [
        "sinet_224x224_fp32.json",
        "sinet_224x224_fp32.tflite",
    ]
    again = aa.prepare_android_assets(out)
    assert again.reused and len(fake_export["calls"]) == 1
    aa.prepare_android_assets(out, force=True)
    assert len(fake_export["calls"]) == 2
    aa.prepare_android_assets(out, precision="fp16")  # another precision sits beside it
    assert (out / "sinet_224x224_fp16.tflite").is_file()
    assert (out / "sinet_224x224_fp32.tflite").is_file()


def test_failed_gate_leaves_nothing(tmp_path: Path, fake_export: dict[str, Any]) -> None:
    fake_export["pass"] = False
    out = tmp_path / "assets"
    with pytest.raises(ParityGateError):
        aa.prepare_android_assets(out)
    assert list(out.iterdir()) == []  # no model, no manifest, no hidden work folder


def test_bad_precision_and_size(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="unknown precision"):
        aa.prepare_android_assets(tmp_path, precision="int4")
    with pytest.raises(UserInputError, match="multiple of 32"):
        aa.prepare_android_assets(tmp_path, input_size=(200, 224))


def test_default_out_needs_the_project(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no android_demo") as info:
        aa.default_out(tmp_path)
    assert "--out" in info.value.one_line()
    (tmp_path / "android_demo/app/src/main").mkdir(parents=True)
    assert aa.default_out(tmp_path) == tmp_path / "android_demo/app/src/main/assets"


def test_cli_json_and_one_line_errors(
    cli: Any, tmp_path: Path, fake_export: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    res = cli("android-assets", "--out", tmp_path / "a", "--json")
    assert res.code == 0, res.err
    data = json.loads(res.out)
    assert data["reused"] is False and Path(data["model"]).is_file()
    res = cli("android-assets", "--out", tmp_path / "a")
    assert res.code == 0 and "reused" in res.out
    res = cli("android-assets", "--out", tmp_path / "a", "--precision", "int4")
    assert res.code == 2 and "Traceback" not in res.err
    assert len(res.err.strip().splitlines()) == 1 and "int4" in res.err
    monkeypatch.chdir(tmp_path)
    res = cli("android-assets")
    assert res.code == 2 and "--out" in res.err
    fake_export["pass"] = False
    res = cli("android-assets", "--out", tmp_path / "b")
    assert res.code == 3 and not list((tmp_path / "b").iterdir())


@pytest.mark.slow
def test_real_export_is_reused(tmp_path: Path, exported_artifacts: dict[str, Path]) -> None:
    """An exported pair copied into the assets is recognised as up to date (no new export)."""
    src = exported_artifacts["tflite/fp32"]
    out = tmp_path / "assets"
    out.mkdir()
    shutil.copyfile(src, out / src.name)
    shutil.copyfile(manifest_path(src), manifest_path(out / src.name))
    assets = aa.prepare_android_assets(out, weights="official")
    assert assets.reused and assets.model == out / "sinet_224x224_fp32.tflite"


def test_android_assets_adopts_an_existing_export(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """--model copies a published artifact and its manifest (model first, manifest last)
    instead of exporting again; a model without a passed gate in its manifest is refused."""
    import json

    from tests.device_support import make_tiny_tflite

    (tmp_path / "m").mkdir()
    model = make_tiny_tflite(tmp_path / "m" / "sinet_16x16_fp32.tflite")
    side = model.with_suffix(".json")
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "parity": {"passed": True}}))
    assets = tmp_path / "assets"
    r = cli("android-assets", "--model", model, "--out", assets)
    assert r.code == 0, r.err
    assert (assets / model.name).read_bytes() == model.read_bytes()
    assert json.loads((assets / side.name).read_text())["parity"]["passed"] is True
    assert "gradle wrapper" in r.out and not list(assets.glob(".*partial"))
    side.write_text(json.dumps({**meta, "parity": {"passed": False}}))
    r = cli("android-assets", "--model", model, "--out", tmp_path / "assets2")
    assert r.code == 2 and "passed parity gate" in r.err and "Traceback" not in r.err
    assert not (tmp_path / "assets2" / model.name).exists()
