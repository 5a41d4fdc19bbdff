"""``sinet-deploy parity``: every artifact against the PyTorch fp32 reference; exit 3 on a failed
gate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sinet_deploy.cli.output import err_console, print_json
from sinet_deploy.core.errors import ParityGateError
from sinet_deploy.verify.parity_paths import run_parity_paths


def register(app: typer.Typer) -> None:
    app.command("parity")(parity)


def print_parity_table(data: dict[str, Any]) -> None:
    from rich.markup import escape

    from sinet_deploy.cli.tables import print_table, table_console
    from sinet_deploy.report.tables import parity_table

    for title, rows, pairs in (
        (
            f"Parity against {data['reference']} on {data['n_images']} images",
            data["results"],
            False,
        ),
        ("Pairs (no gate)", data.get("pairs") or [], True),
    ):
        if rows:
            header, cells, align = parity_table(rows, pairs=pairs)
            # drop first: worst image, mean |Δp|, SQNR, runtime, agreement
            drop = [
                header.index(h)
                for h in ("worst image", "mean |Δp|", "SQNR dB", "runtime", "agreement")
            ]
            print_table(title, header, cells, align, drop_order=drop)
    out = table_console()
    for r in data["results"]:
        if r.get("passed") is False:
            out.print(
                f"[red]{escape(r['artifact'])}[/]: " + escape("; ".join(r.get("failures") or []))
            )


def parity(
    artifacts: list[Path] = typer.Argument(..., help="Artifacts to check."),
    images: Path = typer.Option(
        None, "--images", help="Folder of images (default: the built-in public-domain portraits)."
    ),
    weights: str = typer.Option("official", "--weights", help="Weights of the PyTorch reference."),
    pairs: bool = typer.Option(False, "--pairs", help="Also compare every two artifacts."),
    threads: int = typer.Option(None, "--threads", help="Runtime threads (default: all cores)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
    report: Path = typer.Option(
        None,
        "--report",
        help="Write report.html, report.md, "
        "results.json and overlays of the worst disagreements here.",
    ),
) -> None:
    """Every artifact against the PyTorch fp32 reference; exit 3 when a gate fails."""
    result = _run(artifacts, images, weights, pairs, threads, report)
    if report is not None:
        _write(result, report)
    lean = result.to_dict(per_image=False)
    if as_json:
        print_json(lean)
    else:
        print_parity_table(lean)
    if not result.passed:
        raise _gate_error(result, lean)


def _run(
    artifacts: list[Path],
    images: Path | None,
    weights: str,
    pairs: bool,
    threads: int | None,
    report: Path | None,
) -> Any:
    """Check the options, then the matrix with a progress bar (overlays only for a report)."""
    from sinet_deploy.cli.common import ensure_out_dir
    from sinet_deploy.cli.progress import progress_bar

    if threads is not None:
        from sinet_deploy.core.machine import check_threads

        check_threads([threads])
    if report is not None:
        ensure_out_dir(report, option="--report")
    with progress_bar() as progress:
        return run_parity_paths(
            artifacts,
            images=images,
            weights=weights,
            pairs=pairs,
            overlay_dir=report / "overlays" if report else None,
            threads=threads,
            progress=progress,
        )


def _write(result: Any, report: Path) -> None:
    from sinet_deploy.cli.bench_cmd import command_line
    from sinet_deploy.core.machine import machine_info
    from sinet_deploy.report.write import write_report

    full = result.to_dict(per_image=True)
    paths = write_report(report, machine=machine_info(), parity=full, command=command_line())
    err_console.print(f"report: {paths['html']}", soft_wrap=True)


def _gate_error(result: Any, lean: dict[str, Any]) -> ParityGateError:
    return ParityGateError(
        f"{len(result.failed)} of {len(result.results)} artifact(s) failed the parity gate: "
        + ", ".join(result.failed),
        metrics={r["artifact"]: r for r in lean["results"] if r["passed"] is False},
        hint="each failing row's `failures` says which bound; re-export, or check the "
        "artifact was made from these weights",
    )
