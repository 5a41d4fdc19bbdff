"""What this machine has: versions read from package metadata (nothing heavy is imported)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from importlib import metadata
from typing import Any

import sinet_deploy

COMPONENTS = (
    "torch",
    "numpy",
    "pillow",
    "onnx",
    "onnxruntime",
    "onnxsim",
    "onnx2tf",
    "tensorflow",
    "tf_keras",
    "ai-edge-litert",
    "tflite-runtime",
    "coremltools",
    "matplotlib",
    "typer",
    "rich",
)


def versions(*names: str) -> dict[str, str | None]:
    """Installed version of each distribution (``None`` when absent), from package metadata."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def package_versions() -> dict[str, str | None]:
    """Versions of every component the toolchain uses."""
    return versions(*COMPONENTS)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def adb_version() -> str | None:
    adb = shutil.which("adb")
    if adb is None:
        return None
    try:
        out = subprocess.run([adb, "version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None


def environment_report() -> dict[str, Any]:
    return {
        "sinet_deploy": sinet_deploy.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "packages": package_versions(),
        "adb": adb_version(),
    }
