"""The ``results.json`` document: everything a report is rebuilt from.

The inputs are the JSON-ready dicts that ``bench`` and ``parity`` print with ``--json`` (plus the
machine block and, for ``pipeline``, the export summary), so a report can be rebuilt from a saved
``results.json`` alone.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from sinet_deploy.core.jsonsafe import json_safe
from sinet_deploy.report.summary import summary_rows

SCHEMA_VERSION = 1


def build_results(
    *,
    machine: dict[str, Any],
    bench: dict[str, Any] | None = None,
    parity: dict[str, Any] | None = None,
    pipeline: dict[str, Any] | None = None,
    command: str | None = None,
) -> dict[str, Any]:
    """The ``results.json`` document (schema in the README, "results.json")."""
    return json_safe(
        {
            "schema_version": SCHEMA_VERSION,
            "generated_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": command,
            "machine": machine,
            "summary": (
                summary_rows(bench, parity, exports=(pipeline or {}).get("exports"))
                if (bench or parity or pipeline)
                else []
            ),
            "bench": bench,
            "parity": parity,
            "pipeline": pipeline,
        }
    )
