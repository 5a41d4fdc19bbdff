"""The sentences around the tables: title, machine line, how the benchmark was run, what
parity compares against, and the warning for a busy machine. Shared by ``report.md`` and
``report.html``."""

from __future__ import annotations

from typing import Any


def report_title(results: dict[str, Any]) -> str:
    if results.get("pipeline"):
        return "sinet-deploy pipeline report"
    if results.get("bench") and results.get("parity"):
        return "sinet-deploy benchmark and parity report"
    return "sinet-deploy benchmark report" if results.get("bench") else "sinet-deploy parity report"


def machine_line(m: dict[str, Any]) -> str:
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


def bench_note(bench: dict[str, Any]) -> str:
    cols = bench.get("ratio_columns") or {}
    return (
        f"{bench['runs']} timed runs per row after {bench['warmup']} warm-up runs, "
        f"interleaved in {bench['rounds']} rounds (rotated order), each model in its own "
        f"process; times cover the runtime's invoke on a prepared input. "
        f"Absolute times drift 5–15% between runs on a shared machine: compare ratios. "
        f"*× PyTorch*: {cols.get('speedup_vs_torch', '')}. *vs fastest SINet*: "
        f"{cols.get('time_vs_fastest_sinet', '')}."
    )


def measured_rows(bench: dict[str, Any]) -> list[dict[str, Any]]:
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


def ceiling_lines(bench: dict[str, Any]) -> list[str]:
    """What the roofline columns mean and each runtime's measured ceiling, one line each."""
    ceilings = [c for c in bench.get("ceilings") or [] if c.get("gmac_per_s")]
    if not ceilings:
        return []
    cols = bench.get("roofline_columns") or {}
    lines = [f"GMAC/s: {cols.get('gmac_per_s', '')}; of ceiling: {cols.get('ceiling_share', '')}."]
    for c in ceilings:
        threads = f"{c['threads']} thread{'s' if c['threads'] != 1 else ''}"
        lines.append(f"{c['name']}: {c['gmac_per_s']:.1f} GMAC/s at {threads}")
    return lines


def bench_footnotes(bench: dict[str, Any]) -> list[str]:
    """Per-row notes (what the PyTorch row times), the runtimes' ceilings and the rows
    skipped on this machine."""
    notes = [f"{r['name']}: {r['note']}" for r in bench["results"] if r.get("note")]
    notes += ceiling_lines(bench)
    by_reason: dict[str, list[str]] = {}
    for r in bench["results"]:
        if r.get("skipped"):
            by_reason.setdefault(r["skipped"], []).append(f"{r['name']} ({r['runtime']})")
    notes += [f"skipped — {reason}: {', '.join(names)}" for reason, names in by_reason.items()]
    return notes


def parity_note(parity: dict[str, Any]) -> str:
    src = parity.get("images_source") or "images"
    return (
        f"Reference: {parity.get('reference', 'PyTorch fp32')}; {parity.get('n_images')} "
        f"images from {src}. Masks are probability > 0.5; gates from the tolerance "
        f"registry, keyed by the artifact's format and precision."
    )


def pipeline_line(p: dict[str, Any]) -> str:
    parts = [f"Pipeline wall time (before writing this report): **{p.get('wall_s', 0):.1f} s**"]
    for stage, secs in (p.get("stages_s") or {}).items():
        parts.append(f"{stage} {secs:.1f} s")
    return " · ".join(parts)
