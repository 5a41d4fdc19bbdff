"""``sinet-deploy info``: what a checkpoint is (parameters, MACs, sha256, compatibility)."""

from __future__ import annotations

from typing import Any, cast

import typer

from sinet_deploy.cli.output import console, print_json


def register(app: typer.Typer) -> None:
    app.command("info")(info)


def info(
    weights: str = typer.Option("official", help="'official', 'random' or a checkpoint path."),
    input_size: str = typer.Option("224x224", "--input-size", help="HxW, multiples of 32."),
    config: list[str] = typer.Option(None, "--config", help="SINet options, e.g. classes=1."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Also the per-stage branch configuration."
    ),
) -> None:
    """Parameters, MACs, checkpoint sha256 and compatibility of a SINet checkpoint."""
    from sinet_deploy.cli.common import parse_config
    from sinet_deploy.core.fileio import file_sha256
    from sinet_deploy.models import load_model
    from sinet_deploy.models.config import SINetConfig, parse_input_size
    from sinet_deploy.models.sinet import count_macs, count_parameters
    from sinet_deploy.models.weights import OFFICIAL_SHA256, resolve_checkpoint

    h, w = parse_input_size(input_size)
    opts = parse_config(config)
    model = load_model(weights, **opts)
    cfg = cast(SINetConfig, model.config)
    sha = None if weights == "random" else file_sha256(resolve_checkpoint(weights))
    n_params, macs = count_parameters(model), count_macs(model, h, w)
    data: dict[str, Any] = {
        "weights": weights,
        "checkpoint_sha256": sha,
        "official_checkpoint": sha == OFFICIAL_SHA256,
        "compatible": True,  # load_model raised otherwise, naming the config that would fit
        # The branch arrays are ~90 lines of JSON that few need: --verbose adds them.
        "config": {k: v for k, v in cfg.to_dict().items() if verbose or k != "branches"},
        "config_summary": cfg.summary(),
        "num_parameters": n_params,
        "macs": macs,
        "input_size": [h, w],
        "input": "normalised BGR NCHW float32 (checkpoint contract); artifacts take uint8 RGB NHWC",
        "output": f"{cfg.classes}-class logits NCHW; class 1 is the person",
    }
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]SINet[/] {cfg.summary()}  ({weights})")
    console.print(f"  parameters   {n_params:,}")
    console.print(f"  MACs         {macs / 1e9:.4f} G at {h}x{w}")
    console.print(
        f"  sha256       {sha or '-'}" + ("  (official)" if data["official_checkpoint"] else "")
    )
    console.print("  compatible   yes (loaded with strict=True)")
    if verbose:
        for stage, branches in enumerate(cfg.to_dict().get("branches") or []):
            console.print(f"  stage {stage}      {branches}")
