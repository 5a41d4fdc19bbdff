"""What the two full-integer int8 edges share: one calibration set per export, the I/O check."""

from __future__ import annotations

from typing import Any

from sinet_deploy.convert.registry import ExportContext
from sinet_deploy.core.errors import UserInputError


def calibration_for(ctx: ExportContext) -> Any:
    """The export's :class:`~.calibration.CalibrationSet`, built once and cached.

    Built from ``--calib DIR`` or, without it, from the packaged public-domain portraits (with
    a warning, recorded in the manifest, that recommends ``--calib``).
    """
    from sinet_deploy.convert.calibration import load_calibration

    key = "int8:calibration"
    if key not in ctx.cache:
        ctx.cache[key] = load_calibration(ctx.calib, ctx.input_size)
    return ctx.cache[key]


def check_io(ctx: ExportContext) -> None:
    """Full-integer int8 exists for the image contract only."""
    if ctx.io != "image":
        raise UserInputError(
            "full-integer int8 export needs --io image",
            hint="the raw contract's float logits have no int8 form here; "
            "use --io image, or int8w for weight-only int8",
        )


def calibration_options(calib: Any) -> dict[str, Any]:
    """The manifest's record of the calibration set."""
    return {**calib.describe(), "warnings": list(calib.warnings)}
