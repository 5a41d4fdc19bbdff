"""``report.md``: the same tables as the HTML, overlays linked as files."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sinet_deploy.report.notes import (
    bench_footnotes,
    bench_note,
    busy_warning,
    machine_line,
    measured_rows,
    parity_note,
    pipeline_line,
    report_title,
)
from sinet_deploy.report.overlays import OVERLAY_LEGEND, by_artifact
from sinet_deploy.report.summary import recommendation
from sinet_deploy.report.tables import (
    BENCH_ALIGN,
    BENCH_HEADER,
    EXPORT_HEADER,
    bench_cells,
    export_cells,
    parity_table,
    summary_table,
)


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(results: dict[str, Any], overlays: Sequence[dict[str, Any]]) -> str:
    """``report.md``: the same tables as the HTML, overlays linked as files."""
    bench, parity, pipeline = results.get("bench"), results.get("parity"), results.get("pipeline")
    out = [
        f"# {report_title(results)}",
        "",
        f"Generated {results['generated_at']}"
        + (f" by `{results['command']}`" if results.get("command") else "")
        + ".",
        "",
        f"**Machine:** {machine_line(results['machine'])}",
        "",
    ]
    summary = results.get("summary") or []
    if rec := recommendation(summary, results.get("machine")):
        out += [f"**{rec}**", ""]
    if warning := busy_warning(bench):
        out += [f"> **Warning:** {warning}", ""]
    if pipeline:
        out += [pipeline_line(pipeline), ""]
        if pipeline.get("exports"):
            out += [
                "## Exports",
                "",
                _md_table(EXPORT_HEADER, (export_cells(r) for r in pipeline["exports"]), "lllrl"),
                "",
            ]
    if summary:
        header, cells, align = summary_table(summary)
        out += ["## Summary", "", _md_table(header, cells, align), ""]
    if bench:
        out += [
            "## Latency",
            "",
            bench_note(bench),
            "",
            _md_table(BENCH_HEADER, (bench_cells(r) for r in measured_rows(bench)), BENCH_ALIGN),
            "",
        ]
        out += [f"- {line}" for line in bench_footnotes(bench)] + [""]
    if parity:
        out += [
            "## Parity against PyTorch",
            "",
            parity_note(parity),
            "",
            _md_table(*parity_table(parity["results"])),
            "",
        ]
        if parity.get("pairs"):
            out += ["### Pairs", "", _md_table(*parity_table(parity["pairs"], pairs=True)), ""]
    if overlays:
        out += ["## Worst disagreements", "", OVERLAY_LEGEND, ""]
        for artifact, group in by_artifact(overlays):
            out += [f"### {artifact}", ""]
            out += [f"![{o['caption']}]({o['file']})  \n{o['caption']}\n" for o in group]
    return "\n".join(out) + "\n"
