"""Every converter has one shape: ``convert(ctx, target) -> Artifact``, one module per edge."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest

from sinet_deploy.convert import registry
from sinet_deploy.convert.registry import Artifact, ExportContext, Target


def test_every_registered_converter_has_the_one_signature() -> None:
    reg = registry.registered()
    assert {("onnx", "fp32"), ("tflite", "fp32"), ("tflite", "int8")} <= set(reg)
    for (fmt, precision), entry in reg.items():
        sig = inspect.signature(entry.fn)
        assert list(sig.parameters) == ["ctx", "target"], (fmt, precision)
        assert sig.return_annotation in ("Artifact", Artifact), (fmt, precision)
        assert entry.description, (fmt, precision)


def test_each_edge_module_registers_its_convert() -> None:
    registered_fns = {e.fn for e in registry.registered().values()}
    for name in registry.EDGE_MODULES:
        edge = importlib.import_module(name)
        if name.endswith(".coreml") and not any(
            e.fmt == "coreml" for e in registry.registered().values()
        ):
            continue  # registered only where coremltools is installed
        assert edge.convert in registered_fns, name


def test_the_onnx_edge_returns_an_artifact_record(tmp_path: Path) -> None:
    from sinet_deploy.convert import onnx

    ctx = ExportContext("random", (64, 64), "image", 17, None, tmp_path)
    art = onnx.convert(ctx, Target("onnx", "fp32", tmp_path / "m.onnx"))
    assert isinstance(art, Artifact) and (tmp_path / "m.onnx").is_file()
    assert [s.name for s in art.inputs] == ["image"] and art.outputs[0].name == "foreground"
    with pytest.raises(AttributeError):  # a record, not a bag to edit later
        art.options = {}  # type: ignore[misc]


def test_a_second_converter_for_a_pair_needs_replace() -> None:
    entry = registry.registered()[("onnx", "fp32")]

    def other(ctx: ExportContext, target: Target) -> Artifact:
        raise AssertionError("never called")

    with pytest.raises(ValueError, match="already registered"):
        registry.register_converter("onnx", "fp32", other)
    assert registry.registered()[("onnx", "fp32")] is entry
