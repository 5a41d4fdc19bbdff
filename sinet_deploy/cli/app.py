"""``sinet-deploy`` entry point.

Each command group lives in its own module with a ``register(app)`` function; those modules
import heavy libraries only inside their command functions so that ``--help`` is instant.
"""

from __future__ import annotations

import importlib
import sys

import typer

from sinet_deploy.core.errors import SinetDeployError

app = typer.Typer(
    name="sinet-deploy",
    help="Convert SINet to ONNX/TFLite/CoreML, benchmark it, and prove every runtime computes "
    "the same thing.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

#: Modules under ``sinet_deploy.cli`` that contribute commands, in help order.
COMMAND_MODULES = (
    "info_cmd",
    "predict_cmd",
    "weights_cmd",
    "export_cmd",
    "parity_cmd",
    "bench_cmd",
    "pipeline_cmd",
    "device_cmd",
    "android_cmd",
    "env_cmd",
    "diagnose_cmd",
    "profile_cmd",
)


@app.callback()
def _global_options(
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="Only results, warnings and errors: no progress lines."
    ),
) -> None:
    """Convert SINet to ONNX/TFLite/CoreML, benchmark it, and prove every runtime computes the
    same thing."""
    from sinet_deploy.cli.output import set_quiet

    set_quiet(quiet)


for _name in COMMAND_MODULES:
    importlib.import_module(f"sinet_deploy.cli.{_name}").register(app)


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; map library errors to one line and the documented exit code.

    Usage errors (unknown option, missing argument) are typer's own: message and exit 2.
    """
    try:
        app(args=argv, prog_name="sinet-deploy")
    except SinetDeployError as exc:
        from sinet_deploy.cli.output import error

        error(exc.one_line())
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as exc:
        # typer turns Ctrl-C into a silent exit 130 (KeyboardInterrupt -> Exit(130) ->
        # sys.exit); find that chain to say what happened.
        if exc.code == 130 and isinstance(
            getattr(exc.__context__, "__cause__", None), KeyboardInterrupt
        ):
            _interrupted()
        raise


def _interrupted() -> None:
    """Ctrl-C: the library's finally blocks have already removed partial files and work
    folders on the way up; say so in one line and exit like a shell does (128 + SIGINT)."""
    from sinet_deploy.cli.output import err_console

    err_console.print("interrupted", soft_wrap=True)
    sys.exit(130)
