"""One export job in its own process: ``python -m sinet_deploy.pipeline.export_worker JOB RESULT``.

``JOB`` is a JSON file holding an :class:`~sinet_deploy.pipeline.records.ExportJob`;
``RESULT`` is the path where this worker writes ``{"ok": true, "rows": [...], "parity": ...}``
(a :class:`~sinet_deploy.pipeline.records.JobResult`) or ``{"ok": false, "error",
"error_type", "exit_code", "hint"}`` (a :class:`~sinet_deploy.pipeline.records.WorkerError`).
Anything the converters print goes to stderr, which the parent keeps for the error message.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from sinet_deploy.core.errors import SinetDeployError
from sinet_deploy.pipeline.records import ExportJob, WorkerError


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    job = ExportJob.from_json(json.loads(Path(args[0]).read_text()))
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # converters' chatter → stderr
    _write_atomically(Path(args[1]), _outcome(job))
    return 0


def _outcome(job: ExportJob) -> dict[str, Any]:
    """The job's result, or the error it stopped with, as the JSON the parent reads."""
    try:
        from sinet_deploy.pipeline.export_jobs import run_job

        return {"ok": True, **run_job(job).to_json()}
    except SinetDeployError as exc:
        error = WorkerError(str(exc), type(exc).__name__, exc.exit_code, exc.hint)
    except Exception as exc:  # a converter bug: keep the traceback on stderr for the report
        traceback.print_exc()
        error = WorkerError(f"{type(exc).__name__}: {exc}")
    return {"ok": False, **error.to_json()}


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    # The parent takes the file's existence as "finished": it must appear whole or not at all.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, default=str))
    os.replace(tmp, path)


if __name__ == "__main__":
    sys.exit(main())
