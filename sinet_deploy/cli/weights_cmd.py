"""``sinet-deploy weights``: the official checkpoint's cache."""

from __future__ import annotations

from pathlib import Path

import typer

from sinet_deploy.cli.output import console, print_json

weights_app = typer.Typer(help="Manage the cached official checkpoint.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(weights_app, name="weights")


@weights_app.command("import")
def import_(path: Path = typer.Argument(..., help="A local copy of SINet_EG1800.pth.")) -> None:
    """Verify (sha256) a local official checkpoint and copy it into the cache."""
    from sinet_deploy.models.weights import import_official

    dest = import_official(path)
    console.print(f"imported {path} → {dest}")


@weights_app.command("download")
def download(url: str = typer.Option(None, help="Mirror URL (sha256 still enforced).")) -> None:
    """Download the official checkpoint from its pinned upstream URL (sha256 verified)."""
    from sinet_deploy.models.weights import download_official

    dest = download_official(url)
    console.print(f"downloaded → {dest}")


@weights_app.command("path")
def path_(as_json: bool = typer.Option(False, "--json")) -> None:
    """Where the cache is and whether the official checkpoint is in it."""
    from sinet_deploy.models.weights import cached_official, official_path

    cached = cached_official()
    data = {"path": str(official_path()), "cached": cached is not None}
    if as_json:
        print_json(data)
    else:
        console.print(f"{data['path']}  ({'cached' if cached else 'not cached'})")
