"""The joined summary (one line per artifact: size, latency, FPS, IoU, gate) and the
artifact it recommends shipping."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sinet_deploy.report.formatting import fmt_ms, fmt_num


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
