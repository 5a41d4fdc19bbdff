"""The records the pipeline's export stage passes around: jobs, their rows and results.

Jobs and results cross a process boundary (:mod:`.export_worker`), so each record converts
itself to and from JSON explicitly; inside a process they travel as frozen dataclasses. The
JSON of :class:`ExportRow` is what ``results.json`` holds under ``pipeline.exports``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

#: Why an export row failed: its parity gate, or its converter could not run.
Failure = Literal["gate", "error"]


def _path(value: Any) -> Path | None:
    return Path(value) if value else None


def _str(path: Path | None) -> str | None:
    return str(path) if path else None


@dataclass(frozen=True)
class ParitySpec:
    """What the parity matrix after an export runs on.

    Attributes:
        images: the portraits every artifact is checked on.
        source: where they came from, in words (for the report).
        overlay_dir: where the overlay images go.
        slow_images: how many of ``images`` artifacts that only a slow reference evaluator
            runs here get (0: all of them).
    """

    images: tuple[Path, ...]
    source: str
    overlay_dir: Path
    slow_images: int

    def to_json(self) -> dict[str, Any]:
        return {
            "images": [str(p) for p in self.images],
            "source": self.source,
            "overlay_dir": str(self.overlay_dir),
            "slow_images": self.slow_images,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ParitySpec:
        return cls(
            images=tuple(Path(p) for p in data["images"]),
            source=str(data["source"]),
            overlay_dir=Path(data["overlay_dir"]),
            slow_images=int(data["slow_images"]),
        )


@dataclass(frozen=True)
class ExportJob:
    """One format at some of its precisions, exported together, then optionally checked.

    Attributes:
        weights: ``"official"``, ``"random"`` or a checkpoint path.
        format: the export format (``onnx``, ``tflite``, ...).
        precisions: the precisions one converter makes together.
        out_dir: where the artifacts are published.
        input_size: ``(H, W)`` of the artifacts.
        calib: calibration images for converters that quantize activations.
        gate_images: a folder the export gate adds to the packaged portraits.
        parity: the parity matrix to run on what was published (``None``: none).
        threads: threads for the parity sessions (``None``: every usable core).
    """

    weights: str
    format: str
    precisions: tuple[str, ...]
    out_dir: Path
    input_size: tuple[int, int]
    calib: Path | None = None
    gate_images: Path | None = None
    parity: ParitySpec | None = None
    threads: int | None = None

    @property
    def label(self) -> str:
        """``format p1/p2``, for progress messages."""
        return f"{self.format} {'/'.join(self.precisions)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "format": self.format,
            "precisions": list(self.precisions),
            "out_dir": str(self.out_dir),
            "input_size": list(self.input_size),
            "calib": _str(self.calib),
            "gate_images": _str(self.gate_images),
            "parity": self.parity.to_json() if self.parity else None,
            "threads": self.threads,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportJob:
        parity = data.get("parity")
        threads = data.get("threads")
        return cls(
            weights=str(data["weights"]),
            format=str(data["format"]),
            precisions=tuple(str(p) for p in data["precisions"]),
            out_dir=Path(data["out_dir"]),
            input_size=(int(data["input_size"][0]), int(data["input_size"][1])),
            calib=_path(data.get("calib")),
            gate_images=_path(data.get("gate_images")),
            parity=ParitySpec.from_json(parity) if parity else None,
            threads=int(threads) if threads is not None else None,
        )


@dataclass(frozen=True)
class ExportRow:
    """One (format, precision) of an export job: published, failed its gate, or not made.

    Attributes:
        artifact: the published file (``None`` unless it passed).
        seconds: export time (a failed job's time is split over its precisions).
        error: why it failed, in one line (``None`` when it passed).
        failure: ``"gate"``, ``"error"`` or ``None``.
        exit_code: what the command exits with for this row alone (0, 3, or the error's code).
    """

    format: str
    precision: str
    artifact: Path | None
    passed: bool
    seconds: float
    error: str | None
    failure: Failure | None
    exit_code: int

    @property
    def name(self) -> str:
        return f"{self.format}/{self.precision}"

    def to_json(self) -> dict[str, Any]:
        """The row as ``results.json`` holds it (``pipeline.exports``)."""
        return {
            "format": self.format,
            "precision": self.precision,
            "artifact": _str(self.artifact),
            "passed": self.passed,
            "seconds": self.seconds,
            "error": self.error,
            "failure": self.failure,
            "exit_code": self.exit_code,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportRow:
        return cls(
            format=str(data["format"]),
            precision=str(data["precision"]),
            artifact=_path(data.get("artifact")),
            passed=bool(data["passed"]),
            seconds=float(data["seconds"]),
            error=data.get("error"),
            failure=data.get("failure"),
            exit_code=int(data.get("exit_code") or 0),
        )


@dataclass(frozen=True)
class JobResult:
    """What one :class:`ExportJob` produced.

    Attributes:
        rows: one per precision of the job.
        parity: the parity matrix on its published artifacts, in ``ParityReport.to_dict``
            form (``None`` when none ran).
    """

    rows: tuple[ExportRow, ...]
    parity: dict[str, Any] | None = None

    @property
    def published(self) -> list[Path]:
        """The artifacts that passed their gate, in row order."""
        return [r.artifact for r in self.rows if r.passed and r.artifact]

    @classmethod
    def failed(cls, job: ExportJob, seconds: float, error: str, exit_code: int) -> JobResult:
        """One failed row per precision of a job whose converter could not run."""
        share = round(seconds / max(1, len(job.precisions)), 2)
        return cls(
            tuple(
                ExportRow(job.format, p, None, False, share, error, "error", exit_code)
                for p in job.precisions
            )
        )

    def to_json(self) -> dict[str, Any]:
        return {"rows": [r.to_json() for r in self.rows], "parity": self.parity}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobResult:
        return cls(tuple(ExportRow.from_json(r) for r in data["rows"]), data.get("parity"))


@dataclass(frozen=True)
class WorkerError:
    """The error an export worker stopped with, as it crosses back to the parent.

    Attributes:
        error: the message.
        error_type: the class name when it is one of ours (``None``: a converter bug).
        exit_code: the error's exit code.
        hint: the error's hint.
    """

    error: str
    error_type: str | None = None
    exit_code: int = 1
    hint: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "error_type": self.error_type,
            "exit_code": self.exit_code,
            "hint": self.hint,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WorkerError:
        return cls(
            error=str(data["error"]),
            error_type=data.get("error_type"),
            exit_code=int(data.get("exit_code") or 1),
            hint=data.get("hint"),
        )
