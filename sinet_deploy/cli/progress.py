"""A rich progress bar on stderr for long commands (bench, parity, pipeline).

The library reports progress through a ``(description, done, total)`` callback and never prints;
this turns the callback into a transient bar that disappears when the command is done, so stdout
(``--json``) stays clean.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sinet_deploy.cli.output import err_console

ProgressFn = Callable[[str, int, int], None]


@contextmanager
def progress_bar() -> Iterator[ProgressFn]:
    """Yield a progress callback bound to a transient stderr bar (a no-op when stderr is not
    a terminal: logs and CI output stay free of bar remnants)."""
    if not err_console.is_terminal:
        yield lambda description, done, total: None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description}", style="cyan"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("starting", total=None)

        def update(description: str, done: int, total: int) -> None:
            bar.update(task, description=description[:60], completed=done, total=total)

        yield update
