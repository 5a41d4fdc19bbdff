"""``sinet-deploy profile``: per-operator latency of a .tflite model (where the time goes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sinet_deploy.cli.output import console, print_json


def register(app: typer.Typer) -> None:
    """Add ``profile`` to ``app``."""
    app.command("profile")(profile)


def profile(
    model: Path = typer.Argument(..., help="A .tflite model."),
    against: Path = typer.Option(
        None, "--against", help="A second .tflite (e.g. the fp32 of the same export) to compare."
    ),
    runs: int = typer.Option(50, "--runs", help="Timed interleaved rounds."),
    warmup: int = typer.Option(5, "--warmup", help="Untimed rounds first."),
    threads: int = typer.Option(1, "--threads", help="Interpreter threads."),
    top: int = typer.Option(10, "--top", help="How many slowest single ops to list."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output on stdout."),
) -> None:
    """Time every operator of a LiteRT model on its own, through XNNPACK, in interleaved rounds.

    Each op is cut out into a one-op model with its own weights and quantization; the table
    sums the per-op medians by op type. With --against, both models are timed in the same
    rounds and compared type by type. Exit 2 on a bad path or a file that is not a model.
    """
    from sinet_deploy.benchmark.op_profile import profile as run_profile
    from sinet_deploy.core.errors import UserInputError

    if top < 1:
        raise UserInputError("--top must be ≥ 1")
    paths = [model] if against is None else [model, against]
    report = run_profile(paths, runs=runs, warmup=warmup, threads=threads)
    data = report.as_dict()
    if as_json:
        print_json(data)
        return
    _print(data, top)


def _print(data: dict[str, Any], top: int) -> None:
    from rich.table import Table

    models = data["models"]
    machine = data["machine"]
    dot = machine.get("int8_dot_product")
    console.print(
        f"[bold]per-op latency[/], {data['threads']} thread(s), {models[0]['rounds']} interleaved "
        f"rounds — {machine.get('cpu_model')}, int8 dot product: "
        + ("unknown" if dot is None else ", ".join(machine.get("int8_flags") or []) or "none")
    )
    names = [Path(m["model"]).name for m in models]
    labels = "AB"[: len(models)]
    for label, name in zip(labels, names, strict=True):
        console.print(f"  {label} = {name}")
    table = Table(title="time by op type (sum of one-op medians)", title_justify="left", box=None)
    table.add_column("op", no_wrap=True, min_width=17)
    for label in labels:
        table.add_column(f"{label} ops", justify="right")
        table.add_column(f"{label} ms", justify="right")
        table.add_column("share", justify="right")
    if len(models) == 2:
        table.add_column("A−B ms", justify="right")
    kinds = list(dict.fromkeys(k for m in models for k in m["by_type"]))
    for kind in kinds:
        row = [kind]
        ms = []
        for m in models:
            t = m["by_type"].get(kind)
            ms.append(t["ms"] if t else 0.0)
            row += [str(t["count"]), f"{t['ms']:.3f}", f"{t['share']:.0%}"] if t else ["—", "—", ""]
        if len(models) == 2:
            row.append(f"{ms[0] - ms[1]:+.3f}")
        table.add_row(*row)
    sums = ["sum of ops"]
    wholes = ["whole model"]
    for m in models:
        sums += ["", f"{m['sum_of_ops_ms']:.3f}", ""]
        wholes += ["", f"{m['whole_model_median_ms']:.3f}", ""]
    if len(models) == 2:
        sums.append(f"{models[0]['sum_of_ops_ms'] - models[1]['sum_of_ops_ms']:+.3f}")
        wholes.append(f"A/B ×{data['whole_model_ratio']:.2f}")
    table.add_row(*sums, style="bold")
    table.add_row(*wholes, style="bold")
    console.print(table)
    for m, name in zip(models, names, strict=True):
        timed = sorted(
            (o for o in m["ops"] if o["median_us"] is not None), key=lambda o: -o["median_us"]
        )
        slow = Table(title=f"slowest ops of {name}", title_justify="left", box=None)
        for col in ("#", "op", "output", "dtype", "µs", "xnnpack"):
            slow.add_column(col, justify="right" if col in ("#", "µs") else "left")
        for o in timed[:top]:
            slow.add_row(
                str(o["index"]),
                o["op"],
                "×".join(str(d) for d in o["shape"]),
                o["dtype"],
                f"{o['median_us']:.1f}",
                "yes" if o["xnnpack"] else "[red]no[/]",
            )
        console.print(slow)
        skipped = [o for o in m["ops"] if o["skipped"]]
        if skipped:
            console.print(
                f"[dim]{len(skipped)} op(s) of {name} not timed: "
                + ", ".join(sorted({f"{o['op']} ({o['skipped']})" for o in skipped}))
                + "[/]"
            )
    console.print(
        "[dim]One-op models pay one invoke each and lose XNNPACK's fusions (e.g. a PAD folded "
        "into the next convolution), so the sum of ops exceeds the whole model; compare types, "
        "and the whole-model medians for the real ratio.[/]"
    )
