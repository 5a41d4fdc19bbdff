"""The overlay images of the worst disagreements, as the report shows them: grouped by
artifact, with one legend. The PNGs themselves are drawn by the parity check."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

OVERLAY_LEGEND = (
    "Red: foreground for PyTorch only (the artifact missed it); blue: foreground "
    "for the artifact only; green tint: both agree on foreground. Right of each image: the "
    "yellow box enlarged."
)


def report_overlays(results: dict[str, Any], out_dir: Path) -> list[dict[str, Any]]:
    """Every overlay of the parity results, with its file's path under ``out_dir`` and the
    artifact it shows."""
    return [
        {**o, "path": str(out_dir / o["file"]), "artifact": r.get("artifact")}
        for r in (results.get("parity") or {}).get("results", [])
        for o in r.get("overlays") or []
    ]


def by_artifact(
    overlays: Sequence[dict[str, Any]],
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Overlays grouped under the artifact they show, in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for o in overlays:
        groups.setdefault(str(o.get("artifact") or "overlays"), []).append(o)
    return list(groups.items())
