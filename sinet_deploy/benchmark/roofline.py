"""Roofline columns: how much of its runtime's measured ceiling each row reaches.

``gmac_per_s`` is the model's multiply-accumulates per frame over the row's median time;
``ceiling_share`` divides it by the ceiling row of the same runtime, precision class and thread
count (:mod:`sinet_deploy.benchmark.peak`), measured in the same interleaved run. A SINet
row's MACs are the architecture's (convolutions and the squeeze layers' linear maps at the
row's input size, :func:`~sinet_deploy.models.sinet.count_macs`: 63.9 M at 224×224), the same
for every format and precision, so the column compares runtimes on equal work. A peer's MACs
are counted from its ``.tflite`` graph (:func:`sinet_deploy.runtimes.litert_rt.graph_macs`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from sinet_deploy.benchmark.peak import PEAK_KINDS
from sinet_deploy.benchmark.timing import Candidate, Row


def precision_class(precision: str | None) -> str:
    """``int8`` for full-integer models; everything else runs float arithmetic (fp16 weights
    are widened at load, weight-only int8 keeps float activations)."""
    return "int8" if precision == "int8" else "fp32"


def row_precision_class(row: Row) -> str:
    """:func:`precision_class` of a row; a ``.tflite`` peer's from its graph."""
    if row.kind == "peer" and row.path and row.path.lower().endswith(".tflite"):
        return peer_precision_class(row.path)
    return precision_class(row.precision)


def peer_precision_class(path: str | Path) -> str:
    """``int8`` when a ``.tflite``'s convolutions take integer inputs, else ``fp32``."""
    try:
        from sinet_deploy.runtimes.litert_rt import integer_convolutions

        return "int8" if integer_convolutions(Path(path)) else "fp32"
    except Exception:
        return "fp32"


def ceiling_candidates(runtimes: Sequence[tuple[str, str]], threads: int) -> list[Candidate]:
    """One ceiling row per ``(runtime, precision class)`` that has a ceiling model."""
    return [
        Candidate("ceiling", threads=threads, ceiling=f"{rt}:{prec}")
        for rt, prec in dict.fromkeys(runtimes)
        if (rt, prec) in PEAK_KINDS
    ]


def runtime_of(path: str | Path) -> str | None:
    """The runtime the bench opens a model file with (by suffix), as the rows name it."""
    return {".tflite": "litert", ".onnx": "onnxruntime", ".pte": "executorch"}.get(
        Path(path).suffix.lower()
    )


@cache
def sinet_macs(config: str, height: int, width: int) -> int:
    """MACs of one ``height``×``width`` frame of SINet with ``config`` (JSON of the overrides,
    ``""`` for the official architecture)."""
    from sinet_deploy.models import build_model
    from sinet_deploy.models.config import SINetConfig
    from sinet_deploy.models.sinet import count_macs

    overrides = json.loads(config) if config else {}
    return count_macs(build_model(SINetConfig.from_kwargs(**overrides)), height, width)


def row_macs(row: Row) -> int | None:
    """MACs per frame of what ``row`` runs (``None``: unknown, e.g. an ONNX peer or a model
    whose manifest does not say which SINet it holds, or could not be counted here)."""
    try:
        return _row_macs(row)
    except Exception:
        return None


def _row_macs(row: Row) -> int | None:
    if not row.input_size or len(row.input_size) != 2:
        return None
    h, w = (int(v) for v in row.input_size)
    if row.kind == "torch":
        return sinet_macs("", h, w)
    if row.kind == "peer":
        if row.path and row.path.lower().endswith(".tflite"):
            from sinet_deploy.runtimes.litert_rt import graph_macs

            return graph_macs(Path(row.path))
        return None
    config = _manifest_config(row)
    return None if config is None else sinet_macs(config, h, w)


def _manifest_config(row: Row) -> str | None:
    """The SINet config key of an artifact row from its manifest's ``source`` (``None``: no
    manifest, or not a SINet export)."""
    if row.kind != "artifact" or not row.path:
        return None
    from sinet_deploy.core.manifest import manifest_or_none

    try:
        config = manifest_or_none(Path(row.path))["source"]["config"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    return json.dumps(config, sort_keys=True) if isinstance(config, dict) and config else ""


def add_roofline(rows: Sequence[Row], ceilings: Sequence[Row]) -> None:
    """Fill ``macs``, ``gmac_per_s`` and ``ceiling_share`` of every measured row."""
    best = {
        (c.runtime, precision_class(c.precision), c.threads): c.gmac_per_s
        for c in ceilings
        if c.gmac_per_s
    }
    for row in rows:
        if not row.median_ms or row.skipped:
            continue
        row.macs = row_macs(row)
        if not row.macs:
            continue
        row.gmac_per_s = row.macs / (row.median_ms * 1e6)
        key = (row.runtime, row_precision_class(row), row.threads)
        peak = best.get(key) if row.provider == "cpu" else None  # ceilings are CPU-only
        row.ceiling_share = row.gmac_per_s / peak if peak else None


def finish_ceilings(ceilings: Sequence[Row]) -> None:
    """GMAC/s of each ceiling row from its median."""
    for c in ceilings:
        if c.median_ms and c.macs:
            c.gmac_per_s = c.macs / (c.median_ms * 1e6)
