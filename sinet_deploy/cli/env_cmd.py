"""``sinet-deploy env``: versions of every component, for bug reports."""

from __future__ import annotations

import typer

from sinet_deploy.cli.output import console, print_json


def register(app: typer.Typer) -> None:
    app.command("env")(env)


def env(as_json: bool = typer.Option(False, "--json")) -> None:
    """Versions of Python, the converters, the runtimes and adb."""
    from sinet_deploy.core.environment import environment_report

    data = environment_report()
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if isinstance(value, dict):
            console.print(f"[bold]{key}[/]")
            for k, v in value.items():
                console.print(f"  {k:<16} {v if v is not None else '[dim]not installed[/]'}")
        else:
            console.print(f"[bold]{key:<18}[/] {value}")
