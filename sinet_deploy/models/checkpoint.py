"""Safe checkpoint reading and compatibility checks.

Every load goes through ``torch.load(..., weights_only=True)``: a pickle that would construct
arbitrary Python objects is refused by PyTorch's restricted unpickler before anything runs.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sinet_deploy.errors import CheckpointError
from sinet_deploy.models.config import SINetConfig

if TYPE_CHECKING:
    import torch

#: Wrappers that training scripts put around a state dict.
_NESTED_KEYS = ("state_dict", "model", "model_state_dict", "net")


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint as a flat ``{key: tensor}`` dict, never executing code from it.

    Accepts a plain state dict, one under ``state_dict``/``model``, and DataParallel's
    ``module.`` prefixes.
    """
    import torch

    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)", hint="re-download it")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        if "Weights only load failed" in text or "GLOBAL" in text or "global" in text:
            raise CheckpointError(
                f"{path} contains Python objects that would run code when unpickled; refused "
                "(weights_only=True)",
                hint="re-save it as a plain state dict: torch.save(model.state_dict(), PATH)",
            ) from None
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint ({_short(text)})",
            hint="pass a .pth written by torch.save",
        ) from None
    except (EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"checkpoint {path} is truncated or corrupt ({_short(str(exc))})",
            hint="re-download or re-copy it",
        ) from None
    except (
        RuntimeError,
        ValueError,
        OSError,
        UnicodeDecodeError,
        KeyError,
        AttributeError,
        IndexError,
        TypeError,
    ) as exc:
        text = _short(str(exc))
        if "invalid load key" in text or "magic number" in text:
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint ({text})",
                hint="pass a .pth written by torch.save",
            ) from None
        raise CheckpointError(
            f"cannot read checkpoint {path}: {text}", hint="the file may be truncated or corrupt"
        ) from None
    return _flatten(obj, path)


def _short(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "unknown error"
    return first[:160]


def _flatten(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    import torch

    if isinstance(obj, dict):
        for key in _NESTED_KEYS:
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(
            f"{path} does not hold a state dict (found {type(obj).__name__})",
            hint="save model.state_dict(), not the model or optimizer",
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{path}: entry {key!r} is a {type(value).__name__}, not a tensor",
                hint="save model.state_dict()",
            )
        name = str(key)
        while name.startswith("module."):
            name = name[len("module.") :]
        out[name] = value
    return out


def infer_config(state: dict[str, torch.Tensor]) -> dict[str, int] | None:
    """``classes, p, q, chnn`` of the SINet a state dict was trained with, where readable.

    Pooling factors carry no parameters, so branch configs cannot be read from weights.
    """
    try:
        classes = int(state["classifier.1.weight"].shape[0])
        p = 1 + max(
            int(m.group(1)) for k in state if (m := re.match(r"encoder\.level2\.(\d+)\.", k))
        )
        q = 1 + max(
            int(m.group(1)) for k in state if (m := re.match(r"encoder\.level3\.(\d+)\.", k))
        )
        d2 = int(state["encoder.level2.0.c1.conv.weight"].shape[0]) * 2
    except (KeyError, ValueError):
        return None
    return {"classes": classes, "p": p, "q": q, "chnn": (d2 - 48) // 4 + 1}


def check_fits(
    state: dict[str, torch.Tensor],
    model_state: dict[str, torch.Tensor],
    cfg: SINetConfig,
    path: Path,
) -> None:
    """Raise :class:`CheckpointError` naming the mismatch and the config that would fit."""
    missing = [k for k in model_state if k not in state]
    unexpected = [k for k in state if k not in model_state]
    wrong = [
        k
        for k in model_state
        if k in state and tuple(state[k].shape) != tuple(model_state[k].shape)
    ]
    if not (missing or unexpected or wrong):
        return
    detail = []
    if wrong:
        k = wrong[0]
        detail.append(
            f"{k} is {list(state[k].shape)} in the checkpoint but "
            f"{list(model_state[k].shape)} in the model"
        )
    if missing:
        detail.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
    if unexpected:
        detail.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
    if len(missing) > len(model_state) // 2:
        raise CheckpointError(
            f"{path} is not a SINet checkpoint: " + "; ".join(detail),
            hint="pass a checkpoint trained with the authors' SINet code",
        )
    fit = infer_config(state)
    hint = "check the config options (classes, p, q, chnn)"
    if fit is not None:
        opts = ",".join(f"{k}={v}" for k, v in fit.items())
        hint = f"the checkpoint fits {opts}: pass --config {opts} (Python: load_model(..., {opts}))"
    raise CheckpointError(
        f"{path} does not fit SINet({cfg.summary()}): " + "; ".join(detail), hint=hint
    )
