"""One export job in its own process: ``python -m sinet_deploy.pipeline.export_worker JOB``.

``JOB`` is a JSON file holding a :func:`sinet_deploy.pipeline.export_jobs.run_job` job plus
``result``, the path where this worker writes ``{"ok": true, "rows": [...], "parity": ...}`` or
``{"ok": false, "error", "error_type", "exit_code", "hint"}``. Anything the converters print
goes to stderr, which the parent keeps for the error message.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

from sinet_deploy.core.errors import SinetDeployError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    job = json.loads(Path(args[0]).read_text())
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # converters' chatter → stderr
    try:
        from sinet_deploy.pipeline.export_jobs import run_job

        result = {"ok": True, **run_job(job)}
    except SinetDeployError as exc:
        result = {
            "ok": False,
            "error": str(exc),
            "error_type": type(exc).__name__,
            "exit_code": exc.exit_code,
            "hint": exc.hint,
        }
    except Exception as exc:  # a converter bug: keep the traceback on stderr for the report
        traceback.print_exc()
        result = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "error_type": None,
            "exit_code": 1,
            "hint": None,
        }
    tmp = Path(job["result"] + ".tmp")
    tmp.write_text(json.dumps(result, default=str))
    os.replace(tmp, job["result"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
