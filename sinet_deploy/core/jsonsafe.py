"""Making numbers JSON can hold: no infinities, no NaN.

JSON has no infinity; ``json.dumps`` would write the invalid token ``Infinity`` for the ``inf``
SQNR of an exact match (or ``NaN`` for an undefined statistic), and strict parsers reject the
whole document. Both the parity metrics and the report's ``results.json`` go through here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (``inf``, ``-inf``, ``nan``) replaced by ``None``.

    Mappings become dicts and lists or tuples become lists, recursively; anything else is
    returned unchanged. ``numpy.float64`` is a ``float`` and is covered too; other numpy scalars
    and arrays, paths and strings pass through as they are (``json.dumps(default=str)`` or the
    caller deals with them).
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value
