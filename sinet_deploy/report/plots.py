"""Plots of ``report.html``: latency per model and mask IoU per image, as PNG bytes.

matplotlib without pyplot: no global backend state in the caller's process. matplotlib is an
optional dependency (``sinet-deploy[report]``); without it the report says the plots are
omitted."""

from __future__ import annotations

import io
from typing import Any

#: Colours per row role, shared by the plots and the HTML badges.
ROLE_COLOURS = {"reference": "#7f7f7f", "sinet": "#1f77b4", "peer": "#ff7f0e"}


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


def render_plots(
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
