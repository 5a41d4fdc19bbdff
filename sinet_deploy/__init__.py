"""sinet-deploy: SINet from PyTorch weights to phone-ready models, with parity checks.

The API: :func:`predict`, :func:`export`, :func:`load_session`, :func:`parity`, :func:`bench`
(see :mod:`sinet_deploy.api`) and :func:`load_model`. Heavy libraries (torch, TensorFlow,
coremltools) are imported lazily so that importing the package and ``sinet-deploy --help`` stay
instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sinet_deploy.core.version import __version__

if TYPE_CHECKING:  # pragma: no cover
    import torch


def load_model(
    weights: str = "official", *, deploy: bool = False, **config: Any
) -> torch.nn.Module:
    """The reference SINet in eval mode (see ``sinet_deploy.models.load_model``)."""
    from sinet_deploy.models import load_model as _load

    return _load(weights, deploy=deploy, **config)


#: The Python API (``sinet_deploy.api``), loaded on first use so ``import sinet_deploy`` and
#: ``sinet-deploy --help`` stay instant.
_API = ("predict", "export", "load_session", "parity", "bench", "Prediction", "ImageSession")


def __getattr__(name: str) -> Any:
    if name in _API:
        from sinet_deploy import api

        return getattr(api, name)
    raise AttributeError(f"module 'sinet_deploy' has no attribute {name!r}")


__all__ = ["__version__", "load_model", *_API]
