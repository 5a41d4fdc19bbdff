"""SINet's configuration: a small frozen dataclass, validated, with the official values."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from sinet_deploy.core.errors import InputSizeError, UserInputError

Branch = tuple[int, int]  # (kernel size k, pooling factor a)
ModuleBranches = tuple[Branch, Branch]

#: Branch configs of the released model (SINET_SPEC.md), level 2 first then level 3.
OFFICIAL_BRANCHES: tuple[ModuleBranches, ...] = (
    ((3, 1), (5, 1)),
    ((3, 1), (3, 1)),
    ((3, 1), (5, 1)),
    ((3, 1), (3, 1)),
    ((5, 1), (3, 2)),
    ((5, 2), (3, 4)),
    ((3, 1), (3, 1)),
    ((5, 1), (5, 1)),
    ((3, 2), (3, 4)),
    ((3, 1), (5, 2)),
)


_DEFAULTS = {"classes": 2, "p": 2, "q": 8, "chnn": 1}


@dataclass(frozen=True)
class SINetConfig:
    """Hyper-parameters of the network (the authors' ``classes, p, q, chnn`` and branch configs).

    ``branches`` holds one ((k1, a1), (k2, a2)) pair per S2 module: the ``p`` level-2 modules
    first, then the ``q`` level-3 ones.
    """

    classes: int = 2
    p: int = 2
    q: int = 8
    chnn: int = 1
    branches: tuple[ModuleBranches, ...] = field(default=OFFICIAL_BRANCHES)

    def __post_init__(self) -> None:
        for name in ("classes", "p", "q", "chnn"):
            value = getattr(self, name)
            # bool is an int to Python, but classes=True is surely a mistake
            if not isinstance(value, int) or isinstance(value, bool):
                raise UserInputError(
                    f"SINet config option {name}={value!r} is not a whole number",
                    hint=f"e.g. --config {name}={_DEFAULTS[name]} (the official value)",
                )
        if self.classes < 1 or self.p < 1 or self.q < 1 or self.chnn < 1:
            raise UserInputError(
                f"invalid SINet config {self.summary()}: classes, p, q, chnn must be positive"
            )
        if len(self.branches) != self.p + self.q:
            raise UserInputError(
                f"SINet config has {len(self.branches)} branch configs for p + q = "
                f"{self.p + self.q} S2 modules",
                hint="give one ((k1, a1), (k2, a2)) per module",
            )
        for pair in self.branches:
            for k, a in pair:
                if k % 2 != 1 or a not in (1, 2, 4):
                    raise UserInputError(
                        f"bad S2 branch (k={k}, a={a}): k must be odd, a one of 1, 2, 4"
                    )

    @property
    def d1(self) -> int:
        return 16

    @property
    def d2(self) -> int:
        return 48 + 4 * (self.chnn - 1)

    @property
    def d3(self) -> int:
        return 96 + 4 * (self.chnn - 1)

    def summary(self) -> str:
        return f"classes={self.classes}, p={self.p}, q={self.q}, chnn={self.chnn}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> SINetConfig:
        """Build from keyword options; unknown keys are an error, not silently ignored."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise UserInputError(
                f"unknown SINet config option(s): {', '.join(unknown)}",
                hint=f"known options: {', '.join(sorted(known))}",
            )
        if "branches" in kwargs:
            try:
                kwargs["branches"] = tuple(
                    tuple((int(k), int(a)) for k, a in m) for m in kwargs["branches"]
                )
            except (TypeError, ValueError):
                raise UserInputError(
                    f"SINet config option branches={kwargs['branches']!r} is not a list of "
                    "((k1, a1), (k2, a2)) pairs",
                    hint="set branches from Python (load_model(..., branches=...))",
                ) from None
        return cls(**kwargs)


OFFICIAL_CONFIG = SINetConfig()

#: The deepest branches pool 4x at 1/8 resolution, so sizes must divide by 32.
SIZE_MULTIPLE = 32


#: Accepted sides. Below 32 the deepest stage has no pixel left; above 2048 the model sees
#: far more context than it was trained with (224x224) and the activations alone need GBs.
MIN_SIDE, MAX_SIDE = SIZE_MULTIPLE, 2048


def check_input_size(height: int, width: int) -> tuple[int, int]:
    """Validate an input size; raises :class:`InputSizeError` saying the range or the nearest
    valid sizes."""
    for name, v in (("height", height), ("width", width)):
        if not MIN_SIDE <= v <= MAX_SIDE:
            raise InputSizeError(
                f"input size {height}x{width}: the {name} must be between {MIN_SIDE} and "
                f"{MAX_SIDE}",
                hint=f"use multiples of {SIZE_MULTIPLE} in that range, e.g. 224x224 or 256x320",
            )
        if v % SIZE_MULTIPLE:
            lo = (v // SIZE_MULTIPLE) * SIZE_MULTIPLE
            near = f"{lo} or {lo + SIZE_MULTIPLE}" if lo + SIZE_MULTIPLE <= MAX_SIDE else str(lo)
            raise InputSizeError(
                f"input size {height}x{width} is not a multiple of {SIZE_MULTIPLE}",
                hint=f"SINet pools 32x; use e.g. {near}",
            )
    return height, width


def parse_input_size(text: str) -> tuple[int, int]:
    """Parse ``HxW`` (or a single ``N`` for a square) and validate it."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        if len(parts) == 1:
            h = w = int(parts[0])
        elif len(parts) == 2:
            h, w = int(parts[0]), int(parts[1])
        else:
            raise ValueError
    except ValueError:
        raise InputSizeError(
            f"cannot read input size {text!r}", hint="write it as HxW, e.g. 224x224 or 256x320"
        ) from None
    return check_input_size(h, w)
