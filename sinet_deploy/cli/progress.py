"""Progress of long commands (export, bench, parity, pipeline) on stderr.

The library reports progress through a ``(description, done, total)`` callback and never prints.
On a terminal this becomes a transient rich bar naming the current step; in a pipe or a file
(CI logs, ``| tee``) it becomes one plain timestamped line per step, so a log shows what ran
and for how long; ``--quiet`` silences both. stdout (``--json``) stays clean either way.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sinet_deploy.cli.output import err_console, is_quiet

ProgressFn = Callable[[str, int, int], None]


#: What a plain progress line looks like (tests and log readers can tell them from results).
PLAIN_LINE = r"^\d\d:\d\d:\d\d (\[\d+/\d+\] )?"


#: Seconds between two plain lines of a repeated step: a benchmark's hundreds of interleaved
#: rounds, or parity's one step per image, would otherwise print a line each.
REPEAT_INTERVAL_S = 10.0
#: The steps that repeat (first word of the description).
REPEATED_STEPS = frozenset({"round", "warm-up", "parity"})


def plain_progress(
    clock: Callable[[], float] = time.time, interval_s: float = REPEAT_INTERVAL_S
) -> ProgressFn:
    """A callback printing ``HH:MM:SS [done/total] description`` when the step changes; a
    repeated step (:data:`REPEATED_STEPS`) at most every ``interval_s`` while it repeats."""
    last: dict[str, object] = {"description": None, "kind": None, "at": -float("inf")}

    def update(description: str, done: int, total: int) -> None:
        if description == last["description"]:
            return
        kind = description.split(" ", 1)[0]
        now = clock()
        repeating = kind == last["kind"] and kind in REPEATED_STEPS
        recent = now - float(last["at"]) < interval_s  # type: ignore[arg-type]
        if repeating and recent and not description.endswith(" done"):
            return
        last.update(description=description, kind=kind, at=now)
        stamp = time.strftime("%H:%M:%S", time.localtime(now))
        count = f"[{min(done + 1, total)}/{total}] " if total else ""
        err_console.print(f"{stamp} {count}{description}", soft_wrap=True, markup=False)

    return update


@contextmanager
def progress_bar() -> Iterator[ProgressFn]:
    """Yield a progress callback: a transient bar on a terminal, plain lines elsewhere."""
    if is_quiet():
        yield lambda description, done, total: None
        return
    if not err_console.is_terminal:
        yield plain_progress()
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
            bar.update(task, description=description, completed=done, total=total)

        yield update
