"""sinet-deploy: SINet from PyTorch weights to phone-ready models, with parity checks.

Heavy libraries (torch, TensorFlow, coremltools) are imported lazily so that importing the
package and ``sinet-deploy --help`` stay instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    import torch


def load_model(
    weights: str = "official", *, deploy: bool = False, **config: Any
) -> torch.nn.Module:
    """The reference SINet in eval mode (see ``sinet_deploy.models.load_model``)."""
    from sinet_deploy.models import load_model as _load

    return _load(weights, deploy=deploy, **config)


__all__ = ["__version__", "load_model"]
