"""What this machine has: versions read from package metadata (nothing heavy is imported)."""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from sinet_deploy.core.version import __version__

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
    "executorch",
    "torchao",
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


#: CPU features that give int8 convolutions a dot-product instruction (4 int8 products summed
#: into int32 in one step). Without one, XNNPACK's x86 int8 kernels widen to int16 and run no
#: faster than its fp32 FMA kernels (measured: ``sinet-deploy profile``, README "int8").
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm")


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags from ``/proc/cpuinfo`` (x86 ``flags``, ARM ``Features``).

    ``None`` where the file does not exist (macOS, Windows): unknown, not "none".
    """
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() in ("flags", "Features"):
                    return set(value.split())
    except OSError:
        return None
    return set()


def int8_dot_product() -> dict[str, Any]:
    """Whether this CPU has int8 dot-product instructions, and which.

    Returns:
        ``{"int8_dot_product": True | False | None, "int8_flags": [...]}``; ``None`` when
        the flags cannot be read here.
    """
    flags = cpu_flags()
    if flags is None:
        return {"int8_dot_product": None, "int8_flags": []}
    found = [f for f in INT8_DOT_FLAGS if f in flags]
    return {"int8_dot_product": bool(found), "int8_flags": found}


def adb_version() -> str | None:
    adb = shutil.which("adb")
    if adb is None:
        return None
    try:
        out = subprocess.run([adb, "version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0].strip() if out else None


#: The hash-pinned lock of the whole environment (``scripts/lock.sh``), in a source checkout.
LOCK_FILE = Path(__file__).resolve().parents[2] / "requirements.lock"
_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path = LOCK_FILE) -> dict[str, str]:
    """``{canonical name: version}`` of every ``name==version`` line of a pip-style lock."""
    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _LOCK_LINE.match(line.strip())
        if m:
            pins[_canonical(m.group(1))] = m.group(2)
    return pins


def lock_status(path: Path = LOCK_FILE) -> dict[str, Any]:
    """Whether the installed distributions are exactly the lock's versions.

    Returns:
        ``{"lock": path or None, "matches": True | False | None, "differences": [...]}``;
        ``matches`` is ``None`` when no lock file is beside the package (an installed wheel).
        Each difference reads ``name: locked X, installed Y`` (``Y`` may be ``missing``).
    """
    if not path.is_file():
        return {"lock": None, "matches": None, "differences": []}
    installed = {
        _canonical(d.metadata["Name"]): d.version
        for d in metadata.distributions()
        if d.metadata["Name"]
    }
    diffs = [
        f"{name}: locked {want}, installed {installed.get(name, 'missing')}"
        for name, want in sorted(read_lock(path).items())
        if installed.get(name) != want
    ]
    return {"lock": str(path), "matches": not diffs, "differences": diffs}


def environment_report() -> dict[str, Any]:
    return {
        "sinet_deploy": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        **int8_dot_product(),
        "packages": package_versions(),
        "adb": adb_version(),
        "lock": lock_status(),
    }
