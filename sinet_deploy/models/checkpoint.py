"""Safe checkpoint reading and compatibility checks.

The format is told by the file's first bytes, not its name: a safetensors file (an 8-byte
header length, then a JSON header) is read with ``safetensors``; a PyTorch zip archive or legacy
pickle goes through ``torch.load(..., weights_only=True)``, so a pickle that would construct
arbitrary Python objects is refused by PyTorch's restricted unpickler before anything runs;
anything else (text, HTML from a failed download…) is "not a PyTorch checkpoint". Every tensor
must be finite: a NaN weight makes every mask silently empty.
"""

from __future__ import annotations

import json
import pickle
import re
import struct
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sinet_deploy.core.errors import CheckpointError
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

    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes)", hint="re-download it")
    with open(path, "rb") as fh:
        head = fh.read(4096)
    kind = sniff(head, size)
    if kind == "safetensors":
        state = _flatten(_load_safetensors(path), path)
        check_finite(state, path)
        return state
    if kind not in ("zip", "pickle"):
        what = "a text file" if kind == "text" else "an unrecognised binary file"
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (it is {what})",
            hint="pass a .pth/.pt written by torch.save or a .safetensors file",
        )
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
        if "PytorchStreamReader" in text:  # miniz's long internal message says no more
            text = "its zip container is damaged"
        if "invalid load key" in text or "magic number" in text:
            raise CheckpointError(
                f"{path} is not a PyTorch checkpoint ({text})",
                hint="pass a .pth written by torch.save",
            ) from None
        raise CheckpointError(
            f"cannot read checkpoint {path}: {text}", hint="the file may be truncated or corrupt"
        ) from None
    state = _flatten(obj, path)
    check_finite(state, path)
    return state


def sniff(head: bytes, size: int) -> str:
    """``"safetensors"``, ``"zip"`` (torch.save), ``"pickle"`` (legacy torch.save), ``"text"``
    or ``"unknown"``, from the first bytes of a file of ``size`` bytes."""
    if len(head) >= 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if 2 <= header_len <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head.startswith(b"PK\x03\x04"):
        return "zip"
    if head[:1] == b"\x80":  # pickle protocol 2+ (torch.save without the zip container)
        return "pickle"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        # a multi-byte character cut by the 4096-byte read is still text
        try:
            text = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return "unknown"
    if all(c.isprintable() or c in "\r\n\t" for c in text):
        return "text"
    return "unknown"


def _load_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"safetensors checkpoint {path} is truncated or corrupt ({_short(str(exc))})",
            hint="re-download or re-copy it",
        ) from None


def check_finite(state: dict[str, torch.Tensor], path: Path) -> None:
    """:class:`CheckpointError` naming the first tensor that holds a NaN or an infinity."""
    import torch

    for name, tensor in state.items():
        if not tensor.is_floating_point() and not tensor.is_complex():
            continue
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            nan = int(torch.isnan(tensor).sum())
            inf = int((~finite).sum()) - nan
            raise CheckpointError(
                f"{path}: tensor {name!r} holds non-finite values ({nan} NaN, {inf} inf)",
                hint="the checkpoint is corrupt or from a diverged training run; use another",
            )


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
    tried = {"classes": cfg.classes, "p": cfg.p, "q": cfg.q, "chnn": cfg.chnn}
    if fit == tried:  # suggesting the config that just failed would send the user in circles
        hint = (
            "no classes/p/q/chnn setting fits every tensor: the checkpoint was edited or comes "
            "from other code than the authors' SINet"
        )
    elif fit is not None:
        opts = ",".join(f"{k}={v}" for k, v in fit.items())
        hint = f"the checkpoint fits {opts}: pass --config {opts} (Python: load_model(..., {opts}))"
    raise CheckpointError(
        f"{path} does not fit SINet({cfg.summary()}): " + "; ".join(detail), hint=hint
    )
