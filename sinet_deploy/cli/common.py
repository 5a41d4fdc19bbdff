"""Option parsing shared by several commands (weights, config, sizes, output folders)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sinet_deploy.core.errors import UserInputError


def parse_config(items: list[str] | None) -> dict[str, Any]:
    """``--config classes=1 --config p=2`` → ``{"classes": 1, "p": 2}`` (ints where they parse)."""
    out: dict[str, Any] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            key, sep, value = part.partition("=")
            if not sep:
                raise UserInputError(
                    f"cannot read --config {part!r}",
                    hint="write it as key=value, e.g. --config classes=1",
                )
            try:
                out[key.strip()] = int(value)
            except ValueError:
                out[key.strip()] = value.strip()
    return out


def ensure_out_dir(path: Path, option: str = "--out") -> Path:
    """Create the folder ``option`` names if needed; one-line errors, naming ``option``, when
    it is a file or not writable."""
    if path.exists() and not path.is_dir():
        raise UserInputError(
            f"{option} {path} is a file, not a folder",
            hint="pass a folder path (it will be created)",
        )
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(
            f"cannot create {option} folder {path} ({exc.strerror})",
            hint="pick a folder you can write to",
        ) from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserInputError(
            f"{option} folder {path} is not writable", hint="pick a folder you can write to"
        )
    return path
