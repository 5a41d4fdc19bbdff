"""Console tables that fit the terminal: columns are dropped, least important first, rather
than squeezed until every cell reads "…" (rich's behaviour on a narrow terminal)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sinet_deploy.cli.output import console


def table_console() -> Any:
    """The stdout console: the terminal's width, or a very wide one (no column dropped, no
    cell cut) when stdout is a pipe or a file."""
    return console


def fit_columns(
    header: Sequence[str], rows: Sequence[Sequence[str]], drop_order: Sequence[int], width: int
) -> list[int]:
    """Indices of the columns to show: all, minus those in ``drop_order`` (dropped in that
    order) until the table's estimated width fits ``width``."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) + 3 for i, h in enumerate(header)]
    keep = list(range(len(header)))
    for i in drop_order:
        if sum(widths[k] for k in keep) + 1 <= width:
            break
        keep.remove(i)
    return keep


def print_table(
    title: str,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    align: str,
    *,
    drop_order: Sequence[int] = (),
    styles: Sequence[str] | None = None,
) -> None:
    """Print a rich table of plain-text cells (escaped here; ``pass``/``FAIL`` coloured)."""
    from rich.markup import escape
    from rich.table import Table

    out = table_console()
    keep = fit_columns(header, rows, drop_order, out.width)
    table = Table(title=title, title_justify="left")
    for i in keep:
        table.add_column(header[i], justify="right" if align[i] == "r" else "left", no_wrap=True)
    for n, row in enumerate(rows):
        cells = []
        for i in keep:
            c = escape(row[i])
            if row[i] == "pass":
                c = "[green]pass[/]"
            elif row[i].startswith("FAIL") or row[i].endswith("FAIL"):
                c = f"[bold red]{c}[/]"
            cells.append(c)
        table.add_row(*cells, style=(styles[n] if styles else "") or None)
    out.print(table)
    if len(keep) < len(header):
        hidden = ", ".join(header[i] for i in range(len(header)) if i not in keep)
        out.print(f"[dim]not shown at this width: {escape(hidden)} (see --json or --report)[/]")
