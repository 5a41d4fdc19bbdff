"""How numbers look in the report tables: one function per kind of cell, ``—`` for none."""

from __future__ import annotations

import math


def fmt_ms(v: float | None) -> str:
    return "—" if v is None else (f"{v:.2f}" if v < 100 else f"{v:.0f}")


def fmt_num(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "—"
    if isinstance(v, float) and math.isinf(v):
        return "∞"
    return f"{v:.{digits}f}"


def fmt_sci(v: float | None) -> str:
    return "—" if v is None else f"{v:.1e}"


def fmt_ratio(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}×"


def fmt_bytes(n: int | None) -> str:
    if n is None:
        return "—"
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.0f} KiB"
    return f"{n / 1024**2:.1f} MiB"


def fmt_gate(passed: bool | None) -> str:
    return "—" if passed is None else ("pass" if passed else "FAIL")
