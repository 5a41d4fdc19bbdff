"""``--report DIR``: ``results.json``, ``report.md`` and a self-contained ``report.html``.

The inputs are the JSON-ready dicts that ``bench`` and ``parity`` print with ``--json`` (plus the
machine block and, for ``pipeline``, the export summary), so a report can be rebuilt from a saved
``results.json`` alone. Every file is written to a temporary name and renamed: a crash leaves
the previous report or none, never half of one. Plots are matplotlib PNGs embedded as base64, so
``report.html`` is one file that can be mailed or attached to an issue.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from sinet_deploy.core.fileio import write_text_atomic
from sinet_deploy.core.jsonsafe import json_safe

SCHEMA_VERSION = 1

#: Colours per row role, shared by the plots and the HTML badges.
ROLE_COLOURS = {"reference": "#7f7f7f", "sinet": "#1f77b4", "peer": "#ff7f0e"}


# --------------------------------------------------------------------------------------------
# formatting


def fmt_ms(v: float | None) -> str:
    return "—" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def fmt_num(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.{digits}f}"


def fmt_sci(v: float | None) -> str:
    return "—" if v is None else f"{v:.1e}"


def fmt_ratio(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}×"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.0f} KiB"
    return f"{n / 1024**2:.1f} MiB"


def fmt_gate(passed: bool | None) -> str:
    return "—" if passed is None else ("pass" if passed else "FAIL")


# --------------------------------------------------------------------------------------------
# the joined summary (one line per artifact: size, latency, FPS, IoU, gate)


def _key(path: str | None) -> str | None:
    return str(Path(path).resolve()) if path else None


def summary_rows(
    bench: dict[str, Any] | None,
    parity: dict[str, Any] | None,
    threads: int | None = None,
    exports: Sequence[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Bench rows (at one thread count, the smallest by default) joined with parity results.

    Returns:
        One dict per benchmarked model: ``name, role, runtime, format, precision,
        size_bytes, threads, median_ms, p90_ms, fps, speedup_vs_torch, time_vs_fastest_sinet,
        mean_iou, min_iou, max_abs_prob_diff, passed`` (``None`` where it does not apply:
        no parity for PyTorch itself or for a peer). Artifacts with parity but no bench row
        are appended with empty latency columns; so are failed exports (``exports`` rows of the
        pipeline whose gate failed or whose converter stopped), with ``passed`` false and
        ``failure`` saying which, so a summary never hides them.
    """
    by_path = {_key(r.get("path")): r for r in (parity or {}).get("results", [])}
    rows = [r for r in (bench or {}).get("results", []) if not r.get("skipped")]
    if rows:
        threads = threads if threads is not None else min(r["threads"] for r in rows)
        rows = [r for r in rows if r["threads"] == threads]
    out: list[dict[str, Any]] = []
    seen: set[str | None] = set()
    for r in rows:
        p = by_path.get(_key(r.get("path"))) if r.get("kind") == "artifact" else None
        seen.add(_key(r.get("path")))
        out.append(_summary_line(r, p))
    for key, p in by_path.items():
        if key not in seen:
            out.append(
                _summary_line(
                    {
                        "name": p.get("artifact"),
                        "role": "sinet",
                        "runtime": p.get("runtime"),
                        "path": p.get("path"),
                    },
                    p,
                )
            )
    for e in exports or ():
        if not e.get("passed"):
            out.append(
                {
                    **_summary_line({"name": f"{e['format']}/{e['precision']}"}, None),
                    "format": e.get("format"),
                    "precision": e.get("precision"),
                    "passed": False,
                    "failure": "export gate" if e.get("failure") == "gate" else "export error",
                    "error": e.get("error"),
                }
            )
    return out


def _summary_line(b: dict[str, Any], p: dict[str, Any] | None) -> dict[str, Any]:
    p = p or {}
    return {
        "name": b.get("name"),
        "role": b.get("role", "sinet"),
        "runtime": b.get("runtime"),
        "format": b.get("format") or p.get("format"),
        "precision": b.get("precision") or p.get("precision"),
        "size_bytes": b.get("file_size_bytes") or p.get("file_size_bytes"),
        "threads": b.get("threads"),
        "median_ms": b.get("median_ms"),
        "p90_ms": b.get("p90_ms"),
        "fps": b.get("fps"),
        "speedup_vs_torch": b.get("speedup_vs_torch"),
        "time_vs_fastest_sinet": b.get("time_vs_fastest_sinet"),
        "mean_iou": p.get("mean_iou"),
        "min_iou": p.get("min_iou"),
        "max_abs_prob_diff": p.get("max_abs_prob_diff"),
        "passed": p.get("passed"),
    }


#: Latencies within this fraction of the fastest count as a tie (run-to-run noise is 5–15%).
TIE_FRACTION = 0.05


def recommendation(
    summary: Sequence[dict[str, Any]], machine: dict[str, Any] | None = None
) -> str | None:
    """The artifact to ship — the fastest SINet artifact that passed its parity gate; among
    those within :data:`TIE_FRACTION` of it, the one closest to PyTorch — plus where it was
    measured (a phone may rank them differently) and what failed and was left out."""
    ok = [r for r in summary if r.get("passed") and r.get("median_ms")]
    failed = [str(r["name"]) for r in summary if r.get("passed") is False]
    left_out = (
        f" Not shipped: {', '.join(failed)} (failed its gate or its export; see the summary)."
        if failed
        else ""
    )
    if not ok:
        return left_out.strip() or None
    fastest = min(r["median_ms"] for r in ok)
    tied = [r for r in ok if r["median_ms"] <= fastest * (1 + TIE_FRACTION)]
    best = max(tied, key=lambda r: (r.get("mean_iou") or 0.0, -r["median_ms"]))
    speed = (
        f", {best['speedup_vs_torch']:.1f}× faster than PyTorch eager"
        if best.get("speedup_vs_torch")
        else ""
    )
    ties = (
        f" (ties within {TIE_FRACTION:.0%}: {', '.join(r['name'] for r in tied if r is not best)};"
        " the closest to PyTorch is named)"
        if len(tied) > 1
        else ""
    )
    return (
        f"Ship {best['name']}: the fastest artifact that passes its parity gate{ties} — "
        f"{fmt_ms(best['median_ms'])} ms median at {best['threads']} thread(s){speed}, "
        f"mean IoU {fmt_num(best['mean_iou'])} vs PyTorch."
        + (
            f" Measured on this desktop CPU ({machine['cpu_model']}); a phone may rank them "
            "differently: check with `sinet-deploy device bench`."
            if machine and machine.get("cpu_model")
            else ""
        )
        + left_out
    )


# --------------------------------------------------------------------------------------------
# results.json


def build_results(
    *,
    machine: dict[str, Any],
    bench: dict[str, Any] | None = None,
    parity: dict[str, Any] | None = None,
    pipeline: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """The ``results.json`` document (schema in the README, "results.json")."""
    return json_safe(
        {
            "schema_version": SCHEMA_VERSION,
            "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command,
            "machine": machine,
            "summary": (
                summary_rows(bench, parity, exports=(pipeline or {}).get("exports"))
                if (bench or parity or pipeline)
                else []
            ),
            "bench": bench,
            "parity": parity,
            "pipeline": pipeline,
        }
    )


# --------------------------------------------------------------------------------------------
# plots (matplotlib, no pyplot: no global backend state in the caller's process)


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def latency_plot(bench: dict[str, Any]) -> bytes | None:
    """Box plot per (model, threads): box p25–p75, whiskers p10–p90, the median labelled."""
    from matplotlib.figure import Figure

    rows = [r for r in bench.get("results", []) if r.get("latencies_ms")]
    if not rows:
        return None
    rows = sorted(rows, key=lambda r: (r["threads"], r["median_ms"]))
    labels = [f"{r['name']}  ·  {r['threads']} thr" for r in rows]
    fig = Figure(figsize=(9, 0.5 * len(rows) + 1.4))
    ax = fig.add_subplot()
    pos = list(range(len(rows), 0, -1))
    box = ax.boxplot(
        [r["latencies_ms"] for r in rows],
        positions=pos,
        **_horizontal(),
        whis=(10, 90),
        showfliers=False,
        patch_artist=True,
        widths=0.6,
        medianprops={"color": "black", "linewidth": 1.5},
    )
    for patch, r in zip(box["boxes"], rows, strict=True):
        patch.set_facecolor(ROLE_COLOURS.get(r.get("role", "sinet"), "#1f77b4"))
        patch.set_alpha(0.75)
    right = max(r["p90_ms"] for r in rows)
    for y, r in zip(pos, rows, strict=True):
        ax.text(r["p90_ms"] + right * 0.02, y, f"{r['median_ms']:.2f} ms", va="center", fontsize=9)
    ax.set_yticks(pos, labels, fontsize=9)
    ax.set_xlim(0, right * 1.22)
    ax.set_xlabel("latency per inference (ms) — box p25–p75, whiskers p10–p90, line = median")
    ax.set_title("Latency (lower is better)", fontsize=11, loc="left")
    ax.grid(axis="x", alpha=0.3)
    handles = [
        _legend_patch(c, role)
        for role, c in ROLE_COLOURS.items()
        if any(r.get("role") == role for r in rows)
    ]
    # Above the axes on the right, beside the left-aligned title: never over a box.
    ax.legend(
        handles=handles,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=len(handles),
        fontsize=8,
        frameon=False,
        borderaxespad=0.2,
    )
    return _png(fig)


def _horizontal() -> dict[str, Any]:
    """``orientation=`` from matplotlib 3.10 on; ``vert=`` (deprecated there) before."""
    import matplotlib

    major, minor = (int(x) for x in matplotlib.__version__.split(".")[:2])
    return {"orientation": "horizontal"} if (major, minor) >= (3, 10) else {"vert": False}


def _legend_patch(colour: str, role: str) -> Any:
    from matplotlib.patches import Patch

    names = {"reference": "PyTorch reference", "sinet": "SINet artifact", "peer": "peer model"}
    return Patch(facecolor=colour, alpha=0.75, label=names.get(role, role))


def _tolerance(row: dict[str, Any]) -> Any:
    """The registered gate of a parity row (``None`` for a peer or an unknown pair)."""
    from sinet_deploy.verify.tolerances import TOLERANCES

    return TOLERANCES.get((str(row.get("format")), str(row.get("precision"))))


def _bounds(row: dict[str, Any]) -> list[float]:
    tol = _tolerance(row)
    return [b for b in (tol and tol.min_iou, tol and tol.mean_iou) if b]


def iou_plot(parity: dict[str, Any]) -> bytes | None:
    """Per-image mask IoU vs PyTorch for each artifact: a box plot with every image as a dot."""
    from matplotlib.figure import Figure

    rows = [r for r in parity.get("results", []) if r.get("per_image")]
    if not rows:
        return None
    fig = Figure(figsize=(9, 0.55 * len(rows) + 1.4))
    ax = fig.add_subplot()
    pos = list(range(len(rows), 0, -1))
    data = [[float(m["iou"]) for m in r["per_image"]] for r in rows]
    ax.boxplot(
        data,
        positions=pos,
        **_horizontal(),
        showfliers=False,
        widths=0.55,
        medianprops={"color": "black"},
    )
    for y, values, r in zip(pos, data, rows, strict=True):
        # Deterministic jitter: the same report twice draws the same dots.
        jitter = [((i * 0.618034) % 1.0 - 0.5) * 0.35 for i in range(len(values))]
        colour = "#2ca02c" if r.get("passed") else "#d62728"
        ax.scatter(
            values,
            [y + j for j in jitter],
            s=16,
            color=colour,
            alpha=0.7,
            zorder=3,
            edgecolors="white",
            linewidths=0.4,
        )
    for y, r in zip(pos, rows, strict=True):
        # The gate's bounds for this artifact: dashed = worst image, dotted = mean.
        tol = _tolerance(r)
        for bound, style in ((tol and tol.min_iou, "--"), (tol and tol.mean_iou, ":")):
            if bound:
                ax.plot([bound, bound], [y - 0.4, y + 0.4], ls=style, color="#444", lw=1.2)
    lo = min([min(d) for d in data] + [b for r in rows for b in _bounds(r)])
    ax.set_xlim(max(0.0, lo - max(0.002, (1 - lo) * 0.1)), 1.0 + max(0.0005, (1 - lo) * 0.05))
    ax.set_yticks(pos, [r["artifact"] for r in rows], fontsize=9)
    ax.set_xlabel(
        "mask IoU against the PyTorch fp32 reference, one dot per image "
        "(green: gate passed, red: failed; gate bounds: dashed worst image, dotted mean)"
    )
    ax.set_title("Agreement with PyTorch per image (higher is better)", fontsize=11, loc="left")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def _plots(
    bench: dict[str, Any] | None, parity: dict[str, Any] | None
) -> tuple[list[tuple[str, bytes]], str | None]:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return [], "plots omitted: matplotlib is not installed (pip install 'sinet-deploy[report]')"
    plots: list[tuple[str, bytes]] = []
    if bench and (png := latency_plot(bench)):
        plots.append(("Latency", png))
    if parity and (png := iou_plot(parity)):
        plots.append(("Mask IoU per image", png))
    return plots, None


# --------------------------------------------------------------------------------------------
# report.md


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


SUMMARY_HEADER = (
    "model",
    "runtime",
    "size",
    "threads",
    "median ms",
    "p90 ms",
    "FPS",
    "× PyTorch",
    "mean IoU",
    "worst IoU",
    "gate",
)


def summary_cells(r: dict[str, Any]) -> list[str]:
    return [
        str(r["name"]),
        str(r.get("runtime") or "—"),
        fmt_bytes(r.get("size_bytes")),
        str(r.get("threads") or "—"),
        fmt_ms(r.get("median_ms")),
        fmt_ms(r.get("p90_ms")),
        "—" if r.get("fps") is None else f"{r['fps']:.0f}",
        fmt_ratio(r.get("speedup_vs_torch")),
        fmt_num(r.get("mean_iou")),
        fmt_num(r.get("min_iou")),
        fmt_gate(r.get("passed")),
    ]


SUMMARY_ALIGN = "llrrrrrrrrl"


def summary_table(summary: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]], str]:
    """Header, cells and alignment of the summary, without columns that are empty in every row
    (no IoU columns in a bench-only report, no latency in a parity-only one)."""
    cells = [summary_cells(r) for r in summary]
    keep = [i for i in range(len(SUMMARY_HEADER)) if i == 0 or any(row[i] != "—" for row in cells)]
    return (
        [SUMMARY_HEADER[i] for i in keep],
        [[row[i] for i in keep] for row in cells],
        "".join(SUMMARY_ALIGN[i] for i in keep),
    )


BENCH_HEADER = (
    "model",
    "runtime",
    "threads",
    "size",
    "init ms",
    "peak RSS MiB",
    "median ms",
    "p10–p90 ms",
    "p99 ms",
    "FPS",
    "× PyTorch",
    "vs fastest SINet",
)


def bench_cells(r: dict[str, Any]) -> list[str]:
    if r.get("skipped"):
        return [
            str(r["name"]),
            str(r["runtime"]),
            str(r["threads"]),
            "—",
            "—",
            "—",
            f"skipped: {r['skipped']}",
            "—",
            "—",
            "—",
            "—",
            "—",
        ]
    return [
        str(r["name"]),
        str(r["runtime"]),
        str(r["threads"]),
        fmt_bytes(r.get("file_size_bytes")),
        fmt_ms(r.get("init_ms")),
        "—" if r.get("peak_rss_mb") is None else f"{r['peak_rss_mb']:.0f}",
        fmt_ms(r.get("median_ms")),
        f"{fmt_ms(r.get('p10_ms'))}–{fmt_ms(r.get('p90_ms'))}",
        fmt_ms(r.get("p99_ms")),
        f"{r['fps']:.0f}",
        fmt_ratio(r.get("speedup_vs_torch")),
        fmt_ratio(r.get("time_vs_fastest_sinet")),
    ]


PARITY_HEADER = (
    "artifact",
    "runtime",
    "vs",
    "images",
    "max |Δp|",
    "mean |Δp|",
    "SQNR dB",
    "mean IoU",
    "worst IoU",
    "worst image",
    "agreement",
    "gate",
)


def parity_cells(r: dict[str, Any]) -> list[str]:
    agree = r.get("pixel_agreement")
    return [
        str(r["artifact"]),
        str(r.get("runtime")),
        str(r.get("against", "pytorch")),
        str(r.get("images")),
        fmt_sci(r.get("max_abs_prob_diff")),
        fmt_sci(r.get("mean_abs_prob_diff")),
        fmt_num(r.get("sqnr_db"), 1),
        fmt_num(r.get("mean_iou")),
        fmt_num(r.get("min_iou")),
        str(r.get("worst_image") or "—"),
        "—" if agree is None else f"{100 * agree:.3f}%",
        fmt_gate(r.get("passed")),
    ]


PARITY_ALIGN = "lllrrrrrrlrl"


def parity_table(
    rows: Sequence[dict[str, Any]], *, pairs: bool = False
) -> tuple[list[str], list[list[str]], str]:
    """Header, cells and alignment of the parity table. Against the reference the ``vs``
    column (always PyTorch) is dropped, for pairs the gate (pairs have none); ``images`` only
    shows when rows were checked on different numbers of images."""
    same_count = len({r.get("images") for r in rows}) <= 1
    drop = ({11} if pairs else {2}) | ({3} if same_count else set())
    keep = [i for i in range(len(PARITY_HEADER)) if i not in drop]
    cells = [parity_cells(r) for r in rows]
    return (
        [PARITY_HEADER[i] for i in keep],
        [[c[i] for i in keep] for c in cells],
        "".join(PARITY_ALIGN[i] for i in keep),
    )


def _machine_line(m: dict[str, Any]) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in (m.get("libraries") or {}).items() if v)
    dot = m.get("int8_dot_product")
    isa = (
        ""
        if dot is None
        else f", int8 dot product: {', '.join(m.get('int8_flags') or []) or 'none'}"
    )
    return (
        f"{m.get('cpu_model')}{isa} ({m.get('usable_cores')} usable of "
        f"{m.get('logical_cores')} cores, {m.get('memory_gb')} GiB), {m.get('os')}, "
        f"Python {m.get('python')}; {libs}"
    )


def render_markdown(results: dict[str, Any], overlays: Sequence[dict[str, Any]]) -> str:
    """``report.md``: the same tables as the HTML, overlays linked as files."""
    bench, parity, pipeline = results.get("bench"), results.get("parity"), results.get("pipeline")
    out = [
        f"# {_title(results)}",
        "",
        f"Generated {results['generated_at']}"
        + (f" by `{results['command']}`" if results.get("command") else "")
        + ".",
        "",
        f"**Machine:** {_machine_line(results['machine'])}",
        "",
    ]
    summary = results.get("summary") or []
    if rec := recommendation(summary, results.get("machine")):
        out += [f"**{rec}**", ""]
    if warning := busy_warning(bench):
        out += [f"> **Warning:** {warning}", ""]
    if pipeline:
        out += [_pipeline_md(pipeline), ""]
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
            _bench_note(bench),
            "",
            _md_table(BENCH_HEADER, (bench_cells(r) for r in _measured(bench)), "llrrrrrrrrrr"),
            "",
        ]
        out += [f"- {line}" for line in _bench_footnotes(bench)] + [""]
    if parity:
        out += [
            "## Parity against PyTorch",
            "",
            _parity_note(parity),
            "",
            _md_table(*parity_table(parity["results"])),
            "",
        ]
        if parity.get("pairs"):
            out += ["### Pairs", "", _md_table(*parity_table(parity["pairs"], pairs=True)), ""]
    if overlays:
        out += ["## Worst disagreements", "", OVERLAY_LEGEND, ""]
        for artifact, group in _by_artifact(overlays):
            out += [f"### {artifact}", ""]
            out += [f"![{o['caption']}]({o['file']})  \n{o['caption']}\n" for o in group]
    return "\n".join(out) + "\n"


def _by_artifact(
    overlays: Sequence[dict[str, Any]],
) -> list[tuple[str, list[dict[str, Any]]]]:
    """Overlays grouped under the artifact they show, in first-seen order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for o in overlays:
        groups.setdefault(str(o.get("artifact") or "overlays"), []).append(o)
    return list(groups.items())


OVERLAY_LEGEND = (
    "Red: foreground for PyTorch only (the artifact missed it); blue: foreground "
    "for the artifact only; green tint: both agree on foreground. Right of each image: the "
    "yellow box enlarged."
)


def _title(results: dict[str, Any]) -> str:
    if results.get("pipeline"):
        return "sinet-deploy pipeline report"
    if results.get("bench") and results.get("parity"):
        return "sinet-deploy benchmark and parity report"
    return "sinet-deploy benchmark report" if results.get("bench") else "sinet-deploy parity report"


def _bench_note(bench: dict[str, Any]) -> str:
    cols = bench.get("ratio_columns") or {}
    return (
        f"{bench['runs']} timed runs per row after {bench['warmup']} warm-up runs, "
        f"interleaved in {bench['rounds']} rounds (rotated order), each model in its own "
        f"process; times cover the runtime's invoke on a prepared input. "
        f"Absolute times drift 5–15% between runs on a shared machine: compare ratios. "
        f"*× PyTorch*: {cols.get('speedup_vs_torch', '')}. *vs fastest SINet*: "
        f"{cols.get('time_vs_fastest_sinet', '')}."
    )


def _measured(bench: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in bench["results"] if not r.get("skipped")]


#: Wall / CPU time per single-threaded inference above which the run is flagged as disturbed.
BUSY_THRESHOLD = 1.15
#: CPU (in cores) used by other processes, or stolen by the hypervisor, during the run above
#: which the run is flagged: on a 2-core machine even a third of a core moves results by 10%+.
OTHER_LOAD_THRESHOLD = 0.3


def busy_warning(bench: dict[str, Any] | None) -> str | None:
    """A warning when other processes competed for the CPU during the benchmark.

    Two signs: machine-wide CPU time not used by the benchmark's own processes (and hypervisor
    steal) from ``/proc/stat``, and single-threaded rows whose median wall time exceeds their
    CPU time by more than :data:`BUSY_THRESHOLD` (the worker waited for a core).
    """
    if not bench:
        return None
    reasons = []
    load = bench.get("machine_load") or {}
    others, steal = load.get("other_processes_cores"), load.get("steal_cores")
    if others is not None and others >= OTHER_LOAD_THRESHOLD:
        reasons.append(f"other processes used {others:.2f} cores on average")
    if steal is not None and steal >= OTHER_LOAD_THRESHOLD:
        reasons.append(f"the hypervisor took {steal:.2f} cores (steal time)")
    rows = [
        r
        for r in bench.get("results", [])
        if r.get("threads") == 1 and r.get("busy_factor") and r.get("provider") == "cpu"
    ]
    if rows:
        worst = max(rows, key=lambda r: r["busy_factor"])
        if worst["busy_factor"] >= BUSY_THRESHOLD:
            reasons.append(
                f"single-threaded {worst['name']} took {worst['busy_factor']:.2f}× "
                "its CPU time in wall time (1.00 = never waited for a core)"
            )
    if not reasons:
        return None
    return (
        "The machine was busy during this run: " + "; ".join(reasons) + ". Absolute times "
        "are inflated and ratios less stable than on an idle machine; re-run when it is "
        "quiet for numbers to quote."
    )


def _bench_footnotes(bench: dict[str, Any]) -> list[str]:
    """Per-row notes (what the PyTorch row times) and the rows skipped on this machine."""
    notes = [f"{r['name']}: {r['note']}" for r in bench["results"] if r.get("note")]
    by_reason: dict[str, list[str]] = {}
    for r in bench["results"]:
        if r.get("skipped"):
            by_reason.setdefault(r["skipped"], []).append(f"{r['name']} ({r['runtime']})")
    notes += [f"skipped — {reason}: {', '.join(names)}" for reason, names in by_reason.items()]
    return notes


def _parity_note(parity: dict[str, Any]) -> str:
    src = parity.get("images_source") or "images"
    return (
        f"Reference: {parity.get('reference', 'PyTorch fp32')}; {parity.get('n_images')} "
        f"images from {src}. Masks are probability > 0.5; gates from the tolerance "
        f"registry, keyed by the artifact's format and precision."
    )


EXPORT_HEADER = ("format", "precision", "artifact", "seconds", "export gate")


def export_cells(r: dict[str, Any]) -> list[str]:
    art = Path(r["artifact"]).name if r.get("artifact") else "— (not published)"
    gate = "pass" if r.get("passed") else "FAIL"
    if r.get("error"):
        gate = f"FAIL: {r['error']}"
    return [str(r["format"]), str(r["precision"]), art, f"{r.get('seconds') or 0:.1f}", gate]


def _pipeline_md(p: dict[str, Any]) -> str:
    parts = [f"Pipeline wall time (before writing this report): **{p.get('wall_s', 0):.1f} s**"]
    for stage, secs in (p.get("stages_s") or {}).items():
        parts.append(f"{stage} {secs:.1f} s")
    return " · ".join(parts)


# --------------------------------------------------------------------------------------------
# report.html


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
        f"{e(_title(results))}</title><style>{CSS}</style></head><body>",
        f"<h1>{e(_title(results))}</h1>",
        f'<p class="meta">Generated {e(results["generated_at"])}'
        + (f" by <code>{e(results['command'])}</code>" if results.get("command") else "")
        + f"<br><b>Machine:</b> {e(_machine_line(results['machine']))}</p>",
    ]
    summary = results.get("summary") or []
    if rec := recommendation(summary, results.get("machine")):
        parts.append(f'<p class="rec">{e(rec)}</p>')
    if warning := busy_warning(bench):
        parts.append(f'<p class="warn">{e(warning)}</p>')
    if pipeline:
        parts.append(f"<p>{e(_pipeline_md(pipeline)).replace('**', '')}</p>")
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
            f'<p class="note">{e(_bench_note(bench).replace("*", ""))}</p>',
            _html_table(
                BENCH_HEADER,
                ((bench_cells(r), r.get("role", "")) for r in _measured(bench)),
                "llrrrrrrrrrr",
            ),
        ]
        notes = _bench_footnotes(bench)
        if notes:
            parts.append('<p class="note">' + "<br>".join(e(n) for n in notes) + "</p>")
    if parity:
        parts += [
            "<h2>Parity against PyTorch</h2>",
            f'<p class="note">{e(_parity_note(parity))}</p>',
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
        for artifact, group in _by_artifact(overlays):
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


# --------------------------------------------------------------------------------------------
# writing


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
    overlays = [
        {**o, "path": str(out_dir / o["file"]), "artifact": r.get("artifact")}
        for r in (results.get("parity") or {}).get("results", [])
        for o in r.get("overlays") or []
    ]
    plots, note = _plots(results.get("bench"), results.get("parity"))
    paths = {
        "json": out_dir / "results.json",
        "markdown": out_dir / "report.md",
        "html": out_dir / "report.html",
    }
    write_text_atomic(paths["json"], json.dumps(results, indent=2, default=str) + "\n")
    write_text_atomic(paths["markdown"], render_markdown(results, overlays))
    write_text_atomic(paths["html"], render_html(results, overlays, plots, note))
    return paths
