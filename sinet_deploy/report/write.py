"""``--report DIR``: ``results.json``, ``report.md`` and a self-contained ``report.html``.

Every file is written to a temporary name and renamed: a crash leaves the previous report or
none, never half of one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sinet_deploy.core.fileio import write_text_atomic
from sinet_deploy.report.html_doc import render_html
from sinet_deploy.report.markdown_doc import render_markdown
from sinet_deploy.report.overlays import report_overlays
from sinet_deploy.report.plots import render_plots
from sinet_deploy.report.results import build_results


def write_report(
    out_dir: Path,
    *,
    machine: dict[str, Any],
    bench: dict[str, Any] | None = None,
    parity: dict[str, Any] | None = None,
    pipeline: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Path]:
    """Write ``results.json``, ``report.md`` and ``report.html`` into ``out_dir``.

    Args:
        out_dir: an existing, writable folder (overlay PNGs named in ``parity`` live under it).
        machine: :func:`sinet_deploy.core.machine.machine_info`.
        bench: ``BenchResult.to_dict()`` (with per-iteration latencies, for the plots).
        parity: ``ParityReport.to_dict()`` (with per-image metrics and overlay files).
        pipeline: the ``pipeline`` command's export summary and stage timings.
        command: the command line, recorded for reproduction.

    Returns:
        ``{"json": ..., "markdown": ..., "html": ...}`` paths.
    """
    out_dir = Path(out_dir)
    results = build_results(
        machine=machine, bench=bench, parity=parity, pipeline=pipeline, command=command
    )
    overlays = report_overlays(results, out_dir)
    plots, note = render_plots(results.get("bench"), results.get("parity"))
    paths = {
        "json": out_dir / "results.json",
        "markdown": out_dir / "report.md",
        "html": out_dir / "report.html",
    }
    write_text_atomic(paths["json"], json.dumps(results, indent=2, default=str) + "\n")
    write_text_atomic(paths["markdown"], render_markdown(results, overlays))
    write_text_atomic(paths["html"], render_html(results, overlays, plots, note))
    return paths
