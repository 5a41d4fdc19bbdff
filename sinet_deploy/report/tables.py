"""Headers, cells and alignments of the report's tables, shared by ``report.md``,
``report.html`` and the console tables of the commands."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sinet_deploy.report.formatting import fmt_bytes, fmt_gate, fmt_ms, fmt_num, fmt_ratio, fmt_sci

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
    "GMAC/s",
    "of ceiling",
)
#: Alignment of :data:`BENCH_HEADER`'s columns.
BENCH_ALIGN = "llrrrrrrrrrrrr"


def fmt_share(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.0f}%"


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
        "—" if r.get("gmac_per_s") is None else f"{r['gmac_per_s']:.1f}",
        fmt_share(r.get("ceiling_share")),
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


EXPORT_HEADER = ("format", "precision", "artifact", "seconds", "export gate")


def export_cells(r: dict[str, Any]) -> list[str]:
    art = Path(r["artifact"]).name if r.get("artifact") else "— (not published)"
    gate = "pass" if r.get("passed") else "FAIL"
    if r.get("error"):
        gate = f"FAIL: {r['error']}"
    return [str(r["format"]), str(r["precision"]), art, f"{r.get('seconds') or 0:.1f}", gate]
