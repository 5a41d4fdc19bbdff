"""Commands of this group are being built (see the open issues); nothing is registered yet."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to ``app``."""
