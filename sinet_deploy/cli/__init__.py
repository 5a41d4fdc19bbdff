"""The typer CLI: the only place in the package that prints or exits."""
