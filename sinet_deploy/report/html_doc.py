"""``report.html``: self-contained (inline CSS, plots and overlays as base64 PNG), so it
can be mailed or attached to an issue as one file."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
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

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1280px;padding:0 1em;color:#222}
h1{font-size:1.6em;margin-bottom:.2em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:.92em}.rec{background:#eef6ee;border-left:4px solid #2ca02c;
padding:.6em .9em;margin:1em 0}.warn{background:#fff6e0;border-left:4px solid #e0a000;
padding:.6em .9em;margin:1em 0}.note{color:#555;font-size:.9em;max-width:60em}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}.tw{overflow-x:auto}
th,td{padding:.3em .5em;border-bottom:1px solid #e5e5e5;white-space:nowrap}
th{background:#f6f6f6;text-align:left}td.r,th.r{text-align:right;font-variant-numeric:tabular-nums}
td.wrap{white-space:normal;min-width:28em}.pass{color:#1a7f37;font-weight:600}.fail{color:#c62828;font-weight:700}
.peer td:first-child::after{content:" (peer)";color:#ff7f0e;font-size:.85em}
.reference td:first-child::after{content:" (reference)";color:#7f7f7f;font-size:.85em}
img.plot{max-width:100%;border:1px solid #eee;margin:.5em 0}
.overlays{display:flex;flex-wrap:wrap;gap:1.2em}.overlays figure{margin:0;width:540px}
.overlays img{width:540px;image-rendering:pixelated;border:1px solid #ddd}
figcaption{font-size:.85em;color:#444}details{margin:.5em 0}code{background:#f3f3f3;padding:0 .2em}
"""


def _html_table(
    header: Sequence[str], rows: Iterable[tuple[Sequence[str], str]], align: str
) -> str:
    th = "".join(
        f'<th class="{"r" if a == "r" else ""}">{html.escape(h)}</th>'
        for h, a in zip(header, align, strict=True)
    )
    body = []
    for cells, cls in rows:
        tds = []
        for c, a in zip(cells, align, strict=True):
            klass = "r" if a == "r" else ""
            if c == "pass" or c.startswith("FAIL"):
                klass += " pass" if c == "pass" else " fail"
            if len(c) > 60:
                klass += " wrap"
            tds.append(f'<td class="{klass.strip()}">{html.escape(c)}</td>')
        body.append(f'<tr class="{cls}">' + "".join(tds) + "</tr>")
    return (
        f'<div class="tw"><table><thead><tr>{th}</tr></thead><tbody>{"".join(body)}'
        "</tbody></table></div>"
    )


def _html_rows(header: Sequence[str], cells: Sequence[Sequence[str]], align: str) -> str:
    return _html_table(header, ((c, "") for c in cells), align)


def _img(png: bytes, alt: str, cls: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img class="{cls}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def render_html(
    results: dict[str, Any],
    overlays: Sequence[dict[str, Any]],
    plots: Sequence[tuple[str, bytes]],
    plot_note: str | None,
) -> str:
    """``report.html``: self-contained (inline CSS, plots and overlays as base64 PNG)."""
    bench, parity, pipeline = results.get("bench"), results.get("parity"), results.get("pipeline")
    e = html.escape
    parts = [
        f"<!doctype html><html lang=en><head><meta charset=utf-8><title>"
        f"{e(report_title(results))}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(report_title(results))}</h1>",
        f'<p class="meta">Generated {e(results["generated_at"])}'
        + (f" by <code>{e(results['command'])}</code>" if results.get("command") else "")
        + f"<br><b>Machine:</b> {e(machine_line(results['machine']))}</p>",
    ]
    summary = results.get("summary") or []
    if rec := recommendation(summary, results.get("machine")):
        parts.append(f'<p class="rec">{e(rec)}</p>')
    if warning := busy_warning(bench):
        parts.append(f'<p class="warn">{e(warning)}</p>')
    if pipeline:
        parts.append(f"<p>{e(pipeline_line(pipeline)).replace('**', '')}</p>")
    if summary:
        header, cells, align = summary_table(summary)
        parts += [
            "<h2>Summary</h2>",
            _html_table(
                header, zip(cells, (r.get("role", "") for r in summary), strict=True), align
            ),
        ]
    for title, png in plots:
        parts.append(f"<h2>{e(title)}</h2>{_img(png, title, 'plot')}")
    if plot_note:
        parts.append(f'<p class="note">{e(plot_note)}</p>')
    if pipeline and pipeline.get("exports"):
        parts += [
            "<h2>Exports</h2>",
            _html_table(
                EXPORT_HEADER, ((export_cells(r), "") for r in pipeline["exports"]), "lllrl"
            ),
        ]
    if bench:
        parts += [
            "<h2>Latency table</h2>",
            f'<p class="note">{e(bench_note(bench).replace("*", ""))}</p>',
            _html_table(
                BENCH_HEADER,
                ((bench_cells(r), r.get("role", "")) for r in measured_rows(bench)),
                BENCH_ALIGN,
            ),
        ]
        notes = bench_footnotes(bench)
        if notes:
            parts.append('<p class="note">' + "<br>".join(e(n) for n in notes) + "</p>")
    if parity:
        parts += [
            "<h2>Parity against PyTorch</h2>",
            f'<p class="note">{e(parity_note(parity))}</p>',
            _html_rows(*parity_table(parity["results"])),
        ]
        failures = [
            f"{r['artifact']}: {'; '.join(r.get('failures') or [])}"
            for r in parity["results"]
            if r.get("passed") is False
        ]
        if failures:
            parts.append('<p class="fail">' + "<br>".join(e(f) for f in failures) + "</p>")
        if parity.get("pairs"):
            parts += [
                "<h3>Pairs</h3>",
                _html_rows(*parity_table(parity["pairs"], pairs=True)),
            ]
    if overlays:
        parts += [
            "<h2>Worst disagreements</h2>",
            f'<p class="note">{e(OVERLAY_LEGEND)}</p>',
            '<div class="overlays">',
        ]
        for artifact, group in by_artifact(overlays):
            parts += [f"</div><h3>{e(artifact)}</h3>", '<div class="overlays">']
            for o in group:
                parts.append(
                    f"<figure>{_img(Path(o['path']).read_bytes(), o['caption'], '')}"
                    f"<figcaption>{e(o['caption'])}</figcaption></figure>"
                )
        parts.append("</div>")
    parts.append(
        "<details><summary>Machine and library versions</summary><pre>"
        + e(_pretty(results["machine"]))
        + "</pre></details></body></html>"
    )
    return "\n".join(parts) + "\n"


def _pretty(data: Any) -> str:
    return json.dumps(data, indent=2, default=str)
