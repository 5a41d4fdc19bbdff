"""Console helpers shared by the commands: one rich console for stdout, one for stderr.

Output reads well anywhere: on a terminal, colour and transient bars; in a pipe or a file (CI
logs, ``| tee``), plain lines at full width with no ``…`` truncation and no bar remnants.
``NO_COLOR`` (https://no-color.org) is honoured by rich itself; ``--quiet`` keeps only results,
warnings and errors.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

#: Width used when the stream is not a terminal: wide enough that no table cell or line is
#: cut (rich would assume 80 columns and squeeze cells into "…").
PIPE_WIDTH = 1000


def _console(stderr: bool) -> Console:
    probe = Console(stderr=stderr)
    width = None if probe.is_terminal else PIPE_WIDTH
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


console = _console(stderr=False)
err_console = _console(stderr=True)

_state = {"quiet": False}


def set_quiet(quiet: bool) -> None:
    """``--quiet``: no progress and no informational lines (results, warnings, errors stay)."""
    _state["quiet"] = quiet


def is_quiet() -> bool:
    return _state["quiet"]


def error(message: str) -> None:
    """One line on stderr, no traceback (CONTRACTS.md: a user mistake prints one line)."""
    err_console.print(f"[bold red]error:[/] {message}", soft_wrap=True)


def warn(message: str) -> None:
    err_console.print(f"[yellow]warning:[/] {message}", soft_wrap=True)


def note(message: str) -> None:
    """An informational line on stderr (silenced by ``--quiet``)."""
    if not is_quiet():
        err_console.print(message, soft_wrap=True)


def print_json(data: Any) -> None:
    """Machine-readable output on stdout, nothing else mixed in."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
